"""What every generator shares: the common config fields and the render contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from fdsl_ray.validation import check_int, check_seed

MAX_IMAGE_SIZE = 4096
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    """Common fields. Subclasses add their own, all with defaults, and extend the checks.

    The formula is drawn at `render_size` (the references' canvas: 512 px) and the output is
    `image_size`, reached by the area resize of `fdsl_ray.formulas.resize`, as the references'
    trainers resize their saved 512 px images.
    """

    image_size: int = 224
    render_size: int = 512
    n_points: int = 100_000
    seed: int = 0
    num_categories: int = 1000
    images_per_category: int = 1

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size, 8, MAX_IMAGE_SIZE)
        check_int("render_size", self.render_size, 8, MAX_IMAGE_SIZE)
        if self.render_size < self.image_size:
            raise ValueError(
                f"render_size={self.render_size} is smaller than image_size={self.image_size}: "
                "the formula is drawn at render_size and resized down to image_size, so "
                "render_size must be >= image_size"
            )
        check_int("n_points", self.n_points, 1, MAX_POINTS)
        check_seed("seed", self.seed)
        check_int("num_categories", self.num_categories, 1)
        check_int("images_per_category", self.images_per_category, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Generator(ABC):
    """Renders images as a pure function of (config, label, instance).

    `images_per_category` is the size of a stored dataset; any instance id >= 0 is valid, and
    ids at or beyond it are fresh instances (new patch masks, flips, viewpoints), which is how
    a stream augments from the formula itself.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[GeneratorConfig]] = GeneratorConfig
    # Generators whose categories come from a search implement search_category, base_record
    # and _use_table; the table of such a config is `fdsl_ray.formulas.table`'s.
    searches: ClassVar[bool] = False
    # Config fields no search reads (they only change how an image is drawn): configs that
    # differ only in them share one category table.
    table_ignores: ClassVar[tuple[str, ...]] = (
        "image_size", "render_size", "n_points", "images_per_category")

    def __init__(self, config: GeneratorConfig) -> None:
        self.settings = config

    @property
    def num_classes(self) -> int:
        return self.settings.num_categories

    @property
    def image_size(self) -> int:
        return self.settings.image_size

    @property
    def config(self) -> dict[str, Any]:
        """A plain dict that `create_generator(**config)` turns back into this generator."""
        return {"name": self.name, **self.settings.to_dict()}

    def search_category(self, label: int) -> tuple[str, int]:
        """(category `label`'s accepted system as JSON, the attempt that found it)."""
        raise TypeError(f"generator {self.name!r} has no category search")

    def base_record(self) -> str | None:
        """The base system's JSON, for generators whose categories perturb one base."""
        return None

    def use_table(self, table: Any, where: str = "given") -> None:
        """Take every category from a `CategoryTable` (checked to be this config's), so that
        this generator never searches."""
        if not self.searches:
            raise TypeError(f"generator {self.name!r} has no category search to take a table")
        table.check_for(self, where)
        self._use_table(table)

    def _use_table(self, table: Any) -> None:
        raise TypeError(f"generator {self.name!r} has no category search")

    def render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """uint8 images of shape [B, image_size, image_size], one per (label, instance)."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        instances = np.asarray(instances, dtype=np.int64).reshape(-1)
        if labels.shape != instances.shape:
            raise ValueError(
                f"labels ({labels.size}) and instances ({instances.size}) differ in length"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = labels[(labels < 0) | (labels >= self.num_classes)][0]
            raise ValueError(f"label={bad} is out of range: must be in [0, {self.num_classes - 1}]")
        if instances.size and instances.min() < 0:
            raise ValueError(f"instance={instances.min()} is out of range: must be >= 0")
        images = self._render(labels, instances)
        assert images.dtype == np.uint8 and images.shape == (labels.size, *2 * (self.image_size,))
        return images

    @abstractmethod
    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """Render validated int64 ids; subclasses implement only this."""
