"""Lloyd's k-means used to initialise codebooks from the first training batch (EnCodec, SoundStream)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from codeclab.quantizers.search import assign_stats


def sample_rows(x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """n rows of x [N, D], without replacement when N >= n, with replacement otherwise: [n, D]."""
    if x.shape[0] == 0:
        raise ValueError("cannot sample rows from an empty batch")
    if x.shape[0] >= n:
        index = torch.randperm(x.shape[0], generator=generator, device="cpu")[:n]
    else:
        index = torch.randint(0, x.shape[0], (n,), generator=generator, device="cpu")
    return x[index.to(x.device)]


def kmeans(
    x: Tensor, k: int, iters: int = 10, l2norm: bool = False, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Cluster x [N, D] into k centroids.

    Returns (centroids [k, D] fp32, counts [k] fp32: rows assigned to each centroid in the last pass).
    Empty clusters keep their previous centroid. With `l2norm`, inputs and centroids live on the unit
    sphere (spherical k-means).
    """
    x = x.detach().float()
    if l2norm:
        x = F.normalize(x, dim=-1)
    centroids = sample_rows(x, k, generator).clone()
    counts = torch.zeros(k, device=x.device)
    for _ in range(max(iters, 1)):
        _, counts, sums = assign_stats(x, centroids)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        if l2norm:
            centroids = F.normalize(centroids, dim=-1)
    return centroids, counts
