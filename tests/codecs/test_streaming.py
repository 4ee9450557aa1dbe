"""Streaming: chunks of any size give the codes of a whole pass bit for bit and its audio to float
rounding; emitted output never changes; batched streams are independent and reset one at a time."""

from __future__ import annotations

import random

import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.codecs.streaming import DECODE_TOLERANCE, StreamingUnsupported
from tests.codecs.small_codecs import small_codec

CAUSAL_PRESETS = [
    "codeclab-16k-speech",
    "codeclab-tiny",
    "codeclab-16k-small",
    "codeclab-16k-fsq",
    "codeclab-16k-12hz",
]
CHUNK_SIZES = [1, 2, 7, 160, 319, 320, 321, 999, 1280]  # samples: single, inside, straddling frames


@pytest.fixture(scope="module", params=CAUSAL_PRESETS)
def codec(request):
    name = request.param
    return codeclab.load_codec(name, random_init=name != "codeclab-16k-speech")


def _speech(seconds: float, seed: int) -> torch.Tensor:
    return synthetic_speech(seconds, 16000, seed=seed)[None]  # [1, 1, T]


def _stream_encode(stream, wav, rng):
    codes, start = [], 0
    while start < wav.shape[-1]:
        size = rng.choice(CHUNK_SIZES)
        codes.append(stream.encode_step(wav[..., start : start + size]))
        start += size
    codes.append(stream.encode_flush())
    return torch.cat(codes, dim=-1)


def _stream_decode(stream, codes, rng):
    audio, start = [], 0
    while start < codes.shape[-1]:
        size = rng.randint(1, 6)
        audio.append(stream.decode_step(codes[..., start : start + size]))
        start += size
    audio.append(stream.decode_flush())
    return torch.cat(audio, dim=-1)


def test_streamed_codes_and_audio_equal_the_whole_pass(codec):
    wav = _speech(0.83, seed=4)
    whole = codec.encode(wav)
    rng = random.Random(0)
    with codec.streaming() as stream:
        codes = _stream_encode(stream, wav, rng)
        assert torch.equal(codes, whole.codes)  # bit for bit
        audio = _stream_decode(stream, codes, rng)
    reference = codec.decode(whole.codes)
    assert audio.shape == reference.shape
    assert (audio - reference).abs().max() < DECODE_TOLERANCE


def test_a_partial_frame_waits_and_says_so(codec):
    hop = codec.hop_length
    with codec.streaming() as stream:
        assert stream.encode_step(_speech(1.0, seed=1)[..., : hop - 1]).shape[-1] == 0
        assert stream.pending_samples == hop - 1
        assert stream.encode_step(torch.zeros(1, 1, 1)).shape[-1] == 1
        assert stream.pending_samples == 0


def test_emitted_output_never_changes_with_later_input(codec):
    """Two streams share their first half and then differ: everything emitted in the first half agrees."""
    first, hop = _speech(0.4, seed=7), codec.hop_length
    outputs = []
    for seed in (8, 9):
        wav = torch.cat([first, _speech(0.3, seed=seed)], dim=-1)
        with codec.streaming() as stream:
            codes = [
                stream.encode_step(wav[..., i : i + 3 * hop + 17])
                for i in range(0, wav.shape[-1], 3 * hop + 17)
            ]
            audio = [stream.decode_step(c) for c in codes]
        outputs.append((codes, audio))
    shared = first.shape[-1] // (3 * hop + 17)  # steps fed only the shared half
    for step in range(shared):
        assert torch.equal(outputs[0][0][step], outputs[1][0][step])
        assert torch.equal(outputs[0][1][step], outputs[1][1][step])


def test_a_batch_of_streams_equals_each_stream_alone(codec):
    items = torch.cat([_speech(0.8, seed=s) for s in (11, 12, 13)])  # [3, 1, T]
    hop = codec.hop_length
    with codec.streaming(batch_size=3) as stream:
        codes = torch.cat(
            [stream.encode_step(items[..., i : i + 2 * hop]) for i in range(0, items.shape[-1], 2 * hop)], -1
        )
        codes = torch.cat([codes, stream.encode_flush()], -1)
        audio = torch.cat([stream.decode_step(codes), stream.decode_flush()], -1)
    for b in range(3):
        alone = codec.encode(items[b : b + 1])
        assert torch.equal(codes[b : b + 1], alone.codes)
        assert (audio[b : b + 1] - codec.decode(alone.codes)).abs().max() < DECODE_TOLERANCE


