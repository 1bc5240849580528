"""The learning-rate schedule both trainers use: linear warm-up, then cosine decay."""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup: int, total: int, peak: float = 1.0, floor: float = 0.0) -> float:
    """The rate at optimiser step ``step`` (0-based): ``peak * (step + 1) / warmup`` during warm-up,
    then cosine from ``peak`` down to ``floor`` at ``total``, held there after."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
