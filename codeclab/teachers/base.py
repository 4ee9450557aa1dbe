"""The teacher contract and frame-rate alignment.

A teacher turns audio into frame features: `features(wav [B, C, T], lengths [B]) -> [B, T_t, D]` at its
own `sample_rate` and `frame_rate`. Codec training reads them at the codec's frame times by linear
interpolation (`features_at`), so a 50 Hz HuBERT, a 100 Hz phone recogniser and a 12.5 Hz codec all fit.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor


class Teacher(ABC):
    """Frame features of audio. Subclasses set `name`, `sample_rate`, `frame_rate`, `dim` and implement
    `item_features`; `features` runs items one at a time, so a batch gives exactly what single items do."""

    name: str
    sample_rate: int
    frame_rate: float
    dim: int

    @abstractmethod
    def item_features(self, wav: Tensor) -> Tensor:
        """One mono item wav [T] at `sample_rate` -> features [T_t, D] (float32, on the CPU)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Identifies the teacher's outputs (weights, layer, settings): the feature cache's key."""

    @torch.no_grad()
    def features(self, wav: Tensor, lengths: Tensor | None = None) -> Tensor:
        """wav [B, C, T] (or [B, T]) at `sample_rate` -> [B, T_t, D], zero past each item's frames."""
        if wav.ndim == 3:
            wav = wav.mean(1)
        if wav.ndim != 2:
            raise ValueError(f"expected wav [B, C, T] or [B, T], got {tuple(wav.shape)}")
        lengths = torch.full((wav.shape[0],), wav.shape[-1]) if lengths is None else lengths
        items = [self.item_features(wav[i, : int(lengths[i])].float().cpu()) for i in range(wav.shape[0])]
        out = torch.zeros(len(items), max(x.shape[0] for x in items), self.dim)
        for i, x in enumerate(items):
            out[i, : x.shape[0]] = x
        return out

    def describe(self) -> dict:
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "dim": self.dim,
        }


def features_at(features: Tensor, frame_rate: float, times: Tensor) -> Tensor:
    """Linear interpolation of features [T_t, D] (frame i centred at (i + 0.5) / frame_rate seconds) at
    `times` [F] seconds -> [F, D]; times outside the covered span take the nearest frame."""
    if features.shape[0] == 0:
        raise ValueError("no teacher frames to interpolate")
    pos = (times.double() * frame_rate - 0.5).clamp(0, features.shape[0] - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(features.shape[0] - 1)
    w = (pos - lo).float()[:, None]
    return features[lo] * (1 - w) + features[hi] * w


def codec_frame_times(frames: int, frame_rate: float, offset: float = 0.0) -> Tensor:
    """Centres (seconds) of codec frames 0..frames-1 of audio starting `offset` seconds into a file."""
    return offset + (torch.arange(frames, dtype=torch.float64) + 0.5) / frame_rate


def check_rate(frame_rate: float) -> float:
    if not (math.isfinite(frame_rate) and frame_rate > 0):
        raise ValueError(f"teacher frame_rate must be positive, got {frame_rate}")
    return float(frame_rate)
