import pytest
import torch

import codeclab
from codeclab.codecs import Encoded


@pytest.mark.parametrize("length", [1, 319, 320, 321, 5000, 16001])
def test_lengths_for_any_input_length(tiny_codec, length):
    wav = torch.randn(1, 1, length) * 0.1
    enc = tiny_codec.encode(wav)
    frames = -(-length // tiny_codec.hop_length)
    assert enc.codes.shape == (1, 4, frames)
    assert enc.lengths.tolist() == [frames] and enc.audio_lengths.tolist() == [length]
    assert tiny_codec.decode(enc).shape == (1, 1, length)


def test_decode_of_bare_codes(tiny_codec):
    enc = tiny_codec.encode(torch.randn(2, 1, 1000) * 0.1)
    out = tiny_codec.decode(enc.codes)
    assert out.shape == (2, 1, enc.codes.shape[-1] * tiny_codec.hop_length)


@pytest.mark.parametrize("name", ["codeclab-16k-speech", "codeclab-tiny"])
def test_causal_preset_is_causal(name):
    codec = codeclab.load_codec(name, random_init=True)
    hop = codec.hop_length
    wav = torch.randn(1, 1, 40 * hop) * 0.3
    base = codec.encode(wav).codes
    for cut in (7 * hop, 20 * hop + 123, 33 * hop - 1):
        changed = wav.clone()
        changed[..., cut:] = torch.randn_like(changed[..., cut:])
        codes = codec.encode(changed).codes
        safe = cut // hop  # frames that end before the first changed sample
        assert torch.equal(codes[..., :safe], base[..., :safe])
        assert not torch.equal(codes, base)


def test_non_causal_preset_looks_ahead():
    codec = codeclab.load_codec("codeclab-24k-audio", random_init=True)
    hop = codec.hop_length
    wav = torch.randn(1, 1, 40 * hop) * 0.3
    base = codec.encode(wav).codes
    changed = wav.clone()
    changed[..., 20 * hop :] = 0
    codes = codec.encode(changed).codes
    assert not torch.equal(codes[..., :20], base[..., :20])  # the causality test above can fail
    assert not codec.causal


@pytest.mark.parametrize("name", ["codeclab-16k-speech", "codeclab-24k-audio", "codeclab-16k-fsq"])
def test_padded_batch_equals_single_items(name):
    codec = codeclab.load_codec(name, random_init=True)
    torch.manual_seed(7)
    lengths = [codec.sample_rate * 2, 777, 12345, 100, codec.sample_rate + 5]
    items = [torch.randn(1, 1, n) * 0.3 for n in lengths]
    batch = torch.zeros(len(items), 1, max(lengths))
    for i, item in enumerate(items):
        batch[i, :, : item.shape[-1]] = item
    enc = codec.encode(batch, lengths=torch.tensor(lengths))
    for i, item in enumerate(items):
        alone = codec.encode(item)
        assert torch.equal(enc.items()[i], alone.codes[0]), f"item {i} ({lengths[i]} samples) differs"
    # codes past each item's length are zero padding
    assert int(enc.codes[3, :, enc.lengths[3] :].abs().sum()) == 0


def test_garbage_past_lengths_is_ignored(tiny_codec):
    wav = torch.randn(2, 1, 3000) * 0.2
    lengths = torch.tensor([3000, 1700])
    a = tiny_codec.encode(wav, lengths=lengths)
    wav2 = wav.clone()
    wav2[1, :, 1700:] = 0.9  # whatever sits past the length must not matter
    b = tiny_codec.encode(wav2, lengths=lengths)
    assert torch.equal(a.codes, b.codes)


def test_n_q_selects_a_prefix(speech_codec):
    wav = torch.randn(1, 1, 8000) * 0.2
    full = speech_codec.encode(wav).codes
    assert torch.equal(speech_codec.encode(wav, n_q=3).codes, full[:, :3])
    assert speech_codec.decode(speech_codec.encode(wav, n_q=3)).shape == wav.shape


def test_decode_zeroes_past_each_length(tiny_codec):
    wav = torch.randn(2, 1, 2000) * 0.2
    enc = tiny_codec.encode(wav, lengths=torch.tensor([2000, 555]))
    out = tiny_codec.decode(enc)
    assert out.shape == (2, 1, 2000)
    assert float(out[1, :, 555:].abs().sum()) == 0.0


def test_training_forward(tiny_codec):
    from codeclab.codecs import NeuralCodec

    codec = NeuralCodec.from_config(tiny_codec.config).train()
    wav = torch.randn(2, 1, 3210) * 0.2
    out = codec(wav, lengths=torch.tensor([3210, 2000]))
    assert out.audio.shape == wav.shape
    assert out.quantizer.codes.shape[0] == 2 and out.latent.shape[1] == 16
    loss = (out.audio - wav).abs().mean() + out.quantizer.loss
    loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in codec.encoder.parameters())


def test_encoded_items_round_trip():
    items = [torch.randint(0, 10, (3, n)) for n in (4, 9, 1)]
    enc = Encoded.from_items(items, audio_lengths=[10, 20, 3])
    assert enc.codes.shape == (3, 3, 9)
    for a, b in zip(enc.items(), items):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "wav, kwargs, message",
    [
        (torch.randn(1, 100), {}, "shape \\[B, C, T\\]"),
        (torch.randn(100), {}, "shape \\[B, C, T\\]"),
        (torch.randn(1, 2, 100), {}, "channel"),
        (torch.tensor([[[0.0, float("nan"), 0.0]]]), {}, "NaN or inf"),
        (torch.tensor([[[0.0, float("inf")]]]), {}, "NaN or inf"),
        (torch.zeros(1, 1, 0), {}, "empty"),
        (torch.zeros(0, 1, 10), {}, "empty"),
        (torch.zeros(1, 1, 10, dtype=torch.int16), {}, "floating point"),
        (torch.zeros(1, 1, 100), {"n_q": 0}, "n_q"),
        (torch.zeros(1, 1, 100), {"n_q": 9}, "n_q"),
        (torch.zeros(2, 1, 100), {"lengths": torch.tensor([100, 101])}, "lengths"),
        (torch.zeros(2, 1, 100), {"lengths": torch.tensor([100])}, "lengths"),
        (torch.zeros(2, 1, 100), {"lengths": torch.tensor([0, 5])}, "lengths"),
    ],
)
def test_bad_input_raises_clear_value_error(speech_codec, wav, kwargs, message):
    with pytest.raises(ValueError, match=message):
        speech_codec.encode(wav, **kwargs)


def test_bad_codes_on_decode(tiny_codec):
    with pytest.raises(ValueError, match="codes must lie"):
        tiny_codec.decode(torch.full((1, 4, 5), 64))
    with pytest.raises(ValueError, match="codebooks"):
        tiny_codec.decode(torch.zeros(1, 5, 5, dtype=torch.long))
