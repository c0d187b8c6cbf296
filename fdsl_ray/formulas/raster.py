"""Numba drawing kernels shared by the generators: clipped 1-px lines and affine warps."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(inline="always", cache=True)
def _clip_segment(
    x0: float, y0: float, x1: float, y1: float, high: float
) -> tuple[bool, float, float, float, float]:
    """Liang-Barsky clip of a segment to the square [0, high]^2; False when it misses."""
    dx = x1 - x0
    dy = y1 - y0
    t0 = 0.0
    t1 = 1.0
    for p, q in ((-dx, x0), (dx, high - x0), (-dy, y0), (dy, high - y0)):
        if p == 0.0:
            if q < 0.0:
                return False, 0.0, 0.0, 0.0, 0.0
        else:
            r = q / p
            if p < 0.0:
                if r > t1:
                    return False, 0.0, 0.0, 0.0, 0.0
                if r > t0:
                    t0 = r
            else:
                if r < t0:
                    return False, 0.0, 0.0, 0.0, 0.0
                if r < t1:
                    t1 = r
    return True, x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy


@numba.njit(cache=True)
def draw_line(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
    """Bresenham line between pixel-centre coordinates (x = column, y = row), clipped to the
    canvas, so endpoints far outside it cost nothing and never index out of bounds."""
    size = canvas.shape[0]
    visible, cx0, cy0, cx1, cy1 = _clip_segment(x0, y0, x1, y1, float(size - 1))
    if not visible:
        return
    ix = np.int64(math.floor(cx0 + 0.5))
    iy = np.int64(math.floor(cy0 + 0.5))
    ex = np.int64(math.floor(cx1 + 0.5))
    ey = np.int64(math.floor(cy1 + 0.5))
    dx = abs(ex - ix)
    dy = -abs(ey - iy)
    sx = 1 if ix < ex else -1
    sy = 1 if iy < ey else -1
    err = dx + dy
    while True:
        canvas[iy, ix] = value
        if ix == ex and iy == ey:
            return
        doubled = 2 * err
        if doubled >= dy:
            err += dy
            ix += sx
        if doubled <= dx:
            err += dx
            iy += sy


@numba.njit(cache=True)
def draw_closed_polyline(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, value: int) -> None:
    """The polygon through (xs[k], ys[k]) and back to the first vertex, 1 px wide."""
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
