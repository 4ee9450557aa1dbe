"""Mel spectrograms in plain torch (no librosa): the features behind the mel loss and the mel distance.

The filterbank uses the HTK mel scale (mel = 2595 log10(1 + f / 700)) with triangular filters normalised to
unit peak; spectrograms use a periodic Hann window, centred frames with reflection padding, and magnitude
(power 1).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


def hz_to_mel(hz: Tensor | float) -> Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@functools.lru_cache(maxsize=64)
def _filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> Tensor:
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(
        torch.linspace(float(hz_to_mel(fmin)), float(hz_to_mel(fmax)), n_mels + 2, dtype=torch.float64)
    )
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower).clamp_min(1e-9)
    falling = (upper - freqs[None]) / (upper - centre).clamp_min(1e-9)
    return torch.minimum(rising, falling).clamp_min(0.0).float()  # [n_mels, n_fft // 2 + 1]


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> Tensor:
    """Triangular mel filters [n_mels, n_fft // 2 + 1]."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got {fmin}, {fmax}")
    return _filterbank(int(sample_rate), int(n_fft), int(n_mels), float(fmin), float(fmax)).clone()


def stft_magnitude(wav: Tensor, n_fft: int, hop: int | None = None) -> Tensor:
    """wav [..., T] -> magnitude [..., n_fft // 2 + 1, frames] (fp32, autocast off)."""
    hop = hop or n_fft // 4
    shape = wav.shape
    flat = wav.reshape(-1, shape[-1]).float()
    if flat.shape[-1] <= n_fft // 2:  # reflection padding needs more samples than half a window
        flat = torch.nn.functional.pad(flat, (0, n_fft // 2 + 1 - flat.shape[-1]))
    window = torch.hann_window(n_fft, device=wav.device)
    with torch.autocast(device_type=wav.device.type, enabled=False):
        spec = torch.stft(
            flat, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True
        )
    return spec.abs().reshape(*shape[:-1], *spec.shape[-2:])


def log_mel(
    wav: Tensor, sample_rate: int, n_fft: int, n_mels: int, hop: int | None = None, eps: float = 1e-5
) -> Tensor:
    """wav [..., T] -> log mel magnitude [..., n_mels, frames]."""
    n_mels = min(n_mels, n_fft // 2 + 1)
    fb = mel_filterbank(sample_rate, n_fft, n_mels).to(wav.device)
    mel = torch.matmul(fb, stft_magnitude(wav, n_fft, hop))
    return torch.log(mel.clamp_min(eps))


def mel_distance(
    reference: Tensor, estimate: Tensor, sample_rate: int, n_fft: int = 1024, n_mels: int = 80
) -> Tensor:
    """Mean absolute difference of log mel spectrograms ([..., T] each; natural log units)."""
    return (
        (log_mel(estimate, sample_rate, n_fft, n_mels) - log_mel(reference, sample_rate, n_fft, n_mels))
        .abs()
        .mean()
    )


def default_mel_scales(sample_rate: int) -> list[tuple[int, int]]:
    """(n_fft, n_mels) pairs of the multi-scale mel loss: windows of 32..2048 samples (DAC's choice),
    with mel bands halving as the window halves."""
    scales = []
    for i, n_fft in enumerate((32, 64, 128, 256, 512, 1024, 2048)):
        scales.append((n_fft, 5 * 2**i))
    return scales
