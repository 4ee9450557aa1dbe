"""Residual-quantization ops with interchangeable backends: CUDA kernel, C++ CPU kernel, torch reference.

Ops: `nearest_code`, `vq_assign_stats`, `rvq_encode`, `rvq_decode`. They take plain tensors (inputs and
codebooks) and know nothing of modules. Every backend returns the same codes: the exact argmin of the
squared distance, ties to the lowest index (see `reference`). `backend(device)` says which implementation
runs on a device; `CODECLAB_RVQ_BACKEND=torch` forces the reference (`cpp` / `cuda` force a kernel and fail
loudly if it cannot be built). Kernels are built on first use, never at `import codeclab`; a kernel that
cannot be built or loaded is logged once and the reference runs instead.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import torch
from torch import Tensor

from codeclab.cuda_ext import reference

__all__ = [
    "backend",
    "nearest_code",
    "vq_assign_stats",
    "rvq_encode",
    "rvq_decode",
    "reference",
    "load_kernel",
]

log = logging.getLogger("codeclab.cuda_ext")
_ENV = "CODECLAB_RVQ_BACKEND"
_kernels: dict[str, Any] = {}
_failures: dict[str, str] = {}
_lock = threading.Lock()


def load_kernel(kind: str):
    """The loaded kernel object for "cpp" or "cuda", or None (the failure is logged once)."""
    with _lock:
        if kind in _kernels:
            return _kernels[kind]
        if kind in _failures:
            return None
        try:
            if kind == "cpp":
                from codeclab.cuda_ext.cpu import CpuKernel

                _kernels[kind] = CpuKernel()
            elif kind == "cuda":
                from codeclab.cuda_ext.cuda import CudaKernel

                _kernels[kind] = CudaKernel()
            else:
                raise ValueError(f"unknown kernel {kind!r}")
        except Exception as err:  # a missing compiler, a failed build, no GPU, a failed self-check
            _failures[kind] = str(err)
            log.warning(
                "codeclab %s kernel unavailable, using the torch reference: %s",
                kind,
                str(err).splitlines()[0],
            )
            return None
        return _kernels[kind]


def kernel_failure(kind: str) -> str | None:
    """Why the `kind` kernel could not be loaded (None if it loaded or was not tried)."""
    return _failures.get(kind)


def backend(device: torch.device | str = "cpu") -> str:
    """Name of the implementation that runs on `device`: "cuda", "cpp" or "torch"."""
    device = torch.device(device)
    wanted = os.environ.get(_ENV, "auto").strip().lower()
    if wanted not in ("auto", "torch", "cpp", "cuda"):
        raise ValueError(f"{_ENV}={wanted!r}: use auto, torch, cpp or cuda")
    if wanted == "torch":
        return "torch"
    kind = "cuda" if device.type == "cuda" else "cpp" if device.type == "cpu" else None
    if kind is None:
        return "torch"
    if wanted != "auto" and wanted != kind:
        return "torch"  # the forced kernel does not serve this device
    if load_kernel(kind) is not None:
        return kind
    if wanted == kind:
        raise RuntimeError(f"{_ENV}={wanted} but the {kind} kernel is unavailable: {kernel_failure(kind)}")
    return "torch"


def _kernel_for(t: Tensor):
    name = backend(t.device)
    return None if name == "torch" else _kernels[name]


def nearest_code(x: Tensor, codebook: Tensor) -> Tensor:
    """x [N, D], codebook [K, D] -> codes [N] int64 (exact argmin, ties to the lowest index)."""
    reference.check_inputs(x, codebook)
    kernel = _kernel_for(x)
    if kernel is None or x.shape[0] == 0:
        return reference.nearest_code(x, codebook)
    return kernel.rvq_encode(x, codebook[None], 1)[:, 0].to(x.device)


def vq_assign_stats(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x [N, D], codebook [K, D] -> (codes [N] int64, counts [K] fp32, sums [K, D] fp32); memory O(N*D + K*D)."""
    reference.check_inputs(x, codebook)
    kernel = _kernel_for(x)
    if kernel is None or x.shape[0] == 0:
        return reference.vq_assign_stats(x, codebook)
    return tuple(t.to(x.device) for t in kernel.vq_assign_stats(x, codebook))


def rvq_encode(x: Tensor, codebooks: Tensor, n_q: int | None = None) -> Tensor:
    """x [N, D], codebooks [Q, K, D] -> codes [N, n_q] int64."""
    n_q = reference.check_codebooks(x, codebooks, n_q)
    kernel = _kernel_for(x)
    if kernel is None or x.shape[0] == 0:
        return reference.rvq_encode(x, codebooks, n_q)
    return kernel.rvq_encode(x, codebooks, n_q).to(x.device)


def rvq_decode(codes: Tensor, codebooks: Tensor) -> Tensor:
    """codes [N, n_q], codebooks [Q, K, D] -> [N, D] fp32."""
    reference.check_codes(codes, codebooks)
    kernel = _kernel_for(codebooks)
    if kernel is None or codes.shape[0] == 0:
        return reference.rvq_decode(codes, codebooks)
    return kernel.rvq_decode(codes, codebooks).to(codebooks.device)
