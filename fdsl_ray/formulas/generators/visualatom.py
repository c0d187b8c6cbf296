"""VisualAtom: orbits of sinusoid-and-noise waves (Takashima et al., CVPR 2023), one numba kernel.

What the reference does, masora1030/CVPR2023-FDSL-on-VisualAtom at de80c69,
`visual_atomic_renderer/render_VisualAtom.py` (":n" below; README: noise 1.2.2, PIL 9.0.0) with
the release arguments of `make_VisualAtom.sh:11-16` (which differ from the argparse defaults
:19-31 in perlin_min 0, line_width 0.1, radius_min 10), and what this module matches:

- Per category (:61-75): vertices v = randint(200, 1000), orbits (lines) randint(1, 200),
  noise coefficient c = U(perlin_min, perlin_min + 4) = U(0, 4), line width w = U(0, 0.1),
  start radius r0 = randint(10, 10 + 50), frequency n1 = randint(0, 20), then n2 = randint(0, 20)
  redrawn until n2 != n1, except that n1 = 0 accepts the first n2 (:67-72: so n1 = n2 = 0 happens,
  1 in 441), oval rates U(1, 2) on x and on y. Radius and oval rates belong to the category.
- Per instance: the centre ((512 + randint(-512, 512)) / 2 on y, then on x, :76-77, :127-128);
  the first instance takes the category's draws and each later one redraws them, so the centre
  is independent per instance, as here.
- Canvas RGB 512 x 512, black (:85); the channels are always equal, so it is a gray image.
- Vertex k starts at (cos(k a) r0 ox + cx, sin(k a) r0 oy + cy), a = 2 pi / v (:87-91). Each
  orbit draws its gray randint(0, 255) (:97), then v noise positions u ~ U(0, 10000) for x and
  v for y (:101-107), each giving n = pnoise1(u) c - c - 0.5 sin(k a n1) - 0.5 sin(k a n2),
  and moves vertex k by -cos(k a) (n_x - w) on x and -sin(k a) (n_y - w) on y (:109-111); the
  moves accumulate across orbits. The closed polygon is drawn edge by edge with
  `ImageDraw.line(width=1)` (:113-117); later orbits overwrite earlier ones.

Here every draw is a counter-based one of the rng module instead of Python's Mersenne Twister
stream, with the same distributions; the arithmetic follows the reference's order of operations,
`perlin.pnoise1` is the `noise` package's function bit for bit and `raster.draw_line` sets PIL's
pixels. The config fields are the reference's argparse knobs at the release values. Pixel
figures (r0, centre jitter, c, w, the waves' 0.5) are for 512 px and scale with render_size;
lines stay 1 px, so render_size must be at least MIN_RENDER_SIZE. `n_points` is unused.
tests/formulas/test_visualatom.py replays the reference's steps in Python, fed with our draws and
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
from fdsl_ray.validation import check_float, check_int

REFERENCE_SIZE = 512  # the reference's canvas; its pixel figures are for it
# As for RCDB: below 256 px a 1 px line covers more than the mean orbit spacing (about c).
MIN_RENDER_SIZE = 256
NOISE_SPAN = 4.0  # c ~ U(perlin_min, perlin_min + 4) (:63)
RADIUS_SPAN = 50  # r0 = randint(radius_min, radius_min + 50) (:65)
MAX_OVAL_RATE = 2.0  # --oval_rate 2 (make_VisualAtom.sh:14)
CENTRE_JITTER = 512  # --start_pos 512: randint(-512, 512) px, then halved with the canvas size
WAVE_AMPLITUDE = 0.5  # each sinusoid's amplitude in px (:103, :107)
GRAY_LEVELS = 256  # randint(0, 255) (:97)
NOISE_RANGE = 10_000.0  # noise positions are U(0, 10000) (:102, :106)
_CATEGORY_STREAM = tag("visualatom-category")
_INSTANCE_STREAM = tag("visualatom-instance")
_POSITION_COUNTER = 2  # per-instance draws 0, 1 are the centre; 2 keys the noise positions
_GRAY_COUNTER = 16  # orbit j's gray level is the instance's draw 16 + j


@dataclass(frozen=True)
class VisualAtomConfig(GeneratorConfig):
    """The reference's category knobs (argparse names in brackets), at make_VisualAtom.sh's
    values: vertices in [min_vertices, max_vertices] [vertex_num_*], orbits in [1, max_orbits]
    [line_num_max], c ~ U(min_noise, min_noise + 4) [perlin_min], w ~ U(0, max_line_width)
    [line_width], r0 in [min_radius, min_radius + 50] [radius_min], frequencies in
    [0, max_frequency] [nami_*_max]."""

    image_size: int = 512
    num_categories: int = 1000
    images_per_category: int = 1000
    min_vertices: int = 200
    max_vertices: int = 1000
    max_orbits: int = 200
    min_noise: float = 0.0
    max_line_width: float = 0.1
    min_radius: int = 10
    max_frequency: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_line_render_size("visualatom", "orbits", self.render_size, self.image_size,
                               MIN_RENDER_SIZE, REFERENCE_SIZE)
        check_int("min_vertices", self.min_vertices, 3, 100_000)
        check_int("max_vertices", self.max_vertices, self.min_vertices, 100_000)
        check_int("max_orbits", self.max_orbits, 1, 10_000)
        check_float("min_noise", self.min_noise, 0.0, 100.0)
        check_float("max_line_width", self.max_line_width, 0.0, 100.0)
        check_int("min_radius", self.min_radius, 0, 10_000)
        check_int("max_frequency", self.max_frequency, 0, 10_000)


@dataclass(frozen=True)
class VisualAtomCategory:
    """The published per-category parameters (radius in px at 512)."""

    vertices: int
    orbits: int
    noise_coefficient: float
    line_width: float
    start_radius: int
    frequency_1: int
    frequency_2: int
    oval_x: float
    oval_y: float


@numba.njit(cache=True)
def _centre(key: np.uint64, size: int) -> tuple[float, float]:
    """(x, y) of an instance's centre in px of a size x size canvas: y draws first (:76-77)."""
    scale = size / REFERENCE_SIZE
    span = 2 * CENTRE_JITTER + 1
    centre_y = (size + (np.int64(draw_uniform(key, np.uint64(0)) * span) - CENTRE_JITTER)
                * scale) / 2
    centre_x = (size + (np.int64(draw_uniform(key, np.uint64(1)) * span) - CENTRE_JITTER)
                * scale) / 2
    return centre_x, centre_y


