"""3-D iterated function systems: sampling, point clouds and perspective rasterisation.

A system is N affine maps x -> A x + b in 3-D, stored as rows of 12 numbers (A row-major in
columns 0-8, b in columns 9-11), each map chosen with probability proportional to |det A|.
Images are drawn at a render size and area-resized (fdsl_ray.formulas.resize) to the output
size inside the same kernel. The kernels are single-threaded numba, one call per batch; every
random draw comes from a counter-based key (rng.draw_uniform / draw_bits), so a cloud or an
image is a pure function of its key whatever the batch it is rendered in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from fdsl_ray.formulas.resize import area_resize_into, area_taps, resize_scratch
from fdsl_ray.formulas.rng import draw_bits, draw_uniform

PARAMS_PER_MAP = 12


@dataclass(frozen=True)
class System3D:
    """One 3-D IFS: params [N, 12] (A row-major, then b) and map probabilities [N]."""

    params: np.ndarray
    probabilities: np.ndarray

    @property
    def num_maps(self) -> int:
        return int(self.params.shape[0])

    @classmethod
    def from_params(cls, params: np.ndarray) -> System3D:
        """Probabilities proportional to |det A|; ValueError for a system of singular maps."""
        params = np.ascontiguousarray(params, dtype=np.float64)
        if params.ndim != 2 or params.shape[1] != PARAMS_PER_MAP or params.shape[0] < 1:
            raise ValueError(f"params shape {params.shape} must be [N >= 1, {PARAMS_PER_MAP}]")
        dets = _abs_dets(params)
        total = dets.sum()
        if not np.isfinite(total) or total <= 0.0:
            raise ValueError("every map of the system is singular: no probabilities")
        return cls(params, dets / total)

    def scaled(self, param_index: int, weight: float) -> System3D:
        """The same system with parameter `param_index` of every map multiplied by `weight`.

        Probabilities are kept from the unweighted system, as the references do for instances.
        """
        params = self.params.copy()
        params[:, param_index] *= weight
        return System3D(params, self.probabilities)


@numba.njit(cache=True)
def _abs_dets(params: np.ndarray) -> np.ndarray:
    """|det A| per map (numba: the search calls this thousands of times on tiny arrays)."""
    dets = np.empty(params.shape[0])
    for m in range(params.shape[0]):
        a = params[m]
        dets[m] = abs(a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6])
                      + a[2] * (a[3] * a[7] - a[4] * a[6]))
    return dets


def sample_system(rng: np.random.Generator, min_maps: int, max_maps: int) -> System3D | None:
    """N ~ randint(min_maps, max_maps) maps with 12 numbers ~ U(-1, 1); None if all singular."""
    num_maps = int(rng.integers(min_maps, max_maps + 1))
    params = rng.uniform(-1.0, 1.0, size=(num_maps, PARAMS_PER_MAP))
    try:
        return System3D.from_params(params)
    except ValueError:
        return None


@numba.njit(cache=True)
def _chaos_game(params: np.ndarray, cumulative: np.ndarray, key: np.uint64,
                out: np.ndarray) -> tuple[float, float, float, float, float]:
    """Fill out [n, 3] with the chaos game from the origin, keeping every point.

    Returns the normalisation as (scale, offset x, y, z, valid): p * scale - offset min-max
    scales the finite points into [-1, 1] with one scale for all axes, then centres them on
    their centroid. valid is 0.0 when no finite extent remains (a diverging system).
    """
    num_maps = params.shape[0]
    x = 0.0
    y = 0.0
    z = 0.0
    low = np.inf
    high = -np.inf
    sum_x = 0.0
    sum_y = 0.0
    sum_z = 0.0
    count = 0
    for i in range(out.shape[0]):
        u = draw_uniform(key, np.uint64(i))
        m = 0
        while m < num_maps - 1 and u >= cumulative[m]:
            m += 1
        p = params[m]
        nx = p[0] * x + p[1] * y + p[2] * z + p[9]
        ny = p[3] * x + p[4] * y + p[5] * z + p[10]
        nz = p[6] * x + p[7] * y + p[8] * z + p[11]
        x = nx
        y = ny
        z = nz
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z
        if np.isfinite(x + y + z):
            low = min(low, x, y, z)
            high = max(high, x, y, z)
            sum_x += x
            sum_y += y
            sum_z += z
            count += 1
    if count == 0 or not (high > low) or not np.isfinite(high - low):
        return 0.0, 0.0, 0.0, 0.0, 0.0
    scale = 2.0 / (high - low)
    shift = low * scale + 1.0
    centre_x = sum_x / count * scale - shift
    centre_y = sum_y / count * scale - shift
    centre_z = sum_z / count * scale - shift
    return scale, shift + centre_x, shift + centre_y, shift + centre_z, 1.0


def point_cloud(system: System3D, key: int, n_points: int) -> np.ndarray:
    """n_points x 3 normalised and centred cloud; NaN rows mark points of a diverging system."""
    points = np.empty((n_points, 3))
    scale, *offset, valid = _chaos_game(system.params, np.cumsum(system.probabilities),
                                        np.uint64(key), points)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(points.sum(axis=1)) & bool(valid)
        points = points * scale - np.array(offset)
    points[~finite] = np.nan
    return points


@numba.njit(cache=True)
def _search_variances(params: np.ndarray, cumulative: np.ndarray, key: np.uint64,
                      points: np.ndarray) -> np.ndarray:
    """Per-axis variances of the normalised cloud, or NaNs if any point is not finite."""
    scale, offset_x, offset_y, offset_z, valid = _chaos_game(params, cumulative, key, points)
    variances = np.full(3, np.nan)
    if valid == 0.0:
        return variances
    # Scale before summing: raw points of an expanding system can be near the float limit.
    n = points.shape[0]
    means = np.zeros(3)
    for i in range(n):
        if not np.isfinite(points[i, 0] + points[i, 1] + points[i, 2]):
            return variances
        for axis in range(3):
            means[axis] += points[i, axis] * scale
    means /= n
    squares = np.zeros(3)
    for i in range(n):
        for axis in range(3):
            d = points[i, axis] * scale - means[axis]
            squares[axis] += d * d
    return squares / n


def search_variances(system: System3D, key: int, n_points: int) -> np.ndarray | None:
    """Variances along x, y, z of the normalised cloud; None when any point is not finite.

    The same figures as axis_variances(point_cloud(...)) without materialising the cloud in
    NumPy, since a category search evaluates about a hundred systems.
    """
    variances = _search_variances(system.params, np.cumsum(system.probabilities),
                                  np.uint64(key), np.empty((n_points, 3)))
    return None if np.isnan(variances).any() else variances


def axis_variances(points: np.ndarray) -> np.ndarray:
    """Variance along x, y, z of the finite points (zeros when none are finite)."""
    finite = points[np.isfinite(points).all(axis=1)]
    return finite.var(axis=0) if len(finite) else np.zeros(3)


def view_basis(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """[B, 3, 3] camera bases (rows: screen right, screen up, viewing direction) of cameras
    looking at the origin from direction -forward, as glm.lookAt builds them.

    At elevation 0 this is the reference's camera: its view direction is the x axis rotated by
    `azimuth` about y, (cos a, 0, -sin a), with y up (image_render/render.py:164-172); right is
    forward x up = (sin a, 0, cos a). A nonzero elevation tilts forward towards +y and keeps
    right horizontal, so up stays the image's vertical.
    """
    ca, sa = np.cos(azimuth), np.sin(azimuth)
    ce, se = np.cos(elevation), np.sin(elevation)
    zero = np.zeros_like(ca)
    right = np.stack([sa, zero, ca], axis=-1)
    up = np.stack([-ca * se, ce, sa * se], axis=-1)
    forward = np.stack([ce * ca, se, -ce * sa], axis=-1)
    return np.ascontiguousarray(np.stack([right, up, forward], axis=-2), dtype=np.float64)


@numba.njit(cache=True)
def uniforms(keys: np.ndarray, counter: int) -> np.ndarray:
    """The counter-th uniform [0, 1) draw of each key (one per image of a batch)."""
    out = np.empty(keys.shape[0])
    for b in range(keys.shape[0]):
        out[b] = draw_uniform(keys[b], np.uint64(counter))
    return out


@numba.njit(cache=True)
def _render_batch(params: np.ndarray, map_offsets: np.ndarray, cumulative: np.ndarray,
                  point_keys: np.ndarray, patch_keys: np.ndarray, bases: np.ndarray,
                  n_points: int, camera_distance: float, focal: float, near: float, far: float,
                  gray: int, patch: bool, canvas: np.ndarray, starts: np.ndarray,
                  counts: np.ndarray, weights: np.ndarray, rows: np.ndarray,
                  out: np.ndarray) -> None:
    """Draw image b from maps map_offsets[b]:map_offsets[b+1] seen through bases[b] on the
    render canvas, then area-resize it into out[b] (drawn in place when the sizes agree)."""
    size = canvas.shape[0]
    resize = size != out.shape[1]
    points = np.empty((n_points, 3))
    half = 0.5 * size
    value = np.uint8(gray)
    for b in range(out.shape[0]):
        image = canvas if resize else out[b]  # out starts zeroed; the canvas is reused
        if resize:
            canvas[:] = 0
        start = map_offsets[b]
        stop = map_offsets[b + 1]
        scale, offset_x, offset_y, offset_z, valid = _chaos_game(
            params[start:stop], cumulative[start:stop], point_keys[b], points)
        if valid == 0.0:
            continue
        r = bases[b]
        for i in range(n_points):
            x0 = points[i, 0]
            y0 = points[i, 1]
            z0 = points[i, 2]
            if not np.isfinite(x0 + y0 + z0):
                continue
            x0 = x0 * scale - offset_x
            y0 = y0 * scale - offset_y
            z0 = z0 * scale - offset_z
            depth = camera_distance + r[2, 0] * x0 + r[2, 1] * y0 + r[2, 2] * z0
            if depth < near or depth > far:  # the frustum's near and far planes clip points
                continue
            inverse = half * focal / depth
            # Window coordinates with y up; glReadPixels returns the bottom row first and the
            # reference saves that array as is, so row = window y (the saved image is flipped).
            col = int(np.floor(half + (r[0, 0] * x0 + r[0, 1] * y0 + r[0, 2] * z0) * inverse))
            row = int(np.floor(half + (r[1, 0] * x0 + r[1, 1] * y0 + r[1, 2] * z0) * inverse))
            if patch:
                # Two masks per 64 random bits (multiply-shift to 1..511): point i uses
                # half i & 1 of draw i >> 1.
                bits = draw_bits(patch_keys[b], np.uint64(i >> 1))
                half_bits = (bits >> np.uint64(32)) if i & 1 else (bits & np.uint64(0xFFFFFFFF))
                mask = 1 + np.int64((half_bits * np.uint64(511)) >> np.uint64(32))
                if 1 <= row < size - 1 and 1 <= col < size - 1:
                    # Branch-free: pixels are 0 or `value`, so OR-ing switches cells on.
                    for cell in range(9):
                        on = np.uint8((mask >> cell) & 1)
                        image[row + cell // 3 - 1, col + cell % 3 - 1] |= on * value
                else:
                    for cell in range(9):
                        rr = row + cell // 3 - 1
                        cc = col + cell % 3 - 1
                        if (mask >> cell) & 1 and 0 <= rr < size and 0 <= cc < size:
                            image[rr, cc] = value
            elif 0 <= row < size and 0 <= col < size:
                image[row, col] = value
        if resize:
            area_resize_into(canvas, out[b], starts, counts, weights, rows)


def render_views(systems: list[System3D], point_keys: np.ndarray, patch_keys: np.ndarray,
                 bases: np.ndarray, *, n_points: int, render_size: int, image_size: int,
                 camera_distance: float, fov_degrees: float, near: float, far: float,
                 gray: int, patch: bool) -> np.ndarray:
    """uint8 [B, image_size, image_size]: system b's cloud seen through camera bases[b].

    The camera sits at `camera_distance` from the origin looking at it, with a perspective of
    `fov_degrees` across the image and clipping planes at depths `near` and `far`; points are
    `gray` on black, one pixel each or a 3x3 patch with a random non-empty mask per point
    (FractalDB's patch rendering), drawn at render_size and area-resized to image_size.
    """
    out = np.zeros((len(systems), image_size, image_size), dtype=np.uint8)
    if not systems:
        return out
    params = np.concatenate([s.params for s in systems])
    cumulative = np.concatenate([np.cumsum(s.probabilities) for s in systems])
    map_offsets = np.concatenate([[0], np.cumsum([s.num_maps for s in systems])]).astype(np.int64)
    focal = 1.0 / np.tan(np.radians(fov_degrees) / 2.0)
    canvas = np.zeros((render_size, render_size), dtype=np.uint8)
    starts, counts, weights = area_taps(render_size, image_size)
    _render_batch(params, map_offsets, cumulative, point_keys.astype(np.uint64),
                  patch_keys.astype(np.uint64), np.ascontiguousarray(bases, np.float64),
                  n_points, float(camera_distance), float(focal), float(near), float(far),
                  int(gray), bool(patch), canvas, starts, counts, weights,
                  resize_scratch(render_size, image_size), out)
    return out
