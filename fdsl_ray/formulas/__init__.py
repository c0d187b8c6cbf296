"""Formula-driven image generators in NumPy + numba (no Ray, no torch)."""

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.registry import (
    create_generator,
    generator_class,
    list_generators,
    register_generator,
)

__all__ = [
    "Generator",
    "GeneratorConfig",
    "create_generator",
    "generator_class",
    "list_generators",
    "register_generator",
]
