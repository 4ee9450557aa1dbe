"""Opus and Codec 2 round trips through ffmpeg."""

import shutil

import numpy as np
import pytest
import torch

import codeclab
from codeclab.audio.signals import synthetic_speech
from codeclab.catalog.loading import load_roundtrip_codec

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make sysdeps)"
)


def speech(seconds=4.0, sr=16000, seed=0):
    return synthetic_speech(seconds, sr, seed=seed)[None]


def envelope_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    def env(x):
        e = np.convolve(np.abs(x), np.ones(160) / 160, mode="same")
        return e - e.mean()

    a, b = env(a), env(b)
    n = len(a)
    scores = {
        lag: float(np.dot(a[max(0, lag) : n + min(0, lag)], b[max(0, -lag) : n - max(0, lag)]))
        for lag in range(-max_lag, max_lag + 1, 4)
    }
    return max(scores, key=scores.get)


def bursts(sr=16000, seconds=4.0, seed=0):
    """Voiced bursts between silences: clear onsets for alignment checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    f0 = 110 + 40 * rng.random()
    for start in np.arange(0.3, seconds - 0.4, 0.7):
        a, b = int(start * sr), int((start + 0.25) * sr)
        x[a:b] = 0.3 * sum(np.sin(2 * np.pi * k * f0 * t[a:b]) / k for k in range(1, 12)) * np.hanning(b - a)
    return torch.tensor(x, dtype=torch.float32)[None, None]


@pytest.mark.parametrize("bitrate", [6000, 12000])
def test_opus_round_trip_length_bitrate_alignment(bitrate):
    opus = load_roundtrip_codec("opus", bitrate=bitrate)
    wav = torch.cat([speech(seed=1), speech(seed=2)])
    result = opus.roundtrip(wav, lengths=torch.tensor([64000, 50001]))
    assert result.audio.shape == wav.shape
    assert float(result.audio[1, :, 50001:].abs().sum()) == 0.0
    for rate in result.bitrate.tolist():
        assert abs(rate - bitrate) / bitrate < 0.15, rate
    probe = bursts()
    out = opus.roundtrip(probe).audio
    assert abs(envelope_lag(probe[0, 0].numpy(), out[0, 0].numpy(), 800)) <= 16  # within 1 ms at 16 kHz


@pytest.mark.parametrize("mode", [3200, 1200])
def test_codec2_round_trip_length_bitrate_alignment(mode):
    c2 = load_roundtrip_codec("codec2", mode=mode)
    wav = speech(seconds=3.0, seed=4)
    result = c2.roundtrip(wav)
    assert result.audio.shape == wav.shape
    assert abs(float(result.bitrate[0]) - mode) / mode < 0.15
    lags = [
        envelope_lag(p[0, 0].numpy(), c2.roundtrip(p).audio[0, 0].numpy(), 1600)
        for p in (bursts(seed=s) for s in range(4))
    ]
    assert abs(float(np.median(lags))) <= 80, lags  # within 5 ms at 16 kHz after removing the decoder delay


def test_classic_codecs_have_no_tokens_and_check_arguments():
    from codeclab.codecs.base import AudioCodec
    from codeclab.codecs.roundtrip import RoundTripCodec

    opus = load_roundtrip_codec("opus")
    assert isinstance(opus, RoundTripCodec) and not isinstance(opus, AudioCodec)
    assert not hasattr(opus, "encode")
    with pytest.raises(ValueError, match="round-trip codec .* load_codec\\('opus', roundtrip=True\\)"):
        codeclab.load_codec("opus")  # load_codec returns token codecs only
    with pytest.raises(ValueError, match="is a token codec"):
        load_roundtrip_codec("codeclab-tiny")
    with pytest.raises(ValueError, match="Opus runs at"):
        load_roundtrip_codec("opus", sample_rate=22050)
    with pytest.raises(ValueError, match="mode"):
        load_roundtrip_codec("codec2", mode=999)
    with pytest.raises(ValueError, match="NaN"):
        opus.roundtrip(torch.full((1, 1, 100), float("nan")))
