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

The vertical pass runs first, over whole contiguous source rows (vectorised by LLVM); the
horizontal pass then reads a [S, R] float32 buffer, two rows at a time. float32 without
fastmath is IEEE arithmetic in a fixed order: the same bytes on every node.
"""

from __future__ import annotations

import functools

import numba
import numpy as np


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


@numba.njit(cache=True)
def area_resize_into(source, target, starts, counts, weights, rows):
    """source uint8 [R, R] -> target uint8 [T, T]; rows is float32 [T, R + 4] scratch whose
    last 4 columns stay 0, so the 4-tap horizontal form may read past a row's end.

    The 4-tap horizontal pass reads each column's start and weights once for two rows, with
    unsigned indices: a third less time than a row at a time."""
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


def resize_scratch(source: int, target: int) -> np.ndarray:
    """The zeroed float32 [T, R + 4] buffer area_resize_into needs."""
    return np.zeros((target, source + 4), dtype=np.float32)


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
