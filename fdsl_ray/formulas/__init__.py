"""Formula-driven image generators in NumPy + numba (no Ray, no torch)."""

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.registry import (
    create_generator,
    generator_class,
    generator_settings,
    list_generators,
    list_names,
    register_generator,
)

__all__ = [
    "Generator",
    "GeneratorConfig",
    "create_generator",
    "generator_class",
    "generator_settings",
    "list_generators",
    "list_names",
    "register_generator",
]
