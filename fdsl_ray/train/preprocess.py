"""uint8 image batches -> the normalised 3-channel float input every model here takes.

Models always take 3 channels, as in the FDSL reference (gray PNGs read as RGB), so the same
weights serve synthetic grayscale pre-training and RGB downstream data. Normalisation is
mean = std = 0.5 per channel, i.e. [0, 255] -> [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_MEAN = 0.5
_STD = 0.5


def to_model_input(images: torch.Tensor, image_size: int | None = None) -> torch.Tensor:
    """uint8 [B, H, W], [B, H, W, 3] or [B, 3, H, W] -> float32 [B, 3, S, S] in [-1, 1].

    Works on the tensor's own device, so a batch moved to the GPU is converted there. When
    `image_size` is given and differs from H or W, the batch is resized bilinearly.
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"images dtype={images.dtype} is not supported: must be torch.uint8")
    if images.ndim == 3:
        batch = images.unsqueeze(1).expand(-1, 3, -1, -1)
    elif images.ndim == 4 and images.shape[-1] == 3:
        batch = images.permute(0, 3, 1, 2)
    elif images.ndim == 4 and images.shape[1] == 3:
        batch = images
    else:
        raise ValueError(
            f"images shape={tuple(images.shape)} is not supported: must be [B, H, W], "
            "[B, H, W, 3] or [B, 3, H, W]"
        )
    batch = batch.float().div_(255.0).sub_(_MEAN).div_(_STD)
    if image_size is not None:
        if image_size < 1:
            raise ValueError(f"image_size={image_size} is out of range: must be >= 1")
        if tuple(batch.shape[-2:]) != (image_size, image_size):
            batch = F.interpolate(
                batch, size=(image_size, image_size), mode="bilinear", align_corners=False
            )
    return batch.contiguous()
