"""ExFractalDB: 3-D IFS fractals seen from several viewpoints (Kataoka et al., CVPR 2022).

The defaults reproduce the reference, masora1030/CVPR2022-Pretrained-ViT-PyTorch at 7a28054,
`exfractaldb_render/` (paths below are relative to it; "search" is
3dfractal_render/category_search.py, "ifs" 3dfractal_render/IteratedFunctionSystem.py,
"render" image_render/render.py):

- Category search: N = randint(2, 8) maps, so 2..7 (search:81), 12 numbers each ~ U(-1, 1)
  (search:87), p proportional to |det A| (search:90, 96). The chaos game starts at the origin
  and `calculate(n)` runs n - 1 steps keeping each new point (ifs:8, 51), so the scripts'
  point_num 10,000 (search:23) gives 9,999 points. They are min-max scaled into [-1, 1] with
  one min and max over all three axes (search:42-46, 101), then centred on their centroid
  (search:54-58, 103), and the system is accepted when np.var along x, y and z each exceeds
  the threshold (search:105-111): 0.05 in the release scripts (ExFractalDB_render.sh:3;
  the argparse default is 0.15, search:24). A cloud with a NaN is refused (search:107-108).
- Instances: the 145 rows of ifs_weight/weights_ins145.csv (instance.py:70, 85) each scale
  one parameter of every map (instance.py:90-97, ifs:15-38), the search's probabilities kept.
  Rows 1-13 scale a (A[0, 0]) by 0.4, 0.5, ..., 1.6 including 1.0 (row 7: the system itself);
  then 12 rows per parameter b..l with {0.4, ..., 0.9, 1.1, ..., 1.6}, except that row 109
  scales i (A[2, 2]) by 0.6 a second time where 1.6 would be. CLOUD_WEIGHTS is that table.
  Each cloud is a fresh 9,999-point chaos game (instance.py:98-100), written only when its y
  column has no NaN (instance.py:101-106).
- Images: 224 px (render:28; ExFractalDB_render.sh:16 passes no --img_size), 12 views
  (render:26) of every cloud: view k turns the camera about the y axis by 2 pi k / 12
  (render:164, 166), plus 30 degrees (render:167), plus radians(uniform(-pi, pi)) (render:168):
  a jitter of +-pi *degrees*, drawn per image. The camera looks at the origin from distance 4
  (render:163, 169-172) with y up, through a 45 degree perspective, near 1, far 100
  (render:24-25, 143). Points are GL_POINTS of 1 pixel (render:27, 182), colour (1, 1, 1)
  passed through by the shader (render:102; shader/unlit_shader.frag): white, 255, on black
  (render:178); the depth test (render:68) changes nothing with one colour. glReadPixels
  returns the bottom row first and the array is saved as it is (render:193, 204-206), so
  the PNG is the screen flipped vertically; that orientation is reproduced. The files are
  {category}_{cloud:05d}_{view:03d}.png: 145 x 12 = 1,740 images a category.

Instance i renders cloud i % 145 from view (i // 145) % 12, so a category of 1,740 images
holds every (cloud, view) pair of the reference once and a shorter prefix still covers every
cloud; ids past 1,740 are the same clouds with fresh jitters. `clouds` = C keeps the first C
rows (cloud i % C, view (i // C) % 12): 3D-OFDB (ryoo-nakamura/OFDB at ea761ec,
3d-ofdb-generator/) is C = 1, as its instance.py:73-75, 92 renders only the first row of
weights_ins145.csv (a x 0.4) and its image_render/render1view.py:26-28, 283-300 the same 12
jittered views at 224 px; its category search (3dfractal_render/category_search.py:108-151)
and 3d-ofdb_render.sh:3 (variance 0.05) are ExFractalDB's. `viewpoints="sphere"` (the
previous behaviour) instead looks from a direction uniform on the sphere, per image: the
README (lines 5-6) says ExFractalDB proper projects "randomly" selected viewpoints, whereas the
released code renders these 12.

Not reproduced: the reference's centroid divides by 10,000 for 9,999 points (search:56-58), a
shift of the cloud below 1e-4 of its size, about 0.01 px; the GL pipeline is float32 and this
is float64, so a point on a pixel boundary may land one pixel over. The reference drops a
diverging cloud and renumbers the rest (render:91-93), so a category can have fewer than
1,740 images; here such a cloud renders black, since a redraw would make the instance ->
cloud mapping depend on rendering.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.ifs3d import (
    System3D,
    point_cloud,
    render_views,
    sample_system,
    search_variances,
    uniforms,
    view_basis,
)
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import key_for, keys_for, rng_for, tag
from fdsl_ray.validation import check_bool, check_choice, check_float, check_int

INSTANCE_WEIGHTS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)


def _reference_weights() -> tuple[tuple[int, float], ...]:
    """(parameter, weight) per cloud in the order of weights_ins145.csv."""
    rows = [(0, w) for w in (*INSTANCE_WEIGHTS[:6], 1.0, *INSTANCE_WEIGHTS[6:])]
    rows += [(param, w) for param in range(1, 12) for w in INSTANCE_WEIGHTS]
    rows[108] = (8, 0.6)  # the csv's row 109 repeats 0.6 for parameter i where 1.6 would be
    return tuple(rows)


CLOUD_WEIGHTS = _reference_weights()
CLOUDS_PER_CATEGORY = len(CLOUD_WEIGHTS)
REFERENCE_VIEWS = 12
AZIMUTH_OFFSET_DEGREES = 30.0
NEAR, FAR = 1.0, 100.0

_CATEGORY = tag("exfractaldb/category")
_SEARCH = tag("exfractaldb/search-points")
_POINTS = tag("exfractaldb/points")
_PATCH = tag("exfractaldb/patch")
_VIEW = tag("exfractaldb/view")


@dataclass(frozen=True)
class ExFractalDBConfig(GeneratorConfig):
    """`clouds`: how many rows of the weight table a category uses, from the first.
    `viewpoints`: "reference" (views about y, see the module docstring) or "sphere" (a
    uniform random direction per image). `jitter_degrees`: half-width of the reference's
    uniform azimuth jitter."""

    render_size: int = 224
    n_points: int = 9_999
    images_per_category: int = CLOUDS_PER_CATEGORY * REFERENCE_VIEWS
    variance_threshold: float = 0.05
    search_points: int = 9_999
    max_search_tries: int = 1000
    min_maps: int = 2
    max_maps: int = 7
    clouds: int = CLOUDS_PER_CATEGORY
    viewpoints: str = "reference"
    views: int = REFERENCE_VIEWS
    jitter_degrees: float = math.pi
    camera_distance: float = 4.0
    fov_degrees: float = 45.0
    gray: int = 255
    patch: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("variance_threshold", self.variance_threshold, 0.0, 1.0)
        check_int("search_points", self.search_points, 100, 1_000_000)
        check_int("max_search_tries", self.max_search_tries, 1, 1_000_000)
        check_int("min_maps", self.min_maps, 1, 32)
        check_int("max_maps", self.max_maps, self.min_maps, 32)
        check_int("clouds", self.clouds, 1, CLOUDS_PER_CATEGORY)
        check_choice("viewpoints", self.viewpoints, ("reference", "sphere"))
        check_int("views", self.views, 1, 360)
        check_float("jitter_degrees", self.jitter_degrees, 0.0, 180.0)
        check_float("camera_distance", self.camera_distance, 0.0, 100.0, low_open=True)
        check_float("fov_degrees", self.fov_degrees, 0.0, 180.0, low_open=True, high_open=True)
        check_int("gray", self.gray, 1, 255)
        check_bool("patch", self.patch)


@register_generator
class ExFractalDB(Generator):
    name = "exfractaldb"
    config_class = ExFractalDBConfig
    searches = True
    # The search reads only the seed, the map counts, search_points and the threshold.
    table_ignores = (*Generator.table_ignores, "clouds", "viewpoints", "views",
                     "jitter_degrees", "camera_distance", "fov_degrees", "gray", "patch")
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

    def search_category(self, label: int) -> tuple[str, int]:
        system = self.category_system(label)
        return (json.dumps({"params": system.params.tolist(),
                            "probabilities": system.probabilities.tolist()}),
                self._accepted_attempt[label])

    def _use_table(self, table: Any) -> None:
        systems = [json.loads(system) for system in table.systems]
        self._systems = {label: System3D(np.array(system["params"], dtype=np.float64),
                                         np.array(system["probabilities"], dtype=np.float64))
                         for label, system in enumerate(systems)}
        self._accepted_attempt = dict(enumerate(table.attempts))

    def search_cloud(self, label: int) -> np.ndarray:
        """The normalised cloud the acceptance test saw for this category."""
        system = self.category_system(label)
        attempt = self._accepted_attempt[label]
        return point_cloud(system, key_for(self.settings.seed, _SEARCH, label, attempt),
                           self.settings.search_points)

    def cloud_system(self, label: int, cloud: int) -> System3D:
        """Cloud c scales parameter CLOUD_WEIGHTS[c][0] of every map by CLOUD_WEIGHTS[c][1]."""
        param, weight = CLOUD_WEIGHTS[cloud]
        return self.category_system(label).scaled(param, weight)

    def azimuths(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """Radians: view (i // clouds) % views, 2 pi view / views + 30 deg + U(-jitter,
        jitter) deg (render.py:164-168); the reference's elevation is 0."""
        s = self.settings
        views = (instances // s.clouds) % s.views
        jitter = (2.0 * uniforms(keys_for(s.seed, _VIEW, labels, instances), 0) - 1.0)
        return (2.0 * np.pi * views / s.views
                + np.radians(AZIMUTH_OFFSET_DEGREES + s.jitter_degrees * jitter))

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
        clouds = instances % s.clouds
        systems = [self.cloud_system(int(label), int(cloud))
                   for label, cloud in zip(labels, clouds, strict=True)]
        if s.viewpoints == "reference":
            bases = view_basis(self.azimuths(labels, instances), np.zeros(labels.size))
        else:
            keys = keys_for(s.seed, _VIEW, labels, instances)
            bases = view_basis(2.0 * np.pi * uniforms(keys, 0),
                               np.arcsin(2.0 * uniforms(keys, 1) - 1.0))
        return render_views(
            systems, keys_for(s.seed, _POINTS, labels, clouds),
            keys_for(s.seed, _PATCH, labels, instances), bases,
            n_points=s.n_points, render_size=s.render_size, image_size=s.image_size,
            camera_distance=s.camera_distance, fov_degrees=s.fov_degrees, near=NEAR, far=FAR,
            gray=s.gray, patch=s.patch,
        )
