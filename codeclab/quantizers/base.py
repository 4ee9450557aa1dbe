"""The quantizer contract shared by VQ, RVQ, FSQ and residual FSQ.

Every quantizer maps a latent `z [B, D, T]` to integer codes `[B, n_q, T]` and back. `forward` is the
training path (straight-through gradients, auxiliary losses, usage metrics); `encode` / `decode` are the
inference path used by codecs and the tokenizer.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from codeclab._checks import check_n_q, codes_out_of_range


class QuantizerConfig:
    """Base of every quantizer config: the facts a codec needs without building the quantizer.

    kind: its registry name ("vq", "rvq", "fsq", "rfsq", "split"); num_codebooks: codes per frame;
    codebook_size: values each code takes (a field of VQ configs, the product of the levels for FSQ)."""

    kind: ClassVar[str] = ""
    dim: int
    codebook_size: int

    @property
    def num_codebooks(self) -> int:
        return 1


@dataclass
class QuantizerOutput:
    """Result of `Quantizer.forward`.

    quantized: [B, D, T] quantized latent (straight-through: gradients flow to the input).
    codes: [B, n_q, T] int64; stages dropped by quantizer dropout hold -1 (training only).
    losses: named scalar losses, already weighted: their sum is the quantizer's training loss.
    metrics: `usage` [n_q] (fraction of codes used in the batch), `perplexity` [n_q], and others.
    prefix: [B, D, T] output of the first `prefix` stages alone (straight-through, so gradients reach the
        input), when `forward(..., prefix=n)` asked for it; what a semantic head reads.
    """

    quantized: Tensor
    codes: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    metrics: dict[str, Tensor] = field(default_factory=dict)
    prefix: Tensor | None = None

    @property
    def loss(self) -> Tensor:
        """Sum of `losses` (0 when there are none)."""
        total = self.quantized.new_zeros(())
        for value in self.losses.values():
            total = total + value
        return total


class Quantizer(nn.Module, ABC):
    """Contract: `z [B, D, T]` -> codes `[B, n_q, T]` -> `[B, D, T]`."""

    dim: int
    num_quantizers: int
    codebook_size: int

    @abstractmethod
    def forward(
        self, z: Tensor, n_q: int | None = None, mask: Tensor | None = None, prefix: int | None = None
    ) -> QuantizerOutput:
        """Quantize `z [B, D, T]`; `mask [B, T]` (bool, True = valid frame) limits statistics and losses;
        `prefix` = n also returns the first n stages' output (`QuantizerOutput.prefix`)."""

    def check_prefix(self, prefix: int | None, n_q: int) -> None:
        if prefix is not None and not 1 <= prefix <= n_q:
            raise ValueError(f"prefix must lie in [1, {n_q}] (the stages in use), got {prefix}")

    @abstractmethod
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        """`z [B, D, T]` -> codes `[B, n_q, T]` int64 (the first `n_q` stages; all by default)."""

    @abstractmethod
    def decode(self, codes: Tensor) -> Tensor:
        """codes `[B, n_q, T]` (any `n_q` up to `num_quantizers`) -> `[B, D, T]`."""

    @torch.no_grad()
    def initialize(self, z: Tensor) -> None:
        """Data-dependent initialisation from latents z [B, D, T] (k-means for codebooks); no-op for
        quantizers without learned codebooks."""

    @property
    def bits_per_code(self) -> float:
        return math.log2(self.codebook_size)

    def check_n_q(self, n_q: int | None) -> int:
        """Resolve `n_q` (None = all stages) and raise a clear error when it is out of range."""
        return check_n_q(n_q, self.num_quantizers)

    def check_latent(self, z: Tensor) -> None:
        if z.ndim != 3 or z.shape[1] != self.dim:
            raise ValueError(f"expected a latent of shape [B, {self.dim}, T], got {tuple(z.shape)}")

    def check_codes(self, codes: Tensor) -> None:
        if codes.ndim != 3:
            raise ValueError(f"expected codes of shape [B, n_q, T], got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(f"codes must be integers, got {codes.dtype}")
        if not 1 <= codes.shape[1] <= self.num_quantizers:
            raise ValueError(
                f"codes have {codes.shape[1]} codebooks; this quantizer has {self.num_quantizers}"
            )
        outside = codes_out_of_range(codes, self.codebook_size)
        if outside is not None:
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size}), got values in [{outside[0]}, {outside[1]}]"
            )


def codebook_metrics(codes: Tensor, codebook_size: int, valid: Tensor | None = None) -> dict[str, Tensor]:
    """Per-codebook usage and perplexity of a batch of codes.

    codes: [B, n_q, T] int64 (negative entries, from dropped stages, are ignored).
    valid: optional [B, T] bool mask of frames to count.
    Returns `usage` [n_q] (fraction of the codebook used) and `perplexity` [n_q] (exp of the entropy of
    the code histogram; equals codebook_size when use is uniform).
    """
    n_q = codes.shape[1]
    usage = torch.zeros(n_q, device=codes.device)
    perplexity = torch.zeros(n_q, device=codes.device)
    for q in range(n_q):
        stage = codes[:, q]
        keep = stage >= 0
        if valid is not None:
            keep = keep & valid
        stage = stage[keep]
        if stage.numel() == 0:
            continue
        counts = torch.bincount(stage, minlength=codebook_size).float()
        probs = counts / counts.sum()
        usage[q] = (counts > 0).float().mean()
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum()
        perplexity[q] = entropy.exp()
    return {"usage": usage, "perplexity": perplexity}
