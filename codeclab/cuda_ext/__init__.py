"""Residual-quantization ops with interchangeable backends.

Ops: `nearest_code`, `vq_assign_stats`, `rvq_encode`, `rvq_decode`. They take plain tensors (inputs and
codebooks) and know nothing of modules. `backend(device)` says which implementation runs on a device.
Nothing is built or loaded at `import codeclab`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from codeclab.cuda_ext import reference

__all__ = ["backend", "nearest_code", "vq_assign_stats", "rvq_encode", "rvq_decode", "reference"]


def backend(device: torch.device | str = "cpu") -> str:
    """Name of the implementation that runs on `device`: "cuda", "cpp" or "torch"."""
    return "torch"


def nearest_code(x: Tensor, codebook: Tensor) -> Tensor:
    """x [N, D], codebook [K, D] -> codes [N] int64 (exact fp32 argmin, ties to the lowest index)."""
    return reference.nearest_code(x, codebook)


def vq_assign_stats(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x [N, D], codebook [K, D] -> (codes [N] int64, counts [K] fp32, sums [K, D] fp32)."""
    return reference.vq_assign_stats(x, codebook)


def rvq_encode(x: Tensor, codebooks: Tensor, n_q: int | None = None) -> Tensor:
    """x [N, D], codebooks [Q, K, D] -> codes [N, n_q] int64."""
    return reference.rvq_encode(x, codebooks, n_q=n_q)


def rvq_decode(codes: Tensor, codebooks: Tensor) -> Tensor:
    """codes [N, n_q], codebooks [Q, K, D] -> [N, D] fp32."""
    return reference.rvq_decode(codes, codebooks)
