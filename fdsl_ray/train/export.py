"""Pre-trained weights as a timm-loadable safetensors file plus a timm `config.json`.

The export directory is what `timm.create_model("local-dir:DIR", pretrained=True,
num_classes=K)` reads, and the weights file alone is what
`timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=PATH), ...)` reads.
The config records the real pre-training class count, because timm drops the checkpoint's
head exactly when the requested `num_classes` differs from the pretrained cfg's `num_classes`,
and the sha256 of the weights file, which every load verifies: a score is never computed on
damaged weights. Non-finite weights are refused on export and on load.
An export directory may also be an object-store URI (s3://...): it is written through
fdsl_ray.storage, weights first, and read back through a local download.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from fdsl_ray import storage
from fdsl_ray.train.models import ModelSpec, create_vit

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SHA256_KEY = "fdsl_weights_sha256"
_HEAD_KEYS = ("head.weight", "head.bias")


@dataclass(frozen=True)
class ExportedModel:
    """What an export directory holds: its weights file, architecture, class count and the
    sha256 recorded for the weights (None in an export written without one)."""

    weights_path: str
    spec: ModelSpec
    num_classes: int
    weights_sha256: str | None = None


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain timm module inside DDP (`.module`) or torch.compile (`._orig_mod`) wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def _nonfinite(tensors: Iterator[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of floating-point tensors holding a nan or an inf."""
    return [key for key, value in tensors
            if value.is_floating_point() and not bool(torch.isfinite(value).all())]


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


def _timm_config(spec: ModelSpec, num_classes: int, sha256: str) -> dict[str, object]:
    size = spec.resolved_img_size
    return {
        "architecture": spec.name,
        "num_classes": num_classes,
        "num_features": spec.resolved_embed_dim,
        "global_pool": "token",
        "model_args": spec.overrides(),
        "pretrained_cfg": {
            "num_classes": num_classes,
            "input_size": [3, size, size],
            "fixed_input_size": True,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "first_conv": "patch_embed.proj",
            "classifier": "head",
        },
        "fdsl_model_spec": spec.to_dict(),
        SHA256_KEY: sha256,
    }


def export_pretrained(
    model: torch.nn.Module, spec: ModelSpec, num_classes: int, out_dir: str
) -> str:
    """Write `model.safetensors` and `config.json` under `out_dir`; returns the weights path.

    Each file is written whole (fdsl_ray.storage.write_bytes), weights first, so a killed export
    never leaves a half-written file where a loader would pick it up.
    """
    module = _unwrap(model)
    state = {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}
    expected = create_vit(spec, num_classes).state_dict()
    _check_shapes({key: tuple(value.shape) for key, value in state.items()}, expected, spec,
                  ignore=frozenset(), source="the model to export")
    broken = _nonfinite(iter(state.items()))
    if broken:
        raise ValueError(f"the model to export to {out_dir} has non-finite weights (nan or inf) "
                         f"in {_listed(broken)}: the training diverged; nothing was exported")
    weights = save(state, metadata={"format": "pt"})
    weights_path = storage.join(out_dir, WEIGHTS_FILE)
    storage.write_bytes(weights_path, weights)
    storage.write_json(storage.join(out_dir, CONFIG_FILE),
                       _timm_config(spec, num_classes, hashlib.sha256(weights).hexdigest()))
    return weights_path


@contextmanager
def _local_export(path: str) -> Iterator[tuple[str, str | None]]:
    """(a local path to read, the weights' URI or None): `path` itself when local; for a URI,
    its weights and config downloaded to a temporary directory that lives as long as the block."""
    if not storage.is_uri(path):
        yield path, None
        return
    directory = storage.parent(path) if storage.is_file(path) else storage.normalize(path)
    weights = storage.join(directory, WEIGHTS_FILE)
    if not storage.is_file(weights):
        raise ValueError(f"checkpoint {path} not found: expected a {WEIGHTS_FILE} object or a "
                         "prefix holding one (as written by export_pretrained)")
    with tempfile.TemporaryDirectory(prefix="fdsl-weights-") as local:
        storage.download(weights, Path(local) / WEIGHTS_FILE)
        if storage.is_file(storage.join(directory, CONFIG_FILE)):
            storage.download(storage.join(directory, CONFIG_FILE), Path(local) / CONFIG_FILE)
        yield local, weights


def _resolve_weights_path(path: str) -> Path:
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / WEIGHTS_FILE
    if not candidate.is_file():
        raise ValueError(f"checkpoint {path} not found: expected a {WEIGHTS_FILE} file or a "
                         "directory holding one (as written by export_pretrained)")
    return candidate


