"""Codebook health during training: per-stage usage and perplexity for metrics.jsonl, the stages that
look like collapsing, and the progress line's perplexities."""

from __future__ import annotations

from torch import Tensor


def codebook_health(quantizer_metrics: dict[str, Tensor]) -> dict[str, float]:
    """Per-stage codebook health for metrics.jsonl: `q{i}/usage` (fraction of the codebook used in the
    batch), `q{i}/perplexity` (of the batch's codes), `q{i}/ema_perplexity` (of the EMA use shares: the
    batch-size independent figure the warning watches) and `q{i}/replaced` (dead codes moved this step),
    plus `codebook_usage`, the mean usage over stages."""
    out: dict[str, float] = {}
    usage = quantizer_metrics.get("usage")
    if usage is not None:
        out["codebook_usage"] = float(usage.float().mean())
    for key in ("usage", "perplexity", "ema_perplexity", "replaced"):
        values = quantizer_metrics.get(key)
        if values is None:
            continue
        for i, value in enumerate(values.reshape(-1).tolist()):
            out[f"q{i}/{key}"] = float(value)
    return out


def weak_stages(metrics: dict[str, float], codebook_size: int, min_fraction: float) -> list[int]:
    """Stages whose EMA perplexity is below min_fraction x codebook_size."""
    weak = []
    i = 0
    while f"q{i}/ema_perplexity" in metrics:
        if metrics[f"q{i}/ema_perplexity"] < min_fraction * codebook_size:
            weak.append(i)
        i += 1
    return weak


def perplexities_line(metrics: dict[str, float]) -> str:
    """Per-stage EMA perplexities for the progress line, e.g. "612/480/301/150"."""
    values, i = [], 0
    while f"q{i}/ema_perplexity" in metrics:
        values.append(f"{metrics[f'q{i}/ema_perplexity']:.0f}")
        i += 1
    return "/".join(values) or "-"
