"""What the ranks of a distributed run (torchrun + DDP) agree on: rank 0's decisions, barriers, and the
module inside a DDP wrapper. Each is a no-op in a one-process run."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def agree(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank when rank 0 says so (wall clocks differ between ranks)."""
    if world == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module
