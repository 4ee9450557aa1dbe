"""X-Codec 2 and NeuCodec (catalog/peers/w2v_bert_codecs.py): frames as the originals count them, the
features they were trained on, NeuCodec's two output rates, the published architectures (slow), and the
refusal when transformers is missing."""

from __future__ import annotations

import math
import sys

import pytest
import torch

import codeclab
from codeclab.audio.io import resample
from codeclab.catalog.peers.w2v_bert_codecs import semantic_features
from tests.catalog.small_peers import small_peer

pytest.importorskip("transformers", reason="the X-Codec 2 and NeuCodec peers need transformers")


def _speech_like(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    return (0.3 * torch.sin(2 * math.pi * 140 * t) + 0.05 * torch.randn(n, generator=gen))[None, None]


def _original_recipe(codec, x: torch.Tensor) -> torch.Tensor:
    """What the xcodec2/neucodec packages do: pad 320 - T % 320 zeros (a whole hop when T is a whole
    number of frames), features from SeamlessM4T's extractor (X-Codec 2 adds 160 zeros each side)."""
    hop = codec.hop_length
    padded = torch.nn.functional.pad(x, (0, hop - x.shape[-1] % hop))
    features = semantic_features(padded, hop // 2 if codec.name == "xcodec2" else 0)
    with torch.inference_mode():
        return codec.model.encode(padded, input_features=features).audio_codes.long()


def test_xcodec2_codes_equal_the_original_recipe_when_the_last_frame_is_partial():
    codec = small_peer("xcodec2")
    x = _speech_like(7 * codec.hop_length + 123)
    ours = codec.encode(x).codes
    assert ours.shape == (1, 1, 8)
    assert torch.equal(ours, _original_recipe(codec, x))


def test_neucodec_codes_equal_the_original_recipe_on_whole_frames_and_keep_a_partial_one():
    codec = small_peer("neucodec")
    whole = _speech_like(9 * codec.hop_length)
    assert torch.equal(codec.encode(whole).codes, _original_recipe(codec, whole))
    partial = _speech_like(9 * codec.hop_length + 50)
    assert codec.encode(partial).codes.shape[-1] == 10  # the original drops the last partial frame: 9
    assert _original_recipe(codec, partial).shape[-1] == 9


def test_features_are_the_w2v_bert_layout():
    x = _speech_like(16000)
    features = semantic_features(x, 160)
    assert features.shape == (1, 50, 160) and features.dtype == torch.float32
    bins = features[0].reshape(100, 80)  # frame pairs stacked: 100 frames of 80 mel bins, 10 ms apart
    assert torch.allclose(bins.mean(0), torch.zeros(80), atol=1e-4)  # each bin normalised over the item


def test_neucodec_decodes_at_its_own_rate_and_at_the_contract_rate():
    codec = small_peer("neucodec")
    lengths = [16000, 5000]
    wav = torch.zeros(2, 1, 16000)
    for b, n in enumerate(lengths):
        wav[b, :, :n] = _speech_like(n, seed=b)[0]
    enc = codec.encode(wav, lengths=torch.tensor(lengths))
    native = codec.decode_native(enc)
    assert codec.output_sample_rate == 24000 and native.shape == (2, 1, 24000)
    assert float(native[1, :, 7500:].abs().sum()) == 0.0
    ours = codec.decode(enc)
    assert ours.shape == wav.shape
    for b, n in enumerate(lengths):
        full = codec.decode_native(enc.items()[b][None]).numpy()[0]
        by_hand = resample(full, 24000, 16000)[:, :n]
        torch.testing.assert_close(ours[b, :, :n], torch.from_numpy(by_hand))


@pytest.mark.parametrize("name", ["xcodec2", "neucodec", "mimi"])
def test_a_missing_transformers_is_refused_with_the_install_line(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"codeclab\[peers\]"):
        codeclab.load_codec(name, random_init=True)
    assert "pip install codeclab[peers]" in codeclab.codec_info(name).source


@pytest.mark.slow
@pytest.mark.parametrize("name", ["xcodec2", "neucodec"])
def test_the_published_architecture_keeps_the_contract(name, tmp_path):
    """The full random-init model (w2v-BERT 2.0 with 16 layers; about 630M parameters): facts, lengths,
    batched == single, and a save/load round trip."""
    codec = codeclab.load_codec(name, random_init=True)
    assert (codec.sample_rate, codec.frame_rate, codec.num_codebooks, codec.codebook_size) == (
        16000,
        50.0,
        1,
        65536,
    )
    lengths = [8000, 3333]
    wav = torch.zeros(2, 1, 8000)
    for b, n in enumerate(lengths):
        wav[b, :, :n] = _speech_like(n, seed=b)[0]
    enc = codec.encode(wav, lengths=torch.tensor(lengths))
    assert enc.lengths.tolist() == [25, 11]
    assert torch.equal(enc.items()[1], codec.encode(wav[1:, :, :3333]).codes[0])
    assert codec.decode(enc).shape == wav.shape
    codec.save_pretrained(tmp_path / "saved")
    again = codeclab.load_codec(tmp_path / "saved")
    assert torch.equal(again.encode(wav[:1]).codes, enc.codes[:1, :, :25]) and again.random_init
