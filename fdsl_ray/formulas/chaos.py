"""The chaos-game renderer: many IFS systems into one uint8 batch, in one numba call.

Single-threaded on purpose: Ray runs one renderer actor per core. Two counter-based streams
per image, as in the reference (which fixes the point sequence with `np.random.seed(100)` and
draws only the patch masks afresh): a point key drives the map choices, so renders of one
system share their points, and a mask key drives the 3x3 patch masks, two per 64-bit draw.
An image is therefore a function of (system, point key, mask key, flip, size, points) alone.
No fastmath: plain IEEE double arithmetic gives the same bytes on every x86/ARM node, where
fused multiply-adds would differ between CPUs that have them and CPUs that do not.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numba
import numpy as np

from fdsl_ray.formulas.ifs import IFSSystem
from fdsl_ray.formulas.rng import draw_bits

GRAY = 127  # the references draw gray 127 on black
WARMUP_POINTS = 16  # first draws move the start point (the origin) onto the attractor
MARGIN_AT_512 = 6

FLIP_NONE, FLIP_HORIZONTAL, FLIP_VERTICAL, FLIP_BOTH = 0, 1, 2, 3


def margin_for(image_size: int) -> int:
    """6 px at 512, scaled with size; at least 1 so a 3x3 patch never leaves the image."""
    return max(1, round(MARGIN_AT_512 * image_size / 512))


@numba.njit(cache=True)
def _chaos_points(maps, cumulative, n_maps, key, n_points, xs, ys):
    """Fill xs, ys from the origin; False when the orbit leaves the finite floats.

    One 64-bit draw serves two steps (32 bits each choose a map), halving the hashing.
    """
    x = 0.0
    y = 0.0
    to_unit = 1.0 / 4294967296.0
    low32 = np.uint64(0xFFFFFFFF)
    bits = np.uint64(0)
    for step in range(n_points + WARMUP_POINTS):
        if step & 1 == 0:
            bits = draw_bits(key, np.uint64(step >> 1))
            u = float(bits >> np.uint64(32)) * to_unit
        else:
            u = float(bits & low32) * to_unit
        index = 0
        for k in range(n_maps - 1):
            index += u >= cumulative[k]
        new_x = maps[index, 0] * x + maps[index, 1] * y + maps[index, 4]
        y = maps[index, 2] * x + maps[index, 3] * y + maps[index, 5]
        x = new_x
        point = step - WARMUP_POINTS
        if point >= 0:
            xs[point] = x
            ys[point] = y
    total = 0.0
    for point in range(n_points):
        total += xs[point] * 0.0 + ys[point] * 0.0  # NaN as soon as one value is inf or NaN
    return total == 0.0


@numba.njit(cache=True)
def _axis_transform(values, n_points, usable, margin):
    """(low, scale, offset) with pixel = offset + (v - low) * scale; a flat axis centres."""
    low = values[0]
    high = values[0]
    for point in range(1, n_points):
        low = min(low, values[point])
        high = max(high, values[point])
    span = high - low
    if not (span > 0.0 and np.isfinite(usable / span)):
        return low, 0.0, margin + usable / 2.0
    # A hair above usable / span so rounding cannot pull the maximum off the last pixel.
    return low, usable / span * (1.0 + 2.0**-40), float(margin)


@numba.njit(inline="always", cache=True)
def _patch_mask(half_bits):
    """A uniform non-empty 9-bit mask in 1..511 from 32 random bits (multiply-shift)."""
    return 1 + ((half_bits * np.uint64(511)) >> np.uint64(32))


@numba.njit(cache=True)
def _rasterise(image, xs, ys, n_points, mask_key, patch, margin):
    """Unsigned flat indices spare numba's negative-index checks: ~20% faster patches."""
    size = image.shape[0]
    pixels = image.reshape(-1)
    usable = size - 1 - 2 * margin
    x_low, x_scale, x_offset = _axis_transform(xs, n_points, usable, margin)
    y_low, y_scale, y_offset = _axis_transform(ys, n_points, usable, margin)
    gray = np.uint8(GRAY)
    low32 = np.uint64(0xFFFFFFFF)
    one = np.uint64(1)
    two = np.uint64(2)
    stride = np.uint64(size)
    bits = np.uint64(0)
    for point in range(n_points):
        col = np.uint64(x_offset + (xs[point] - x_low) * x_scale)
        row = np.uint64(y_offset + (ys[point] - y_low) * y_scale)
        centre = row * stride + col
        if not patch:
            pixels[centre] = gray
            continue
        if point & 1 == 0:
            bits = draw_bits(mask_key, np.uint64(point >> 1))
            mask = _patch_mask(bits & low32)
        else:
            mask = _patch_mask(bits >> np.uint64(32))
        # The reference pastes the whole 3x3 patch (its empty cells overwrite with black),
        # mask bit 8 top-left to bit 0 bottom-right. margin >= 1 keeps it inside the image.
        corner = centre - stride - one
        pixels[corner] = np.uint8((mask >> np.uint64(8)) & one) * gray
        pixels[corner + one] = np.uint8((mask >> np.uint64(7)) & one) * gray
        pixels[corner + two] = np.uint8((mask >> np.uint64(6)) & one) * gray
        corner += stride
        pixels[corner] = np.uint8((mask >> np.uint64(5)) & one) * gray
        pixels[corner + one] = np.uint8((mask >> np.uint64(4)) & one) * gray
        pixels[corner + two] = np.uint8((mask >> np.uint64(3)) & one) * gray
        corner += stride
        pixels[corner] = np.uint8((mask >> np.uint64(2)) & one) * gray
        pixels[corner + one] = np.uint8((mask >> np.uint64(1)) & one) * gray
        pixels[corner + two] = np.uint8(mask & one) * gray


