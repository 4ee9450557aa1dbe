"""The one nearest-code search entry point used by every codebook quantizer.

All Euclidean codebook lookups in codeclab go through these functions, and these functions go through
`codeclab.cuda_ext`, which picks the fastest available implementation (CUDA kernel, C++ CPU kernel or the
pure-torch reference); `cuda_ext.backend(device)` says which one runs.

Semantics: codes are the argmin over k of ||x - c_k||^2 in fp32, ties to the lowest index. Every backend
computes each row with arithmetic that does not depend on how many rows come with it: that row invariance
is what lets a padded batch give each item exactly the codes it gets alone.
"""

from __future__ import annotations

from torch import Tensor

from codeclab import cuda_ext


def nearest_code(x: Tensor, codebook: Tensor) -> Tensor:
    """Nearest code of each row: x [N, D], codebook [K, D] -> codes [N] int64."""
    return cuda_ext.nearest_code(x, codebook)


def assign_stats(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest codes plus EMA statistics without an N x K matrix in memory.

    x [N, D], codebook [K, D] -> (codes [N] int64, counts [K] fp32, sums [K, D] fp32), where counts[k]
    is how many rows chose code k and sums[k] the sum of those rows.
    """
    return cuda_ext.vq_assign_stats(x, codebook)


def residual_encode(x: Tensor, codebooks: Tensor, n_q: int | None = None) -> Tensor:
    """Residual quantization: x [N, D], codebooks [Q, K, D] -> codes [N, n_q] int64.

    Stage q quantizes what stages 0..q-1 left: residual -= codebooks[q][code].
    """
    return cuda_ext.rvq_encode(x, codebooks, n_q=n_q)


def residual_decode(codes: Tensor, codebooks: Tensor) -> Tensor:
    """codes [N, n_q] -> sum over stages of codebooks[q][codes[:, q]]: [N, D]."""
    return cuda_ext.rvq_decode(codes, codebooks)
