"""The learning-rate schedule of codec training: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math
from collections.abc import Callable


def cosine_schedule(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """LambdaLR factor of a step: (step + 1) / warmup during warm-up, then cosine from 1 to min_ratio."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        progress = min(1.0, (step - warmup) / max(total - warmup, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
