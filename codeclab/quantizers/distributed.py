"""Collective helpers so codebook statistics stay identical across DDP ranks (no-ops without DDP)."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum `tensor` over ranks in place (returns it)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite `tensor` on every rank with rank `src`'s value (returns it)."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor
