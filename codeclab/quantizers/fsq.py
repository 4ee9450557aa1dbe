"""Finite scalar quantization, single and residual, behind the codeclab `Quantizer` contract.

Paper: "Finite Scalar Quantization: VQ-VAE Made Simple", https://arxiv.org/abs/2309.15505; residual FSQ as
in vector-quantize-pytorch's ResidualFSQ. Both wrap vector-quantize-pytorch, which does FSQ well; this file
only adapts layouts ([B, D, T] <-> [B, T, D]), n_q selection and the output type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from einops import rearrange
from torch import Tensor

from codeclab._checks import check_bounds, check_types
from codeclab._optional import optional_import
from codeclab.quantizers.base import Quantizer, QuantizerConfig, QuantizerOutput, codebook_metrics


def _check_levels(levels: list[int]) -> None:
    if not levels or any(int(level) < 3 for level in levels):
        raise ValueError(f"FSQ levels must be a non-empty list of integers >= 3, got {levels}")


@dataclass
class FSQConfig(QuantizerConfig):
    """dim: input dimension D (projected to len(levels) dimensions); levels: quantization levels per
    dimension; the codebook size is their product."""

    kind: ClassVar[str] = "fsq"

    dim: int = 128
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(self, {"dim": (1, 16384), "levels": (2, 1 << 16)})
        if not 1 <= len(self.levels) <= 32:
            raise ValueError(f"FSQ takes 1 to 32 levels, got {len(self.levels)}")
        _check_levels(self.levels)

    @property
    def codebook_size(self) -> int:  # type: ignore[override]
        return math.prod(self.levels)


@dataclass
class ResidualFSQConfig(FSQConfig):
    kind: ClassVar[str] = "rfsq"
    num_quantizers: int = 4
    quantizer_dropout: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bounds(self, {"num_quantizers": (1, 256)})

    @property
    def num_codebooks(self) -> int:
        return self.num_quantizers


@torch.no_grad()
def standardize_projection(project_in: torch.nn.Module, z: Tensor) -> None:
    """Data-dependent init (as ActNorm): rescale a Linear projection so that its outputs on rows of
    z [B, D, T] have zero mean and unit variance per dimension, spreading them over the FSQ levels."""
    if not isinstance(project_in, torch.nn.Linear):
        return  # no projection to rescale (dim == number of levels)
    h = project_in(rearrange(z, "b d t -> (b t) d").float())
    mean, std = h.mean(0), h.std(0).clamp_min(1e-5)
    project_in.weight.div_(std[:, None])
    if project_in.bias is not None:
        project_in.bias.sub_(mean).div_(std)


class FSQ(Quantizer):
    """z [B, D, T] -> codes [B, 1, T] in [0, prod(levels))."""

    def __init__(self, config: FSQConfig | None = None, **kwargs) -> None:
        super().__init__()
        config = config if config is not None else FSQConfig(**kwargs)
        self.config = config
        vqp = optional_import("vector_quantize_pytorch", "fsq", "the FSQ quantizer")

        self.fsq = vqp.FSQ(levels=list(config.levels), dim=config.dim)
        self.dim = config.dim
        self.num_quantizers = 1
        self.codebook_size = math.prod(config.levels)

    def initialize(self, z: Tensor) -> None:
        self.check_latent(z)
        standardize_projection(self.fsq.project_in, z)

    def forward(
        self, z: Tensor, n_q: int | None = None, mask: Tensor | None = None, prefix: int | None = None
    ) -> QuantizerOutput:
        if prefix is not None:
            raise ValueError(
                f"{type(self).__name__} does not expose a stage prefix; semantic distillation needs a vq, rvq "
                "or split quantizer"
            )
        self.check_latent(z)
        self.check_n_q(n_q)
        out, indices = self.fsq(rearrange(z, "b d t -> b t d"))
        codes = rearrange(indices.long(), "b t -> b 1 t")
        return QuantizerOutput(
            rearrange(out, "b t d -> b d t"), codes, {}, codebook_metrics(codes, self.codebook_size, mask)
        )

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        self.check_latent(z)
        self.check_n_q(n_q)
        _, indices = self.fsq(rearrange(z, "b d t -> b t d"))
        return rearrange(indices.long(), "b t -> b 1 t")

    def decode(self, codes: Tensor) -> Tensor:
        self.check_codes(codes)
        # the implicit codebook's rows are `indices_to_codes` of every index; reading them directly keeps
        # the codec's dtype (indices_to_codes builds float32 codes, which a bfloat16 projection refuses)
        out = self.fsq.implicit_codebook[codes[:, 0]]
        weight = getattr(self.fsq.project_out, "weight", None)
        out = self.fsq.project_out(out if weight is None else out.to(weight.dtype))
        return rearrange(out, "b t d -> b d t")


class ResidualFSQ(Quantizer):
    """z [B, D, T] -> codes [B, n_q, T]: `num_quantizers` FSQ stages at shrinking scales."""

    def __init__(self, config: ResidualFSQConfig | None = None, **kwargs) -> None:
        super().__init__()
        config = config if config is not None else ResidualFSQConfig(**kwargs)
        self.config = config
        vqp = optional_import("vector_quantize_pytorch", "fsq", "the FSQ quantizer")

        self.rfsq = vqp.ResidualFSQ(
            levels=list(config.levels),
            num_quantizers=config.num_quantizers,
            dim=config.dim,
            quantize_dropout=config.quantizer_dropout,
        )
        self.dim = config.dim
        self.num_quantizers = config.num_quantizers
        self.codebook_size = math.prod(config.levels)

    def initialize(self, z: Tensor) -> None:
        self.check_latent(z)
        standardize_projection(self.rfsq.project_in, z)

    def forward(
        self, z: Tensor, n_q: int | None = None, mask: Tensor | None = None, prefix: int | None = None
    ) -> QuantizerOutput:
        if prefix is not None:
            raise ValueError(
                f"{type(self).__name__} does not expose a stage prefix; semantic distillation needs a vq, rvq "
                "or split quantizer"
            )
        self.check_latent(z)
        n_q = self.check_n_q(n_q)
        if n_q < self.num_quantizers and not self.training:
            codes = self.encode(z, n_q)
            return QuantizerOutput(
                self.decode(codes), codes, {}, codebook_metrics(codes, self.codebook_size, mask)
            )
        out, indices = self.rfsq(rearrange(z, "b d t -> b t d"))
        codes = rearrange(indices.long(), "b t q -> b q t")
        return QuantizerOutput(
            rearrange(out, "b t d -> b d t"), codes, {}, codebook_metrics(codes, self.codebook_size, mask)
        )

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        self.check_latent(z)
        n_q = self.check_n_q(n_q)
        was_training = self.rfsq.training
        self.rfsq.eval()  # no quantizer dropout while encoding
        try:
            _, indices = self.rfsq(rearrange(z, "b d t -> b t d"))
        finally:
            self.rfsq.train(was_training)
        # Stages are sequential: the first n_q codes of a full pass are the codes of an n_q-stage pass.
        return rearrange(indices.long(), "b t q -> b q t")[:, :n_q]

    def decode(self, codes: Tensor) -> Tensor:
        self.check_codes(codes)
        n_q = codes.shape[1]
        total = 0.0
        # Sum the scaled implicit codebook entries of the stages present (vector-quantize-pytorch's own
        # get_output_from_indices accepts fewer stages only when quantizer dropout was enabled).
        for q in range(n_q):
            layer = self.rfsq.layers[q]
            total = total + layer.implicit_codebook[codes[:, q]] * self.rfsq.scales[q]
        weight = getattr(self.rfsq.project_out, "weight", None)
        out = self.rfsq.project_out(total if weight is None else total.to(weight.dtype))
        return rearrange(out, "b t d -> b d t")
