"""Pure-torch reference implementations of the residual-quantization ops.

These define the semantics every accelerated backend must reproduce, and run wherever nothing faster
is available. Distances are ||c_k||^2 - 2 x.c_k in fp32 (||x||^2 is the same for every k of a row, so it
cannot change the argmin); ties go to the lowest index (`torch.argmin` returns the first minimum).

Row invariance: BLAS switches to kernels with other rounding for very thin matrices, so rows are processed
in blocks padded to at least `MIN_ROWS` rows; each row then gets the same arithmetic whatever the number
of rows in the call.
"""

from __future__ import annotations

import torch
from torch import Tensor

MIN_ROWS = 32
BLOCK_ROWS = 8192


def check_inputs(x: Tensor, codebook: Tensor) -> None:
    """Shape and value checks shared by all backends (clear errors instead of kernel crashes)."""
    if x.ndim != 2 or codebook.ndim != 2:
        raise ValueError(
            f"expected x [N, D] and codebook [K, D], got {tuple(x.shape)} and {tuple(codebook.shape)}"
        )
    if x.shape[1] != codebook.shape[1]:
        raise ValueError(f"dimension mismatch: x has D={x.shape[1]}, the codebook has D={codebook.shape[1]}")
    if codebook.shape[0] == 0:
        raise ValueError("the codebook is empty (K=0)")
    if x.device != codebook.device:
        raise ValueError(f"x is on {x.device} but the codebook is on {codebook.device}")
    for name, t in (("x", x), ("codebook", codebook)):
        if not t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf values")


def check_codebooks(x: Tensor, codebooks: Tensor, n_q: int | None) -> int:
    if codebooks.ndim != 3:
        raise ValueError(f"expected codebooks [Q, K, D], got {tuple(codebooks.shape)}")
    check_inputs(x, codebooks[0])
    n_stages = codebooks.shape[0]
    if n_q is None:
        return n_stages
    if isinstance(n_q, bool) or not isinstance(n_q, int) or not 1 <= n_q <= n_stages:
        raise ValueError(f"n_q must be an integer from 1 to {n_stages}, got {n_q!r}")
    return n_q


def nearest_code(x: Tensor, codebook: Tensor) -> Tensor:
    """x [N, D], codebook [K, D] -> codes [N] int64."""
    check_inputs(x, codebook)
    n = x.shape[0]
    out = torch.empty(n, dtype=torch.long, device=x.device)
    if n == 0:
        return out
    x = x.float()
    codebook = codebook.float()
    c_sq = codebook.pow(2).sum(dim=1)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        rows = x[start:stop]
        short = MIN_ROWS - rows.shape[0]
        if short > 0:
            rows = torch.cat([rows, rows.new_zeros(short, rows.shape[1])])
        dist = torch.addmm(c_sq, rows, codebook.t(), alpha=-2.0)
        out[start:stop] = dist.argmin(dim=1)[: stop - start]
    return out


def vq_assign_stats(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x [N, D], codebook [K, D] -> (codes [N], counts [K] fp32, sums [K, D] fp32)."""
    codes = nearest_code(x, codebook)
    k, d = codebook.shape
    counts = torch.bincount(codes, minlength=k).float()
    sums = torch.zeros(k, d, dtype=torch.float32, device=x.device)
    sums.index_add_(0, codes, x.float())
    return codes, counts, sums


def rvq_encode(x: Tensor, codebooks: Tensor, n_q: int | None = None) -> Tensor:
    """x [N, D], codebooks [Q, K, D] -> codes [N, n_q] int64 (greedy residual search)."""
    n_q = check_codebooks(x, codebooks, n_q)
    residual = x.float().clone()
    codes = torch.empty(x.shape[0], n_q, dtype=torch.long, device=x.device)
    for q in range(n_q):
        cb = codebooks[q].float()
        codes[:, q] = nearest_code(residual, cb)
        residual -= cb[codes[:, q]]
    return codes


def rvq_decode(codes: Tensor, codebooks: Tensor) -> Tensor:
    """codes [N, n_q] int, codebooks [Q, K, D] -> [N, D] fp32, the sum of the chosen code vectors."""
    if codes.ndim != 2 or codebooks.ndim != 3:
        raise ValueError(
            f"expected codes [N, n_q] and codebooks [Q, K, D], got {tuple(codes.shape)}, {tuple(codebooks.shape)}"
        )
    n_q = codes.shape[1]
    if n_q > codebooks.shape[0]:
        raise ValueError(f"codes have {n_q} stages but there are only {codebooks.shape[0]} codebooks")
    k = codebooks.shape[1]
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
        raise ValueError(f"codes must lie in [0, {k})")
    out = torch.zeros(codes.shape[0], codebooks.shape[2], dtype=torch.float32, device=codebooks.device)
    for q in range(n_q):
        out += codebooks[q].float()[codes[:, q].long()]
    return out
