"""1-D Perlin noise exactly as the `noise` package's `pnoise1(x)` computes it (the reference's
RCDB renderer calls it with its defaults: octaves 1, repeat 1024, base 0).

What `noise` 1.2.3 (`_perlin.c`, `noise1` and `grad1`) does, re-derived here: x is rounded to
float32 and all arithmetic is float32. The lattice point floor(x) picks a hash from Ken
Perlin's permutation table (index floor(x) mod 256: repeat 1024 is a multiple of 256, so it
never changes the index, and base 0 adds nothing). The hash h gives the slope g = (h & 7) + 1,
except that h & 8 gives g = -1, not -g (the package's quirk: slopes 1..8 one way, only 1 the
other; the spread at uniform positions is 0.33). The value is 0.4 lerp(f, g0 t, g1 (t - 1))
with t = x - floor(x) and the quintic fade f = t^3 (t (6 t - 15) + 10), each product in the C
order. tests/formulas/test_perlin.py pins values recorded from the package.

The curve has no key: like the reference, callers get their randomness from where they sample
it.
"""

from __future__ import annotations

import numba
import numpy as np

# Ken Perlin's permutation of 0..255 ("Improved Noise", 2002), the table `noise` hashes with.
PERMUTATION = np.array([
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225, 140, 36, 103, 30,
    69, 142, 8, 99, 37, 240, 21, 10, 23, 190, 6, 148, 247, 120, 234, 75, 0, 26, 197, 62, 94,
    252, 219, 203, 117, 35, 11, 32, 57, 177, 33, 88, 237, 149, 56, 87, 174, 20, 125, 136,
    171, 168, 68, 175, 74, 165, 71, 134, 139, 48, 27, 166, 77, 146, 158, 231, 83, 111, 229,
    122, 60, 211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54, 65, 25,
    63, 161, 1, 216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169, 200, 196, 135, 130, 116,
    188, 159, 86, 164, 100, 109, 198, 173, 186, 3, 64, 52, 217, 226, 250, 124, 123, 5, 202,
    38, 147, 118, 126, 255, 82, 85, 212, 207, 206, 59, 227, 47, 16, 58, 17, 182, 189, 28,
    42, 223, 183, 170, 213, 119, 248, 152, 2, 44, 154, 163, 70, 221, 153, 101, 155, 167, 43,
    172, 9, 129, 22, 39, 253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104, 218,
    246, 97, 228, 251, 34, 242, 193, 238, 210, 144, 12, 191, 179, 162, 241, 81, 51, 145,
    235, 249, 14, 239, 107, 49, 192, 214, 31, 181, 199, 106, 157, 184, 84, 204, 176, 115,
    121, 50, 45, 127, 4, 150, 254, 138, 236, 205, 93, 222, 114, 67, 29, 24, 72, 243, 141,
    128, 195, 78, 66, 215, 61, 156, 180
], dtype=np.int64)
# The slope each lattice hash gives (see the module docstring).
_SLOPES = np.where(PERMUTATION & 8, -1, (PERMUTATION & 7) + 1).astype(np.float32)
_SLOPES.flags.writeable = False


@numba.njit(cache=True)
def pnoise1(x: float) -> float:
    """noise.pnoise1(x) with its default arguments, bit for bit (a float32 value as float)."""
    at = np.float32(x)
    floor = np.floor(at)
    lattice = np.int64(floor)
    t = at - floor
    fade = t * t * t * (t * (t * np.float32(6.0) - np.float32(15.0)) + np.float32(10.0))
    left = _SLOPES[lattice & 255] * t
    right = _SLOPES[(lattice + 1) & 255] * (t - np.float32(1.0))
    return float((left + fade * (right - left)) * np.float32(0.4))


@numba.njit(cache=True)
def _pnoise1_many(xs: np.ndarray, out: np.ndarray) -> None:
    for i in range(xs.size):
        out[i] = pnoise1(xs[i])


def pnoise1_array(xs: np.ndarray) -> np.ndarray:
    """pnoise1 at each of `xs` (any shape), for callers outside numba."""
    xs = np.asarray(xs, dtype=np.float64)
    out = np.empty(xs.size, dtype=np.float64)
    _pnoise1_many(xs.reshape(-1), out)
    return out.reshape(xs.shape)
