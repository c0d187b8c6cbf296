"""Ray Train + timm: ViT pre-training on synthetic streams, export, downstream evaluation.

The names below are imported on first use (PEP 562), so that importing one light module of
this package (`fdsl_ray.train.loss`, `.models`) does not start importing Ray and timm.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_HOMES = {
    "FinetuneConfig": "finetune",
    "FinetuneResult": "finetune",
    "finetune": "finetune",
    "ModelSpec": "models",
    "create_vit": "models",
    "list_models": "models",
    "get_model": "models",
    "register_model": "models",
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


class _Package(types.ModuleType):
    """`pretrain` and `finetune` name both a function and the submodule defining it. Importing
    the submodule sets the package attribute to the module, which would then shadow the
    function in `from fdsl_ray.train import pretrain`; this returns the function instead."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if _HOMES.get(name) == name and isinstance(value, types.ModuleType):
            return getattr(value, name)
        return value


sys.modules[__name__].__class__ = _Package
