"""Level normalisation of waveforms (RMS level in dBFS, peak-safe).

This is RMS level, not loudness: BS.1770 LUFS (pyloudnorm) gates 400 ms blocks and K-weights them, which
is right for programme loudness but leaves short training crops (0.5-1 s) and single words partly
ungated and costs a filter pass per crop in the data loader. Training and teacher features only need a
consistent input level, so the plain RMS is kept here on purpose; reports that state loudness should
use LUFS."""

from __future__ import annotations

import numpy as np


def normalise_loudness(x: np.ndarray, target_db: float, max_gain_db: float = 30.0) -> np.ndarray:
    """Scale x [C, T] to an RMS of target_db dBFS (at most +max_gain_db; silence is left alone), then scale
    down if the peak would exceed 0.99."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms > 1e-5:
        gain = min(10 ** (target_db / 20) / rms, 10 ** (max_gain_db / 20))
        x = x * gain
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    return x.astype(np.float32)
