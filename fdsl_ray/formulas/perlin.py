"""1-D gradient (Perlin) noise in numba, keyed like every other draw of the project.

The gradients at integer lattice points come from `draw_uniform(key, lattice)`, so a noise
curve is a pure function of its key: no permutation table, no shared state.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from fdsl_ray.formulas.rng import draw_uniform


@numba.njit(inline="always", cache=True)
def _gradient(key: np.uint64, lattice: np.int64) -> float:
    return 2.0 * draw_uniform(key, np.uint64(lattice)) - 1.0


@numba.njit(cache=True)
def perlin1d(key: np.uint64, x: float) -> float:
    """Smooth noise in [-1, 1] that is 0 at integers; gradients in [-1, 1] give at most 0.5,
    which the factor 2 stretches to the full range."""
    lattice = np.int64(math.floor(x))
    t = x - lattice
    left = _gradient(key, lattice) * t
    right = _gradient(key, lattice + 1) * (t - 1.0)
    fade = t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
    return 2.0 * (left + fade * (right - left))


@numba.njit(cache=True)
def _perlin1d_many(key: np.uint64, xs: np.ndarray) -> np.ndarray:
    out = np.empty(xs.size, dtype=np.float64)
    for i in range(xs.size):
        out[i] = perlin1d(key, xs[i])
    return out


def perlin1d_array(key: int, xs: np.ndarray) -> np.ndarray:
    """Noise at each of `xs` (any shape), for callers outside numba."""
    xs = np.asarray(xs, dtype=np.float64)
    return _perlin1d_many(np.uint64(key), xs.reshape(-1)).reshape(xs.shape)
