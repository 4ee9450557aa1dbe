"""Pure-torch reference implementations of the residual-quantization ops.

They define the semantics every backend reproduces exactly, and run wherever nothing faster is available.

The code of a row is the exact argmin over k of ||x - c_k||^2 (ties to the lowest index). Inputs are centred
on the codebook mean mu (x' = fl(x - mu), c' = fl(c - mu)): distances do not change, and the screen's error
then scales with the data's spread rather than its offset. A fast fp32 screen computes
s_k = ||c'_k||^2 - 2 x'.c'_k and keeps the best and second-best values. With the rigorous bound (valid for
any summation order, centring's rounding included)

    |s_k + ||x'||^2 - ||x - c_k||^2| <= E = (gamma_{D+2} + 4.02 u) (||x'||^2 + 2 max_k ||c'_k||^2),
    gamma_n = n u / (1 - n u), u = 2^-24,

a runner-up more than 2E above the best proves the best is the exact argmin. Otherwise (near-ties,
duplicate codes, non-finite screens) the codes whose screen lies within 2E of the best, a set that must
hold the exact argmin, are re-ranked in fp64 on the original values with sum_d (x_d - c_kd)^2. Codes
therefore do not depend on BLAS, the thread count, the batch shape or the backend.
"""

from __future__ import annotations

import torch
from torch import Tensor

from codeclab._checks import check_n_q, codes_out_of_range

U32 = 2.0**-24
BLOCK_ROWS = 8192
EXACT_ELEMENTS = 1 << 22  # fp64 elements per exact re-rank chunk (32 MiB)


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
    if x.shape[1] == 0:
        raise ValueError("vectors have D=0 dimensions")
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
    if codebooks.shape[0] == 0:
        raise ValueError("no codebooks (Q=0)")
    check_inputs(x, codebooks[0])
    return check_n_q(n_q, codebooks.shape[0])


def bound_gamma(dim: int) -> float:
    """gamma_{D+2} + 4.02 u, with a hair of slack: E = bound_gamma(D) * (||x'||^2 + 2 max ||c'||^2)."""
    n = dim + 2
    return (n * U32 / (1.0 - n * U32) + 4.02 * U32) * 1.0001


def error_bound(dim: int, x_sq: Tensor, max_c_sq: float) -> Tensor:
    """E of the module docstring for rows with squared norms x_sq (fp64) [n] of the centred rows."""
    return bound_gamma(dim) * (x_sq + 2.0 * max_c_sq) + 1e-37


def duplicate_groups(codebook: Tensor) -> tuple[Tensor, Tensor]:
    """(group [K] long: one id per distinct code vector, first [K] bool: the lowest index of its group)."""
    _, group = torch.unique(codebook, dim=0, return_inverse=True)
    index = torch.arange(codebook.shape[0], device=codebook.device)
    lowest = torch.full((int(group.max()) + 1,), codebook.shape[0], dtype=torch.long, device=codebook.device)
    lowest.scatter_reduce_(0, group, index, reduce="amin")
    return group, lowest[group] == index


