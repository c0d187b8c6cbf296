"""Numba drawing kernels shared by the generators: PIL's 1-px lines and affine warps."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def draw_line(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
    """The pixels PIL's `ImageDraw.line((x0, y0, x1, y1), width=1)` sets (x = column, y = row).

    As Pillow does (`_draw_lines` in src/_imaging.c, `line8` and `point8` in
    src/libImaging/Draw.c, unchanged from 7.0 to 12): coordinates are cast to int (truncated
    toward zero, so -0.7 -> 0), the segment is stepped by the Bresenham rule below from the
    first end, its last pixel excluded, then the last end is set as a point; pixels off the
    canvas are skipped, never clipped geometrically (clipping would move the steps). A segment
    whose bounding box misses the canvas is skipped whole, which sets the same pixels: none.
    """
    height, width = canvas.shape
    ix, iy, ex, ey = np.int64(x0), np.int64(y0), np.int64(x1), np.int64(y1)
    if max(ix, ex) < 0 or min(ix, ex) >= width or max(iy, ey) < 0 or min(iy, ey) >= height:
        return
    dx, sx = (ex - ix, 1) if ex >= ix else (ix - ex, -1)
    dy, sy = (ey - iy, 1) if ey >= iy else (iy - ey, -1)
    if dx > dy and dy > 0:  # x steps every pixel, y when the error term is >= 0
        err = 2 * dy - dx
        for _ in range(dx):
            if 0 <= ix < width and 0 <= iy < height:
                canvas[iy, ix] = value
            if err >= 0:
                iy += sy
                err -= 2 * dx
            err += 2 * dy
            ix += sx
    elif dx > 0 and dy > 0:  # dy >= dx: the same with the axes swapped
        err = 2 * dx - dy
        for _ in range(dy):
            if 0 <= ix < width and 0 <= iy < height:
                canvas[iy, ix] = value
            if err >= 0:
                ix += sx
                err -= 2 * dy
            err += 2 * dx
            iy += sy
    else:  # horizontal, vertical or a single point
        for _ in range(dx + dy):
            if 0 <= ix < width and 0 <= iy < height:
                canvas[iy, ix] = value
            ix += sx if dx else 0
            iy += sy if dy else 0
    if 0 <= ex < width and 0 <= ey < height:
        canvas[ey, ex] = value


@numba.njit(cache=True)
def draw_closed_polyline(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, value: int) -> None:
    """The polygon through (xs[k], ys[k]) and back to the first vertex, one PIL line per edge."""
    count = xs.size
    for k in range(count):
        following = k + 1 if k + 1 < count else 0
        draw_line(canvas, xs[k], ys[k], xs[following], ys[following], value)


@numba.njit(cache=True)
def warp_affine_batch(source: np.ndarray, matrices: np.ndarray, out: np.ndarray) -> None:
    """out[b] = source sampled bilinearly at matrices[b] @ (u, v, 1), border 0.

    Coordinates are normalised to [-1, 1] about the image centre (pixel centres), so the
    matrix is independent of the resolution and the identity reproduces `source` exactly.
    `matrices[b]` maps output coordinates to source coordinates.
    """
    size = source.shape[0]
    half = size / 2.0
    for b in range(matrices.shape[0]):
        m = matrices[b]
        for row in range(size):
            v = (row + 0.5) / half - 1.0
            for col in range(size):
                u = (col + 0.5) / half - 1.0
                sx = (m[0, 0] * u + m[0, 1] * v + m[0, 2] + 1.0) * half - 0.5
                sy = (m[1, 0] * u + m[1, 1] * v + m[1, 2] + 1.0) * half - 0.5
                x0 = np.int64(math.floor(sx))
                y0 = np.int64(math.floor(sy))
                fx = sx - x0
                fy = sy - y0
                total = 0.0
                for dy in range(2):
                    yy = y0 + dy
                    if yy < 0 or yy >= size:
                        continue
                    wy = fy if dy else 1.0 - fy
                    for dx in range(2):
                        xx = x0 + dx
                        if xx < 0 or xx >= size:
                            continue
                        wx = fx if dx else 1.0 - fx
                        total += wx * wy * source[yy, xx]
                level = np.int64(total + 0.5)
                out[b, row, col] = 255 if level > 255 else (0 if level < 0 else level)


def check_line_render_size(generator: str, lines: str, render_size: int, image_size: int,
                           minimum: int, reference: int) -> None:
    """1 px lines drawn on a small canvas merge; the area resize, not the canvas, should shrink
    them (rcdb and visualatom share this limit)."""
    if render_size < minimum:
        raise ValueError(
            f"render_size={render_size} (image_size={image_size}) is too small for "
            f"{generator}: its 1 px {lines} need render_size >= {minimum} (the reference draws "
            f"at {reference}); keep image_size and raise render_size, the area resize brings "
            "the drawing down to image_size"
        )
