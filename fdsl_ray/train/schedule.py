"""The learning-rate schedule shared by pre-training and fine-tuning, as in the references."""

from __future__ import annotations

import math
from typing import Protocol


class _Schedulable(Protocol):
    epochs: int
    warmup_epochs: int

    @property
    def effective_lr(self) -> float: ...


def warmup_cosine_lr(config: _Schedulable, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero, evaluated per optimisation step."""
    warmup = config.warmup_epochs * steps_per_epoch
    total = config.epochs * steps_per_epoch
    if step < warmup:
        return config.effective_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.effective_lr * 0.5 * (1 + math.cos(math.pi * progress))