def exact_argmin(x: Tensor, codebook: Tensor, candidates: Tensor | None = None) -> Tensor:
    """argmin_k sum_d (x_d - c_kd)^2 in fp64, ties to the lowest index: x [n, D], codebook [K, D] -> [n].

    candidates: optional [n, K] bool; only those codes are compared (the bound guarantees they hold the
    exact argmin). Rows without any candidate compare every code."""
    n, k = x.shape[0], codebook.shape[0]
    if candidates is None:
        candidates = torch.ones(n, k, dtype=torch.bool, device=x.device)
    candidates = candidates.clone()
    candidates[~candidates.any(1)] = True
    # A code equal to an earlier one has the same exact distance and a higher index: it never wins. Keep one
    # member per group of identical codes, flagged when any member was a candidate (BLAS may round
    # identical columns differently).
    group, first = duplicate_groups(codebook)
    flagged = torch.zeros(n, int(group.max()) + 1, dtype=torch.uint8, device=x.device)
    flagged.scatter_reduce_(1, group.expand(n, k), candidates.to(torch.uint8), reduce="amax")
    candidates = flagged[:, group].bool() & first[None]
    rows, cols = candidates.nonzero(as_tuple=True)
    dist = torch.empty(rows.shape[0], dtype=torch.float64, device=x.device)
    step = max(1, EXACT_ELEMENTS // max(x.shape[1], 1))
    x64, c64 = x.double(), codebook.double()
    for start in range(0, rows.shape[0], step):
        r, c = rows[start : start + step], cols[start : start + step]
        dist[start : start + step] = (x64[r] - c64[c]).pow(2).sum(-1)
    best = torch.full((n,), float("inf"), dtype=torch.float64, device=x.device)
    best.scatter_reduce_(0, rows, dist, reduce="amin")
    winner = torch.where(dist == best[rows], cols, torch.full_like(cols, k))
    out = torch.full((n,), k, dtype=torch.long, device=x.device)
    out.scatter_reduce_(0, rows, winner, reduce="amin")  # lowest index among the exact minima
    return out


def _tf32_off(device: torch.device):
    """The screen's bound assumes fp32 products: keep TF32 off for CUDA matmuls inside the reference."""
    import contextlib

    if device.type != "cuda":
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def ctx():
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old

    return ctx()


def nearest_code(x: Tensor, codebook: Tensor) -> Tensor:
    """x [N, D], codebook [K, D] -> codes [N] int64 (exact argmin, ties to the lowest index)."""
    check_inputs(x, codebook)
    n, dim = x.shape
    out = torch.zeros(n, dtype=torch.long, device=x.device)
    if n == 0 or codebook.shape[0] == 1:
        return out
    x = x.float()
    codebook = codebook.float()
    mean = codebook.double().mean(0).float()
    centred_cb = codebook - mean
    c_sq = centred_cb.pow(2).sum(dim=1)
    max_c_sq = float(c_sq.double().max())
    with _tf32_off(x.device):
        for start in range(0, n, BLOCK_ROWS):
            rows = x[start : start + BLOCK_ROWS]
            centred = rows - mean
            screen = torch.addmm(c_sq, centred, centred_cb.t(), alpha=-2.0)
            best = screen.topk(2, dim=1, largest=False)
            gap = best.values[:, 1].double() - best.values[:, 0].double()
            bound = error_bound(dim, centred.double().pow(2).sum(1), max_c_sq)
            codes = best.indices[:, 0]
            unsure = ~(gap > 2 * bound)  # also catches NaN gaps
            if bool(unsure.any()):
                codes = codes.clone()
                threshold = best.values[unsure, 0].double() + 2 * bound[unsure]
                candidates = (
                    screen[unsure].double() <= threshold[:, None]
                )  # NaN threshold: no candidate -> all
                codes[unsure] = exact_argmin(rows[unsure], codebook, candidates)
            out[start : start + BLOCK_ROWS] = codes
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
    """x [N, D], codebooks [Q, K, D] -> codes [N, n_q] int64 (greedy residual search; residuals in fp32)."""
    n_q = check_codebooks(x, codebooks, n_q)
    residual = x.float().clone()
    codes = torch.empty(x.shape[0], n_q, dtype=torch.long, device=x.device)
    for q in range(n_q):
        cb = codebooks[q].float()
        codes[:, q] = nearest_code(residual, cb)
        residual -= cb[codes[:, q]]
    return codes


def check_codes(codes: Tensor, codebooks: Tensor) -> None:
    if codes.ndim != 2 or codebooks.ndim != 3:
        raise ValueError(
            f"expected codes [N, n_q] and codebooks [Q, K, D], got {tuple(codes.shape)}, {tuple(codebooks.shape)}"
        )
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"codes must be integers, got {codes.dtype}")
    n_q = codes.shape[1]
    if n_q > codebooks.shape[0]:
        raise ValueError(f"codes have {n_q} stages but there are only {codebooks.shape[0]} codebooks")
    k = codebooks.shape[1]
    if codes_out_of_range(codes, k) is not None:
        raise ValueError(f"codes must lie in [0, {k})")


def rvq_decode(codes: Tensor, codebooks: Tensor) -> Tensor:
    """codes [N, n_q] int, codebooks [Q, K, D] -> [N, D] fp32, the stage-ordered sum of the chosen vectors."""
    check_codes(codes, codebooks)
    out = torch.zeros(codes.shape[0], codebooks.shape[2], dtype=torch.float32, device=codebooks.device)
    for q in range(codes.shape[1]):
        out += codebooks[q].float()[codes[:, q].long()]
    return out
