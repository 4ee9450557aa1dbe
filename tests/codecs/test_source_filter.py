"""The source-filter decoder, its excitation and the F0 codebook (codecs/modules/{source_filter,excitation,pitch}.py)."""

from __future__ import annotations

import math

import pytest
import torch

from codeclab.codecs.modules.excitation import Excitation
from codeclab.codecs.modules.pitch import PitchConfig, PitchTracker, codes_to_f0, f0_to_codes
from codeclab.codecs.modules.seanet import SEANetConfig
from codeclab.codecs.modules.source_filter import SourceFilterDecoderConfig
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.codecs.streaming import DECODE_TOLERANCE
from codeclab.quantizers import SplitConfig

SR = 16000


def harmonic_signal(f0: torch.Tensor, seconds: float, amplitude: float = 0.1) -> torch.Tensor:
    """A 20-harmonic tone following f0 (a function of time in Hz) -> [1, 1, T]."""
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    freq = f0(t)
    phase = 2 * math.pi * torch.cumsum(freq, 0) / SR
    x = sum(torch.cos(k * phase) / k for k in range(1, 21))
    return (amplitude * x / x.abs().max()).float()[None, None]


def source_filter_codec(mode: str = "sent", head: str = "source_filter") -> NeuralCodec:
    """A small source-filter codec (hop 320, 4 sub-frames, split quantizer), seeded random weights."""
    ratios = [2, 4, 5, 8]
    config = CodecConfig(
        SR,
        SEANetConfig(dimension=16, n_filters=4, ratios=ratios, causal=True),
        SourceFilterDecoderConfig(dimension=16, width=32, blocks=2, head=head),
        SplitConfig(dim=16, codebook_size=256, num_quantizers=3 if mode == "sent" else 4),
        pitch=PitchConfig(mode=mode) if head == "source_filter" else None,
    )
    torch.manual_seed(0)
    codec = NeuralCodec.from_config(config, name="small-source-filter").eval()
    codec.calibrate(harmonic_signal(lambda t: 120 + 40 * torch.sin(2 * math.pi * t), 2.0))
    return codec


# -- excitation -------------------------------------------------------------------------------------------
def test_constant_f0_excitation_has_its_energy_at_the_harmonics():
    excitation = Excitation(SR, 320, 80, 4)
    f0 = torch.full((1, 50), 200.0)  # one second at 200 Hz: harmonics every 10 bins of 20 Hz
    harmonic, noise = excitation(f0)
    x = torch.fft.irfft(harmonic[0, :, 10:].transpose(0, 1), n=320).reshape(-1)  # windowed frames
    power = harmonic[0, :, 10:].abs().pow(2).mean(-1)  # [bins], 50 Hz per bin at n_fft 320
    on = power[[4, 8, 12, 16, 20, 40, 80, 120]]  # 200, 400, ..., 6000 Hz
    off = power[[2, 6, 10, 14, 18, 42, 82, 122]]  # half-way between harmonics
    assert bool((on > 20 * off).all()), (on, off)
    noise_power = noise[0].abs().pow(2).mean(-1)
    assert not bool((noise_power[[4, 8, 12, 16]] > 20 * noise_power[[2, 6, 10, 14]]).all())
    assert torch.isfinite(x).all()


def test_harmonic_phase_is_continuous_across_chunks():
    excitation = Excitation(SR, 320, 80, 4)
    f0 = 100 + 80 * torch.rand(2, 40)
    f0[:, 10:13] = 0  # an unvoiced stretch
    whole_h, whole_n = excitation(f0)
    state = excitation.init_state(2)
    pieces = [excitation.step(f0[:, a:b], state) for a, b in ((0, 7), (7, 8), (8, 29), (29, 40))]
    chunked_h = torch.cat([p[0] for p in pieces], -1)
    chunked_n = torch.cat([p[1] for p in pieces], -1)
    assert torch.allclose(chunked_h, whole_h, atol=1e-4)
    assert torch.equal(chunked_n, whole_n)
    # in the time domain: two calls that carry the phase give the whole call's signal; restarting the phase
    # at the boundary (what a decoder without the state would do) does not
    f0 = torch.full((1, 4), 137.0)  # not a whole number of periods per frame
    zero, none = torch.zeros(1, dtype=torch.float64), torch.zeros(1)
    whole, _ = excitation.harmonic(f0, zero, none)
    first, phase = excitation.harmonic(f0[:, :2], zero, none)
    second, _ = excitation.harmonic(f0[:, 2:], phase, f0[:, 1])
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-4)
    restarted, _ = excitation.harmonic(f0[:, 2:], zero, f0[:, 1])
    assert not torch.allclose(torch.cat([first, restarted], 1), whole, atol=1e-2)


