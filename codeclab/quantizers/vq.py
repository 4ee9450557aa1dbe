"""Vector quantizer: Euclidean nearest code with EMA or learned codebooks.

Paper: "Neural Discrete Representation Learning" (VQ-VAE), https://arxiv.org/abs/1711.00937.
EMA updates, k-means initialisation and dead-code replacement follow SoundStream / EnCodec
(https://arxiv.org/abs/2107.03312, https://arxiv.org/abs/2210.13438); factorized low-dimensional codes with
l2-normalised lookup follow DAC / "Improved VQGAN" (https://arxiv.org/abs/2306.06546,
https://arxiv.org/abs/2110.04627).

Why this file owns its codebook logic instead of wrapping vector-quantize-pytorch's VectorQuantize: the
codebook search and the EMA statistics are exactly what the fused kernels of `codeclab.cuda_ext` replace
(they assign codes and accumulate counts and sums without an N x K matrix), so they have to run through
`codeclab.quantizers.search`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from codeclab._checks import check_bounds, check_product, check_types
from codeclab.quantizers.base import Quantizer, QuantizerConfig, QuantizerOutput, codebook_metrics
from codeclab.quantizers.distributed import all_reduce_sum, broadcast
from codeclab.quantizers.kmeans import kmeans, sample_rows
from codeclab.quantizers.search import assign_stats, nearest_code


@dataclass
class VQConfig(QuantizerConfig):
    """One codebook stage.

    dim: input dimension D. codebook_size: K. codebook_dim: factorized code dimension (DAC: 8); None
    means D, no projection. l2norm: cosine lookup (both sides l2-normalised). ema: EMA codebook updates
    (EnCodec) instead of a codebook learned by a codebook loss (DAC).

    Codebook health, independent of the batch size (docs/quantizers.md):
    dead_code_ratio: a code is dead when its EMA share of the assignments falls below
        dead_code_ratio / codebook_size, i.e. below that fraction of uniform use (0 disables). A share,
        not an absolute count, so batch 8 and batch 64 call the same codes dead.
    dead_code_rows: a code is also dead when none of the last dead_code_rows x codebook_size training
        rows chose it (0 disables): counted in rows, not steps, so it is batch-size independent, and
        it reacts within a few steps when the encoder's latents move away from part of the codebook
        (the EMA share takes hundreds of steps to notice).
    replacement_rows: rows of earlier training batches kept (a ring buffer, `replacement_rows` x
        codebook_size rows) to replace dead codes after the lookup and update of a step, so that no
        batch is ever matched against copies of its own rows.
    kmeans_rows: k-means initialisation waits until `kmeans_rows` x codebook_size rows have been seen
        (the first steps quantize against those rows' own k-means when fewer have arrived), so that
        a small batch does not fit 1,024 centroids to 400 frames.
    """

    kind: ClassVar[str] = "vq"

    dim: int = 128
    codebook_size: int = 1024
    codebook_dim: int | None = None
    l2norm: bool = False
    ema: bool = True
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = True
    kmeans_iters: int = 10
    dead_code_ratio: float = 0.1
    dead_code_rows: float = 8.0
    replacement_rows: int = 4
    kmeans_rows: int = 2
    commitment_weight: float = 1.0
    codebook_weight: float = 1.0

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(
            self,
            {
                "dim": (1, 16384),
                "codebook_size": (2, 1 << 20),
                "codebook_dim": (1, 16384),
                "kmeans_iters": (0, 1000),
                "replacement_rows": (1, 64),
                "kmeans_rows": (0, 64),
            },
        )
        check_product(self, ("codebook_size", "dim"), 1 << 26, "codebook entries")
        check_product(self, ("replacement_rows", "codebook_size", "dim"), 1 << 28, "buffered values")
        if self.dim < 1 or self.codebook_size < 2:
            raise ValueError(f"need dim >= 1 and codebook_size >= 2, got {self.dim} and {self.codebook_size}")
        if self.codebook_dim is not None and self.codebook_dim < 1:
            raise ValueError(f"codebook_dim must be positive, got {self.codebook_dim}")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {self.decay}")
        if not 0.0 <= self.dead_code_ratio < 1.0:
            raise ValueError(f"dead_code_ratio must lie in [0, 1), got {self.dead_code_ratio}")
        if self.dead_code_rows < 0:
            raise ValueError(f"dead_code_rows must be >= 0, got {self.dead_code_rows}")
        if self.replacement_rows < 1 or self.kmeans_rows < 0:
            raise ValueError("replacement_rows must be >= 1 and kmeans_rows >= 0")


@dataclass
class StageResult:
    """One stage applied to rows. quantized [N, D] (straight-through in training), codes [N]."""

    quantized: Tensor
    codes: Tensor
    commitment: Tensor
    codebook: Tensor


def _masked_mse(a: Tensor, b: Tensor, valid: Tensor | None) -> Tensor:
    if valid is not None:
        a, b = a[valid], b[valid]
    if a.numel() == 0:
        return a.new_zeros(())
    return F.mse_loss(a, b)


def stage_health(stages: list[VectorQuantizer]) -> dict[str, Tensor]:
    """Training-time codebook health per stage: `ema_perplexity` [n] (of the EMA use shares) and
    `replaced` [n] (dead codes moved onto earlier rows in the last step)."""
    return {
        "ema_perplexity": torch.stack([s.ema_perplexity() for s in stages]),
        "replaced": torch.tensor([float(s.last_dead) for s in stages]),
    }


class VectorQuantizer(Quantizer):
    """A single codebook. As a `Quantizer` it maps [B, D, T] to codes [B, 1, T]."""

    cluster_size: Tensor  # a registered buffer
    initted: Tensor  # a registered buffer
    rows_since_use: Tensor  # a registered buffer
    recent_rows: Tensor  # a registered buffer
    codebook: Tensor  # a registered buffer
    embed_sum: Tensor  # a registered buffer

    def __init__(self, config: VQConfig | None = None, **kwargs) -> None:
        super().__init__()
        config = config if config is not None else VQConfig(**kwargs)
        self.config = config
        self.dim = config.dim
        self.num_quantizers = 1
        self.codebook_size = config.codebook_size
        self.code_dim = config.codebook_dim or config.dim
        self.factorized = self.code_dim != config.dim
        self.in_proj: nn.Module = nn.Linear(config.dim, self.code_dim) if self.factorized else nn.Identity()
        self.out_proj: nn.Module = nn.Linear(self.code_dim, config.dim) if self.factorized else nn.Identity()

        init = torch.randn(config.codebook_size, self.code_dim)
        if config.l2norm:
            init = F.normalize(init, dim=-1)
        if config.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # EMA of how often each code is chosen; its shares drive dead-code replacement in both modes.
        self.register_buffer("cluster_size", torch.ones(config.codebook_size))
        self.register_buffer("initted", torch.tensor(not config.kmeans_init))
        # Training rows seen since each code was last chosen (training-time scratch).
        self.register_buffer("rows_since_use", torch.zeros(config.codebook_size), persistent=False)
        # Rows of earlier training steps [R, code_dim]: dead-code replacements and delayed k-means come
        # from here. Training-time scratch, not part of the weights (persistent=False).
        self.register_buffer("recent_rows", torch.zeros(0, self.code_dim), persistent=False)
        self.last_dead = 0  # codes replaced in the last training step

    # -- lookup ------------------------------------------------------------------------------------
    def effective_codebook(self) -> Tensor:
        """[K, code_dim]: the vectors codes are matched against (l2-normalised when `l2norm`)."""
        cb = self.codebook
        return F.normalize(cb, dim=-1) if self.config.l2norm else cb

    def project(self, x: Tensor) -> Tensor:
        """Rows [N, D] -> lookup space [N, code_dim]."""
        x = self.in_proj(x)
        return F.normalize(x, dim=-1) if self.config.l2norm else x

    def lookup(self, x_low: Tensor) -> Tensor:
        """Rows in lookup space [N, code_dim] -> codes [N]."""
        return nearest_code(x_low.detach(), self.effective_codebook().detach())

    def embed(self, codes: Tensor) -> Tensor:
        """codes [N] -> [N, D] (the stage's output for those codes)."""
        return self.out_proj(F.embedding(codes, self.effective_codebook()))

    # -- training-time codebook maintenance ---------------------------------------------------------
    @torch.no_grad()
    def _kmeans_init(self, x_low: Tensor, iters: int | None = None) -> None:
        iters = self.config.kmeans_iters if iters is None else iters
        centroids, counts = kmeans(x_low, self.codebook_size, iters, self.config.l2norm)
        broadcast(centroids)
        broadcast(counts)
        self.codebook.data.copy_(centroids)
        self.cluster_size.copy_(counts)
        self.rows_since_use.zero_()
        if self.config.ema:
            self.embed_sum.copy_(centroids * counts[:, None])
        self.initted.fill_(True)

    @torch.no_grad()
    def _assign(self, x_low: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """One fused search for a training step: codes of all rows [N], plus counts [K] and sums [K, d] of
        the valid rows (`assign_stats`, which never builds an N x K matrix)."""
        cb = self.effective_codebook().detach().float()
        rows = x_low.detach().float()
        if valid is None:
            return assign_stats(rows, cb)
        codes = torch.empty(rows.shape[0], dtype=torch.long, device=rows.device)
        codes[valid], counts, sums = assign_stats(rows[valid], cb)
        if bool((~valid).any()):
            codes[~valid] = nearest_code(rows[~valid], cb)
        return codes, counts, sums

    @torch.no_grad()
    def _update(self, counts: Tensor, sums: Tensor) -> None:
        """EMA statistics (and, with `ema`, the codebook) from the valid rows' counts [K] and sums [K, d]."""
        cfg = self.config
        all_reduce_sum(counts)
        self.rows_since_use.add_(counts.sum()).masked_fill_(counts > 0, 0.0)
        self.cluster_size.mul_(cfg.decay).add_(counts, alpha=1 - cfg.decay)
        if cfg.ema:
            all_reduce_sum(sums)
            self.embed_sum.mul_(cfg.decay).add_(sums, alpha=1 - cfg.decay)
            total = self.cluster_size.sum()
            smoothed = (self.cluster_size + cfg.epsilon) / (total + self.codebook_size * cfg.epsilon) * total
            self.codebook.copy_(self.embed_sum / smoothed[:, None])

    def ema_perplexity(self) -> Tensor:
        """Perplexity of the EMA code-use distribution (a scalar): exp(entropy of the shares). It does not
        depend on the batch size, unlike a batch histogram's (which cannot exceed the rows per step)."""
        share = self.cluster_size / self.cluster_size.sum().clamp_min(1e-12)
        return torch.exp(-(share * share.clamp_min(1e-12).log()).sum())

    def dead_codes(self) -> Tensor:
        """[K] bool: codes whose EMA share of assignments is below dead_code_ratio / K, or that none of
        the last dead_code_rows x K training rows chose."""
        cfg = self.config
        share = self.cluster_size / self.cluster_size.sum().clamp_min(1e-12)
        dead = share < cfg.dead_code_ratio / self.codebook_size
        if cfg.dead_code_rows > 0:
            dead = dead | (self.rows_since_use >= cfg.dead_code_rows * self.codebook_size)
        return dead

    @torch.no_grad()
    def _remember(self, rows: Tensor) -> None:
        """Append rows [n, code_dim] to the ring buffer of recent rows (capacity replacement_rows x K)."""
        capacity = self.config.replacement_rows * self.codebook_size
        rows = rows.detach().float()
        self.recent_rows = torch.cat([self.recent_rows, rows])[-capacity:]

    @torch.no_grad()
    def _replace_dead_codes(self) -> None:
        """Move dead codes onto rows of earlier batches (the ring buffer), after this step's lookup and
        update: no batch is matched against its own rows. A replaced code starts at uniform use, which
        gives it about log(ratio) / log(decay) steps to be chosen before it counts as dead again."""
        self.last_dead = 0
        disabled = self.config.dead_code_ratio <= 0 and self.config.dead_code_rows <= 0
        if disabled or self.recent_rows.shape[0] == 0:
            return
        dead = self.dead_codes()
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        fresh = sample_rows(self.recent_rows, n_dead).contiguous()
        broadcast(fresh)
        mean_count = self.cluster_size.sum() / self.codebook_size
        self.codebook.data[dead] = fresh
        self.cluster_size[dead] = mean_count
        self.rows_since_use[dead] = 0.0
        if self.config.ema:
            self.embed_sum[dead] = fresh * mean_count
        self.last_dead = n_dead

    @torch.no_grad()
    def initialize(self, z: Tensor) -> None:
        """k-means initialisation of the codebook from latents z [B, D, T]."""
        self.check_latent(z)
        self._kmeans_init(self.project(rearrange(z, "b d t -> (b t) d")))

    # -- rows -------------------------------------------------------------------------------------
    def quantize_rows(self, x: Tensor, valid: Tensor | None = None) -> StageResult:
        """Quantize rows x [N, D]; `valid` [N] bool selects rows for statistics and losses."""
        x_low = self.project(x)
        if self.training:
            rows = x_low.detach() if valid is None else x_low.detach()[valid]
            if not bool(self.initted) and rows.shape[0] > 0:
                self._remember(rows)
                # until enough rows have arrived for a batch-size independent fit, a one-pass fit on what
                # has (refitted on the next steps' rows); then the full k-means
                enough = self.recent_rows.shape[0] >= self.config.kmeans_rows * self.codebook_size
                self._kmeans_init(self.recent_rows, None if enough else 1)
                self.initted.fill_(enough)
                rows = rows[:0]  # already remembered
            # Order: look up against the codebook as it stands, update the EMA statistics, then move
            # dead codes onto rows of earlier batches and remember this batch for later steps.
            codes, counts, sums = self._assign(x_low, valid)
        else:
            codes = self.lookup(x_low)
        q_low = F.embedding(codes, self.effective_codebook())
        commitment = _masked_mse(x_low, q_low.detach(), valid) * self.config.commitment_weight
        if self.config.ema:
            codebook_loss = x.new_zeros(())
        else:
            codebook_loss = _masked_mse(q_low, x_low.detach(), valid) * self.config.codebook_weight
        if self.training:
            self._update(counts, sums)
            self._replace_dead_codes()
            self._remember(rows)
            q_low = x_low + (q_low - x_low).detach()  # straight-through estimator
        return StageResult(self.out_proj(q_low), codes, commitment, codebook_loss)

    # -- Quantizer contract -----------------------------------------------------------------------
    def forward(
        self, z: Tensor, n_q: int | None = None, mask: Tensor | None = None, prefix: int | None = None
    ) -> QuantizerOutput:
        self.check_latent(z)
        self.check_n_q(n_q)
        self.check_prefix(prefix, 1)
        b, _, t = z.shape
        rows = rearrange(z, "b d t -> (b t) d")
        valid = None if mask is None else rearrange(mask, "b t -> (b t)")
        res = self.quantize_rows(rows, valid)
        quantized = rearrange(res.quantized, "(b t) d -> b d t", b=b, t=t)
        codes = rearrange(res.codes, "(b t) -> b 1 t", b=b, t=t)
        losses = {"commitment": res.commitment}
        if not self.config.ema:
            losses["codebook"] = res.codebook
        metrics = codebook_metrics(codes, self.codebook_size, mask)
        if self.training:
            metrics.update(stage_health([self]))
        return QuantizerOutput(quantized, codes, losses, metrics, quantized if prefix else None)

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        self.check_latent(z)
        self.check_n_q(n_q)
        b, _, t = z.shape
        codes = self.lookup(self.project(rearrange(z, "b d t -> (b t) d")))
        return rearrange(codes, "(b t) -> b 1 t", b=b, t=t)

    def decode(self, codes: Tensor) -> Tensor:
        self.check_codes(codes)
        b, _, t = codes.shape
        return rearrange(self.embed(codes[:, 0].reshape(-1)), "(b t) d -> b d t", b=b, t=t)