@numba.njit(cache=True)
def _draw_instance(canvas: np.ndarray, key: np.uint64, parameters: np.ndarray,
                   integers: np.ndarray) -> None:
    """One image on a black canvas, in the reference's order of operations (module docstring).

    integers: vertices, orbits, n1, n2; parameters: c, w, r0, ox, oy (px at 512)."""
    size = canvas.shape[0]
    scale = size / REFERENCE_SIZE
    count, orbits, frequency_1, frequency_2 = integers[0], integers[1], integers[2], integers[3]
    coefficient = parameters[0] * scale
    width = parameters[1] * scale
    radius = parameters[2] * scale
    wave = WAVE_AMPLITUDE * scale
    centre_x, centre_y = _centre(key, size)
    position_key = draw_bits(key, np.uint64(_POSITION_COUNTER))
    angle = (math.pi * 2) / count
    cosines = np.empty(count)
    sines = np.empty(count)
    waves_1 = np.empty(count)
    waves_2 = np.empty(count)
    xs = np.empty(count)
    ys = np.empty(count)
    for k in range(count):
        cosines[k] = math.cos(angle * k)
        sines[k] = math.sin(angle * k)
        waves_1[k] = wave * math.sin(angle * k * frequency_1)
        waves_2[k] = wave * math.sin(angle * k * frequency_2)
        xs[k] = cosines[k] * radius * parameters[3] + centre_x
        ys[k] = sines[k] * radius * parameters[4] + centre_y
    canvas[:] = 0
    for j in range(orbits):
        gray = np.int64(draw_uniform(key, np.uint64(_GRAY_COUNTER + j)) * GRAY_LEVELS)
        for k in range(count):
            draw = np.uint64(2 * (j * count + k))
            noise_x = pnoise1(draw_uniform(position_key, draw) * NOISE_RANGE)
            noise_y = pnoise1(draw_uniform(position_key, draw + np.uint64(1)) * NOISE_RANGE)
            shift_x = noise_x * coefficient - coefficient - waves_1[k] - waves_2[k]
            shift_y = noise_y * coefficient - coefficient - waves_1[k] - waves_2[k]
            xs[k] -= cosines[k] * (shift_x - width)
            ys[k] -= sines[k] * (shift_y - width)
        draw_closed_polyline(canvas, xs, ys, gray)


