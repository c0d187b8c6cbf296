"""The chaos-game renderer: many IFS systems into one uint8 batch, in one numba call.

It reproduces the references' renderer (SUPER-TADORY/1p-frac `1p-frac_generater/src/
ifs_function.py`, the same code as FractalDB's `fractal_renderer/ifs_function.py`):
- the orbit starts at the origin, which is the first of the `n_points` points
  (ifs_function.py:22-23, `calculate` draws n_points - 1 steps, l. 54-70);
- map i is the first whose cumulative probability is >= u (l. 62-63);
- `map_sequence="shared"`: every system reads the same u sequence, the first n_points - 1
  draws of `np.random.seed(100); np.random.random(n_points)` (l. 55-57), so categories differ
  only by their parameters; "per-category" draws u from a counter-based key per image
  instead (this project's earlier default);
- framing: every point, the start point included, is min-max scaled into
  [PAD, render_size - PAD] and truncated, pixel = uint16((v - min) / (max - min) *
  (render_size - 2 PAD) + PAD) (`__rescale`, l. 72-96); `warmup_points` > 0 leaves the first
  points out of the frame and the drawing instead (the earlier default, 16);
- point mode draws gray 127 at the pixel (`draw_point`); patch mode pastes a 3x3 patch whose
  cells follow a random mask in 1..511 (bit 8 top-left) with its top-left corner at
  (pixel + 1) (`draw_patch`, l. 133-141: `image.paste(patch, (x + 1, y + 1))`), black cells
  included, later points over earlier;
- the canvas is saved flipped top to bottom and then transposed by trans_type 0..3 (none,
  top-bottom, left-right, both; l. 98-111, 124-127, 143-146), so flip code t here gives the
  reference's `_flip{t}` image.
The canvas is drawn at render_size and resized to image_size by the area filter
(fdsl_ray.formulas.resize); the filling rate is measured on the canvas, as the references
measure it on their 512 px images. Single-threaded on purpose: Ray runs one renderer actor per
core. No fastmath: plain IEEE double arithmetic gives the same bytes on every node.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from fdsl_ray.formulas.ifs import IFSSystem
from fdsl_ray.formulas.resize import area_resize_into, area_taps, resize_scratch
from fdsl_ray.formulas.rng import draw_bits, splitmix64
from fdsl_ray.validation import check_choice, check_int

GRAY = 127  # the references draw gray 127 on black
PAD = 6  # px on each side at every size: the references' pad_size_x/y default
PATCH_REACH = 3  # a patch covers pixel + 1 .. pixel + 3
MIN_RENDER_SIZE = 2 * PAD + 4
REFERENCE_SEQUENCE_SEED = 100
MAP_SEQUENCES = ("shared", "per-category")
RASTER_CHUNK = 1024  # points per rasterising pass: their offsets and masks stay in L1
BUCKET_BITS = 12  # the map choice of a draw is looked up by its top 12 bits: 1 in 4096 splits
PAIR_MAX_MAPS = 16  # batches of systems of up to 16 maps are traced in pairs (_orbit_pair)
MAX_MAPS = 4096  # the int16 buckets hold 6 x a map index
TO_UNIT = 1.0 / 4294967296.0  # 32 random bits to a float in [0, 1)

FLIP_NONE, FLIP_VERTICAL, FLIP_HORIZONTAL, FLIP_BOTH = 0, 1, 2, 3  # the references' trans_type


def check_chaos_settings(render_size: int, image_size: int, map_sequence: str,
                         warmup_points: int, n_points: int) -> None:
    """The renderer's own limits, checked by the configs that use it."""
    if render_size < MIN_RENDER_SIZE:
        raise ValueError(
            f"render_size={render_size} is too small for the {PAD} px margin and the 3x3 "
            f"patches: must be >= {MIN_RENDER_SIZE} (and >= image_size={image_size})"
        )
    check_choice("map_sequence", map_sequence, MAP_SEQUENCES)
    check_int("warmup_points", warmup_points, 0, n_points - 1)


