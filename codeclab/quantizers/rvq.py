"""Residual vector quantization: a stack of `VectorQuantizer` stages, each coding what the previous left.

Paper: SoundStream, "An End-to-End Neural Audio Codec", https://arxiv.org/abs/2107.03312 (Algorithm 1,
quantizer dropout). `n_q` is chosen at encode time, which chooses the bitrate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from codeclab._checks import check_bounds, check_product
from codeclab.quantizers.base import Quantizer, QuantizerOutput, codebook_metrics
from codeclab.quantizers.distributed import all_reduce_sum
from codeclab.quantizers.search import residual_decode, residual_encode
from codeclab.quantizers.vq import VectorQuantizer, VQConfig, stage_health


@dataclass
class RVQConfig(VQConfig):
    """`VQConfig` for every stage plus the stack. quantizer_dropout: probability that a training item
    uses a random number of stages, 1..num_quantizers (SoundStream / DAC), instead of all of them.
    center: quantize z - m and add m back after the stages, m [D] being the latent's mean: in training
    the mean of the step's valid frames, in inference an EMA of those means (decay `center_decay` per
    step). Early in training an encoder's latents are a large constant plus a small varying part, and
    the constant moves further per step than the varying part is wide: uncentred (or centred on a
    lagging average), every frame then falls on one or two codes (docs/quantizers.md)."""

    kind: ClassVar[str] = "rvq"

    num_quantizers: int = 8
    quantizer_dropout: float = 0.0
    center: bool = True
    center_decay: float = 0.99

    def __post_init__(self) -> None:
        super().__post_init__()
        check_bounds(self, {"num_quantizers": (1, 256)})
        check_product(self, ("num_quantizers", "codebook_size", "dim"), 1 << 28, "codebook entries")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must lie in [0, 1], got {self.quantizer_dropout}")
        if not 0.0 <= self.center_decay < 1.0:
            raise ValueError(f"center_decay must lie in [0, 1), got {self.center_decay}")

    @property
    def num_codebooks(self) -> int:
        return self.num_quantizers

    def stage(self) -> VQConfig:
        stack_only = ("num_quantizers", "quantizer_dropout", "center", "center_decay")
        fields = {k: v for k, v in asdict(self).items() if k not in stack_only}
        return VQConfig(**fields)


class ResidualVQ(Quantizer):
    """z [B, D, T] -> codes [B, n_q, T] through `num_quantizers` residual stages."""

    latent_mean: Tensor  # a registered buffer
    mean_initted: Tensor  # a registered buffer

    def __init__(self, config: RVQConfig | None = None, **kwargs) -> None:
        super().__init__()
        config = config if config is not None else RVQConfig(**kwargs)
        self.config = config
        self.dim = config.dim
        self.num_quantizers = config.num_quantizers
        self.codebook_size = config.codebook_size
        self.layers = nn.ModuleList(VectorQuantizer(config.stage()) for _ in range(config.num_quantizers))
        # EMA of the latent's mean [D] (used when config.center), set from the first training batch
        self.register_buffer("latent_mean", torch.zeros(config.dim))
        self.register_buffer("mean_initted", torch.tensor(False))

    def _offset(self) -> Tensor:
        """[D]: what is subtracted before the stages and added back after them."""
        if not self.config.center:
            return self.latent_mean.new_zeros(self.dim)
        return self.latent_mean

    @torch.no_grad()
    def _track_mean(self, rows: Tensor, valid: Tensor | None) -> Tensor | None:
        """The mean [D] of the valid rows [N, D] of a training step (over all DDP ranks), also folded into
        the EMA used in inference; None when there are no valid rows."""
        if not self.config.center:
            return None
        used = rows.detach().float() if valid is None else rows.detach().float()[valid]
        stats = torch.cat([used.sum(0), used.new_tensor([used.shape[0]])])
        all_reduce_sum(stats)
        if float(stats[-1]) == 0:
            return None
        batch_mean = stats[:-1] / stats[-1]
        if bool(self.mean_initted):
            self.latent_mean.mul_(self.config.center_decay).add_(
                batch_mean, alpha=1 - self.config.center_decay
            )
        else:
            self.latent_mean.copy_(batch_mean)
            self.mean_initted.fill_(True)
        return batch_mean

    @property
    def plain(self) -> bool:
        """True when stages match raw residuals against raw codebooks (no projection, no l2 norm): the
        case the fused `residual_encode` kernel handles in one call."""
        return not self.config.l2norm and not self.layers[0].factorized

    @property
    def codebooks(self) -> Tensor:
        """[Q, K, code_dim] lookup codebooks."""
        return torch.stack([layer.effective_codebook() for layer in self.layers])

    def _stage_counts(self, batch: int, n_q: int, device: torch.device) -> Tensor:
        """Active stages per item [B]: n_q, or in training with probability `quantizer_dropout` a uniform
        draw from 1..n_q."""
        counts = torch.full((batch,), n_q, dtype=torch.long, device=device)
        p = self.config.quantizer_dropout
        if self.training and p > 0 and n_q > 1:
            drop = torch.rand(batch, device=device) < p
            counts[drop] = torch.randint(1, n_q + 1, (int(drop.sum()),), device=device)
        return counts

    def forward(
        self, z: Tensor, n_q: int | None = None, mask: Tensor | None = None, prefix: int | None = None
    ) -> QuantizerOutput:
        self.check_latent(z)
        n_q = self.check_n_q(n_q)
        self.check_prefix(prefix, n_q)
        b, _, t = z.shape
        rows = rearrange(z, "b d t -> (b t) d")
        valid = None if mask is None else rearrange(mask.bool(), "b t -> (b t)")
        stage_counts = self._stage_counts(b, n_q, z.device)
        row_counts = stage_counts.repeat_interleave(t)

        batch_mean = self._track_mean(rows, valid) if self.training else None
        offset = (self._offset() if batch_mean is None else batch_mean).to(rows.dtype)
        residual = rows - offset
        quantized = torch.zeros_like(rows)
        codes = torch.full((rows.shape[0], n_q), -1, dtype=torch.long, device=z.device)
        commitment = z.new_zeros(())
        codebook_loss = z.new_zeros(())
        prefix_rows = None
        for q in range(n_q):
            active = row_counts > q
            rows_used = active if valid is None else active & valid
            if self.training and not bool(active.any()):
                break
            res = self.layers[q].quantize_rows(residual, rows_used)
            step = res.quantized * active[:, None].to(res.quantized.dtype)
            quantized = quantized + step
            residual = residual - step
            codes[:, q] = torch.where(active, res.codes, torch.full_like(res.codes, -1))
            commitment = commitment + res.commitment
            codebook_loss = codebook_loss + res.codebook
            if prefix is not None and q + 1 == prefix:
                prefix_rows = quantized

        quantized = rearrange(quantized + offset, "(b t) d -> b d t", b=b, t=t)
        codes = rearrange(codes, "(b t) q -> b q t", b=b, t=t)
        if prefix_rows is not None:
            prefix_rows = prefix_rows + offset
        if prefix is not None and prefix_rows is None:  # every item dropped the prefix's later stages
            prefix_rows = rearrange(quantized, "b d t -> (b t) d")
        losses = {"commitment": commitment}
        if not self.config.ema:
            losses["codebook"] = codebook_loss
        metrics = codebook_metrics(codes, self.codebook_size, mask)
        metrics["active_stages"] = stage_counts.float().mean()
        if self.training:
            metrics.update(stage_health(list(self.layers)))
        prefix_out = None if prefix_rows is None else rearrange(prefix_rows, "(b t) d -> b d t", b=b, t=t)
        return QuantizerOutput(quantized, codes, losses, metrics, prefix_out)

    @torch.no_grad()
    def initialize(self, z: Tensor) -> None:
        """k-means initialisation of every stage on the residual it sees, z [B, D, T]."""
        self.check_latent(z)
        residual = rearrange(z, "b d t -> (b t) d").float()
        if self.config.center:
            self.latent_mean.copy_(residual.mean(0))
            self.mean_initted.fill_(True)
            residual = residual - self.latent_mean
        for layer in self.layers:
            layer._kmeans_init(layer.project(residual))
            residual = residual - layer.embed(layer.lookup(layer.project(residual)))

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        self.check_latent(z)
        n_q = self.check_n_q(n_q)
        b, _, t = z.shape
        rows = rearrange(z, "b d t -> (b t) d").float() - self._offset().float()
        if self.plain:
            codes = residual_encode(rows, self.codebooks, n_q=n_q)
        else:
            codes = torch.empty(rows.shape[0], n_q, dtype=torch.long, device=z.device)
            residual = rows
            for q in range(n_q):
                layer = self.layers[q]
                codes[:, q] = layer.lookup(layer.project(residual))
                residual = residual - layer.embed(codes[:, q])
        return rearrange(codes, "(b t) q -> b q t", b=b, t=t)

    def decode(self, codes: Tensor) -> Tensor:
        self.check_codes(codes)
        b, n_q, t = codes.shape
        flat = rearrange(codes.long(), "b q t -> (b t) q")
        if self.plain:
            out = residual_decode(flat, self.codebooks[:n_q])
        else:
            out = torch.zeros(flat.shape[0], self.dim, device=codes.device)
            for q in range(n_q):
                out = out + self.layers[q].embed(flat[:, q])
        out = out + self._offset().to(out.dtype)
        return rearrange(out, "(b t) d -> b d t", b=b, t=t)