def read_exported(path: str) -> ExportedModel:
    """The architecture and class count recorded next to exported weights (file or directory,
    local or an object-store URI)."""
    with _local_export(path) as (local, weights_uri):
        weights_path = _resolve_weights_path(local)
        config_path = weights_path.parent / CONFIG_FILE
        if not config_path.is_file():
            raise ValueError(f"checkpoint {path} has no {CONFIG_FILE} beside it: pass the model "
                             "architecture explicitly")
        config = json.loads(config_path.read_text())
    if "fdsl_model_spec" in config:
        spec = ModelSpec.from_dict(config["fdsl_model_spec"])
    else:
        spec = ModelSpec(config["architecture"], **config.get("model_args", {}))
    return ExportedModel(weights_uri or str(weights_path), spec, int(config["num_classes"]),
                         config.get(SHA256_KEY))


def _verify_weights(weights_path: Path, path: str, recorded_sha256: str | None) -> None:
    """Refuse weights whose bytes are not the exported ones, or that hold a nan or an inf."""
    if recorded_sha256 is not None and storage.file_sha256(weights_path) != recorded_sha256:
        raise ValueError(f"checkpoint {path}: {WEIGHTS_FILE} is corrupt: its sha256 differs "
                         f"from the one recorded in {CONFIG_FILE} at export")
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            broken = _nonfinite((key, handle.get_tensor(key)) for key in handle.keys())
    except SafetensorError as error:
        raise ValueError(
            f"checkpoint {weights_path} is not a readable safetensors file: {error}"
        ) from error
    if broken:
        raise ValueError(f"checkpoint {path} has non-finite weights (nan or inf) in "
                         f"{_listed(broken)}: refusing to fine-tune them")


def _architecture(spec: ModelSpec) -> dict[str, object]:
    """What must match for weights to load; img_size may differ (timm resamples pos_embed)."""
    return {
        "name": spec.name,
        "patch_size": spec.resolved_patch_size,
        "depth": spec.resolved_depth,
        "embed_dim": spec.resolved_embed_dim,
        "num_heads": spec.resolved_num_heads,
    }


def _check_shapes(
    found: dict[str, tuple[int, ...]],
    expected: dict[str, torch.Tensor],
    spec: ModelSpec,
    *,
    ignore: frozenset[str],
    source: str,
) -> None:
    """Raise a ValueError naming the mismatching tensors when `found` is not `spec`'s layout."""
    problems = []
    for key in sorted(set(expected) | set(found)):
        if key in ignore:
            continue
        if key not in found:
            problems.append(f"{key} missing")
        elif key not in expected:
            problems.append(f"unexpected {key}")
        elif found[key] != tuple(expected[key].shape):
            problems.append(f"{key} {list(found[key])} != {list(expected[key].shape)}")
    if problems:
        shown = "; ".join(problems[:4]) + (f"; ... {len(problems) - 4} more" if len(problems) > 4
                                           else "")
        raise ValueError(f"{source} does not match architecture {spec.to_dict()}: {shown}")


def load_pretrained(path: str, spec: ModelSpec, num_classes: int) -> torch.nn.Module:
    """A `spec` ViT with exported backbone weights and a `num_classes` head, loaded by timm.

    Following timm's rule, the checkpoint's head is kept only when `num_classes` equals the
    pre-training class count; otherwise the new head keeps timm's initialisation. A checkpoint
    of another architecture raises a ValueError before timm sees it. `path` may be a URI.
    """
    with _local_export(path) as (local, _):
        return _load_local(local, path, spec, num_classes)


def _load_local(weights: str, path: str, spec: ModelSpec, num_classes: int) -> torch.nn.Module:
    """load_pretrained on a local file or directory; `path` is what the caller named."""
    weights_path = _resolve_weights_path(weights)
    pretrained_classes = None
    recorded_sha256 = None
    if (weights_path.parent / CONFIG_FILE).is_file():
        exported = read_exported(str(weights_path))
        recorded_sha256 = exported.weights_sha256
        pretrained_classes = exported.num_classes
        requested, recorded = _architecture(spec), _architecture(exported.spec)
        mismatched = [
            f"{field}={recorded[field]} (requested {requested[field]})"
            for field in requested
            if recorded[field] != requested[field]
        ]
        if mismatched:
            raise ValueError(f"checkpoint {path} was exported for another architecture: "
                             f"{', '.join(mismatched)}")
    _verify_weights(weights_path, path, recorded_sha256)
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            found = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except SafetensorError as error:
        raise ValueError(
            f"checkpoint {weights_path} is not a readable safetensors file: {error}"
        ) from error
    if pretrained_classes is None:
        pretrained_classes = found.get("head.weight", (0,))[0]
    # pos_embed follows img_size (timm resamples it); the head follows the class count.
    _check_shapes(found, create_vit(spec, 1).state_dict(), spec,
                  ignore=frozenset({"pos_embed", *_HEAD_KEYS}), source=f"checkpoint {path}")
    return timm.create_model(
        spec.name,
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(weights_path), num_classes=pretrained_classes),
        num_classes=num_classes,
        in_chans=3,
        **spec.overrides(),
    )