@functools.lru_cache(maxsize=4)
def shared_uniforms(n_points: int) -> np.ndarray:
    """The references' u sequence: np.random.seed(100), then n_points draws, of which the
    n_points - 1 steps use the first (ifs_function.py:55-63)."""
    uniforms = np.random.RandomState(REFERENCE_SEQUENCE_SEED).random_sample(n_points)
    uniforms = uniforms[: max(n_points - 1, 0)].copy()
    uniforms.flags.writeable = False
    return uniforms


@functools.lru_cache(maxsize=4)
def shared_slots(n_points: int) -> np.ndarray:
    """uint16 int(u * 2**BUCKET_BITS) of every shared u (exact: a power-of-two scale): the
    bucket of each step, computed once for all systems instead of per step."""
    slots = (shared_uniforms(n_points) * (1 << BUCKET_BITS)).astype(np.uint16)
    slots.flags.writeable = False
    return slots


@numba.njit(cache=True)
def _map_index(cumulative, n_maps, u):
    """The map whose cumulative interval holds u: the number of boundaries at or below u."""
    index = 0
    for k in range(n_maps - 1):
        index += u >= cumulative[k]
    return index


@numba.njit(cache=True)
def _fill_shared_buckets(cumulative, n_maps, buckets):
    """buckets[j]: 6 x the references' map (the first whose cumulative is >= u, i.e. the
    number of boundaries below u), its row in the flat maps, for every u in
    [j / size, (j + 1) / size), or -1 where a boundary lies in that interval."""
    size = buckets.size
    for j in range(size):
        low, high = j / size, (j + 1) / size
        index = 0
        split = False
        for k in range(n_maps - 1):
            index += cumulative[k] < low
            split |= low <= cumulative[k] < high
        buckets[j] = -1 if split else 6 * index


@numba.njit(cache=True)
def _fill_buckets(cumulative, n_maps, buckets):
    """buckets[j]: 6 x the map (its row in the flat maps) of every 32-bit draw whose top bits
    are j, or -1 where a boundary falls inside the bucket. The index never decreases with u,
    so equal ends mean one map.

    A table load instead of a scan over the boundaries: the scan was most of a step's cost
    with FractalDB's up to 8 maps, and only the few split buckets still scan.
    """
    shift = 32 - BUCKET_BITS
    for j in range(buckets.size):
        first = _map_index(cumulative, n_maps, float(j << shift) * TO_UNIT)
        last = _map_index(cumulative, n_maps, float(((j + 1) << shift) - 1) * TO_UNIT)
        buckets[j] = 6 * first if first == last else -1


@numba.njit(inline="always", cache=True)
def _apply(maps, row, x, y):
    """The references' step, in their operation order: x * a + y * b + e, x * c + y * d + f.
    maps is the flat [M * 6] rows and `row` a map's first: the buckets hold rows, not maps,
    and an unsigned index spares numba's negative-index check per step."""
    row = np.uint64(row)
    return (x * maps[row] + y * maps[row + np.uint64(1)] + maps[row + np.uint64(4)],
            x * maps[row + np.uint64(2)] + y * maps[row + np.uint64(3)] + maps[row + np.uint64(5)])


