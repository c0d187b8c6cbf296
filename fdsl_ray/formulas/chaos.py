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
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from fdsl_ray.formulas.ifs import IFSSystem
from fdsl_ray.formulas.rng import draw_bits

GRAY = 127  # the references draw gray 127 on black
WARMUP_POINTS = 16  # first draws move the start point (the origin) onto the attractor
MARGIN_AT_512 = 6
BUCKET_BITS = 8  # the map choice of a 32-bit draw is looked up by its top 8 bits
TO_UNIT = 1.0 / 4294967296.0  # 32 random bits to a float in [0, 1)

FLIP_NONE, FLIP_HORIZONTAL, FLIP_VERTICAL, FLIP_BOTH = 0, 1, 2, 3


def margin_for(image_size: int) -> int:
    """6 px at 512, scaled with size; at least 1 so a 3x3 patch never leaves the image."""
    return max(1, round(MARGIN_AT_512 * image_size / 512))


@numba.njit(cache=True)
def _map_index(cumulative, n_maps, u):
    """The map whose cumulative interval holds u: the number of boundaries at or below u."""
    index = 0
    for k in range(n_maps - 1):
        index += u >= cumulative[k]
    return index


@numba.njit(cache=True)
def _fill_buckets(cumulative, n_maps, buckets):
    """buckets[j]: the map of every 32-bit draw whose top bits are j, or -1 where a boundary
    falls inside the bucket. The index never decreases with u, so equal ends mean one map.

    A table load instead of a scan over the boundaries: the scan was most of a step's cost
    with FractalDB's up to 8 maps, and only the few split buckets still scan.
    """
    shift = 32 - BUCKET_BITS
    for j in range(buckets.size):
        first = _map_index(cumulative, n_maps, float(j << shift) * TO_UNIT)
        last = _map_index(cumulative, n_maps, float(((j + 1) << shift) - 1) * TO_UNIT)
        buckets[j] = first if first == last else -1


@numba.njit(cache=True)
def _chaos_points(maps, cumulative, n_maps, buckets, key, n_points, xs, ys):
    """Fill xs, ys from the origin; (finite, x low, x high, y low, y high).

    One 64-bit draw serves two steps (32 bits each choose a map), halving the hashing. The
    bounds ride along in the loop, which waits on the x, y chain anyway. An orbit that leaves
    the finite floats never comes back (inf and NaN absorb every affine map), so the last
    point alone says whether all are finite.
    """
    _fill_buckets(cumulative, n_maps, buckets)
    shift = np.uint64(32 - BUCKET_BITS)
    low32 = np.uint64(0xFFFFFFFF)
    bits = np.uint64(0)
    x = y = x_low = x_high = y_low = y_high = 0.0
    for step in range(n_points + WARMUP_POINTS):
        if step & 1 == 0:
            bits = draw_bits(key, np.uint64(step >> 1))
            half = bits >> np.uint64(32)
        else:
            half = bits & low32
        index = buckets[half >> shift]
        if index < 0:
            index = _map_index(cumulative, n_maps, float(half) * TO_UNIT)
        new_x = maps[index, 0] * x + maps[index, 1] * y + maps[index, 4]
        y = maps[index, 2] * x + maps[index, 3] * y + maps[index, 5]
        x = new_x
        point = step - WARMUP_POINTS
        if point >= 0:
            xs[point] = x
            ys[point] = y
            if point == 0:
                x_low = x_high = x
                y_low = y_high = y
            x_low = min(x_low, x)
            x_high = max(x_high, x)
            y_low = min(y_low, y)
            y_high = max(y_high, y)
    return np.isfinite(x) and np.isfinite(y), x_low, x_high, y_low, y_high


@numba.njit(cache=True)
def _axis_transform(low, high, usable, margin):
    """(scale, offset) with pixel = offset + (v - low) * scale; a flat axis centres."""
    span = high - low
    if not (span > 0.0 and np.isfinite(usable / span)):
        return 0.0, margin + usable / 2.0
    # A hair above usable / span so rounding cannot pull the maximum off the last pixel.
    return usable / span * (1.0 + 2.0**-40), float(margin)


@numba.njit(inline="always", cache=True)
def _patch_mask(half_bits):
    """A uniform non-empty 9-bit mask in 1..511 from 32 random bits (multiply-shift)."""
    return 1 + ((half_bits * np.uint64(511)) >> np.uint64(32))


def _patch_rows() -> np.ndarray:
    """uint8 [512, 9]: the pasted patch of each mask, bit 8 top-left to bit 0 bottom-right."""
    bits = (np.arange(512)[:, None] >> np.arange(8, -1, -1)) & 1
    return (bits * GRAY).astype(np.uint8)


PATCHES = _patch_rows()


