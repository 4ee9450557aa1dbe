"""Signal metrics (no optional package): SI-SDR, log-mel and multi-resolution STFT distances; and the
resampling every metric uses to reach the rate it runs at. Inputs: mono numpy arrays at one rate."""

from __future__ import annotations

import math

import numpy as np
import torch

from codeclab.audio.io import resample

SI_SDR_FLOOR = -100.0


def at_rate(x: np.ndarray, sr: int, rate: int | None) -> np.ndarray:
    """x resampled from sr to `rate` (None: left at sr), float32."""
    if rate is None or rate == sr:
        return x.astype(np.float32)
    return resample(x[None].astype(np.float32), sr, rate)[0]


def si_sdr(reference: np.ndarray, estimate: np.ndarray, sr: int = 0) -> float:
    """Scale-invariant SDR in dB, within [-100, 100] (100 for identical signals). Energy guard: an
    estimate with no energy (silence, a constant) scores the floor, -100 dB, not the 100 dB that a
    zero target and zero noise would give; NaN only for a reference without energy."""
    ref = reference.astype(np.float64) - reference.mean()
    est = estimate.astype(np.float64) - estimate.mean()
    energy = np.dot(ref, ref)
    if energy <= 0:
        return math.nan
    if np.dot(est, est) <= 1e-12 * energy:
        return SI_SDR_FLOOR
    target = np.dot(est, ref) / energy * ref
    noise = est - target
    noise_energy = np.dot(noise, noise)
    if noise_energy <= 1e-20 * np.dot(target, target):
        return 100.0
    return float(
        np.clip(10 * np.log10(max(np.dot(target, target), 1e-300) / noise_energy), SI_SDR_FLOOR, 100.0)
    )


def mel_distance(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    from codeclab.audio.spectral import mel_distance as _mel

    return float(_mel(torch.from_numpy(reference).float(), torch.from_numpy(estimate).float(), sr))


def stft_distance(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    from codeclab.train.losses import MultiResolutionSTFTLoss

    loss = MultiResolutionSTFTLoss()
    return float(
        loss(torch.from_numpy(estimate).float()[None, None], torch.from_numpy(reference).float()[None, None])
    )