@numba.njit(inline="always", cache=True)
def _next_map(cumulative, n_maps, uniforms, slots, shared, buckets, key, step, bits):
    """(the maps row of `step`'s map, the 64 random bits it leaves to the next step). Shared:
    the references' map of u (the number of boundaries below it), a table load by u's slot
    but in the few buckets a boundary splits. Per-category: one 64-bit draw of `key` serves
    two steps (32 bits each)."""
    if shared:
        # u read before the branch, the split scan kept in this shape: other shapes (u read
        # in the branch, 6 * index after the scan) leave numba's array refcounting in the loop,
        # 3x the step's time.
        u = uniforms[np.uint64(step - 1)]
        row = buckets[np.uint64(slots[np.uint64(step - 1)])]
        if row < 0:
            row = 0
            for k in range(n_maps - 1):
                row += 6 * (cumulative[k] < u)
        return row, bits
    if step & 1:
        bits = draw_bits(key, np.uint64(step >> 1))
        half = bits >> np.uint64(32)
    else:
        half = bits & np.uint64(0xFFFFFFFF)
    u = float(half) * TO_UNIT  # the scan inline, as above: a call kept refcounting in the loop
    row = buckets[half >> np.uint64(32 - BUCKET_BITS)]
    if row < 0:
        row = 0
        for k in range(n_maps - 1):
            row += 6 * (u >= cumulative[k])
    return row, bits


@numba.njit(inline="always", cache=True)
def _trace(maps, cumulative, n_maps, uniforms, slots, shared, buckets, key, n_points, warmup,
           xs, ys):
    """_orbit's loops, inlined with `shared` a constant: a branch on it per step (or on the
    warm-up, or numba's negative-index checks) costs as much as the step itself."""
    bits = np.uint64(0)
    x = y = 0.0
    xs[0] = ys[0] = 0.0
    for step in range(1, warmup + 1):
        row, bits = _next_map(cumulative, n_maps, uniforms, slots, shared, buckets, key, step,
                              bits)
        x, y = _apply(maps, row, x, y)
        xs[np.uint64(step)] = x
        ys[np.uint64(step)] = y
    x_low = x_high = x
    y_low = y_high = y
    for step in range(warmup + 1, n_points):
        row, bits = _next_map(cumulative, n_maps, uniforms, slots, shared, buckets, key, step,
                              bits)
        x, y = _apply(maps, row, x, y)
        xs[np.uint64(step)] = x
        ys[np.uint64(step)] = y
        x_low = min(x_low, x)
        x_high = max(x_high, x)
        y_low = min(y_low, y)
        y_high = max(y_high, y)
    return np.isfinite(x) and np.isfinite(y), x_low, x_high, y_low, y_high


@numba.njit(cache=True)
def _orbit(maps, cumulative, n_maps, uniforms, slots, shared, buckets, key, n_points, warmup,
           xs, ys):
    """xs, ys [n_points] from the origin (point 0); (finite, x low, x high, y low, y high) over
    the points from `warmup` on. An orbit that leaves the finite floats never comes back (inf
    and NaN absorb every affine map), so the last point alone says whether all are finite."""
    maps = maps.reshape(-1)
    if shared:
        _fill_shared_buckets(cumulative, n_maps, buckets)
        return _trace(maps, cumulative, n_maps, uniforms, slots, True, buckets, key, n_points,
                      warmup, xs, ys)
    _fill_buckets(cumulative, n_maps, buckets)
    return _trace(maps, cumulative, n_maps, uniforms, slots, False, buckets, key, n_points,
                  warmup, xs, ys)


