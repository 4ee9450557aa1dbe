"""Semantic distillation: a head that maps the first codebook(s) onto a teacher's features, and the losses.

The recipes of the field, as one plug-in (`CodecConfig.semantic`):

- `cosine`: SpeechTokenizer's "D-axis" loss (https://arxiv.org/abs/2308.16692, eq. 3): for every feature
  dimension d, the cosine similarity over time between the head's output and the teacher's, through
  -log sigmoid; averaged over dimensions.
- `tsim`: SpeechTokenizer's "T-axis" loss: per frame, L1 distance plus -log sigmoid of the cosine
  similarity; averaged over frames.
- `mse`: X-Codec's reconstruction of the teacher features (https://arxiv.org/abs/2408.17175).
- `split`: Mimi's recipe (https://arxiv.org/abs/2410.00037): a separate semantic codebook beside the
  acoustic residual stack (`codeclab.quantizers.split`), trained with the cosine distance per frame.

Every loss is shifted so that identical features give exactly 0 (-log sigmoid(1) is subtracted where a
cosine enters), so the logged value reads as "distance from the teacher".

The head is used in training only: `encode` / `decode` never run it. Its weights are saved with the codec
and `CodecConfig.semantic` records the teacher, layer, loss and weight it was distilled with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from codeclab._checks import check_bounds, check_types

LOSSES = ("cosine", "tsim", "mse", "split")
_LOG_SIGMOID_1 = math.log(1 / (1 + math.exp(-1.0)))  # log sigmoid(1): the value at perfect similarity


@dataclass
class SemanticConfig:
    """teacher: how to load the teacher (`codeclab.teachers.load_teacher` spec, e.g. "runs/phone-teacher"
    or "facebook/hubert-base-ls960:9"); teacher_dim: its feature size D_t; codebooks: how many leading
    codebooks the head reads (1 = the first only); loss: one of LOSSES; weight: multiplier of the loss in
    the generator objective; hidden: 0 for a linear head (SpeechTokenizer), else the channels of a
    conv(k=3) + GELU layer before the projection."""

    teacher: str
    teacher_dim: int
    codebooks: int = 1
    loss: str = "cosine"
    weight: float = 1.0
    hidden: int = 0

    def __post_init__(self) -> None:
        check_types(self)
        check_bounds(self, {"teacher_dim": (1, 65536), "codebooks": (1, 256), "hidden": (0, 65536)})
        if self.loss not in LOSSES:
            raise ValueError(f"semantic loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.teacher_dim < 1 or self.codebooks < 1 or self.hidden < 0:
            raise ValueError("teacher_dim and codebooks must be positive and hidden >= 0")
        if self.loss == "split" and self.codebooks != 1:
            raise ValueError("the split recipe distils its one semantic codebook: codebooks must be 1")


class SemanticHead(nn.Module):
    """Quantized prefix [B, D, F] -> teacher-space features [B, F, D_t]."""

    def __init__(self, dim: int, config: SemanticConfig) -> None:
        super().__init__()
        self.config = config
        if config.hidden:
            self.body: nn.Module = nn.Sequential(
                nn.Conv1d(dim, config.hidden, kernel_size=3, padding=1),
                nn.GELU(),
                nn.Conv1d(config.hidden, config.teacher_dim, kernel_size=1),
            )
        else:
            self.body = nn.Conv1d(dim, config.teacher_dim, kernel_size=1)

    def forward(self, prefix: Tensor) -> Tensor:
        return self.body(prefix).transpose(1, 2)


def _valid(mask: Tensor | None, like: Tensor) -> Tensor:
    """[B, F] float weights of valid frames (all ones without a mask)."""
    if mask is None:
        return like.new_ones(like.shape[:2])
    return mask.to(like.dtype)


def d_axis_cosine_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """SpeechTokenizer D-axis: mean over items and dimensions of log sigmoid(1) - log sigmoid(cos_t), where
    cos_t is the cosine similarity over (valid) time of one dimension. pred, target [B, F, D]; mask [B, F]."""
    w = _valid(mask, pred)[..., None]
    p, t = pred * w, target * w
    cos = F.cosine_similarity(p, t, dim=1, eps=1e-8)  # [B, D]
    return (_LOG_SIGMOID_1 - F.logsigmoid(cos)).mean()


def t_axis_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """SpeechTokenizer T-axis: per valid frame, mean |pred - target| + log sigmoid(1) - log sigmoid(cos),
    cos over the feature dimension; averaged over valid frames. pred, target [B, F, D]; mask [B, F]."""
    w = _valid(mask, pred)
    l1 = (pred - target).abs().mean(-1)
    cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-8)
    per_frame = l1 + _LOG_SIGMOID_1 - F.logsigmoid(cos)
    return (per_frame * w).sum() / w.sum().clamp_min(1)


def mse_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """X-Codec: mean squared error over valid frames and dimensions."""
    w = _valid(mask, pred)
    return (((pred - target) ** 2).mean(-1) * w).sum() / w.sum().clamp_min(1)


def cosine_distance_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mimi: 1 - cosine similarity per valid frame, averaged."""
    w = _valid(mask, pred)
    cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-8)
    return ((1 - cos) * w).sum() / w.sum().clamp_min(1)


LOSS_FUNCTIONS = {
    "cosine": d_axis_cosine_loss,
    "tsim": t_axis_loss,
    "mse": mse_loss,
    "split": cosine_distance_loss,
}


def semantic_loss(kind: str, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """The named distillation loss between head output and teacher features, both [B, F, D_t]."""
    if pred.shape != target.shape:
        raise ValueError(
            f"semantic head output {tuple(pred.shape)} and teacher features {tuple(target.shape)} differ"
        )
    return LOSS_FUNCTIONS[kind](pred.float(), target.float(), mask)