# -- the F0 codebook and the tracker ---------------------------------------------------------------------
def test_f0_codes_round_trip_within_one_step_and_unvoiced_stays_unvoiced():
    cfg = PitchConfig()
    f0 = torch.exp(torch.linspace(math.log(cfg.fmin), math.log(cfg.fmax), 1000)).double()
    back = codes_to_f0(f0_to_codes(f0, cfg), cfg)
    step = math.log(cfg.fmax / cfg.fmin) / (cfg.levels - 2)
    assert float(torch.log(back / f0).abs().max()) <= step / 2 + 1e-9
    zero = torch.zeros(5, dtype=torch.float64)
    assert int(f0_to_codes(zero, cfg).abs().sum()) == 0
    assert float(codes_to_f0(torch.zeros(5, dtype=torch.long), cfg).abs().sum()) == 0.0
    # codes past the grid (an LM may emit them) decode as the grid's top
    assert float(codes_to_f0(torch.tensor([1000]), cfg)[0]) == pytest.approx(cfg.fmax)


def test_tracker_follows_a_gliding_tone_and_calls_silence_unvoiced():
    cfg = PitchConfig()
    tracker = PitchTracker(cfg, SR, 320)
    wav = harmonic_signal(lambda t: 150 + 50 * torch.sin(2 * math.pi * 0.5 * t), 2.0)
    wav[..., 16000:19200] = 0
    f0 = tracker.track(wav)[0]
    t_end = (torch.arange(f0.shape[0]) + 1) * 320 / SR - 0.01  # the analysed window's centre
    truth = 150 + 50 * torch.sin(2 * math.pi * 0.5 * t_end.double())
    voiced = f0 > 0
    assert float(voiced[5:48].float().mean()) > 0.95
    cents = 1200 * torch.log2(f0[voiced] / truth[voiced]).abs()
    assert float(cents.median()) < 25 and float(cents.max()) < 150  # no octave errors
    assert not bool(voiced[52:58].any())  # inside the silence


def test_tracker_stream_equals_whole_and_batch_equals_single():
    tracker = PitchTracker(PitchConfig(), SR, 320)
    wav = harmonic_signal(lambda t: 110 + 30 * t, 1.5)
    whole = tracker.codes(wav)
    history, pieces = tracker.init_state(1), []
    for a, b in ((0, 960), (960, 1280), (1280, 24000)):
        codes, history = tracker.step(wav[..., a:b], history)
        pieces.append(codes)
    assert torch.equal(torch.cat(pieces, -1), whole)
    batch = torch.cat([wav, 0.05 * torch.randn_like(wav)])
    assert torch.equal(tracker.codes(batch)[0], whole[0])


# -- the codec -------------------------------------------------------------------------------------------
def test_pitch_codebook_sits_after_the_semantic_one():
    codec = source_filter_codec("sent")
    wav = harmonic_signal(lambda t: 130 + 0 * t, 1.0)
    enc = codec.encode(wav)
    assert codec.num_codebooks == 4 and enc.codes.shape[1] == 4
    assert torch.equal(
        enc.codes[0, 1], codec.pitch_tracker.codes(codec._pad(wav, torch.tensor([16000]), 1)[0])[0]
    )
    assert int(enc.codes[0, 1, 10:].min()) > 0  # voiced
    one = codec.encode(wav, n_q=1)
    assert one.codes.shape[1] == 1  # n_q 1: the semantic codebook only
    assert torch.equal(one.codes[0, 0], enc.codes[0, 0])
    two = codec.encode(wav, n_q=2)
    assert two.codes.shape[1] == 2 and torch.equal(two.codes[0, 1], enc.codes[0, 1])
    with codec.streaming(1, n_q=1) as stream:
        assert stream.encode_step(wav[..., :3200]).shape[1] == 1
    assert codec.decode(one).shape == wav.shape  # decodes unvoiced


