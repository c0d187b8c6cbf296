"""Generators by name, as timm does for models: one module and one decorator per generator."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

from fdsl_ray.formulas.base import Generator

_GENERATORS: dict[str, type[Generator]] = {}


def register_generator(cls: type[Generator]) -> type[Generator]:
    if cls.name in _GENERATORS:
        raise ValueError(f"generator {cls.name!r} is registered twice")
    _GENERATORS[cls.name] = cls
    return cls


def _load_builtin_generators() -> None:
    from fdsl_ray.formulas import generators

    for module in pkgutil.iter_modules(generators.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{generators.__name__}.{module.name}")


def list_generators() -> list[str]:
    _load_builtin_generators()
    return sorted(_GENERATORS)


def generator_class(name: str) -> type[Generator]:
    _load_builtin_generators()
    if name not in _GENERATORS:
        raise ValueError(
            f"generator={name!r} is unknown: must be one of {', '.join(sorted(_GENERATORS))}"
        )
    return _GENERATORS[name]


def create_generator(name: str, **config: Any) -> Generator:
    """Build a validated generator; `create_generator(**gen.config)` rebuilds the same one."""
    cls = generator_class(name)
    known = {field.name for field in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"{name}: unknown config key(s) {', '.join(unknown)}: allowed keys are "
            f"{', '.join(sorted(known))}"
        )
    return cls(cls.config_class(**config))
