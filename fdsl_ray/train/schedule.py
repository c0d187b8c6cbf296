"""Learning-rate schedules shared by pre-training and fine-tuning, and schedule unit conversion.

Two schedules: `"project"` (linear warm-up from zero, cosine decay to zero after it, per step)
and timm's `CosineLRScheduler` as the references drive it, stepped once per epoch
(`"timm_epoch"`: SUPER-TADORY/1p-frac train/main.py:198-252 steps `create_scheduler(sched=
cosine)` after every epoch) or once per iteration (`"timm_step"`: the `cosine_iter` schedule of
masora1030/CVPR2022-Pretrained-ViT-PyTorch scheduler/scheduler_factory.py:110-). timm's rule:
warm-up climbs linearly from `warmup_lr` over `warmup_t`, and the cosine runs over the whole
`t_initial` from t = 0 (timm's default `warmup_prefix=False`), so warm-up replaces its start.
"""

from __future__ import annotations

import math
from typing import Protocol

SCHEDULES = ("project", "timm_epoch", "timm_step")


class ScaledLearningRates:
    """The linear scaling rule of a recipe's learning rates, for a config with `lr`, `min_lr`,
    `warmup_lr`, `batch_size` and `lr_base_batch`: each is multiplied by batch_size /
    lr_base_batch (1p-frac train/main.py:188-190); `lr_base_batch` None uses them as given."""

    @property
    def lr_scale(self) -> float:
        return 1.0 if self.lr_base_batch is None else self.batch_size / self.lr_base_batch

    @property
    def effective_lr(self) -> float:
        """The peak learning rate after the linear scaling rule (lr x batch / lr_base_batch)."""
        return self.lr * self.lr_scale

    @property
    def effective_min_lr(self) -> float:
        return self.min_lr * self.lr_scale

    @property
    def effective_warmup_lr(self) -> float:
        return self.warmup_lr * self.lr_scale


class _Schedulable(Protocol):
    epochs: int
    warmup_epochs: int

    @property
    def effective_lr(self) -> float: ...


def warmup_cosine_lr(config: _Schedulable, step: int, steps_per_epoch: int) -> float:
    """The lr of optimisation step `step` (0-based) under `config.schedule`."""
    schedule = getattr(config, "schedule", "project")
    if schedule == "project":
        warmup = config.warmup_epochs * steps_per_epoch
        total = config.epochs * steps_per_epoch
        if step < warmup:
            return config.effective_lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return config.effective_lr * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "timm_epoch":
        t, t_initial, warmup_t = step // steps_per_epoch, config.epochs, config.warmup_epochs
    else:
        t, t_initial = step, config.epochs * steps_per_epoch
        warmup_steps = getattr(config, "warmup_steps", None)
        warmup_t = config.warmup_epochs * steps_per_epoch if warmup_steps is None else warmup_steps
    return timm_cosine(t, t_initial, config.effective_lr, lr_min=config.effective_min_lr,
                       warmup_t=warmup_t, warmup_lr_init=config.effective_warmup_lr)


def timm_cosine(t: int, t_initial: int, base_lr: float, *, lr_min: float, warmup_t: int,
                warmup_lr_init: float) -> float:
    """timm CosineLRScheduler's lr at t for one cycle (cycle_limit 1, no noise, k_decay 1)."""
    if t < warmup_t:
        return warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t
    if t >= t_initial:
        return lr_min
    return lr_min + 0.5 * (base_lr - lr_min) * (1 + math.cos(math.pi * t / t_initial))


def steps_per_epoch(images: int, batch_size: int, num_workers: int = 1) -> int:
    """Optimisation steps in one pass over `images`: every worker drops its last partial batch,
    as the references' DistributedSampler + DataLoader(drop_last=True) do (1p-frac: 1,000
    images, batch 256 -> 3 steps)."""
    return images // num_workers // (batch_size // num_workers)


def epochs_for_iterations(iterations: int, images: int, batch_size: int,
                          num_workers: int = 1) -> int:
    """The fewest epochs over `images` that make at least `iterations` optimisation steps."""
    per_epoch = steps_per_epoch(images, batch_size, num_workers)
    if per_epoch < 1:
        raise ValueError(f"batch_size={batch_size} is out of range: {images} images over "
                         f"{num_workers} worker(s) make no full batch")
    return math.ceil(iterations / per_epoch)


def iterations_for_epochs(epochs: int, images: int, batch_size: int, num_workers: int = 1) -> int:
    """Optimisation steps that `epochs` passes over `images` make."""
    return epochs * steps_per_epoch(images, batch_size, num_workers)
