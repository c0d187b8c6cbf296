"""Vision transformers chosen by timm name, shrunk for CPUs by explicit overrides.

A `ModelSpec` is what a study samples, what a checkpoint records and what fine-tuning rebuilds,
so it is a small JSON-able value rather than a live module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import timm
import torch

from fdsl_ray.validation import config_from_dict

# timm's defaults for the supported names; overrides are checked against the resolved values.
_VIT_224 = dict(img_size=224, patch_size=16, depth=12)
_ARCHITECTURES: dict[str, dict[str, int]] = {
    "vit_tiny_patch16_224": dict(_VIT_224, embed_dim=192, num_heads=3),
    "vit_small_patch16_224": dict(_VIT_224, embed_dim=384, num_heads=6),
    "vit_base_patch16_224": dict(_VIT_224, embed_dim=768, num_heads=12),
}

_OVERRIDE_FIELDS = ("img_size", "patch_size", "depth", "embed_dim", "num_heads")


_PRESETS = ("cpu_small", "cpu_fast", "cpu_micro")


def list_models() -> list[str]:
    """The timm names a spec may use."""
    return sorted(_ARCHITECTURES)


def list_presets() -> list[str]:
    """Named CPU-sized specs, accepted by `ModelSpec.named` as well as the timm names."""
    return list(_PRESETS)


@dataclass(frozen=True)
class ModelSpec:
    """A timm ViT name plus optional size overrides (None keeps timm's value)."""

    name: str = "vit_tiny_patch16_224"
    img_size: int | None = None
    patch_size: int | None = None
    depth: int | None = None
    embed_dim: int | None = None
    num_heads: int | None = None

    def __post_init__(self) -> None:
        if self.name not in _ARCHITECTURES:
            raise ValueError(
                f"model name={self.name!r} is unknown: must be one of {', '.join(list_models())}"
            )
        for key in _OVERRIDE_FIELDS:
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key}={value!r} must be an integer or None")
            if value < 1:
                raise ValueError(f"{key}={value} is out of range: must be >= 1")
        if self.img_size is not None and self.img_size > 1024:
            raise ValueError(f"img_size={self.img_size} is out of range: must be in [1, 1024]")
        if self.resolved_img_size % self.resolved_patch_size:
            raise ValueError(
                f"img_size={self.resolved_img_size} is not a multiple of "
                f"patch_size={self.resolved_patch_size}"
            )
        if self.resolved_embed_dim % self.resolved_num_heads:
            raise ValueError(
                f"embed_dim={self.resolved_embed_dim} is not a multiple of "
                f"num_heads={self.resolved_num_heads}"
            )

    def _resolved(self, key: str) -> int:
        value = getattr(self, key)
        return _ARCHITECTURES[self.name][key] if value is None else value

    @property
    def resolved_img_size(self) -> int:
        """The input side length the model expects (what images are resized to)."""
        return self._resolved("img_size")

    @property
    def resolved_patch_size(self) -> int:
        return self._resolved("patch_size")

    @property
    def resolved_embed_dim(self) -> int:
        return self._resolved("embed_dim")

    @property
    def resolved_num_heads(self) -> int:
        return self._resolved("num_heads")

    @property
    def resolved_depth(self) -> int:
        return self._resolved("depth")

    def overrides(self) -> dict[str, int]:
        """The keyword arguments timm.create_model needs on top of the name."""
        values = {key: getattr(self, key) for key in _OVERRIDE_FIELDS}
        return {key: value for key, value in values.items() if value is not None}

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelSpec:
        return config_from_dict(cls, data, "model")

    @classmethod
    def named(cls, name: str) -> ModelSpec:
        """A preset ("cpu_small", "cpu_fast", "cpu_micro") or a timm name without overrides."""
        if name in _PRESETS:
            return getattr(cls, name)()
        if name not in _ARCHITECTURES:
            raise ValueError(f"model {name!r} is unknown: must be a preset "
                             f"({', '.join(_PRESETS)}) or one of {', '.join(list_models())}")
        return cls(name)

    @classmethod
    def cpu_small(cls) -> ModelSpec:
        """32 px, patch 4, 4 blocks of width 192: a ViT-Tiny slice that trains on a laptop CPU."""
        return cls("vit_tiny_patch16_224", img_size=32, patch_size=4, depth=4, embed_dim=192,
                   num_heads=3)

    @classmethod
    def cpu_fast(cls) -> ModelSpec:
        """cpu_small with 8 px patches: 16 tokens instead of 64, about a third of its time per
        step on CPU, and a stronger digits baseline (README, Quickstart: the quickstart's model)."""
        return cls("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=4, embed_dim=192,
                   num_heads=3)

    @classmethod
    def cpu_micro(cls) -> ModelSpec:
        """16 px, 2 blocks of width 64: seconds per epoch, for tests and smoke runs."""
        return cls("vit_tiny_patch16_224", img_size=16, patch_size=4, depth=2, embed_dim=64,
                   num_heads=2)


def create_vit(spec: ModelSpec, num_classes: int) -> torch.nn.Module:
    """A randomly initialised timm ViT for `spec`: 3 input channels, a `num_classes`-way head."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} is out of range: must be an integer >= 1")
    return timm.create_model(
        spec.name, pretrained=False, num_classes=num_classes, in_chans=3, **spec.overrides()
    )


def set_drop_path(network: torch.nn.Module, rate: float) -> torch.nn.Module:
    """Stochastic depth as timm's `drop_path_rate` gives it (linear from 0 to `rate` over the
    blocks), set on a built ViT so that pre-trained and scratch models get it alike."""
    from timm.layers import DropPath

    blocks = list(network.blocks)
    for index, block in enumerate(blocks):
        prob = rate * index / max(1, len(blocks) - 1)
        for name in ("drop_path1", "drop_path2"):
            setattr(block, name, DropPath(prob) if prob > 0 else torch.nn.Identity())
    return network
