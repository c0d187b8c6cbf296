"""1p-frac (ECCV 2024): one base fractal, L categories that perturb all its parameters.

Seeding uses the common `seed` field: the base system comes from (seed, "base", attempt),
category l from (seed, "category", l, attempt), its chaos-game points from (seed, "points",
l) and the patch masks of instance i from (seed, "masks", l, i): instances differ only by
masks and flips (flip = i % 4), as in the reference. Unlike the reference, the base is
recoverable: `base_system` (JSON) pins it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.chaos import filling_rates, render_systems
from fdsl_ray.formulas.ifs import IFSSystem, check_sigma, sample_sigma_factor
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import keys_for, rng_for, tag
from fdsl_ray.formulas.validation import check_float, check_int

BASE_STREAM = tag("onepfrac/base")
CATEGORY_STREAM = tag("onepfrac/category")
POINT_STREAM = tag("onepfrac/points")
MASK_STREAM = tag("onepfrac/masks")


@dataclass(frozen=True)
class OnePFracConfig(GeneratorConfig):
    """Defaults follow the 1p-frac README (sigma 3.5; its release script uses 4.0).

    `base_system` (an IFSSystem JSON, see `OnePFrac.pinned_config`) replaces the base search:
    n_maps, sigma and sigma_jitter are then only validated, not used.
    """

    delta: float = 0.1
    sigma: float = 3.5
    n_maps: int = 2
    sigma_jitter: float = 0.1
    filling_threshold: float = 0.05
    patch: bool = True
    flips: bool = True
    max_attempts: int = 100
    base_system: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("delta", self.delta, 0.0, 1.0, high_open=True)
        check_int("n_maps", self.n_maps, 1, 64)
        check_float("sigma_jitter", self.sigma_jitter, 0.0)
        check_float("sigma", self.sigma, 0.0, low_open=True)
        check_sigma(self.sigma, self.n_maps)
        check_sigma(self.sigma - self.sigma_jitter, self.n_maps, "sigma - sigma_jitter")
        check_sigma(self.sigma + self.sigma_jitter, self.n_maps, "sigma + sigma_jitter")
        check_float("filling_threshold", self.filling_threshold, 0.0, 1.0, high_open=True)
        for field in ("patch", "flips"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field}={getattr(self, field)!r} must be true or false")
        check_int("max_attempts", self.max_attempts, 1, 100_000)
        if self.base_system is not None:
            if not isinstance(self.base_system, str):
                raise ValueError(f"base_system={self.base_system!r} must be a JSON string")
            try:
                IFSSystem.from_json(self.base_system)
            except ValueError as error:
                raise ValueError(f"base_system is invalid: {error}") from None


@register_generator
class OnePFrac(Generator):
    name = "onepfrac"
    config_class = OnePFracConfig
    settings: OnePFracConfig

    def __init__(self, config: OnePFracConfig) -> None:
        super().__init__(config)
        self._categories: dict[int, IFSSystem] = {}
        if config.base_system is not None:
            self.base_system = IFSSystem.from_json(config.base_system)
        else:
            self.base_system = self._search_base()

    @property
    def pinned_config(self) -> dict[str, Any]:
        """`config` with the base system written in, to reproduce a run without the sampler."""
        return {**self.config, "base_system": self.base_system.to_json()}

    def _passes(self, system: IFSSystem, label: int) -> bool:
        """The check image is exactly what instance 0 of `label` would render."""
        image = self._render_systems([system], np.array([label]), np.array([0]))
        return filling_rates(image)[0] > self.settings.filling_threshold

    def _search_base(self) -> IFSSystem:
        config = self.settings
        for attempt in range(config.max_attempts):
            rng = rng_for(config.seed, BASE_STREAM, attempt)
            sigma = rng.uniform(config.sigma - config.sigma_jitter,
                                config.sigma + config.sigma_jitter)
            system = sample_sigma_factor(rng, config.n_maps, sigma)
            if self._passes(system, 0):
                return system
        raise ValueError(self._failure("the base system", config.max_attempts))

    def prepare(self) -> None:
        """Search every category now, e.g. on the driver before the generator is pickled to
        render actors, so they do not each repeat the search."""
        for label in range(self.num_classes):
            self.category_system(label)

    def category_system(self, label: int) -> IFSSystem:
        """The base with every parameter scaled by U(1 - delta, 1 + delta), redrawn until its
        image fills more than `filling_threshold`; cached, as renders reuse it."""
        label = int(label) if isinstance(label, np.integer) else label
        check_int("label", label, 0, self.num_classes - 1)
        if label not in self._categories:
            self._categories[label] = self._search_category(label)
        return self._categories[label]

    def _search_category(self, label: int) -> IFSSystem:
        config = self.settings
        base = self.base_system
        for attempt in range(config.max_attempts):
            rng = rng_for(config.seed, CATEGORY_STREAM, label, attempt)
            factors = rng.uniform(1.0 - config.delta, 1.0 + config.delta, size=base.maps.shape)
            system = base.scaled(factors)
            if self._passes(system, label):
                return system
        raise ValueError(self._failure(f"category {label}", config.max_attempts))

    def _failure(self, what: str, attempts: int) -> str:
        config = self.settings
        return (
            f"onepfrac: no draw of {what} passed filling_threshold={config.filling_threshold} in "
            f"max_attempts={attempts} draws (sigma={config.sigma}, n_maps={config.n_maps}, "
            f"delta={config.delta}, image_size={config.image_size}, "
            f"n_points={config.n_points}): lower the threshold or raise max_attempts"
        )

    def _render_systems(self, systems: list[IFSSystem], labels: np.ndarray,
                        instances: np.ndarray) -> np.ndarray:
        config = self.settings
        point_keys = keys_for(config.seed, POINT_STREAM, labels, np.zeros_like(labels))
        mask_keys = keys_for(config.seed, MASK_STREAM, labels, instances)
        flips = instances % 4 if config.flips else np.zeros_like(instances)
        return render_systems(systems, point_keys, mask_keys, flips,
                              image_size=config.image_size,
                              n_points=config.n_points, patch=config.patch)

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        systems = [self.category_system(int(label)) for label in labels]
        return self._render_systems(systems, labels, instances)
