"""Deterministic test signals, for demos, tests and benchmarks that must not depend on downloads."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def synthetic_speech(seconds: float = 4.0, sample_rate: int = 16000, seed: int = 0) -> Tensor:
    """A speech-like test signal [1, T] in [-1, 1]: a voiced harmonic tone with vibrato and a moving
    formant-like emphasis, a rising chirp, and short noise bursts (consonant-like)."""
    gen = torch.Generator().manual_seed(seed)
    n = int(round(seconds * sample_rate))
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    f0 = 140 + 25 * torch.sin(2 * math.pi * 0.7 * t) + 6 * torch.sin(2 * math.pi * 5.5 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    formant = 700 + 500 * torch.sin(2 * math.pi * 0.35 * t)
    voiced = torch.zeros(n, dtype=torch.float64)
    for k in range(1, 25):
        freq = k * f0
        gain = torch.exp(-(((freq - formant) / 400) ** 2)) + 0.15 / k
        voiced += gain * torch.sin(k * phase) * (freq < sample_rate / 2)
    envelope = 0.5 * (1 + torch.sin(2 * math.pi * 1.3 * t)).clamp(0.1)
    signal = voiced / voiced.abs().max() * envelope * 0.6
    chirp_f = 300 + (sample_rate / 2 - 1500) * (t / t[-1])
    signal += 0.12 * torch.sin(2 * math.pi * torch.cumsum(chirp_f, 0) / sample_rate)
    noise = torch.randn(n, generator=gen, dtype=torch.float64)
    start = 0.25
    while start < seconds:
        a, b = int(start * sample_rate), min(int((start + 0.08) * sample_rate), n)
        if b - a > 1:
            signal[a:b] += 0.3 * noise[a:b] * torch.hann_window(b - a, dtype=torch.float64)
        start += 0.9
    signal = signal / signal.abs().max() * 0.9
    return signal.float()[None]


def calibration_signal(sample_rate: int = 16000, seconds: float = 32.0, seed: int = 0) -> Tensor:
    """A varied fixed signal [1, T] (speech-like tones at several levels, noise, chirps, silence) used
    to k-means-initialise the codebooks of randomly initialised codecs, as a first training batch would."""
    gen = torch.Generator().manual_seed(seed)
    parts: list[Tensor] = []
    per = seconds / 8
    for i, gain in enumerate((1.0, 0.3, 0.05, 0.6)):
        parts.append(synthetic_speech(per, sample_rate, seed=seed + i) * gain)
    n = int(per * sample_rate)
    for gain in (0.01, 0.1, 0.4):
        parts.append(torch.randn(1, n, generator=gen) * gain)
    t = torch.arange(n) / sample_rate
    sweep = torch.sin(2 * math.pi * (50 * t + (sample_rate / 2 - 100) / (2 * per) * t**2)) * 0.5
    sweep[..., : n // 8] = 0  # a little silence
    parts.append(sweep[None])
    return torch.cat(parts, dim=-1).clamp(-1, 1)
