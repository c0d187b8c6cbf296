"""RCDB: radial contours (Kataoka et al., CVPR 2022), drawn in one numba kernel per batch.

What the reference does, masora1030/CVPR2022-Pretrained-ViT-PyTorch `rcdb_render/make_rcdb.py`
(commit 7500c4d; README: noise 1.2.2, PIL 9.0.0, Python 3.7), and what this module matches:

- Per category: vertices v = int(expovariate(1 / 100)) redrawn until 2 < v <= 200 (:55-58),
  contours randint(1, 200) (:60), noise amplitude c = U(0, 4) (:61), radial step w = U(0, 0.1)
  (:62).
- Per instance: start radius randint(0, 100) (:63, :128), oval rates U(1, 2) (:64-65, :126-127),
  centre (512 + randint(-400, 400)) / 2 on each axis (:66-67, :129-130). The first instance of a
  category takes these from the category's draws and each later one redraws them, so they are
  independent per instance, as here.
- Canvas: RGB 512 x 512, white (:84); the three channels are always equal, so it is a gray image.
- Vertex k starts at (cos(k a) r0 ox, sin(k a) r0 oy), a = 2 pi / v (:86-90). Each contour
  draws its gray level randint(0, 512 / 2) (:96; 257 values, PIL clips 256 to 255: a white
  contour), then v noise positions U(0, 10000) for x and v for y (:100-106), each turned into
  n = 2 c pnoise1(u) - c, and moves vertex k by -cos(k a) (n_x - w) on x and -sin(k a) (n_y - w)
  on y (:109-110), all vertices of the contour before any is drawn; the moves accumulate across
  contours. The closed polygon is drawn edge by edge with `ImageDraw.line(width=1)` at the
  vertices plus the centre (:115-116); later contours overwrite earlier ones.

Here every draw is a counter-based one of the rng module instead of Python's Mersenne Twister
stream, with the same distributions; the arithmetic follows the reference's order of operations,
`perlin.pnoise1` is the `noise` package's function bit for bit, and `raster.draw_line` sets
PIL's pixels. The reference's pixel figures (radius, centre jitter, c, w) are for 512 px and
scale with render_size; lines stay 1 px, so render_size must be at least MIN_RENDER_SIZE. The
gray range stays 257 values at any render_size (the reference ties it to its canvas size, a
quirk that matters only away from 512). `n_points` is unused: contours are lines.
tests/formulas/test_rcdb.py replays the reference's steps in Python, fed with our draws and
drawn by PIL, and requires the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.perlin import pnoise1
from fdsl_ray.formulas.raster import check_line_render_size, draw_closed_polyline
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.resize import area_resize_into, area_taps, resize_scratch
from fdsl_ray.formulas.rng import draw_bits, draw_uniform, keys_for, rng_for, tag

REFERENCE_SIZE = 512  # the reference's canvas; its pixel figures below are for it
# One 1-px line at render_size R covers 512 / R reference pixels; below 256 that exceeds the
# mean contour spacing (c + w, about 2 px), and neighbouring contours fuse into solid bands.
MIN_RENDER_SIZE = 256
MEAN_VERTICES = 100.0
MAX_VERTICES = 200
MAX_CONTOURS = 200
MAX_AMPLITUDE = 4.0
MAX_RADIAL_STEP = 0.1
MAX_START_RADIUS = 100
MAX_OVAL_RATE = 2.0
CENTRE_JITTER = 400  # randint(-400, 400) px at 512, then halved with the canvas size
GRAY_LEVELS = 257  # randint(0, 256): 256 is clipped to 255
NOISE_RANGE = 10_000.0  # noise positions are U(0, 10000)
_CATEGORY_STREAM = tag("rcdb-category")
_INSTANCE_STREAM = tag("rcdb-instance")
_POSITION_COUNTER = 5  # per-instance draws 0..4 are the scalars below; 5 keys the positions
_GRAY_COUNTER = 16  # contour j's gray level is the instance's draw 16 + j


@dataclass(frozen=True)
class RcdbConfig(GeneratorConfig):
    image_size: int = 512
    num_categories: int = 1000
    images_per_category: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        check_line_render_size("rcdb", "contours", self.render_size, self.image_size,
                               MIN_RENDER_SIZE, REFERENCE_SIZE)


@dataclass(frozen=True)
class RcdbCategory:
    """The published per-category parameters."""

    vertices: int
    contours: int
    amplitude: float
    radial_step: float


@dataclass(frozen=True)
class RcdbInstance:
    """An instance's placement, in px of the render_size canvas."""

    start_radius: float
    oval_x: float
    oval_y: float
    centre_x: float
    centre_y: float


@numba.njit(cache=True)
def _uniform_int(key: np.uint64, counter: int, count: int) -> int:
    """randint over `count` consecutive integers from 0, by one keyed draw."""
    return np.int64(draw_uniform(key, np.uint64(counter)) * count)


