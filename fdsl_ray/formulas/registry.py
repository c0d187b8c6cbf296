"""Generators by name, as timm does for models: one module and one decorator per generator."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from fdsl_ray.formulas.base import Generator
from fdsl_ray.validation import config_from_dict

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


def list_names() -> list[str]:
    """Every name create_generator takes: the generators, then the published presets."""
    from fdsl_ray.formulas.presets import list_presets

    return list_generators() + list_presets()


def _resolve(name: str, config: dict[str, Any]) -> tuple[type[Generator], dict[str, Any]]:
    """(generator class, config values) for a generator or a preset name."""
    from fdsl_ray.formulas.presets import PRESETS

    _load_builtin_generators()
    if name in PRESETS:
        preset = PRESETS[name]
        return _GENERATORS[preset.generator], preset.config(**config)
    if name not in _GENERATORS:
        raise ValueError(f"generator={name!r} is unknown: must be one of {', '.join(list_names())}")
    return _GENERATORS[name], config


def generator_class(name: str) -> type[Generator]:
    return _resolve(name, {})[0]


def generator_settings(name: str, **config: Any) -> Any:
    """The validated config dataclass of a generator or preset, without building the generator
    (which may search for its systems)."""
    cls, values = _resolve(name, config)
    return config_from_dict(cls.config_class, values, f"{name} config")


def create_generator(name: str, **config: Any) -> Generator:
    """Build a validated generator from a generator or preset name; `create_generator(
    **gen.config)` rebuilds the same one (its config names the generator, all values set)."""
    return generator_class(name)(generator_settings(name, **config))
