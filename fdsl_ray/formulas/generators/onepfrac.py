"""1p-frac (ECCV 2024): one base fractal, L categories that perturb all its parameters.

As the reference (SUPER-TADORY/1p-frac `1p-frac_generater/src/render_from_oneparam_mp.py`):
- the base is one draw of the sigma-factor sampler with N = n_maps maps and sigma ~
  U(sigma - sigma_jitter, sigma + sigma_jitter) (`set_baseparams`, l. 83-87, margin 0.1),
  not itself checked (l. 93); map probabilities are the base's |det A_i| normalised
  (`calc_p`, l. 23-33) and stay the same for every category;
- category l multiplies each of the 6 N parameters by an independent U(1 - delta,
  1 + delta) (l. 53-56) and is redrawn until its patch render at 512 px (pad 6, 100k points,
  the shared map sequence) fills more than filling_threshold = 0.05 (l. 58-67; the check runs
  `draw_patch(..., threshold=args.pixel_threshold)` on the 512 px canvas,
  ifs_function.py:146-152). The check is that render whatever render_size, n_points, patch
  and image_size say, so the categories depend on the formula alone;
- one image per category, the canvas flipped top to bottom (trans_type 0).
Seeding uses the common `seed` field: the base from (seed, "base"), category l from
(seed, "category", l, attempt), the patch masks of instance i from (seed, "masks", l, i).
Instances differ only by masks and flips (trans_type i % 4), so instance 0 is the
reference's image and ids >= 1 are fresh ones (a stream's augmentation). Unlike the
reference, the base is recoverable: `base_system` (JSON) pins it.
`map_sequence="per-category"` (chaos-game steps keyed by (seed, "points", l)) and
`warmup_points` are the earlier defaults, kept as options: with the shared sequence,
Delta = 0 categories are one shape with different masks, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.chaos import canvas_filling, check_chaos_settings, render_systems
from fdsl_ray.formulas.ifs import IFSSystem, check_sigma, sample_sigma_factor
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import keys_for, rng_for, tag
from fdsl_ray.validation import check_bool, check_float, check_int

BASE_STREAM = tag("onepfrac/base")
CATEGORY_STREAM = tag("onepfrac/category")
POINT_STREAM = tag("onepfrac/points")
MASK_STREAM = tag("onepfrac/masks")
CHECK_SIZE = 512  # render_from_oneparam_mp.py:123-127 argparse defaults: 512 px, 100k points
CHECK_POINTS = 100_000


@dataclass(frozen=True)
class OnePFracConfig(GeneratorConfig):
    """Defaults follow the 1p-frac README and argparse (sigma 3.5, delta 0.1, N = 2, 512 px,
    100k points, threshold 0.05, L = 1,000; its release script generate.sh uses sigma 4.0).

    `base_system` (an IFSSystem JSON, see `OnePFrac.pinned_config`) replaces the base draw:
    n_maps, sigma and sigma_jitter are then only validated, not used.
    """

    delta: float = 0.1
    sigma: float = 3.5
    n_maps: int = 2
    sigma_jitter: float = 0.1
    filling_threshold: float = 0.05
    patch: bool = True
    flips: bool = True
    map_sequence: str = "shared"
    warmup_points: int = 0
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
        check_bool("patch", self.patch)
        check_bool("flips", self.flips)
        check_chaos_settings(self.render_size, self.image_size, self.map_sequence,
                             self.warmup_points, self.n_points)
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
    searches = True
    # The check render is fixed (CHECK_SIZE, CHECK_POINTS, patches on): see category_filling.
    table_ignores = (*Generator.table_ignores, "patch", "flips")
    settings: OnePFracConfig

    def __init__(self, config: OnePFracConfig) -> None:
        super().__init__(config)
        self._categories: dict[int, IFSSystem] = {}
        self.search_attempts: dict[int, int] = {}  # label -> the accepted draw's attempt
        if config.base_system is not None:
            self.base_system = IFSSystem.from_json(config.base_system)
        else:
            rng = rng_for(config.seed, BASE_STREAM)
            self.base_system, _ = sample_sigma_factor(
                rng, config.n_maps, config.sigma - config.sigma_jitter,
                config.sigma + config.sigma_jitter)

    @property
    def pinned_config(self) -> dict[str, Any]:
        """`config` with the base system written in, to reproduce a run without the sampler."""
        return {**self.config, "base_system": self.base_system.to_json()}

    def search_category(self, label: int) -> tuple[str, int]:
        system = self.category_system(label)
        return system.to_json(), self.search_attempts[label]

    def base_record(self) -> str:
        return self.base_system.to_json()

    def _use_table(self, table: Any) -> None:
        self.base_system = IFSSystem.from_json(table.base)
        self._categories = {label: IFSSystem.from_json(system)
                            for label, system in enumerate(table.systems)}
        self.search_attempts = dict(enumerate(table.attempts))

    def category_system(self, label: int) -> IFSSystem:
        """The base with every parameter scaled by U(1 - delta, 1 + delta), redrawn until its
        instance-0 canvas fills more than `filling_threshold`; cached, as renders reuse it."""
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
            if self.category_filling(system, label) > config.filling_threshold:
                self.search_attempts[label] = attempt
                return system
        raise ValueError(
            f"onepfrac: no draw of category {label} filled more than filling_threshold="
            f"{config.filling_threshold} of the {CHECK_SIZE} px check render in max_attempts="
            f"{config.max_attempts} draws (seed={config.seed}, sigma={config.sigma}, "
            f"n_maps={config.n_maps}, delta={config.delta}): this base fills too little; try "
            "another seed, lower the threshold or raise max_attempts"
        )

    def _point_keys(self, labels: np.ndarray) -> np.ndarray | None:
        if self.settings.map_sequence == "shared":
            return None
        return keys_for(self.settings.seed, POINT_STREAM, labels, np.zeros_like(labels))

    def category_filling(self, system: IFSSystem, label: int) -> float:
        """The reference's check render (patches, CHECK_SIZE px, CHECK_POINTS points) with
        instance 0's masks, whatever this config draws and outputs."""
        config = self.settings
        labels = np.array([label])
        filling = canvas_filling(
            [system], keys_for(config.seed, MASK_STREAM, labels, np.zeros_like(labels)),
            render_size=CHECK_SIZE, n_points=CHECK_POINTS, patch=True,
            point_keys=self._point_keys(labels),
            warmup_points=min(config.warmup_points, CHECK_POINTS - 1))
        return float(filling[0])

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        config = self.settings
        systems = [self._categories.get(label) or self.category_system(label)
                   for label in labels.tolist()]
        flips = instances % 4 if config.flips else np.zeros_like(instances)
        return render_systems(
            systems, keys_for(config.seed, MASK_STREAM, labels, instances), flips,
            render_size=config.render_size, image_size=config.image_size,
            n_points=config.n_points, patch=config.patch, point_keys=self._point_keys(labels),
            warmup_points=config.warmup_points)