@numba.njit(cache=True)
def _render_batch(
    keys: np.ndarray,
    parameters: np.ndarray,
    integers: np.ndarray,
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
        _draw_instance(target, keys[b], parameters[b], integers[b])
        if resize:
            area_resize_into(canvas, out[b], starts, counts, weights, rows)


@register_generator
class VisualAtom(Generator):
    """Images of 1-px orbits, each a closed polygon whose vertices move outward by two
    sinusoidal waves of frequencies n1 and n2 and by 1-D Perlin noise.

    Per category l (from rng_for(seed, tag("visualatom-category"), l)): vertices in [200, 1000],
    orbits in [1, 200], noise coefficient c ~ U(0, 4), line width w ~ U(0, 0.1), start radius
    in [10, 60] px, n1 in [0, 20] and n2 != n1 in [0, 20] (any n2 when n1 = 0), oval rates in
    [1, 2]. Per (label, instance), by counter-based draws: the centre (512 + randint(-512, 512))
    / 2 on each axis, a gray level randint(0, 255) per orbit and the noise positions. Pixel
    figures are for 512 px and scale with render_size; the area resize gives image_size.
    """

    name = "visualatom"
    config_class = VisualAtomConfig
    settings: VisualAtomConfig

    def category(self, label: int) -> VisualAtomCategory:
        """A category's parameters, public so runs can record them and tests check ranges."""
        s = self.settings
        rng = rng_for(s.seed, _CATEGORY_STREAM, label)
        vertices = int(rng.integers(s.min_vertices, s.max_vertices, endpoint=True))
        orbits = int(rng.integers(1, s.max_orbits, endpoint=True))
        coefficient = float(rng.uniform(s.min_noise, s.min_noise + NOISE_SPAN))
        line_width = float(rng.uniform(0.0, s.max_line_width))
        radius = int(rng.integers(s.min_radius, s.min_radius + RADIUS_SPAN, endpoint=True))
        frequency_1 = int(rng.integers(0, s.max_frequency, endpoint=True))
        frequency_2 = int(rng.integers(0, s.max_frequency, endpoint=True))
        while frequency_2 == frequency_1 and frequency_1 != 0:
            frequency_2 = int(rng.integers(0, s.max_frequency, endpoint=True))
        oval_x = float(rng.uniform(1.0, MAX_OVAL_RATE))
        oval_y = float(rng.uniform(1.0, MAX_OVAL_RATE))
        return VisualAtomCategory(vertices, orbits, coefficient, line_width, radius,
                                  frequency_1, frequency_2, oval_x, oval_y)

    def centre(self, label: int, instance: int) -> tuple[float, float]:
        """An instance's centre (x, y) in px of the render_size canvas."""
        keys = keys_for(self.settings.seed, _INSTANCE_STREAM, np.array([label]),
                        np.array([instance]))
        return _centre(keys[0], self.settings.render_size)

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        categories = {label: self.category(label) for label in set(labels.tolist())}
        chosen = [categories[label] for label in labels.tolist()]
        source, target = self.settings.render_size, self.image_size
        starts, counts, weights = area_taps(source, target)
        out = np.empty((labels.size, target, target), dtype=np.uint8)
        _render_batch(
            keys_for(self.settings.seed, _INSTANCE_STREAM, labels, instances),
            np.array([(c.noise_coefficient, c.line_width, c.start_radius, c.oval_x, c.oval_y)
                      for c in chosen], dtype=np.float64).reshape(-1, 5),
            np.array([(c.vertices, c.orbits, c.frequency_1, c.frequency_2) for c in chosen],
                     dtype=np.int64).reshape(-1, 4),
            np.empty((source, source), dtype=np.uint8),
            starts,
            counts,
            weights,
            resize_scratch(source, target),
            out,
        )
        return out
