"""FractalDB (ACCV 2020): categories found by random search, instances by parameter weighting.

As the reference (hirokatsukataoka16/FractalDB-Pretrained-ResNet-PyTorch):
- search (`param_search/ifs_search.py:50-75`): N = randint(2, 8) maps (2..7), all six
  parameters of each U(-1, 1), p_i = |a d - b c| normalised; a system becomes a category when
  its point render (gray 127, one pixel per point) at 512 px with pad 6 and 100k points
  (l. 28-34: `draw_point(512, 512, 6, 6, ...)`, `--numof_point` 100000) fills >= 0.2 of the
  pixels (`cal_pix`, l. 22-25), whatever size the data set is drawn at. Its chaos game reads
  the global generator on from the last draw (`ifs_simple.py:34-36`, no reseed): here a
  fresh sequence keyed by (seed, "search", l, attempt). Category l tries (seed, "category",
  l, attempt) for attempt = 0, 1, ...
- instances (`fractal_renderer/make_fractaldb.py:50-84`): for each row of the weight CSV
  (`weights/weights_0.1.csv`: parameter a scaled by 0.8, 0.9, 1 (the category itself), 1.1,
  1.2, then b..f by 0.8, 0.9, 1.1, 1.2: 25 rows; the release `exe.sh` uses
  `weights_0.4.csv`, {0.2, 0.6, 1.4, 1.8}), render `--instance` = 10 times with fresh
  patch masks and save 4 flips; parameter j of every map is scaled, map probabilities stay
  the category's (read from its CSV). All renders use the shared map sequence
  (`ifs_function.py:54-57`, np.random.seed(100)). Argparse defaults: 512 px, 100k points;
  the release: 362 px, 200k points (see the `fractaldb-1k` preset).
Instance i: flip = i % 4 (trans_type), render = (i // 4) % renders_per_system, weight row =
(i // (4 renders_per_system)) % (6 W + 1), so 25 x 10 x 4 = 1,000 instances per category in
the reference's file order; ids beyond cycle the rows with fresh masks. The four flips of a
render are one image mirrored (masks keyed by (seed, "masks", l, i // 4); by i itself when
flips is off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.chaos import canvas_filling, check_chaos_settings, render_systems
from fdsl_ray.formulas.ifs import IFSSystem, sample_uniform
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import key_for, keys_for, rng_for, tag
from fdsl_ray.validation import check_bool, check_float, check_int

CATEGORY_STREAM = tag("fractaldb/category")
SEARCH_STREAM = tag("fractaldb/search")
POINT_STREAM = tag("fractaldb/points")
MASK_STREAM = tag("fractaldb/masks")
MIN_MAPS, MAX_MAPS = 2, 7
SEARCH_SIZE = 512
DEFAULT_WEIGHTS = (0.8, 0.9, 1.1, 1.2)
RELEASE_WEIGHTS = (0.2, 0.6, 1.4, 1.8)
WEIGHTED_CACHE = 4096  # weighted systems kept (about 1 kB each), emptied when full


def weight_rows(weights: tuple[float, ...]) -> np.ndarray:
    """[6 W + 1, 6] in the reference CSV's order: parameter a by each weight with the identity
    at its sorted place, then b..f by each weight."""
    rows = []
    for parameter in range(6):
        values = sorted((*weights, 1.0)) if parameter == 0 else list(weights)
        for value in values:
            row = np.ones(6)
            row[parameter] = value
            rows.append(row)
    return np.array(rows)


@dataclass(frozen=True)
class FractalDBConfig(GeneratorConfig):
    images_per_category: int = 1000
    filling_threshold: float = 0.2
    search_points: int = 100_000
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    renders_per_system: int = 10
    patch: bool = True
    flips: bool = True
    map_sequence: str = "shared"
    warmup_points: int = 0
    max_attempts: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("filling_threshold", self.filling_threshold, 0.0, 1.0)
        check_int("search_points", self.search_points, 2, 10_000_000)
        if isinstance(self.weights, list):  # JSON and CLI give lists; keep the config hashable
            object.__setattr__(self, "weights", tuple(self.weights))
        if not isinstance(self.weights, tuple):
            raise ValueError(f"weights={self.weights!r} must be a list of numbers")
        for index, weight in enumerate(self.weights):
            check_float(f"weights[{index}]", weight, 0.0, 10.0, low_open=True)
        if 1.0 in self.weights:
            raise ValueError(f"weights={list(self.weights)} must not contain 1: the category "
                             "itself is always one of the instance systems")
        check_int("renders_per_system", self.renders_per_system, 1)
        check_bool("patch", self.patch)
        check_bool("flips", self.flips)
        check_chaos_settings(self.render_size, self.image_size, self.map_sequence,
                             self.warmup_points, self.n_points)
        check_int("max_attempts", self.max_attempts, 1, 1_000_000)


@register_generator
class FractalDB(Generator):
    name = "fractaldb"
    config_class = FractalDBConfig
    searches = True
    # The search renders points at SEARCH_SIZE with search_points (search_filling).
    table_ignores = (*Generator.table_ignores, "weights", "renders_per_system", "patch",
                     "flips", "map_sequence", "warmup_points")
    settings: FractalDBConfig

    def __init__(self, config: FractalDBConfig) -> None:
        super().__init__(config)
        self._categories: dict[int, IFSSystem] = {}
        self.search_attempts: dict[int, int] = {}  # label -> the accepted draw's attempt
        self.weight_rows = weight_rows(config.weights)
        self._weighted: dict[tuple[int, int], IFSSystem] = {}

    @property
    def systems_per_category(self) -> int:
        return len(self.weight_rows)

    def search_category(self, label: int) -> tuple[str, int]:
        system = self.category_system(label)
        return system.to_json(), self.search_attempts[label]

    def _use_table(self, table: Any) -> None:
        self._categories = {label: IFSSystem.from_json(system)
                            for label, system in enumerate(table.systems)}
        self.search_attempts = dict(enumerate(table.attempts))
        self._weighted.clear()

    def category_system(self, label: int) -> IFSSystem:
        """The first sampled system whose search render fills enough; cached."""
        label = int(label) if isinstance(label, np.integer) else label
        check_int("label", label, 0, self.num_classes - 1)
        if label not in self._categories:
            self._categories[label] = self._search_category(label)
        return self._categories[label]

    def search_filling(self, system: IFSSystem, label: int, attempt: int) -> float:
        """The reference's search criterion: the point render at SEARCH_SIZE px."""
        config = self.settings
        filling = canvas_filling(
            [system], np.zeros(1, dtype=np.uint64), render_size=SEARCH_SIZE,
            n_points=config.search_points, patch=False,
            point_keys=np.array([key_for(config.seed, SEARCH_STREAM, label, attempt)],
                                dtype=np.uint64))
        return float(filling[0])

    def _search_category(self, label: int) -> IFSSystem:
        config = self.settings
        for attempt in range(config.max_attempts):
            rng = rng_for(config.seed, CATEGORY_STREAM, label, attempt)
            system = sample_uniform(rng, int(rng.integers(MIN_MAPS, MAX_MAPS + 1)))
            if self.search_filling(system, label, attempt) >= config.filling_threshold:
                self.search_attempts[label] = attempt
                return system
        raise ValueError(
            f"fractaldb: no system for category {label} reached "
            f"filling_threshold={config.filling_threshold} in max_attempts="
            f"{config.max_attempts} draws ({SEARCH_SIZE} px point renders of "
            f"search_points={config.search_points}): lower the threshold or raise max_attempts"
        )

    def instance_system(self, label: int, instance: int) -> IFSSystem:
        """The category system weighted as instance `instance` prescribes."""
        instance = int(instance) if isinstance(instance, np.integer) else instance
        check_int("instance", instance, 0)
        row = (instance // (4 * self.settings.renders_per_system)) % self.systems_per_category
        return self._weighted_system(int(label), row)

    def _weighted_system(self, label: int, row: int) -> IFSSystem:
        """Category `label` weighted by weight row `row`, cached: building and validating a
        system costs about as much as a tenth of its render."""
        system = self._weighted.get((label, row))
        if system is None:
            if len(self._weighted) >= WEIGHTED_CACHE:
                self._weighted.clear()
            system = self.category_system(label).scaled(self.weight_rows[row])
            self._weighted[label, row] = system
        return system

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        config = self.settings
        rows = (instances // (4 * config.renders_per_system)) % self.systems_per_category
        systems = [self._weighted_system(label, row)
                   for label, row in zip(labels.tolist(), rows.tolist(), strict=True)]
        if config.flips:
            mask_keys = keys_for(config.seed, MASK_STREAM, labels, instances // 4)
            flips = instances % 4
        else:
            mask_keys = keys_for(config.seed, MASK_STREAM, labels, instances)
            flips = np.zeros_like(instances)
        point_keys = (keys_for(config.seed, POINT_STREAM, labels, np.zeros_like(labels))
                      if config.map_sequence == "per-category" else None)
        return render_systems(systems, mask_keys, flips, render_size=config.render_size,
                              image_size=config.image_size, n_points=config.n_points,
                              patch=config.patch, point_keys=point_keys,
                              warmup_points=config.warmup_points)
