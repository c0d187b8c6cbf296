"""Vision transformers by name, in one registry as timm keeps its models and as
fdsl_ray.formulas.registry keeps the generators: timm's ViTs as timm builds them, and presets
that shrink them for CPUs by explicit overrides. Every model is built by timm's own
`create_model`; the sizes an override leaves alone are read off timm's model, not copied here.

A `ModelSpec` is what a study samples, what a checkpoint records and what fine-tuning rebuilds,
so it is a small JSON-able value rather than a live module.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import timm
import torch

from fdsl_ray.validation import config_from_dict

# The timm architectures a spec may name.
ARCHITECTURES = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224")
_OVERRIDE_FIELDS = ("img_size", "patch_size", "depth", "embed_dim", "num_heads")
_MODELS: dict[str, ModelSpec] = {}


@functools.cache
def timm_sizes(architecture: str) -> dict[str, int]:
    """timm's own sizes of `architecture`, read off the model timm.create_model builds on the
    meta device (no memory, no initialisation)."""
    with torch.device("meta"):
        model = timm.create_model(architecture, pretrained=False)
    return {"img_size": model.patch_embed.img_size[0],
            "patch_size": model.patch_embed.patch_size[0], "depth": len(model.blocks),
            "embed_dim": model.embed_dim, "num_heads": model.blocks[0].attn.num_heads}


def register_model(name: str, spec: ModelSpec) -> ModelSpec:
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    """The registered spec called `name` (a preset such as "cpu_small", or a timm name)."""
    if name not in _MODELS:
        raise ValueError(f"model {name!r} is unknown: must be one of {', '.join(list_models())}")
    return _MODELS[name]


def list_models() -> list[str]:
    """Every name get_model takes: the CPU presets, then the timm architectures."""
    return list(_MODELS)


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
        if self.name not in ARCHITECTURES:
            raise ValueError(f"model name={self.name!r} is unknown: must be one of "
                             f"{', '.join(ARCHITECTURES)}")
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
        # timm's own sizes fit together; only an override can break them.
        if ((self.img_size, self.patch_size) != (None, None)
                and self.resolved_img_size % self.resolved_patch_size):
            raise ValueError(
                f"img_size={self.resolved_img_size} is not a multiple of "
                f"patch_size={self.resolved_patch_size}"
            )
        if ((self.embed_dim, self.num_heads) != (None, None)
                and self.resolved_embed_dim % self.resolved_num_heads):
            raise ValueError(
                f"embed_dim={self.resolved_embed_dim} is not a multiple of "
                f"num_heads={self.resolved_num_heads}"
            )

    def _resolved(self, key: str) -> int:
        value = getattr(self, key)
        return timm_sizes(self.name)[key] if value is None else value

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


# 32 px, patch 4, 4 blocks of width 192: a ViT-Tiny slice that trains on a laptop CPU.
register_model("cpu_small", ModelSpec("vit_tiny_patch16_224", img_size=32, patch_size=4,
                                      depth=4, embed_dim=192, num_heads=3))
# cpu_small with 8 px patches: 16 tokens instead of 64, about a third of its time per step on
# CPU, and a stronger digits baseline (README, Quickstart: the quickstart's model).
register_model("cpu_fast", ModelSpec("vit_tiny_patch16_224", img_size=32, patch_size=8,
                                     depth=4, embed_dim=192, num_heads=3))
# 16 px, 2 blocks of width 64: seconds per epoch, for tests and smoke runs.
register_model("cpu_micro", ModelSpec("vit_tiny_patch16_224", img_size=16, patch_size=4,
                                      depth=2, embed_dim=64, num_heads=2))
for _architecture in ARCHITECTURES:
    register_model(_architecture, ModelSpec(_architecture))


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