@numba.njit(cache=True)
def _instance_parameters(key: np.uint64, size: int) -> tuple[float, float, float, float, float]:
    """(start radius, oval x, oval y, centre x, centre y) in px of a size x size canvas."""
    scale = size / REFERENCE_SIZE
    start_radius = _uniform_int(key, 0, MAX_START_RADIUS + 1) * scale
    oval_x = 1.0 + draw_uniform(key, np.uint64(1)) * (MAX_OVAL_RATE - 1.0)
    oval_y = 1.0 + draw_uniform(key, np.uint64(2)) * (MAX_OVAL_RATE - 1.0)
    centre_y = (size + (_uniform_int(key, 3, 2 * CENTRE_JITTER + 1) - CENTRE_JITTER) * scale) / 2
    centre_x = (size + (_uniform_int(key, 4, 2 * CENTRE_JITTER + 1) - CENTRE_JITTER) * scale) / 2
    return start_radius, oval_x, oval_y, centre_x, centre_y


@numba.njit(cache=True)
def _draw_instance(
    canvas: np.ndarray, key: np.uint64, count: int, contours: int, amplitude: float, step: float
) -> None:
    """One image on a white canvas, in the reference's order of operations (module docstring)."""
    size = canvas.shape[0]
    amplitude *= size / REFERENCE_SIZE
    step *= size / REFERENCE_SIZE
    start_radius, oval_x, oval_y, centre_x, centre_y = _instance_parameters(key, size)
    position_key = draw_bits(key, np.uint64(_POSITION_COUNTER))
    angle = (math.pi * 2) / count
    cosines = np.empty(count)
    sines = np.empty(count)
    xs = np.empty(count)  # relative to the centre, as the reference keeps them
    ys = np.empty(count)
    at_x = np.empty(count)
    at_y = np.empty(count)
    for k in range(count):
        cosines[k] = math.cos(angle * k)
        sines[k] = math.sin(angle * k)
        xs[k] = cosines[k] * start_radius * oval_x
        ys[k] = sines[k] * start_radius * oval_y
    canvas[:] = 255
    for j in range(contours):
        gray = min(_uniform_int(key, _GRAY_COUNTER + j, GRAY_LEVELS), 255)
        for k in range(count):
            draw = np.uint64(2 * (j * count + k))
            noise_x = pnoise1(draw_uniform(position_key, draw) * NOISE_RANGE)
            noise_y = pnoise1(draw_uniform(position_key, draw + np.uint64(1)) * NOISE_RANGE)
            xs[k] -= cosines[k] * ((noise_x * amplitude * 2 - amplitude) - step)
            ys[k] -= sines[k] * ((noise_y * amplitude * 2 - amplitude) - step)
            at_x[k] = xs[k] + centre_x
            at_y[k] = ys[k] + centre_y
        draw_closed_polyline(canvas, at_x, at_y, gray)


@numba.njit(cache=True)
def _render_batch(
    keys: np.ndarray,
    vertices: np.ndarray,
    contours: np.ndarray,
    amplitudes: np.ndarray,
    radial_steps: np.ndarray,
    canvas: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
) -> None:
    """Draw each image at the canvas's size, then area-resize it into out (or draw in place)."""
    resize = canvas.shape[0] != out.shape[1]
    for b in range(keys.size):
        target = canvas if resize else out[b]
        _draw_instance(target, keys[b], vertices[b], contours[b], amplitudes[b], radial_steps[b])
        if resize:
            area_resize_into(canvas, out[b], starts, counts, weights, rows)


@register_generator
class Rcdb(Generator):
    """Radial contour images: nested 1-px polygons pushed outward by 1-D Perlin noise.

    Per category l (from rng_for(seed, tag("rcdb-category"), l)): vertices v =
    int(Exponential(100)) redrawn until 2 < v <= 200, contours in [1, 200], noise amplitude
    c ~ U(0, 4), radial step w ~ U(0, 0.1). Per (label, instance), by counter-based draws: start
    radius r0 in [0, 100] px, oval rates ox, oy in [1, 2], centre (512 + randint(-400, 400)) / 2
    on each axis. Each contour takes a gray level min(randint(0, 256), 255) and moves every vertex
    along its angle by c (1 - 2 pnoise1(u)) + w on x and on y separately (u ~ U(0, 10000) fresh
    per vertex and axis), cumulatively, then is drawn as PIL draws a closed 1-px polygon on white.
    Pixel figures are for 512 px and scale with render_size; the area resize gives image_size.
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

    def instance(self, label: int, instance: int) -> RcdbInstance:
        """An instance's placement, public so tests check its ranges."""
        ids = np.array([label]), np.array([instance])
        keys = keys_for(self.settings.seed, _INSTANCE_STREAM, *ids)
        return RcdbInstance(*_instance_parameters(keys[0], self.settings.render_size))

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        categories = {label: self.category(label) for label in set(labels.tolist())}
        chosen = [categories[label] for label in labels.tolist()]
        source, target = self.settings.render_size, self.image_size
        starts, counts, weights = area_taps(source, target)
        out = np.empty((labels.size, target, target), dtype=np.uint8)
        _render_batch(
            keys_for(self.settings.seed, _INSTANCE_STREAM, labels, instances),
            np.array([c.vertices for c in chosen], dtype=np.int64),
            np.array([c.contours for c in chosen], dtype=np.int64),
            np.array([c.amplitude for c in chosen], dtype=np.float64),
            np.array([c.radial_step for c in chosen], dtype=np.float64),
            np.empty((source, source), dtype=np.uint8),
            starts,
            counts,
            weights,
            resize_scratch(source, target),
            out,
        )
        return out
