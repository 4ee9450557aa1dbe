"""Activations by name: ELU (EnCodec / SEANet) and Snake (BigVGAN / DAC, periodic inductive bias)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha with a learned alpha per channel; x [B, C, T].

    Paper: "Neural Networks Fail to Learn Periodic Functions and How to Fix It", https://arxiv.org/abs/2006.08195.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.sin(self.alpha * x).pow(2) / (self.alpha + 1e-9)


def make_activation(name: str, channels: int) -> nn.Module:
    if name == "elu":
        return nn.ELU()
    if name == "snake":
        return Snake(channels)
    raise ValueError(f"unknown activation {name!r}; use 'elu' or 'snake'")
