"""ExFractalDB: 3-D IFS fractals projected from random viewpoints (Kataoka et al., CVPR 2022).

A category is a 3-D system found by search: systems of N = min_maps..max_maps maps (2..7 by
default: the references' `np.random.randint(2, 8)` excludes 8) are drawn until one whose
normalised 10k-point cloud varies enough along each of x, y and z. Its 145 point clouds are
the system itself plus each of the 12 parameters scaled by each weight in {0.4, ..., 1.6}
minus {1.0}; as in FractalDB's instance weighting (the reference passes the weight for
parameter j with every map's row), parameter j of every map is scaled. Instance i renders
cloud i mod 145 from a random viewpoint, so ids beyond 145 are fresh views of the same clouds.
A weighted system can diverge (about 1 cloud in 100 at 100k points): its images are black.
They are kept rather than redrawn, since the reference has no instance filter either and a
redraw would make the instance -> cloud mapping depend on rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.ifs3d import (
    PARAMS_PER_MAP,
    System3D,
    point_cloud,
    render_views,
    sample_system,
    search_variances,
    view_rotation,
)
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import key_for, keys_for, rng_for, tag
from fdsl_ray.formulas.validation import check_float, check_int

INSTANCE_WEIGHTS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
CLOUDS_PER_CATEGORY = PARAMS_PER_MAP * len(INSTANCE_WEIGHTS) + 1

_CATEGORY = tag("exfractaldb/category")
_SEARCH = tag("exfractaldb/search-points")
_POINTS = tag("exfractaldb/points")
_PATCH = tag("exfractaldb/patch")
_VIEW = tag("exfractaldb/view")


@dataclass(frozen=True)
class ExFractalDBConfig(GeneratorConfig):
    images_per_category: int = CLOUDS_PER_CATEGORY
    variance_threshold: float = 0.05
    search_points: int = 10_000
    max_search_tries: int = 1000
    min_maps: int = 2
    max_maps: int = 7
    camera_distance: float = 4.0
    fov_degrees: float = 45.0
    gray: int = 127
    patch: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("variance_threshold", self.variance_threshold, 0.0, 1.0)
        check_int("search_points", self.search_points, 100, 1_000_000)
        check_int("max_search_tries", self.max_search_tries, 1, 1_000_000)
        check_int("min_maps", self.min_maps, 1, 32)
        check_int("max_maps", self.max_maps, self.min_maps, 32)
        check_float("camera_distance", self.camera_distance, 0.0, 100.0, low_open=True)
        check_float("fov_degrees", self.fov_degrees, 0.0, 180.0, low_open=True, high_open=True)
        check_int("gray", self.gray, 1, 255)
        if not isinstance(self.patch, bool):
            raise ValueError(f"patch={self.patch!r} must be true or false")


@register_generator
class ExFractalDB(Generator):
    name = "exfractaldb"
    config_class = ExFractalDBConfig
    settings: ExFractalDBConfig

    def __init__(self, config: ExFractalDBConfig) -> None:
        super().__init__(config)
        self._systems: dict[int, System3D] = {}
        self._accepted_attempt: dict[int, int] = {}

    def category_system(self, label: int) -> System3D:
        """The accepted system of a category (searched once, then cached)."""
        check_int("label", label, 0, self.num_classes - 1)
        if label not in self._systems:
            self._systems[label] = self._search(label)
        return self._systems[label]

    def search_cloud(self, label: int) -> np.ndarray:
        """The normalised cloud the acceptance test saw for this category."""
        system = self.category_system(label)
        attempt = self._accepted_attempt[label]
        return point_cloud(system, key_for(self.settings.seed, _SEARCH, label, attempt),
                           self.settings.search_points)

    def cloud_system(self, label: int, cloud: int) -> System3D:
        """Cloud 0 is the category's system; cloud 1 + 12 k + j scales parameter k of every map
        by weight j."""
        system = self.category_system(label)
        if cloud == 0:
            return system
        param, weight = divmod(cloud - 1, len(INSTANCE_WEIGHTS))
        return system.scaled(param, INSTANCE_WEIGHTS[weight])

    def _search(self, label: int) -> System3D:
        s = self.settings
        rng = rng_for(s.seed, _CATEGORY, label)
        for attempt in range(s.max_search_tries):
            system = sample_system(rng, s.min_maps, s.max_maps)
            if system is None:
                continue
            variances = search_variances(system, key_for(s.seed, _SEARCH, label, attempt),
                                         s.search_points)
            if variances is not None and (variances > s.variance_threshold).all():
                self._accepted_attempt[label] = attempt
                return system
        raise ValueError(
            f"exfractaldb: no system for label={label} has variance > variance_threshold="
            f"{s.variance_threshold} along x, y and z in max_search_tries={s.max_search_tries} "
            "tries: lower variance_threshold or raise max_search_tries"
        )

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        s = self.settings
        clouds = instances % CLOUDS_PER_CATEGORY
        systems = [self.cloud_system(int(label), int(cloud))
                   for label, cloud in zip(labels, clouds, strict=True)]
        rotations = np.empty((labels.size, 3, 3))
        for index, (label, instance) in enumerate(zip(labels, instances, strict=True)):
            rng = rng_for(s.seed, _VIEW, label, instance)
            azimuth = rng.uniform(0.0, 2.0 * np.pi)
            elevation = np.arcsin(rng.uniform(-1.0, 1.0))
            rotations[index] = view_rotation(azimuth, elevation)
        return render_views(
            systems, keys_for(s.seed, _POINTS, labels, clouds),
            keys_for(s.seed, _PATCH, labels, instances), rotations,
            n_points=s.n_points, image_size=s.image_size, camera_distance=s.camera_distance,
            fov_degrees=s.fov_degrees, gray=s.gray, patch=s.patch,
        )