@pytest.mark.parametrize(
    "mode,head", [("sent", "source_filter"), ("predicted", "source_filter"), ("sent", "complex")]
)
def test_streamed_and_batched_equal_whole(mode, head):
    codec = source_filter_codec(mode, head)
    a = harmonic_signal(lambda t: 120 + 60 * t, 1.3)
    b = harmonic_signal(lambda t: 220 - 50 * t, 0.9)
    whole = codec.encode(a)
    wav_whole = codec.decode(whole)
    batch = torch.zeros(2, 1, a.shape[-1])
    batch[0], batch[1, :, : b.shape[-1]] = a[0], b[0]
    enc = codec.encode(batch, lengths=torch.tensor([a.shape[-1], b.shape[-1]]))
    assert torch.equal(enc.codes[0], whole.codes[0])
    single_b = codec.encode(b)
    assert torch.equal(enc.codes[1, :, : single_b.codes.shape[-1]], single_b.codes[0])
    decoded = codec.decode(enc)
    assert float((decoded[0] - wav_whole[0]).abs().max()) < DECODE_TOLERANCE
    assert float((decoded[1, :, : b.shape[-1]] - codec.decode(single_b)[0]).abs().max()) < DECODE_TOLERANCE
    codes, audio = [], []
    with codec.streaming(1) as stream:
        for start in range(0, a.shape[-1], 777):
            piece = stream.encode_step(a[..., start : start + 777])
            codes.append(piece)
            audio.append(stream.decode_step(piece))
        last = stream.encode_flush()
        codes.append(last)
        audio += [stream.decode_step(last), stream.decode_flush()]
    assert torch.equal(torch.cat(codes, -1), whole.codes)
    streamed = torch.cat(audio, -1)[..., : wav_whole.shape[-1]]
    assert float((streamed - wav_whole).abs().max()) < DECODE_TOLERANCE


def test_latency_is_the_sub_frame_lookahead():
    latency = source_filter_codec().latency
    assert latency.encode_ms == 20.0 and latency.decode_ms == 15.0 and latency.roundtrip_ms <= 40.0


def test_config_round_trips_and_saves(tmp_path):
    from codeclab.catalog.loading import load_pretrained

    codec = source_filter_codec("sent")
    assert CodecConfig.from_dict(codec.config.to_dict()) == codec.config
    codec.save_pretrained(tmp_path / "sf")
    loaded = load_pretrained(tmp_path / "sf")
    wav = harmonic_signal(lambda t: 140 + 0 * t, 0.5)
    assert torch.equal(loaded.encode(wav).codes, codec.encode(wav).codes)
    with pytest.raises(ValueError, match="pitch"):
        CodecConfig.from_dict({**codec.config.to_dict(), "pitch": None})


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="mode"):
        PitchConfig(mode="guessed")
    with pytest.raises(ValueError, match="fmax"):
        PitchConfig(fmin=300.0, fmax=200.0)
    with pytest.raises(ValueError, match="sub-frames"):
        SourceFilterDecoderConfig(hop=320, sub_frames=3)
    with pytest.raises(ValueError, match="head"):
        SourceFilterDecoderConfig(head="wavenet")


def test_long_items_decode_in_chunks_through_the_stream():
    from codeclab.codecs.chunked import decode_stream

    codec = source_filter_codec("sent")
    wav = harmonic_signal(lambda t: 100 + 40 * t, 2.1)
    enc = codec.encode(wav)
    whole = codec.decode(enc)[0]
    blocks = list(decode_stream(codec, enc.codes[0], wav.shape[-1], chunk_seconds=0.3))
    assert len(blocks) > 3
    chunked = torch.cat(blocks, -1)
    assert chunked.shape == whole.shape
    assert float((chunked - whole).abs().max()) < DECODE_TOLERANCE
