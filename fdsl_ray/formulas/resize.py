"""Antialiased downsizing from a generator's render_size to its image_size, in numba.

The references draw at 512 px (FractalDB's release: 362 px) and their trainers resize the
saved images to 224 px, so a trained image is a continuous gray texture, not a binary one.
The filter is the area (box) average, cv2's INTER_AREA: output pixel j is the mean of the
source interval [j R / S, (j + 1) R / S), partial pixels weighted by their overlap. It is
antialiased, conserves the mean gray (so a filling rate survives the resize as a density),
never rings on the 0/127 step images the chaos game draws (a bicubic kernel over- and
undershoots there), and takes about R / S + 1 taps per axis, the fewest of any antialiased
filter. PIL's antialiased bicubic, which the references' timm transforms apply, differs from
it by a few gray levels per pixel at 512 -> 224 (tests/formulas/test_resize.py measures it).

The vertical pass runs first, over whole contiguous source rows (vectorised by LLVM). The
horizontal pass reads 4 taps at columns that step by R / S, which no SIMD load gathers: where
both sizes are multiples of 8 (512 -> 224) its input is transposed in 8 x 8 blocks so that it
too runs over contiguous rows, and its sums transposed back (about 0.8x the resize's time at
512 -> 224); other sizes read a [S, R] float32 buffer two rows at a time. Either way each
output is the same float32 expression, and float32 without fastmath is IEEE arithmetic in a
fixed order: the same bytes on every node and by both passes.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

BLOCK = 8  # floats per AVX register: the transposed passes' block


@functools.lru_cache(maxsize=32)
def area_taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first source index [T], tap count [T], weights [T, >= 4 taps]) of the box filter.

    Weights are overlaps of [j R / T, (j + 1) R / T) with each source pixel, normalised to sum
    to 1; exact rationals (integers scaled by T) keep them symmetric under reversal.
    """
    if not 1 <= target <= source:
        raise ValueError(f"area resize needs 1 <= target <= source, got {source} -> {target}")
    starts = np.empty(target, dtype=np.int64)
    counts = np.empty(target, dtype=np.int64)
    most = max(4, source // target + 2)
    weights = np.zeros((target, most), dtype=np.float32)
    for j in range(target):
        # In units of 1 / target source pixels: the interval is [j R, (j + 1) R).
        low, high = j * source, (j + 1) * source
        first, last = low // target, (high - 1) // target
        starts[j], counts[j] = first, last - first + 1
        for k, pixel in enumerate(range(first, last + 1)):
            overlap = min(high, (pixel + 1) * target) - max(low, pixel * target)
            weights[j, k] = overlap / source
    for array in (starts, counts, weights):
        array.flags.writeable = False
    return starts, counts, weights


@numba.njit(inline="always", cache=True)
def _to_gray(value):
    """Rounded and clamped to uint8 (through int32: one conversion instruction)."""
    return np.uint8(np.int32(min(value + np.float32(0.5), np.float32(255.0))))


@numba.njit(inline="always", cache=True)
def _four_taps(w0, w1, w2, w3, row, first):
    """Four taps from row[first], in a fixed order (the taps past a count have weight 0)."""
    return ((w0 * row[first] + w1 * row[first + np.uint64(1)])
            + (w2 * row[first + np.uint64(2)] + w3 * row[first + np.uint64(3)]))


@intrinsic
def _transpose_block(typingctx, source, source_row, source_col, target, target_row, target_col):
    """target[tr + b, tc + a] = source[sr + a, sc + b] for a, b < 8 (float32 2-D arrays), as 8
    row loads, 24 shuffles and 8 row stores: LLVM does not vectorise a transposing loop."""
    def codegen(context, builder, signature, args):
        vector = ir.VectorType(ir.FloatType(), BLOCK)
        int32 = ir.IntType(32)

        def row_pointers(index, row, col):
            """Pointers to the 8 rows of the block at (row, col) of argument `index`."""
            array = context.make_array(signature.args[index])(context, builder, args[index])
            row = context.cast(builder, args[row], signature.args[row], types.intp)
            col = context.cast(builder, args[col], signature.args[col], types.intp)
            row_bytes = cgutils.unpack_tuple(builder, array.strides, 2)[0]
            step = builder.sdiv(row_bytes, ir.Constant(row_bytes.type, 4))  # floats a row
            corner = builder.gep(array.data, [builder.add(builder.mul(row, step), col)])
            return [builder.bitcast(builder.gep(corner, [builder.mul(step, ir.Constant(
                step.type, k))]), vector.as_pointer()) for k in range(BLOCK)]

        def shuffle(first, second, mask):
            return builder.shuffle_vector(first, second, ir.Constant(
                ir.VectorType(int32, BLOCK), mask))

        loaded = [builder.load(pointer, align=4) for pointer in row_pointers(0, 1, 2)]
        low, high = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
        pairs = [shuffle(loaded[k], loaded[k + 1], mask) for k in range(0, BLOCK, 2)
                 for mask in (low, high)]
        even, odd = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
        quads = [shuffle(pairs[k + half], pairs[k + 2 + half], mask) for k in (0, 4)
                 for half in (0, 1) for mask in (even, odd)]
        lower, upper = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        columns = [None] * BLOCK
        for k in range(4):
            columns[k] = shuffle(quads[k], quads[k + 4], lower)
            columns[k + 4] = shuffle(quads[k], quads[k + 4], upper)
        for value, pointer in zip(columns, row_pointers(3, 4, 5), strict=True):
            builder.store(value, pointer, align=4)
        return context.get_dummy_value()

    return types.none(source, source_row, source_col, target, target_row, target_col), codegen


@numba.njit(cache=True)
def _transpose(source, target, row_count, col_count):
    """target[c, r] = source[r, c] for r < row_count, c < col_count (multiples of 8)."""
    for row in range(0, row_count, BLOCK):
        for col in range(0, col_count, BLOCK):
            _transpose_block(source, row, col, target, col, row)


@numba.njit(cache=True)
def area_resize_into(source, target, starts, counts, weights, scratch):
    """source uint8 [R, R] -> target uint8 [T, T]; scratch is resize_scratch(R, T).

    The plain 4-tap horizontal pass reads each column's start and weights once for two rows,
    with unsigned indices: a third less time than a row at a time."""
    rows, columns, sums, sums_by_row = scratch
    size = source.shape[1]
    for j in range(target.shape[0]):
        row = rows[j]
        first = starts[j]
        weight = weights[j, 0]
        for col in range(size):
            row[col] = weight * source[first, col]
        for k in range(1, counts[j]):
            weight = weights[j, k]
            line = source[first + k]
            for col in range(size):
                row[col] += weight * line[col]
    height, width = target.shape
    if weights.shape[1] > 4:
        for j in range(height):
            row = rows[j]
            for i in range(width):
                value = np.float32(0.0)
                for k in range(counts[i]):
                    value += weights[i, k] * row[starts[i] + k]
                target[j, i] = _to_gray(value)
        return
    if columns.shape[1] == height:
        _transpose(rows, columns, height, size)
        for i in range(width):
            first = starts[i]
            w0, w1 = weights[i, 0], weights[i, 1]
            w2, w3 = weights[i, 2], weights[i, 3]
            tap0, tap1 = columns[first], columns[first + 1]
            tap2, tap3 = columns[first + 2], columns[first + 3]
            out = sums[i]
            for j in range(height):
                out[j] = (w0 * tap0[j] + w1 * tap1[j]) + (w2 * tap2[j] + w3 * tap3[j])
        _transpose(sums, sums_by_row, width, height)
        for j in range(height):
            for i in range(width):
                target[j, i] = _to_gray(sums_by_row[j, i])
        return
    for j in range(0, height, 2):
        upper, lower = rows[j], rows[min(j + 1, height - 1)]  # the last row twice if odd
        for i in range(width):
            column = np.uint64(i)
            first = np.uint64(starts[column])
            w0, w1 = weights[column, 0], weights[column, 1]
            w2, w3 = weights[column, 2], weights[column, 3]
            target[j, column] = _to_gray(_four_taps(w0, w1, w2, w3, upper, first))
            target[min(j + 1, height - 1), column] = _to_gray(
                _four_taps(w0, w1, w2, w3, lower, first))


def resize_scratch(source: int, target: int) -> tuple[np.ndarray, ...]:
    """The float32 buffers area_resize_into needs: the vertical pass' rows [T, R + 4], whose
    last 4 columns stay 0 so that the 4-tap form may read past a row's end; and where both
    sizes are multiples of 8, those rows transposed ([R + 4, T], last 4 rows 0) and the
    horizontal sums in both orders ([T, T]); else empty stand-ins."""
    rows = np.zeros((target, source + 4), dtype=np.float32)
    if source % BLOCK or target % BLOCK:
        empty = np.zeros((0, 0), dtype=np.float32)
        return rows, empty, empty, empty
    return (rows, np.zeros((source + 4, target), dtype=np.float32),
            np.empty((target, target), dtype=np.float32),
            np.empty((target, target), dtype=np.float32))


def area_resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 [B, R, R] -> uint8 [B, size, size] by the area filter (a copy when R == size)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images has shape {images.shape}: must be [B, R, R]")
    if size == images.shape[1]:
        return images.copy()
    starts, counts, weights = area_taps(images.shape[1], size)
    out = np.empty((images.shape[0], size, size), dtype=np.uint8)
    rows = resize_scratch(images.shape[1], size)
    for index in range(images.shape[0]):
        area_resize_into(images[index], out[index], starts, counts, weights, rows)
    return out
