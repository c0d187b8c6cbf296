"""Batch augmentation on tensors: RandomResizedCrop and flips as one affine resampling.

Pre-training augments on the training device (the GPU when there is one), so the data actors
only render images and the CPU never becomes the bottleneck for augmentation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_ASPECT_RATIO = (3 / 4, 4 / 3)


def random_resized_crop(
    batch: torch.Tensor,
    size: int,
    scale: tuple[float, float],
    *,
    hflip: bool,
    vflip: bool,
    generator: torch.Generator,
    padding_mode: str = "reflection",
) -> torch.Tensor:
    """float [B, C, H, W] -> [B, C, size, size]: per-image crop of area fraction in `scale` and
    aspect 3/4..4/3, resized bilinearly, then flipped left-right / upside-down with p = 0.5.

    Random numbers come from `generator` (on the CPU, so one seed gives the same crops on any
    device); only the resampling runs on the batch's device.
    """
    count = batch.shape[0]
    low, high = scale
    area = torch.empty(count).uniform_(low, high, generator=generator)
    log_ratio = torch.empty(count).uniform_(
        math.log(_ASPECT_RATIO[0]), math.log(_ASPECT_RATIO[1]), generator=generator
    )
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1.0)
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    centre_x = (torch.rand(count, generator=generator) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(count, generator=generator) * 2 - 1) * (1 - height)
    flip_x = _random_signs(count, hflip, generator)
    flip_y = _random_signs(count, vflip, generator)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = width * flip_x
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height * flip_y
    theta[:, 1, 2] = centre_y
    theta = theta.to(device=batch.device, dtype=batch.dtype)
    grid = F.affine_grid(theta, [count, batch.shape[1], size, size], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


def _random_signs(count: int, enabled: bool, generator: torch.Generator) -> torch.Tensor:
    """-1 (flip) or +1 per image; all +1 when disabled, drawing nothing."""
    if not enabled:
        return torch.ones(count)
    return torch.where(torch.rand(count, generator=generator) < 0.5, -1.0, 1.0)
