"""RCDB: radial contours (Kataoka et al., CVPR 2022), drawn in one numba kernel per batch.

A category fixes the shape statistics (vertex count, contour count, noise amplitude, radial
step); an instance fixes where and how big (start radius, oval rates, centre) and its own
noise draws and gray levels, as in the reference render script. `n_points` is unused:
contours are drawn as lines, not points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.perlin import perlin1d
from fdsl_ray.formulas.raster import draw_closed_polyline
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.rng import draw_bits, draw_uniform, keys_for, rng_for, tag

REFERENCE_SIZE = 512  # the published pixel figures below are for a 512 px canvas
MEAN_VERTICES = 100.0
MAX_VERTICES = 200
MAX_CONTOURS = 200
MAX_AMPLITUDE = 4.0
MAX_RADIAL_STEP = 0.1
MAX_START_RADIUS = 100
CENTRE_JITTER = 400.0  # +- px at 512, halved as in the reference
NOISE_RANGE = 10_000.0  # noise is sampled at uniform positions in [0, NOISE_RANGE)
_CATEGORY_STREAM = tag("rcdb-category")
_INSTANCE_STREAM = tag("rcdb-instance")
_GRAY_COUNTER = 16  # per-instance draws 0..15 are the scalars below; contour j uses 16 + j


@dataclass(frozen=True)
class RcdbConfig(GeneratorConfig):
    image_size: int = 512
    num_categories: int = 1000
    images_per_category: int = 1000


@dataclass(frozen=True)
class RcdbCategory:
    """The published per-category parameters."""

    vertices: int
    contours: int
    amplitude: float
    radial_step: float


@numba.njit(cache=True)
def _render_batch(
    keys: np.ndarray,
    vertices: np.ndarray,
    contours: np.ndarray,
    amplitudes: np.ndarray,
    radial_steps: np.ndarray,
    out: np.ndarray,
) -> None:
    size = out.shape[1]
    scale = size / REFERENCE_SIZE
    out[:] = 255
    for b in range(keys.size):
        key = keys[b]
        count = vertices[b]
        amplitude = amplitudes[b] * scale
        step = radial_steps[b] * scale
        start_radius = np.floor(draw_uniform(key, np.uint64(0)) * (MAX_START_RADIUS + 1)) * scale
        oval_x = 1.0 + draw_uniform(key, np.uint64(1))
        oval_y = 1.0 + draw_uniform(key, np.uint64(2))
        jitter = 0.5 * CENTRE_JITTER * scale
        centre_x = size / 2.0 + (2.0 * draw_uniform(key, np.uint64(3)) - 1.0) * jitter
        centre_y = size / 2.0 + (2.0 * draw_uniform(key, np.uint64(4)) - 1.0) * jitter
        noise_key = draw_bits(key, np.uint64(5))
        position_key = draw_bits(key, np.uint64(6))
        cosines = np.empty(count)
        sines = np.empty(count)
        xs = np.empty(count)
        ys = np.empty(count)
        for k in range(count):
            angle = 2.0 * math.pi * k / count
            cosines[k] = math.cos(angle)
            sines[k] = math.sin(angle)
            xs[k] = centre_x + cosines[k] * start_radius * oval_x
            ys[k] = centre_y + sines[k] * start_radius * oval_y
        for j in range(contours[b]):
            gray = np.int64(draw_uniform(key, np.uint64(_GRAY_COUNTER + j)) * 256.0)
            for k in range(count):
                draw = np.uint64(2 * (j * count + k))
                at_x = draw_uniform(position_key, draw) * NOISE_RANGE
                at_y = draw_uniform(position_key, draw + np.uint64(1)) * NOISE_RANGE
                # Outward by c (1 - 2 noise) + w: mean c + w, as the reference's update.
                xs[k] += cosines[k] * (amplitude * (1.0 - 2.0 * perlin1d(noise_key, at_x)) + step)
                ys[k] += sines[k] * (amplitude * (1.0 - 2.0 * perlin1d(noise_key, at_y)) + step)
            draw_closed_polyline(out[b], xs, ys, gray)


@register_generator
class Rcdb(Generator):
    """Radial contour images: nested 1-px polygons pushed outward by 1-D Perlin noise.

    Per category l (from rng_for(seed, tag("rcdb-category"), l)): vertices v =
    int(Exponential(100)) redrawn until 2 < v <= 200, contours in [1, 200], noise amplitude
    c ~ U(0, 4), radial step w ~ U(0, 0.1). Per (label, instance), by counter-based draws: start
    radius r0 in [0, 100] px, oval rates ox, oy in [1, 2], centre (512 + U(-400, 400)) / 2 on
    each axis. The first polygon has vertex k at centre + r0 (ox cos t_k, oy sin t_k), t_k = 2 pi
    k / v. Each contour draws a gray level in [0, 255], then moves every vertex along its angle by
    c (1 - 2 n) + w on x and on y separately, n being the Perlin noise at a fresh uniform position
    in [0, 10000) (as the reference does with pnoise1), and draws the closed polygon. The moves
    accumulate, so contours grow outward by c + w px on average. Pixel figures are for 512 px and
    scale with image_size; the background is white (255).
    """

    name = "rcdb"
    config_class = RcdbConfig

    def category(self, label: int) -> RcdbCategory:
        """A category's parameters, public so runs can record them and tests check ranges."""
        rng = rng_for(self.settings.seed, _CATEGORY_STREAM, label)
        vertices = 0
        while not 2 < vertices <= MAX_VERTICES:
            vertices = int(rng.exponential(MEAN_VERTICES))
        contours = int(rng.integers(1, MAX_CONTOURS, endpoint=True))
        amplitude = float(rng.uniform(0.0, MAX_AMPLITUDE))
        radial_step = float(rng.uniform(0.0, MAX_RADIAL_STEP))
        return RcdbCategory(vertices, contours, amplitude, radial_step)

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        categories = {label: self.category(label) for label in set(labels.tolist())}
        chosen = [categories[label] for label in labels.tolist()]
        out = np.empty((labels.size, self.image_size, self.image_size), dtype=np.uint8)
        _render_batch(
            keys_for(self.settings.seed, _INSTANCE_STREAM, labels, instances),
            np.array([c.vertices for c in chosen], dtype=np.int64),
            np.array([c.contours for c in chosen], dtype=np.int64),
            np.array([c.amplitude for c in chosen], dtype=np.float64),
            np.array([c.radial_step for c in chosen], dtype=np.float64),
            out,
        )
        return out