def test_resetting_one_stream_leaves_the_others_unchanged(codec):
    hop = codec.hop_length
    steady, old, new = _speech(0.8, seed=21), _speech(0.4, seed=22), _speech(0.4, seed=23)
    half = old.shape[-1] // hop * hop
    with codec.streaming(batch_size=2) as stream:
        first = stream.encode_step(torch.cat([steady[..., :half], old[..., :half]]))
        audio_first = stream.decode_step(first)
        stream.reset(1)
        second = stream.encode_step(torch.cat([steady[..., half : 2 * half], new[..., :half]]))
        audio_second = stream.decode_step(second)
    with codec.streaming() as alone:
        codes = torch.cat(
            [alone.encode_step(steady[..., :half]), alone.encode_step(steady[..., half : 2 * half])], -1
        )
        audio = torch.cat(
            [
                alone.decode_step(codes[..., : first.shape[-1]]),
                alone.decode_step(codes[..., first.shape[-1] :]),
            ],
            -1,
        )
    assert torch.equal(torch.cat([first[:1], second[:1]], -1), codes)
    assert (torch.cat([audio_first[:1], audio_second[:1]], -1) - audio).abs().max() < DECODE_TOLERANCE
    with codec.streaming() as fresh:
        new_codes = fresh.encode_step(new[..., :half])
        new_audio = fresh.decode_step(new_codes)
    assert torch.equal(second[1:], new_codes)
    # a decoder that looks ahead plays silence for the restarted stream's lookahead, then its audio
    silence = audio_second.shape[-1] - new_audio.shape[-1]
    assert silence == codec.decoder.lookahead_frames() * hop
    assert not audio_second[1, :, :silence].any()
    assert (audio_second[1:, :, silence:] - new_audio).abs().max() < DECODE_TOLERANCE


def test_reset_refuses_while_a_partial_frame_is_buffered():
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    with codec.streaming(batch_size=2) as stream:
        stream.encode_step(torch.zeros(2, 1, 100))
        with pytest.raises(ValueError, match="partial frame"):
            stream.reset(0)
        with pytest.raises(ValueError, match="stream index"):
            stream.reset(2)


def test_a_non_causal_codec_cannot_stream():
    codec = small_codec(causal=False)
    assert codec.latency is None
    with pytest.raises(StreamingUnsupported, match="small-centred is not causal"):
        with codec.streaming():
            pass


def test_latency_of_the_default_codec():
    codec = codeclab.load_codec("codeclab-16k-speech")
    latency = codec.latency
    assert (latency.frame_ms, latency.encode_ms, latency.decode_ms, latency.roundtrip_ms) == (
        20.0,
        20.0,
        15.0,
        35.0,
    )
    assert codec.describe()["latency_ms"]["roundtrip_ms"] == 35.0
    assert codeclab.load_codec("codeclab-tiny", random_init=True).latency.decode_ms == 0.0


def test_step_calls_need_an_open_stream_and_well_shaped_input():
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    with pytest.raises(RuntimeError, match="no open stream"):
        codec.encode_step(torch.zeros(1, 1, 320))
    with codec.streaming():
        assert codec.encode_step(torch.zeros(1, 1, 640)).shape == (1, 4, 2)  # the codec's own methods
        with pytest.raises(ValueError, match=r"shape \[1, 1, n\]"):
            codec.encode_step(torch.zeros(320))
        with pytest.raises(ValueError, match="finite"):
            codec.encode_step(torch.full((1, 1, 320), float("nan")))
        with pytest.raises(ValueError, match="codes must lie in"):
            codec.decode_step(torch.full((1, 4, 1), 64))


def test_streamed_latents_match_the_whole_pass_to_float_rounding(codec):
    """Codes hide small rounding differences; the encoder's latents show them. One frame per step is the
    hardest case (measured at most 1e-6 from a whole pass)."""
    from torch.nn.utils import parametrize

    from codeclab.codecs.modules.numerics import exact_numerics
    from codeclab.codecs.streaming import EXACT_OUTPUTS, LATENT_TOLERANCE

    hop, wav = codec.hop_length, _speech(0.64, seed=9)
    rng = random.Random(3)
    with exact_numerics(torch.device("cpu")), torch.inference_mode(), parametrize.cached():
        whole = codec.encoder(wav)
        state, pieces, start = codec.encoder.init_state(1, EXACT_OUTPUTS), [], 0
        while start < wav.shape[-1]:
            frames = rng.choice([1, 2, 3])
            pieces.append(codec.encoder.step(wav[..., start : start + frames * hop], state))
            start += frames * hop
    streamed = torch.cat(pieces, dim=-1)
    assert streamed.shape == whole.shape
    assert (streamed - whole).abs().max() < LATENT_TOLERANCE