@numba.njit(cache=True)
def _fill_pair(maps, cumulative, n_maps, image, buckets, pair_maps, combos):
    """For images `image` and image + 1 on the shared sequence: pair_maps[(i M + j) * 12 +
    2 p + s] is parameter p of map i (s = 0) of the first and of map j (s = 1) of the second,
    so one row of 12 holds a step of both, and combos[slot] is the first index of the row of the
    two maps of every u in the slot, or -1 where a boundary of either splits it."""
    size = combos.size
    _fill_shared_buckets(cumulative[image], n_maps[image], buckets[:size])
    _fill_shared_buckets(cumulative[image + 1], n_maps[image + 1], buckets[size:])
    most = maps.shape[1]
    for first in range(most):
        for second in range(most):
            row = (first * most + second) * 12
            for parameter in range(6):
                pair_maps[row + 2 * parameter] = maps[image, first, parameter]
                pair_maps[row + 2 * parameter + 1] = maps[image + 1, second, parameter]
    for slot in range(size):
        row0, row1 = buckets[slot], buckets[slot + size]
        combos[slot] = -1 if row0 < 0 or row1 < 0 else ((row0 // 6) * most + row1 // 6) * 12


@numba.njit(cache=True)
def _orbit_pair(maps, cumulative, n_maps, image, uniforms, slots, buckets, pair_maps, combos,
                n_points, warmup, points):
    """_orbit of images `image` and image + 1 on the shared sequence, in one loop: points
    [4, >= n_points] gets x, y of the first, then of the second; returns (finite, x low,
    x high, y low, y high) of each, from `warmup` on. An orbit is a chain of dependent
    roundings (three in series a step) that leaves most of the core idle; two independent
    chains in one loop, their maps looked up once a step (_fill_pair), take 0.6-0.75x the
    time of two _orbit calls. The body is written out, not in helpers: array arguments to
    an inlined helper leave numba's reference counting in the loop, twice the step's time."""
    _fill_pair(maps, cumulative, n_maps, image, buckets, pair_maps, combos)
    most = maps.shape[1]
    flat = points.reshape(-1)
    stride = np.uint64(points.shape[1])
    points[:, 0] = 0.0
    x0 = y0 = x1 = y1 = 0.0
    x0_low = x0_high = y0_low = y0_high = x1_low = x1_high = y1_low = y1_high = 0.0
    for framed in range(2):  # the warm-up steps, then the framed ones
        if framed:
            x0_low = x0_high = x0
            y0_low = y0_high = y0
            x1_low = x1_high = x1
            y1_low = y1_high = y1
        first_step, end_step = (warmup + 1, n_points) if framed else (1, warmup + 1)
        for step in range(first_step, end_step):
            row = combos[np.uint64(slots[np.uint64(step - 1)])]
            if row < 0:  # the references' map of u: the number of boundaries below it
                u = uniforms[np.uint64(step - 1)]
                first = second = 0
                for k in range(n_maps[image] - 1):
                    first += cumulative[image, k] < u
                for k in range(n_maps[image + 1] - 1):
                    second += cumulative[image + 1, k] < u
                row = (first * most + second) * 12
            maps_at = np.uint64(row)
            x0, x1, y0, y1 = (
                x0 * pair_maps[maps_at] + y0 * pair_maps[maps_at + np.uint64(2)]
                + pair_maps[maps_at + np.uint64(8)],
                x1 * pair_maps[maps_at + np.uint64(1)] + y1 * pair_maps[maps_at + np.uint64(3)]
                + pair_maps[maps_at + np.uint64(9)],
                x0 * pair_maps[maps_at + np.uint64(4)] + y0 * pair_maps[maps_at + np.uint64(6)]
                + pair_maps[maps_at + np.uint64(10)],
                x1 * pair_maps[maps_at + np.uint64(5)] + y1 * pair_maps[maps_at + np.uint64(7)]
                + pair_maps[maps_at + np.uint64(11)])
            at = np.uint64(step)
            flat[at] = x0
            flat[at + stride] = y0
            flat[at + stride + stride] = x1
            flat[at + stride + stride + stride] = y1
            if framed:
                x0_low = min(x0_low, x0)
                x0_high = max(x0_high, x0)
                y0_low = min(y0_low, y0)
                y0_high = max(y0_high, y0)
                x1_low = min(x1_low, x1)
                x1_high = max(x1_high, x1)
                y1_low = min(y1_low, y1)
                y1_high = max(y1_high, y1)
    return ((np.isfinite(x0) and np.isfinite(y0), x0_low, x0_high, y0_low, y0_high),
            (np.isfinite(x1) and np.isfinite(y1), x1_low, x1_high, y1_low, y1_high))


@numba.njit(inline="always", cache=True)
def _axis(low, high, usable):
    """(scale, offset) for pixel = (v - low) * scale + offset; a flat axis centres. The
    references divide by the span per point; multiplying by usable / span rounds differently
    only within ~1e-13 of a pixel edge."""
    span = high - low
    if not (span > 0.0 and np.isfinite(usable / span)):
        return 0.0, PAD + usable / 2.0
    return usable / span, float(PAD)


@numba.njit(inline="always", cache=True)
def _patch_mask(half_bits):
    """A uniform non-empty 9-bit mask in 1..511 from 32 random bits (multiply-shift)."""
    return 1 + ((half_bits * np.uint64(511)) >> np.uint64(32))


def _patch_rows() -> np.ndarray:
    """uint32 [512 x 3]: the three pasted rows of each mask, cell k of a row in byte k (little
    endian), byte 3 zero; bit 8 of the mask is the top-left cell, bit 0 the bottom-right (the
    references' '{:09b}' string read row by row, ifs_function.py:179-184)."""
    cells = ((np.arange(512)[:, None] >> np.arange(8, -1, -1)) & 1).reshape(512, 3, 3) * GRAY
    words = cells[:, :, 0] | cells[:, :, 1] << 8 | cells[:, :, 2] << 16
    return words.astype(np.uint32).reshape(-1)


PATCH_ROWS = _patch_rows()


@intrinsic
def _paste_row(typingctx, pixels, index, word):
    """pixels[index:index + 3] = bytes 0..2 of word, as one unaligned 4-byte read-modify-write
    that keeps pixels[index + 3] (it may hold a neighbouring patch's pixel): one store a row,
    where a 2-byte and a 1-byte copy take two, and the paste loop waits on its stores."""
    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        offset = context.cast(builder, args[1], signature.args[1], types.intp)
        int32 = ir.IntType(32)
        pointer = builder.bitcast(builder.gep(array.data, [offset]), int32.as_pointer())
        kept = builder.and_(builder.load(pointer, align=1), ir.Constant(int32, 0xFF000000))
        cells = context.cast(builder, args[2], signature.args[2], types.uint32)
        builder.store(builder.or_(kept, cells), pointer, align=1)
        return context.get_dummy_value()

    return types.none(pixels, index, word), codegen


@numba.njit(cache=True)
def _pixel_offsets(xs, ys, start, count, x_low, x_scale, x_offset, y_low, y_scale, y_offset,
                   stride, offsets):
    """offsets[i]: the flat pixel of point start + i, pixel = int((v - low) * scale + offset)
    (int32 truncation equals int64's on a canvas of at most 4096 px). Branch-free and unsigned,
    so LLVM vectorises it."""
    for i in range(count):
        point = np.uint64(start + i)
        col = np.int32((xs[point] - x_low) * x_scale + x_offset)
        row = np.int32((ys[point] - y_low) * y_scale + y_offset)
        offsets[np.uint64(i)] = row * stride + col


@numba.njit(cache=True)
def _fill_counter_hashes(hashes):
    for counter in range(hashes.size):
        hashes[counter] = splitmix64(np.uint64(counter))


@functools.lru_cache(maxsize=4)
def counter_hashes(pairs: int) -> np.ndarray:
    """splitmix64(c) for c < pairs: the half of every mask draw, draw_bits(key, c) =
    splitmix64(key ^ splitmix64(c)), that no key changes (4 bytes a point, read in order)."""
    hashes = np.empty(pairs, dtype=np.uint64)
    _fill_counter_hashes(hashes)
    hashes.flags.writeable = False
    return hashes


@numba.njit(cache=True)
def _patch_sources(mask_key, first_pair, pairs, hashes, bits, sources):
    """sources[2 i], sources[2 i + 1]: the PATCH_ROWS indices of the masks in the low and high 32
    bits of draw first_pair + i (one 64-bit draw per two points), as draw_bits(mask_key,
    first_pair + i) with its counter's hash read from `hashes`. Two plain loops (the draws,
    then the masks of their 32-bit halves, little-endian low half first) vectorise, where one
    loop storing both masks of a draw does not: less than half the time."""
    for i in range(pairs):
        bits[np.uint64(i)] = splitmix64(mask_key ^ hashes[np.uint64(first_pair + i)])
    halves = bits.view(np.uint32)
    for i in range(2 * pairs):
        sources[np.uint64(i)] = _patch_mask(np.uint64(halves[np.uint64(i)])) * np.uint64(3)


@numba.njit(cache=True)
def _rasterise(canvas, xs, ys, first, n_points, mask_key, patch, x_low, x_high, y_low, y_high,
               hashes, offsets, bits, sources):
    """Draw points first..n_points - 1, later over earlier, RASTER_CHUNK points at a time:
    their pixels and masks in two vectorised passes into L1-sized offsets and sources, then
    the pastes, each the whole 3x3 patch with its top-left cell at (pixel + 1), empty cells
    overwriting with black as the references' PIL paste does. A third of the instructions
    of computing each point's pixel and mask beside its paste."""
    size = canvas.shape[0]
    pixels = canvas.reshape(-1)
    rows = PATCH_ROWS
    usable = float(size - 2 * PAD)
    x_scale, x_offset = _axis(x_low, x_high, usable)
    y_scale, y_offset = _axis(y_low, y_high, usable)
    stride = np.uint64(size)
    corner = stride + np.uint64(1)
    gray = np.uint8(GRAY)
    total = n_points - first
    for start in range(0, total, RASTER_CHUNK):
        count = min(RASTER_CHUNK, total - start)
        _pixel_offsets(xs, ys, first + start, count, x_low, x_scale, x_offset, y_low, y_scale,
                       y_offset, np.int32(size), offsets)
        if not patch:
            for i in range(count):
                pixels[np.uint64(offsets[np.uint64(i)])] = gray
            continue
        _patch_sources(mask_key, start >> 1, (count + 1) >> 1, hashes, bits, sources)
        for i in range(count):
            target = np.uint64(offsets[np.uint64(i)]) + corner
            source = np.uint64(sources[np.uint64(i)])
            _paste_row(pixels, target, rows[source])
            _paste_row(pixels, target + stride, rows[source + np.uint64(1)])
            _paste_row(pixels, target + stride + stride, rows[source + np.uint64(2)])


@numba.njit(cache=True)
def _copy_flipped(source, target, flip):
    """The references' saved image of trans_type `flip`: the canvas flipped top to bottom,
    then transposed (1 top-bottom, 2 left-right, 3 both), so rows reverse unless flip is odd."""
    size = source.shape[0]
    for row in range(size):
        source_row = source[row] if flip & 1 else source[size - 1 - row]
        if flip & 2:
            for col in range(size):
                target[row, col] = source_row[size - 1 - col]
        else:
            for col in range(size):  # an explicit loop: the row slice assignment is 10x slower
                target[row, col] = source_row[col]


@numba.njit(cache=True)
def _count_filled(canvas):
    filled = 0
    for value in canvas.reshape(-1):
        filled += value != 0
    return filled / canvas.size


@numba.njit(cache=True)
def _finish(image, frame, xs, ys, warmup, n_points, mask_keys, patch, hashes, offsets, bits,
            sources, canvas, resized, starts, counts, weights, rows, flips, out, filling):
    """Image `image` from its orbit xs, ys and frame: rasterised, then its filling rate (when
    out has no rows) or its resized, flipped output; the canvas zeroed again after."""
    finite, x_low, x_high, y_low, y_high = frame
    if finite:
        _rasterise(canvas, xs, ys, warmup, n_points, mask_keys[image], patch, x_low, x_high,
                   y_low, y_high, hashes, offsets, bits, sources)
    if out.shape[0] != filling.size:
        filling[image] = _count_filled(canvas)
    elif canvas.shape[0] != resized.shape[0]:
        area_resize_into(canvas, resized, starts, counts, weights, rows)
        _copy_flipped(resized, out[image], flips[image])
    else:
        _copy_flipped(canvas, out[image], flips[image])
    canvas[:] = 0


@numba.njit(cache=True)
def render_kernel(maps, cumulative, n_maps, uniforms, slots, shared, point_keys, mask_keys,
                  hashes, flips, n_points, warmup, patch, points, canvas, resized, starts,
                  counts, weights, rows, out, filling):
    """maps [B, M, 6], cumulative [B, M], n_maps [B] (M = most maps); with `shared` every
    image reads the shared uniforms [n_points - 1] and their slots, two images at a time
    (_orbit_pair), else image b draws from point_keys[b];
    hashes are the counter hashes of the mask draws (counter_hashes, or [0] without patches).
    points [4, >= n_points], canvas [R, R] (zeroed), resized [S, S] and rows are scratch. With
    B rows, out [B, S, S] gets the images; with none, filling [B] gets each canvas' filling
    rate."""
    buckets = np.empty(2 << BUCKET_BITS, dtype=np.int16)
    pairs = shared and filling.size > 1 and maps.shape[1] <= PAIR_MAX_MAPS
    pair_maps = np.empty(maps.shape[1] ** 2 * 12 if pairs else 0)
    combos = np.empty(1 << BUCKET_BITS, dtype=np.int16)
    offsets = np.empty(RASTER_CHUNK, dtype=np.int32)
    bits = np.empty(RASTER_CHUNK // 2, dtype=np.uint64)
    sources = np.empty(RASTER_CHUNK, dtype=np.uint32)
    image = 0
    while image < filling.size:
        if pairs and image + 1 < filling.size:
            frames = _orbit_pair(maps, cumulative, n_maps, image, uniforms, slots, buckets,
                                 pair_maps, combos, n_points, warmup, points)
            count = 2
        else:
            frame = _orbit(maps[image], cumulative[image], n_maps[image], uniforms, slots,
                           shared, buckets[:1 << BUCKET_BITS], point_keys[image], n_points,
                           warmup, points[0], points[1])
            frames = (frame, frame)
            count = 1
        for index in range(count):  # one call site: each inlined copy costs seconds of compiling
            _finish(image + index, frames[index], points[2 * index], points[2 * index + 1],
                    warmup, n_points, mask_keys, patch, hashes, offsets, bits, sources, canvas,
                    resized, starts, counts, weights, rows, flips, out, filling)
        image += count


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


def render_systems(
    systems: Sequence[IFSSystem],
    mask_keys: np.ndarray,
    flips: np.ndarray,
    *,
    render_size: int,
    image_size: int,
    n_points: int,
    patch: bool = True,
    point_keys: np.ndarray | None = None,
    warmup_points: int = 0,
) -> np.ndarray:
    """uint8 [B, image_size, image_size]: system i drawn on a render_size canvas with its mask
    key and flip code (0..3, the references' trans_type), then resized.

    point_keys None means the shared sequence; else one key per image for the per-category
    sequence. A system whose orbit overflows (FractalDB's uniform sampler makes some) gives a
    black image, which every filling check rejects.
    """
    images, _ = _run(systems, mask_keys, flips, render_size, image_size, n_points, patch,
                     point_keys, warmup_points)
    return images


def canvas_filling(
    systems: Sequence[IFSSystem],
    mask_keys: np.ndarray,
    *,
    render_size: int,
    n_points: int,
    patch: bool,
    point_keys: np.ndarray | None = None,
    warmup_points: int = 0,
) -> np.ndarray:
    """float64 [B]: the fraction of non-zero pixels of each render_size canvas (before any
    flip or resize), the references' filling rate."""
    _, filling = _run(systems, mask_keys, np.zeros(len(systems), dtype=np.int64), render_size,
                      None, n_points, patch, point_keys, warmup_points)
    return filling


def _run(systems: Sequence[IFSSystem], mask_keys: np.ndarray, flips: np.ndarray,
         render_size: int, image_size: int | None, n_points: int, patch: bool,
         point_keys: np.ndarray | None, warmup_points: int) -> tuple[np.ndarray, np.ndarray]:
    count = len(systems)
    mask_keys = np.asarray(mask_keys, dtype=np.uint64).reshape(-1)
    flips = np.asarray(flips, dtype=np.int64).reshape(-1)
    keyed = point_keys is not None
    point_keys = (np.asarray(point_keys, dtype=np.uint64).reshape(-1) if keyed
                  else np.zeros(count, dtype=np.uint64))
    if not point_keys.size == mask_keys.size == flips.size == count:
        raise ValueError(f"{count} systems need {count} point keys, mask keys and flips, got "
                         f"{point_keys.size}, {mask_keys.size} and {flips.size}")
    if flips.size and (flips.min() < 0 or flips.max() > FLIP_BOTH):
        bad = flips[(flips < 0) | (flips > FLIP_BOTH)][0]
        raise ValueError(f"flip={bad} is out of range: must be in [0, 3]")
    check_int("n_points", n_points, 1)
    size = render_size if image_size is None else image_size
    check_chaos_settings(render_size, size, "shared", warmup_points, n_points)
    most = max((system.n_maps for system in systems), default=1)
    if most > MAX_MAPS:
        raise ValueError(f"a system has {most} maps: the renderer takes at most {MAX_MAPS}")
    maps = np.zeros((count, most, 6))
    cumulative = np.ones((count, most))
    n_maps = np.empty(count, dtype=np.int64)
    for index, system in enumerate(systems):
        maps[index, : system.n_maps] = system.maps
        cumulative[index, : system.n_maps] = system.cumulative
        n_maps[index] = system.n_maps
    uniforms = shared_uniforms(n_points) if not keyed else _unused(np.float64)
    slots = shared_slots(n_points) if not keyed else _unused(np.uint16)
    out = np.empty((0 if image_size is None else count, size, size), dtype=np.uint8)
    filling = np.zeros(count, dtype=np.float64)
    points, canvas, resized, rows = _scratch(n_points, render_size, size)
    starts, counts, weights = area_taps(render_size, size)
    hashes = (counter_hashes((n_points - warmup_points + 1) // 2) if patch
              else _unused(np.uint64))
    render_kernel(maps, cumulative, n_maps, uniforms, slots, not keyed, point_keys, mask_keys,
                  hashes, flips, n_points, warmup_points, bool(patch), points, canvas, resized,
                  starts, counts, weights, rows, out, filling)
    return out, filling


@functools.cache
def _unused(dtype: type) -> np.ndarray:
    """A read-only stand-in for an input the kernel will not read: read-only like the cached
    inputs it replaces, so that the kernel compiles once, not once per mix of the two (a
    compilation is about 10 s)."""
    stand_in = np.zeros(1, dtype=dtype)
    stand_in.flags.writeable = False
    return stand_in


_SCRATCH = threading.local()


def _scratch(n_points: int, render_size: int, image_size: int) -> tuple[np.ndarray, ...]:
    """Per-thread buffers kept between calls: fresh arrays per call cost page faults worth a
    third of a one-image render (category searches render one image at a time)."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if (buffers is None or buffers[0].shape[1] < n_points or buffers[1].shape[0] != render_size
            or buffers[2].shape[0] != image_size):
        points = max(n_points, 0 if buffers is None else buffers[0].shape[1])
        buffers = (np.empty((4, points)),
                   np.zeros((render_size, render_size), dtype=np.uint8),
                   np.empty((image_size, image_size), dtype=np.uint8),
                   resize_scratch(render_size, image_size))
        _SCRATCH.buffers = buffers
    return buffers
