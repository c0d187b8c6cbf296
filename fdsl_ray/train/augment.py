"""Augmentation: the project's batched tensor path and timm's own per-image transform.

`transform="tensor"` (the CPU recipe) crops and flips whole batches on the training device as
one affine resampling. `transform="timm"` (every reference recipe) runs
`timm.data.create_transform` with the reference's arguments, per image, in Ray Data actors on
CPU, then `timm.data.Mixup` on the device: the same code the references ran, not an imitation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fdsl_ray.validation import check_bool, check_choice, check_float, check_int

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

    A crop that does not fit in the image is the whole image, as in timm's
    RandomResizedCrop.get_params fallback (timm retries 10 draws first; one draw here). So
    `scale` (1, 1) is flips only: clamping such a crop instead would stretch every image by
    up to 15 % in one direction and blur it: the quickstart's loss fell half as fast as in
    benchmarks/quickstart_probe.py, which does not crop (README, Quickstart).

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
    width = torch.sqrt(area * ratio)
    height = torch.sqrt(area / ratio)
    fits = (width <= 1.0) & (height <= 1.0)
    width = torch.where(fits, width, 1.0)
    height = torch.where(fits, height, 1.0)
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


# ----------------------------------------------------------------------------- timm's own path

TRANSFORMS = ("tensor", "timm")
RE_MODES = ("const", "rand", "pixel")
INTERPOLATIONS = ("bilinear", "bicubic", "random")
PRECISIONS = ("bf16", "fp16", "fp32")
TUPLE_FIELDS = ("crop_scale", "crop_ratio", "mean", "std")


def check_augment_fields(config) -> None:
    """Validate the augmentation, mixup and precision fields both configs share."""
    check_float("mixup_alpha", config.mixup_alpha, 0, 100)
    check_float("cutmix_alpha", config.cutmix_alpha, 0, 100)
    check_float("mixup_prob", config.mixup_prob, 0, 1)
    check_float("mixup_switch_prob", config.mixup_switch_prob, 0, 1)
    check_choice("transform", config.transform, TRANSFORMS)
    check_pair("crop_ratio", config.crop_ratio, 100.0)
    check_bool("vflip", config.vflip)
    check_float("color_jitter", config.color_jitter, 0, 1)
    if config.auto_augment is not None and not (
            isinstance(config.auto_augment, str) and config.auto_augment.startswith("rand-")):
        raise ValueError(f"auto_augment={config.auto_augment!r} must be None or a timm "
                         "RandAugment string such as 'rand-m9-mstd0.5-inc1'")
    check_choice("interpolation", config.interpolation, INTERPOLATIONS)
    _check_triple("mean", config.mean)
    _check_triple("std", config.std)
    check_float("re_prob", config.re_prob, 0, 1)
    check_choice("re_mode", config.re_mode, RE_MODES)
    check_int("re_count", config.re_count, 1, 16)
    check_float("drop_path_rate", config.drop_path_rate, 0, 1, high_open=True)
    check_choice("precision", config.precision, PRECISIONS)


def check_pair(name: str, value: object, high: float) -> None:
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(item, (int, float)) for item in value)
            or not 0 < value[0] <= value[1] <= high):
        raise ValueError(f"{name}={value!r} is out of range: must be a pair (low, high) with "
                         f"0 < low <= high <= {high:g}")


def _check_triple(name: str, value: object) -> None:
    if (not isinstance(value, tuple) or len(value) != 3
            or not all(isinstance(item, (int, float)) and 0 < item <= 1 for item in value)):
        raise ValueError(f"{name}={value!r} is out of range: must be three numbers in (0, 1]")


def timm_transform_kwargs(config, size: int) -> dict:
    """The `timm.data.create_transform` arguments of a recipe (`config` is a Pretrain- or
    FinetuneConfig with `transform="timm"`), as the references pass them."""
    return dict(
        input_size=size, is_training=True, no_aug=False, scale=tuple(config.crop_scale),
        ratio=tuple(config.crop_ratio), hflip=0.5 if config.uses_hflip else 0.0,
        vflip=0.5 if config.vflip else 0.0, color_jitter=config.color_jitter,
        auto_augment=config.auto_augment, interpolation=config.interpolation,
        mean=tuple(config.mean), std=tuple(config.std), re_prob=config.re_prob,
        re_mode=config.re_mode, re_count=config.re_count,
    )


def timm_mixup_kwargs(config, num_classes: int) -> dict:
    """The `timm.data.Mixup` arguments of a recipe (mode "batch", as every reference uses)."""
    return dict(mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha,
                prob=config.mixup_prob, switch_prob=config.mixup_switch_prob, mode="batch",
                label_smoothing=config.label_smoothing, num_classes=num_classes)


def _image_seed(seed: int, epoch: int, label: int, instance: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + label * 7_919 + instance * 104_729) % 2**31


def _posterize_any_bits(img, bits_to_keep, **_):
    """timm's posterize op, where 0 bits gives the black image the references' Pillow made:
    RandAugment's `inc1` policy at magnitude 10 asks for 0 bits, which Pillow >= 10 refuses
    ("bits must be between or equal to 1 and 8") and older Pillow mapped to black."""
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def _allow_zero_bit_posterize(transform) -> None:
    from timm.data.auto_augment import RandAugment, posterize

    for step in getattr(transform, "transforms", ()):
        if isinstance(step, RandAugment):
            for op in step.ops:
                if op.aug_fn is posterize:
                    op.aug_fn = _posterize_any_bits


class TimmAugment:
    """uint8 images -> timm `create_transform` output (float32 [3, S, S], normalised).

    Each image's draws come from a seed of (seed, epoch, label, instance): python's `random` (crop,
    flip, RandAugment) and torch's generator (random erasing) are reseeded per image, so an
    image's augmentation does not depend on batching, actor count or order (np.random too:
    RandAugment draws its ops from it). The callers' global states are restored. Grayscale images
    are read as RGB, as the references' ImageFolder loaders do.
    """

    def __init__(self, kwargs: dict, seed: int) -> None:
        from timm.data import create_transform

        self.transform = create_transform(**kwargs)
        _allow_zero_bit_posterize(self.transform)
        self.seed = seed

    def __call__(self, images: np.ndarray, labels: np.ndarray, instances: np.ndarray,
                 epochs: np.ndarray) -> torch.Tensor:
        import random

        from PIL import Image

        out = []
        with torch.random.fork_rng(devices=[]):
            state, numpy_state = random.getstate(), np.random.get_state()
            for image, label, instance, epoch in zip(images, labels, instances, epochs,
                                                     strict=True):
                seed = _image_seed(self.seed, int(epoch), int(label), int(instance))
                random.seed(seed)
                np.random.seed(seed)  # RandAugment picks its ops with np.random
                torch.manual_seed(seed)
                picture = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
                out.append(self.transform(picture))
            random.setstate(state)
            np.random.set_state(numpy_state)
        return torch.stack(out)


class TimmAugmentActor:
    """A Ray Data stage: adds column "input" (the augmented float image) to rendered rows."""

    def __init__(self, kwargs: dict, seed: int) -> None:
        self.augment = TimmAugment(kwargs, seed)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = self.augment(batch["image"], batch["label"], batch["instance"],
                              batch["epoch"]).numpy()
        return {"input": inputs, "label": batch["label"]}
