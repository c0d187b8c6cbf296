"""The chaos-game renderer: many IFS systems into one uint8 batch, in one numba call.

Single-threaded on purpose: Ray runs one renderer actor per core. Every random draw is
`draw_bits(key, counter)`, one 64-bit draw per point whose high 32 bits choose the map and
whose low 32 bits choose the patch mask, so an image is a function of its system, key, flip,
size and point count alone.
"""

from __future__ import annotations

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
def _chaos_points(maps, cumulative, n_maps, key, n_points, xs, ys, masks):
    """Fill xs, ys, masks; return False when the orbit leaves the finite floats."""
    x = 0.0
    y = 0.0
    low32 = np.uint64(0xFFFFFFFF)
    to_unit = 1.0 / 4294967296.0
    finite = True
    for step in range(n_points + WARMUP_POINTS):
        bits = draw_bits(key, np.uint64(step))
        u = float(bits >> np.uint64(32)) * to_unit
        index = 0
        for k in range(n_maps - 1):
            index += u >= cumulative[k]
        a = maps[index, 0]
        b = maps[index, 1]
        c = maps[index, 2]
        d = maps[index, 3]
        new_x = a * x + b * y + maps[index, 4]
        y = c * x + d * y + maps[index, 5]
        x = new_x
        point = step - WARMUP_POINTS
        if point >= 0:
            xs[point] = x
            ys[point] = y
            # A uniform non-empty 9-bit mask in 1..511 by multiply-shift of 32 random bits.
            masks[point] = np.uint16(1 + (((bits & low32) * np.uint64(511)) >> np.uint64(32)))
    for point in range(n_points):
        if not (np.isfinite(xs[point]) and np.isfinite(ys[point])):
            finite = False
            break
    return finite


@numba.njit(cache=True)
def _axis_transform(values, n_points, usable, margin):
    low = values[0]
    high = values[0]
    for point in range(1, n_points):
        v = values[point]
        low = min(low, v)
        high = max(high, v)
    span = high - low
    if not (span > 1e-300) or not np.isfinite(span):
        return low, 0.0, margin + usable / 2.0
    return low, usable / span, float(margin)


@numba.njit(cache=True)
def _rasterise(image, centres, xs, ys, masks, n_points, flip, patch, margin):
    """Points first OR their masks into a per-centre uint16 plane (one write per point), then
    nine whole-plane passes spread each mask bit to its cell: cheaper than nine scattered
    writes per point, and the passes vectorise."""
    size = image.shape[0]
    usable = size - 1 - 2 * margin
    x_low, x_scale, x_offset = _axis_transform(xs, n_points, usable, margin)
    y_low, y_scale, y_offset = _axis_transform(ys, n_points, usable, margin)
    # A flip mirrors integer pixel positions: p -> base + sign * p.
    col_base, col_sign = (size - 1, -1) if flip & 1 else (0, 1)
    row_base, row_sign = (size - 1, -1) if flip & 2 else (0, 1)
    gray = np.uint8(GRAY)
    if not patch:
        for point in range(n_points):
            col = col_base + col_sign * int(x_offset + (xs[point] - x_low) * x_scale)
            row = row_base + row_sign * int(y_offset + (ys[point] - y_low) * y_scale)
            image[row, col] = gray
        return
    centres[:] = 0
    for point in range(n_points):
        col = col_base + col_sign * int(x_offset + (xs[point] - x_low) * x_scale)
        row = row_base + row_sign * int(y_offset + (ys[point] - y_low) * y_scale)
        centres[row, col] |= masks[point]
    one = np.uint16(1)
    for cell in range(9):
        d_row = cell // 3 - 1
        d_col = cell % 3 - 1
        shift = np.uint16(cell)
        for row in range(1, size - 1):
            source = centres[row]
            target = image[row + d_row]
            for col in range(1, size - 1):
                target[col + d_col] |= np.uint8((source[col] >> shift) & one) * gray


@numba.njit(cache=True)
def render_kernel(maps, cumulative, n_maps, keys, flips, n_points, patch, margin, out):
    """maps [B, M, 6], cumulative [B, M], n_maps [B] (M = most maps), keys, flips -> out."""
    xs = np.empty(n_points, dtype=np.float64)
    ys = np.empty(n_points, dtype=np.float64)
    masks = np.empty(n_points, dtype=np.uint16)
    centres = np.empty(out.shape[1:], dtype=np.uint16)
    for image in range(out.shape[0]):
        out[image] = 0
        finite = _chaos_points(maps[image], cumulative[image], n_maps[image], keys[image],
                               n_points, xs, ys, masks)
        if finite:
            _rasterise(out[image], centres, xs, ys, masks, n_points, flips[image], patch, margin)


def render_systems(
    systems: Sequence[IFSSystem],
    keys: np.ndarray,
    flips: np.ndarray,
    *,
    image_size: int,
    n_points: int,
    patch: bool = True,
) -> np.ndarray:
    """uint8 [B, S, S]: system i drawn with key i and flip code i (0 none, 1 h, 2 v, 3 both).

    A system whose orbit overflows (FractalDB's uniform sampler makes some) gives a black
    image, which every filling check rejects.
    """
    count = len(systems)
    keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
    flips = np.asarray(flips, dtype=np.int64).reshape(-1)
    if keys.size != count or flips.size != count:
        raise ValueError(f"{count} systems need {count} keys and flips, got "
                         f"{keys.size} and {flips.size}")
    if flips.size and (flips.min() < 0 or flips.max() > FLIP_BOTH):
        raise ValueError(f"flip={flips.max()} is out of range: must be in [0, 3]")
    most = max((system.n_maps for system in systems), default=1)
    maps = np.zeros((count, most, 6))
    cumulative = np.ones((count, most))
    n_maps = np.empty(count, dtype=np.int64)
    for index, system in enumerate(systems):
        maps[index, : system.n_maps] = system.maps
        cumulative[index, : system.n_maps] = system.cumulative
        n_maps[index] = system.n_maps
    out = np.empty((count, image_size, image_size), dtype=np.uint8)
    render_kernel(maps, cumulative, n_maps, keys, flips, n_points, bool(patch),
                  margin_for(image_size), out)
    return out


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