@numba.njit(cache=True)
def _copy_flipped(source, target, flip):
    """Flips mirror the finished image (patches included), as the reference saves them."""
    size = source.shape[0]
    for row in range(size):
        source_row = source[size - 1 - row] if flip & 2 else source[row]
        if flip & 1:
            for col in range(size):
                target[row, col] = source_row[size - 1 - col]
        else:
            target[row] = source_row


@numba.njit(cache=True)
def render_kernel(maps, cumulative, n_maps, point_keys, mask_keys, flips, n_points, patch,
                  margin, xs, ys, canvas, out):
    """maps [B, M, 6], cumulative [B, M], n_maps [B] (M = most maps), keys, flips -> out;
    xs, ys (>= n_points) and canvas (as one image) are scratch."""
    for image in range(out.shape[0]):
        canvas[:] = 0
        if _chaos_points(maps[image], cumulative[image], n_maps[image], point_keys[image],
                         n_points, xs, ys):
            _rasterise(canvas, xs, ys, n_points, mask_keys[image], patch, margin)
        _copy_flipped(canvas, out[image], flips[image])


def render_systems(
    systems: Sequence[IFSSystem],
    point_keys: np.ndarray,
    mask_keys: np.ndarray,
    flips: np.ndarray,
    *,
    image_size: int,
    n_points: int,
    patch: bool = True,
) -> np.ndarray:
    """uint8 [B, S, S]: system i drawn with its keys and flip code (0 none, 1 h, 2 v, 3 both).

    A system whose orbit overflows (FractalDB's uniform sampler makes some) gives a black
    image, which every filling check rejects.
    """
    count = len(systems)
    point_keys = np.asarray(point_keys, dtype=np.uint64).reshape(-1)
    mask_keys = np.asarray(mask_keys, dtype=np.uint64).reshape(-1)
    flips = np.asarray(flips, dtype=np.int64).reshape(-1)
    if not point_keys.size == mask_keys.size == flips.size == count:
        raise ValueError(f"{count} systems need {count} point keys, mask keys and flips, got "
                         f"{point_keys.size}, {mask_keys.size} and {flips.size}")
    if flips.size and (flips.min() < 0 or flips.max() > FLIP_BOTH):
        bad = flips[(flips < 0) | (flips > FLIP_BOTH)][0]
        raise ValueError(f"flip={bad} is out of range: must be in [0, 3]")
    most = max((system.n_maps for system in systems), default=1)
    maps = np.zeros((count, most, 6))
    cumulative = np.ones((count, most))
    n_maps = np.empty(count, dtype=np.int64)
    for index, system in enumerate(systems):
        maps[index, : system.n_maps] = system.maps
        cumulative[index, : system.n_maps] = system.cumulative
        n_maps[index] = system.n_maps
    out = np.empty((count, image_size, image_size), dtype=np.uint8)
    xs, ys, canvas = _scratch(n_points, image_size)
    render_kernel(maps, cumulative, n_maps, point_keys, mask_keys, flips, n_points, bool(patch),
                  margin_for(image_size), xs, ys, canvas, out)
    return out


_SCRATCH = threading.local()


def _scratch(n_points: int, image_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread buffers kept between calls: fresh 1.6 MB arrays per call cost page faults
    worth a third of a one-image render (category searches render one image at a time)."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None or buffers[0].size < n_points or buffers[2].shape[0] != image_size:
        points = max(n_points, 0 if buffers is None else buffers[0].size)
        buffers = (np.empty(points), np.empty(points),
                   np.empty((image_size, image_size), dtype=np.uint8))
        _SCRATCH.buffers = buffers
    return buffers


@numba.njit(cache=True)
def _filling_kernel(images, rates):
    pixels = images.shape[1] * images.shape[2]
    for index in range(images.shape[0]):
        filled = 0
        for value in images[index].reshape(-1):
            filled += value != 0
        rates[index] = filled / pixels


def filling_rates(images: np.ndarray) -> np.ndarray:
    """Fraction of non-zero pixels per image of a uint8 [B, H, W] batch."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 3:
        raise ValueError(f"images has shape {images.shape}: must be [B, H, W]")
    rates = np.empty(images.shape[0], dtype=np.float64)
    _filling_kernel(images, rates)
    return rates
