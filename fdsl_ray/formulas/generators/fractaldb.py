"""FractalDB (ACCV 2020): categories found by random search, instances by parameter weighting.

Category l tries systems from (seed, "category", l, attempt): N = 2..7 maps (the reference's
`np.random.randint(2, 8)` excludes 8), all parameters U(-1, 1), accepted when the image fills
at least `filling_threshold` of the pixels. Instance i of a category (with W weights):
  flip   = i % 4                            (none, h, v, both)
  render = (i // 4) % renders_per_system    (fresh patch masks)
  system = (i // (4 * renders)) % (6 W + 1) (0: the category itself; then weight w applied
                                             to parameter j of every map, as the reference)
so the default 4 weights give 25 x 10 x 4 = 1,000 instances; ids beyond that cycle the
systems with fresh masks. As in the reference, the four flips of a render are one image
mirrored (masks keyed by (seed, "masks", l, i // 4); by i itself when flips is off), and
all renders of a category share the chaos-game points (keyed by (seed, "points", l)), so
they differ only by weights and masks. Map probabilities stay the category's (the reference
reads them from the category CSV, unweighted).

Defaults: 224 px and 100k points like the rest of the project (training resizes to 224
anyway); the release used 362 px and 200k points, and the reference script 512 px: set
image_size / n_points to match them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.chaos import filling_rates, render_systems
from fdsl_ray.formulas.ifs import IFSSystem, sample_uniform
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import keys_for, rng_for, tag
from fdsl_ray.formulas.validation import check_float, check_int

CATEGORY_STREAM = tag("fractaldb/category")
POINT_STREAM = tag("fractaldb/points")
MASK_STREAM = tag("fractaldb/masks")
MIN_MAPS, MAX_MAPS = 2, 7
DEFAULT_WEIGHTS = (0.8, 0.9, 1.1, 1.2)
RELEASE_WEIGHTS = (0.2, 0.6, 1.4, 1.8)


@dataclass(frozen=True)
class FractalDBConfig(GeneratorConfig):
    images_per_category: int = 1000
    filling_threshold: float = 0.2
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    renders_per_system: int = 10
    patch: bool = True
    flips: bool = True
    max_attempts: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("filling_threshold", self.filling_threshold, 0.0, 1.0)
        if isinstance(self.weights, list):  # JSON and CLI give lists; keep the config hashable
            object.__setattr__(self, "weights", tuple(self.weights))
        if not isinstance(self.weights, tuple):
            raise ValueError(f"weights={self.weights!r} must be a list of numbers")
        for index, weight in enumerate(self.weights):
            check_float(f"weights[{index}]", weight, 0.0, 10.0, low_open=True)
        check_int("renders_per_system", self.renders_per_system, 1)
        for field in ("patch", "flips"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field}={getattr(self, field)!r} must be true or false")
        check_int("max_attempts", self.max_attempts, 1, 1_000_000)


@register_generator
class FractalDB(Generator):
    name = "fractaldb"
    config_class = FractalDBConfig
    settings: FractalDBConfig

    def __init__(self, config: FractalDBConfig) -> None:
        super().__init__(config)
        self._categories: dict[int, IFSSystem] = {}
        # Row 0 is the identity; then one row per (parameter, weight): 6 W + 1 rows.
        rows = [np.ones(6)]
        for parameter in range(6):
            for weight in config.weights:
                row = np.ones(6)
                row[parameter] = weight
                rows.append(row)
        self.weight_rows = np.array(rows)

    @property
    def systems_per_category(self) -> int:
        return len(self.weight_rows)

    def prepare(self) -> None:
        """Search every category now (about 20 renders each at the defaults), e.g. on the
        driver before the generator is pickled to render actors, so they do not each repeat
        the search."""
        for label in range(self.num_classes):
            self.category_system(label)

    def category_system(self, label: int) -> IFSSystem:
        """The first sampled system whose instance-0 image fills enough; cached."""
        label = int(label) if isinstance(label, np.integer) else label
        check_int("label", label, 0, self.num_classes - 1)
        if label not in self._categories:
            self._categories[label] = self._search_category(label)
        return self._categories[label]

    def _search_category(self, label: int) -> IFSSystem:
        config = self.settings
        for attempt in range(config.max_attempts):
            rng = rng_for(config.seed, CATEGORY_STREAM, label, attempt)
            system = sample_uniform(rng, int(rng.integers(MIN_MAPS, MAX_MAPS + 1)))
            image = self._render_systems([system], np.array([label]), np.array([0]))
            if filling_rates(image)[0] >= config.filling_threshold:
                return system
        raise ValueError(
            f"fractaldb: no system for category {label} reached "
            f"filling_threshold={config.filling_threshold} in max_attempts="
            f"{config.max_attempts} draws (image_size={config.image_size}, "
            f"n_points={config.n_points}, patch={config.patch}): lower the threshold or "
            "raise max_attempts"
        )

    def instance_system(self, label: int, instance: int) -> IFSSystem:
        """The category system weighted as instance `instance` prescribes."""
        instance = int(instance) if isinstance(instance, np.integer) else instance
        check_int("instance", instance, 0)
        row = (instance // (4 * self.settings.renders_per_system)) % self.systems_per_category
        return self.category_system(label).scaled(self.weight_rows[row])

    def _render_systems(self, systems: list[IFSSystem], labels: np.ndarray,
                        instances: np.ndarray) -> np.ndarray:
        config = self.settings
        point_keys = keys_for(config.seed, POINT_STREAM, labels, np.zeros_like(labels))
        if config.flips:
            mask_keys = keys_for(config.seed, MASK_STREAM, labels, instances // 4)
            flips = instances % 4
        else:
            mask_keys = keys_for(config.seed, MASK_STREAM, labels, instances)
            flips = np.zeros_like(instances)
        return render_systems(systems, point_keys, mask_keys, flips,
                              image_size=config.image_size,
                              n_points=config.n_points, patch=config.patch)

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        systems = [self.instance_system(int(label), int(instance))
                   for label, instance in zip(labels, instances, strict=True)]
        return self._render_systems(systems, labels, instances)
