"""Ray Train + timm: ViT pre-training on synthetic streams, export, downstream evaluation.

The names below are imported on first use (PEP 562), so that importing one light module of
this package (`fdsl_ray.train.loss`, `.models`) does not start importing Ray and timm.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "FinetuneConfig": "finetune",
    "FinetuneResult": "finetune",
    "finetune": "finetune",
    "ModelSpec": "models",
    "create_vit": "models",
    "list_models": "models",
    "list_presets": "models",
    "PretrainConfig": "pretrain",
    "PretrainResult": "pretrain",
    "pretrain": "pretrain",
    "export_pretrained": "export",
    "load_pretrained": "export",
    "read_exported": "export",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
