"""RCDB: radial contours (Kataoka et al., CVPR 2022), drawn in one numba kernel per batch.

A category fixes the shape statistics (vertex count, contour count, noise amplitude, noise
step); an instance fixes where and how big (start radius, oval rates, centre) and its own
noise curve and gray levels. `n_points` is unused: contours are drawn as lines, not points.
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
MAX_NOISE_STEP = 0.1
MAX_START_RADIUS = 100
CENTRE_JITTER = 400.0  # +- px at 512, halved as in the reference
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
    """The published per-category parameters (noise_step is the paper's radial step w)."""

    vertices: int
    contours: int
    amplitude: float
    noise_step: float


@numba.njit(cache=True)
def _render_batch(
    keys: np.ndarray,
    vertices: np.ndarray,
    contours: np.ndarray,
    amplitudes: np.ndarray,
    noise_steps: np.ndarray,
    out: np.ndarray,
) -> None:
    size = out.shape[1]
    scale = size / REFERENCE_SIZE
    out[:] = 255
    for b in range(keys.size):
        key = keys[b]
        count = vertices[b]
        start_radius = np.floor(draw_uniform(key, np.uint64(0)) * (MAX_START_RADIUS + 1))
        oval_x = 1.0 + draw_uniform(key, np.uint64(1))
        oval_y = 1.0 + draw_uniform(key, np.uint64(2))
        jitter = 0.5 * CENTRE_JITTER * scale
        centre_x = (size - 1) / 2.0 + (2.0 * draw_uniform(key, np.uint64(3)) - 1.0) * jitter
        centre_y = (size - 1) / 2.0 + (2.0 * draw_uniform(key, np.uint64(4)) - 1.0) * jitter
        noise_at = draw_uniform(key, np.uint64(5)) * 1024.0
        noise_key = draw_bits(key, np.uint64(6))
        radius = np.full(count, start_radius * scale)
        cos_x = np.empty(count)
        sin_y = np.empty(count)
        for k in range(count):
            angle = 2.0 * math.pi * k / count
            cos_x[k] = math.cos(angle) * oval_x
            sin_y[k] = math.sin(angle) * oval_y
        xs = np.empty(count)
        ys = np.empty(count)
        for j in range(contours[b]):
            gray = np.int64(draw_uniform(key, np.uint64(_GRAY_COUNTER + j)) * 255.0)
            for k in range(count):
                noise_at += noise_steps[b]
                # (noise + 1) keeps every move outward; its mean is the amplitude c.
                radius[k] += amplitudes[b] * (perlin1d(noise_key, noise_at) + 1.0) * scale
                xs[k] = centre_x + radius[k] * cos_x[k]
                ys[k] = centre_y + radius[k] * sin_y[k]
            draw_closed_polyline(out[b], xs, ys, gray)


@register_generator
class Rcdb(Generator):
    """Radial contour images: nested 1-px polygons pushed outward by 1-D Perlin noise.

    Per category l (from rng_for(seed, tag("rcdb-category"), l)): vertices v =
    int(Exponential(100)) redrawn until 2 < v <= 200, contours in [1, 200], noise amplitude
    c ~ U(0, 4), noise step w ~ U(0, 0.1). Per (label, instance), by counter-based draws:
    start radius in [0, 100] px, oval rates in [1, 2], centre within +-200 px, a noise phase and
    one gray level in [0, 254] per contour. Contour j moves vertex k outward by
    c * (perlin(phase + w * (j * v + k + 1)) + 1) px: one noise curve walked vertex by vertex
    and contour by contour, so w sets how wiggly the contours are. Pixel figures are for 512 px
    and scale with image_size. Background is white (255).
    """

    name = "rcdb"
    config_class = RcdbConfig

    def category(self, label: int) -> RcdbCategory:
        rng = rng_for(self.settings.seed, _CATEGORY_STREAM, label)
        vertices = 0
        while not 2 < vertices <= MAX_VERTICES:
            vertices = int(rng.exponential(MEAN_VERTICES))
        contours = int(rng.integers(1, MAX_CONTOURS, endpoint=True))
        amplitude = float(rng.uniform(0.0, MAX_AMPLITUDE))
        noise_step = float(rng.uniform(0.0, MAX_NOISE_STEP))
        return RcdbCategory(vertices, contours, amplitude, noise_step)

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        categories = {label: self.category(label) for label in set(labels.tolist())}
        chosen = [categories[label] for label in labels.tolist()]
        out = np.empty((labels.size, self.image_size, self.image_size), dtype=np.uint8)
        _render_batch(
            keys_for(self.settings.seed, _INSTANCE_STREAM, labels, instances),
            np.array([c.vertices for c in chosen], dtype=np.int64),
            np.array([c.contours for c in chosen], dtype=np.int64),
            np.array([c.amplitude for c in chosen], dtype=np.float64),
            np.array([c.noise_step for c in chosen], dtype=np.float64),
            out,
        )
        return out