@intrinsic
def _copy3(typingctx, target, target_index, source, source_index):
    """target[t:t + 3] = source[s:s + 3] (uint8 arrays) as one unaligned 2-byte and one 1-byte
    move: a third of the stores of byte-wise copies, and never a byte past t + 2, which may
    hold a neighbouring patch's pixel."""
    def codegen(context, builder, signature, args):
        def byte_pointer(array_index, index_index):
            array = context.make_array(signature.args[array_index])(
                context, builder, args[array_index])
            index = context.cast(builder, args[index_index], signature.args[index_index],
                                 types.intp)
            return builder.gep(array.data, [index])

        to, start = byte_pointer(0, 1), byte_pointer(2, 3)
        pair = ir.IntType(16).as_pointer()
        builder.store(builder.load(builder.bitcast(start, pair), align=1),
                      builder.bitcast(to, pair), align=1)
        two = ir.Constant(ir.IntType(64), 2)
        builder.store(builder.load(builder.gep(start, [two])), builder.gep(to, [two]))
        return context.get_dummy_value()

    return types.none(target, target_index, source, source_index), codegen


@numba.njit(inline="always", cache=True)
def _paste(pixels, stride, patches, x, y, x_low, x_scale, x_offset, y_low, y_scale, y_offset,
           mask):
    """Paste the whole 3x3 patch of mask around (x, y), as the reference does (its empty
    cells overwrite with black); margin >= 1 keeps it inside the image."""
    col = np.uint64(x_offset + (x - x_low) * x_scale)
    row = np.uint64(y_offset + (y - y_low) * y_scale)
    corner = (row - np.uint64(1)) * stride + col - np.uint64(1)
    source = mask * np.uint64(9)
    _copy3(pixels, corner, patches, source)
    _copy3(pixels, corner + stride, patches, source + np.uint64(3))
    _copy3(pixels, corner + stride + stride, patches, source + np.uint64(6))


@numba.njit(cache=True)
def _rasterise(image, xs, ys, n_points, mask_key, patch, margin, x_low, x_high, y_low,
               y_high):
    """Draw the points, later over earlier. Unsigned flat indices spare numba's negative-index
    checks; taking points in pairs, one draw each, spares a branch per point."""
    size = image.shape[0]
    pixels = image.reshape(-1)
    rows = PATCHES.reshape(-1)
    usable = size - 1 - 2 * margin
    x_scale, x_offset = _axis_transform(x_low, x_high, usable, margin)
    y_scale, y_offset = _axis_transform(y_low, y_high, usable, margin)
    stride = np.uint64(size)
    if not patch:
        gray = np.uint8(GRAY)
        for point in range(n_points):
            col = np.uint64(x_offset + (xs[point] - x_low) * x_scale)
            row = np.uint64(y_offset + (ys[point] - y_low) * y_scale)
            pixels[row * stride + col] = gray
        return
    low32 = np.uint64(0xFFFFFFFF)
    high = np.uint64(32)
    for pair in range(n_points >> 1):
        bits = draw_bits(mask_key, np.uint64(pair))
        point = 2 * pair
        _paste(pixels, stride, rows, xs[point], ys[point], x_low, x_scale, x_offset, y_low,
               y_scale, y_offset, _patch_mask(bits & low32))
        _paste(pixels, stride, rows, xs[point + 1], ys[point + 1], x_low, x_scale, x_offset,
               y_low, y_scale, y_offset, _patch_mask(bits >> high))
    if n_points & 1:
        bits = draw_bits(mask_key, np.uint64(n_points >> 1))
        point = n_points - 1
        _paste(pixels, stride, rows, xs[point], ys[point], x_low, x_scale, x_offset, y_low,
               y_scale, y_offset, _patch_mask(bits & low32))


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
            for col in range(size):  # an explicit loop: the row slice assignment is 10x slower
                target[row, col] = source_row[col]


@numba.njit(cache=True)
def render_kernel(maps, cumulative, n_maps, point_keys, mask_keys, flips, n_points, patch,
                  margin, xs, ys, canvas, out):
    """maps [B, M, 6], cumulative [B, M], n_maps [B] (M = most maps), keys, flips -> out;
    xs, ys (>= n_points) and canvas (as one image) are scratch."""
    buckets = np.empty(1 << BUCKET_BITS, dtype=np.int64)
    for image in range(out.shape[0]):
        canvas[:] = 0
        finite, x_low, x_high, y_low, y_high = _chaos_points(
            maps[image], cumulative[image], n_maps[image], buckets, point_keys[image], n_points,
            xs, ys)
        if finite:
            _rasterise(canvas, xs, ys, n_points, mask_keys[image], patch, margin, x_low, x_high,
                       y_low, y_high)
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
