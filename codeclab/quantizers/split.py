"""Split residual quantization: one semantic codebook beside an acoustic residual stack (Mimi's layout).

Paper: Moshi / Mimi, "Moshi: a speech-text foundation model for real-time dialogue",
https://arxiv.org/abs/2410.00037 (section 3.3): a plain VQ and an RVQ quantize the same latent in
parallel and their outputs are summed, so distilling semantics into the first codebook does not have to
compete with the acoustic residual for what stage 1 codes.

Codes are `[B, n_q, T]` with the semantic code first: `n_q` = 1 + acoustic stages in use, so choosing
`n_q` at encode time still chooses a bitrate and codebook 1 is always the semantic one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor

from codeclab.quantizers.base import Quantizer, QuantizerOutput, codebook_metrics
from codeclab.quantizers.rvq import ResidualVQ, RVQConfig
from codeclab.quantizers.vq import VectorQuantizer, stage_health


@dataclass
class SplitConfig(RVQConfig):
    """`RVQConfig` whose `num_quantizers` counts the semantic codebook too (so >= 2); quantizer dropout
    acts on the acoustic stages only, and the semantic stage is always kept."""

    kind: ClassVar[str] = "split"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_quantizers < 2:
            raise ValueError(f"a split quantizer needs num_quantizers >= 2, got {self.num_quantizers}")

    def acoustic(self) -> RVQConfig:
        params = {f.name: getattr(self, f.name) for f in fields(RVQConfig)}
        params["num_quantizers"] = self.num_quantizers - 1
        return RVQConfig(**params)


class SplitRVQ(Quantizer):
    """z [B, D, T] -> codes [B, n_q, T]: code 0 from the semantic VQ, codes 1.. from the acoustic RVQ, both
    applied to z; the quantized latent is their sum."""

    def __init__(self, config: SplitConfig | None = None, **kwargs) -> None:
        super().__init__()
        config = config if config is not None else SplitConfig(**kwargs)
        self.config = config
        self.dim = config.dim
        self.num_quantizers = config.num_quantizers
        self.codebook_size = config.codebook_size
        self.semantic = VectorQuantizer(config.stage())
        self.acoustic = ResidualVQ(config.acoustic())

    def forward(
        self, z: Tensor, n_q: int | None = None, mask: Tensor | None = None, prefix: int | None = None
    ) -> QuantizerOutput:
        self.check_latent(z)
        n_q = self.check_n_q(n_q)
        self.check_prefix(prefix, n_q)
        sem = self.semantic(z, mask=mask)
        parts = [sem.codes]
        quantized = sem.quantized
        losses = {f"semantic_{k}": v for k, v in sem.losses.items()}
        active = torch.ones((), device=z.device)
        acoustic_prefix = None
        if n_q > 1:
            ac = self.acoustic(
                z, n_q=n_q - 1, mask=mask, prefix=prefix - 1 if prefix and prefix > 1 else None
            )
            parts.append(ac.codes)
            quantized = quantized + ac.quantized
            losses.update({f"acoustic_{k}": v for k, v in ac.losses.items()})
            active = 1 + ac.metrics["active_stages"]
            acoustic_prefix = ac.prefix
        codes = torch.cat(parts, dim=1)
        metrics = codebook_metrics(codes, self.codebook_size, mask)
        metrics["active_stages"] = active
        if self.training:
            metrics.update(stage_health([self.semantic, *self.acoustic.layers]))
        prefix_out = None
        if prefix is not None:
            prefix_out = sem.quantized if acoustic_prefix is None else sem.quantized + acoustic_prefix
        return QuantizerOutput(quantized, codes, losses, metrics, prefix_out)

    @torch.no_grad()
    def initialize(self, z: Tensor) -> None:
        """k-means initialisation of both branches on z [B, D, T] (each sees the whole latent)."""
        self.semantic.initialize(z)
        self.acoustic.initialize(z)

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        self.check_latent(z)
        n_q = self.check_n_q(n_q)
        codes = [self.semantic.encode(z)]
        if n_q > 1:
            codes.append(self.acoustic.encode(z, n_q - 1))
        return torch.cat(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        self.check_codes(codes)
        out = self.semantic.decode(codes[:, :1])
        if codes.shape[1] > 1:
            out = out + self.acoustic.decode(codes[:, 1:])
        return out
