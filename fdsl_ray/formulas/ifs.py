"""Iterated function systems: the maps, their probabilities, JSON storage and two samplers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from fdsl_ray.validation import check_int

# A zero-determinant map still gets a (tiny) share, so degenerate systems stay renderable.
DET_FLOOR = 1e-9


@dataclass(frozen=True, eq=False)
class IFSSystem:
    """N affine maps x' = a x + b y + e, y' = c x + d y + f, as rows (a, b, c, d, e, f).

    `probabilities` defaults to |det A_i| (floored) normalised; pass it explicitly to keep a
    parent system's probabilities, as 1p-frac and FractalDB instances do.
    """

    maps: np.ndarray
    probabilities: np.ndarray | None = None

    def __post_init__(self) -> None:
        maps = np.array(self.maps, dtype=np.float64)
        if maps.ndim != 2 or maps.shape[1] != 6 or maps.shape[0] < 1:
            raise ValueError(f"maps has shape {maps.shape}: must be [n_maps >= 1, 6]")
        if not np.all(np.isfinite(maps)):
            raise ValueError("maps contains non-finite values: all parameters must be finite")
        if self.probabilities is None:
            probabilities = determinant_probabilities(maps)
        else:
            probabilities = np.array(self.probabilities, dtype=np.float64)
            if probabilities.shape != (maps.shape[0],):
                raise ValueError(
                    f"probabilities has shape {probabilities.shape}: must be ({maps.shape[0]},)"
                )
            if not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
                raise ValueError("probabilities must be finite and >= 0")
            total = probabilities.sum()
            if not total > 0:
                raise ValueError("probabilities sum to 0: at least one must be > 0")
            if abs(total - 1.0) > 1e-9:  # already normalised ones keep their exact bits
                probabilities = probabilities / total
        cumulative = np.cumsum(probabilities)
        cumulative[-1] = 1.0
        for array in (maps, probabilities, cumulative):
            array.flags.writeable = False
        object.__setattr__(self, "maps", maps)
        object.__setattr__(self, "probabilities", probabilities)
        object.__setattr__(self, "_cumulative", cumulative)

    @property
    def n_maps(self) -> int:
        return self.maps.shape[0]

    @property
    def cumulative(self) -> np.ndarray:
        """Cumulative probabilities with the last entry exactly 1, for the chaos game."""
        return self._cumulative

    def scaled(self, factors: np.ndarray) -> IFSSystem:
        """Parameters multiplied element-wise by `factors`, with these probabilities kept."""
        return IFSSystem(self.maps * factors, self.probabilities)

    def to_json(self) -> str:
        # Python's float repr is the shortest string that parses back to the same double.
        return json.dumps(
            {"maps": self.maps.tolist(), "probabilities": self.probabilities.tolist()}
        )

    @classmethod
    def from_json(cls, text: str) -> IFSSystem:
        try:
            data = json.loads(text)
            return cls(np.array(data["maps"], dtype=np.float64),
                       np.array(data["probabilities"], dtype=np.float64))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(
                f"not an IFS system JSON ({error}): expected "
                '{"maps": [[a, b, c, d, e, f], ...], "probabilities": [...]}'
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IFSSystem):
            return NotImplemented
        return bool(np.array_equal(self.maps, other.maps)
                    and np.array_equal(self.probabilities, other.probabilities))

    __hash__ = None  # type: ignore[assignment]


def determinant_probabilities(maps: np.ndarray) -> np.ndarray:
    """p_i proportional to |det A_i| = |a d - b c|, floored so no map is impossible."""
    dets = np.abs(maps[:, 0] * maps[:, 3] - maps[:, 1] * maps[:, 2])
    weights = np.maximum(dets, DET_FLOOR)
    return weights / weights.sum()


def check_sigma(sigma: float, n_maps: int, field: str = "sigma") -> None:
    """Each map contributes s1 + 2 s2 in [0, 3], so N maps reach exactly (0, 3N]."""
    if not (0 < sigma <= 3 * n_maps):
        raise ValueError(f"{field}={sigma} is impossible for n_maps={n_maps}: "
                         f"must be in (0, {3 * n_maps}]")


def sample_singular_values(rng: np.random.Generator, n_maps: int, sigma: float) -> np.ndarray:
    """[n_maps, 2] pairs 1 >= s1 >= s2 >= 0 with sum(s1 + 2 s2) = sigma, drawn as the WACV 2022
    sampler draws them (catalys1/fractal-pretraining `fractal_learning/fractals/ifs.py`
    `sample_svs`; copied into SUPER-TADORY/1p-frac `1p-frac_generater/src/utils.py:14-51`):
    pair i < N - 1 takes s1 ~ U(max(0, q / 3), min(1, p)) then s2 ~ U(max(0, q / 2),
    min(s1, p / 2)), where p is what sigma has left and q - 3 what the maps after it cannot
    cover; the last pair takes s2 ~ U(max(0, (p - 1) / 2), p / 3) and s1 = p - 2 s2.
    The same draws in the same order, so a given generator state gives the reference's values.
    """
    values = np.empty((n_maps, 2))
    left = sigma
    shortfall = sigma - 3 * n_maps + 3
    for index in range(n_maps - 1):
        s1 = rng.uniform(max(0.0, shortfall / 3), min(1.0, left))
        shortfall -= s1
        left -= s1
        s2 = rng.uniform(max(0.0, shortfall / 2), min(s1, left / 2))
        shortfall = shortfall - 2 * s2 + 3
        left -= 2 * s2
        values[index] = s1, s2
    s2 = rng.uniform(max(0.0, (left - 1) / 2), left / 3)
    values[-1] = left - 2 * s2, s2
    return values


def sample_sigma_factor(rng: np.random.Generator, n_maps: int, sigma_low: float,
                        sigma_high: float) -> tuple[IFSSystem, float]:
    """(system, sigma) as 1p-frac draws its base (`utils.py:54-120` `sample_system` with
    constrain=True, bval=1, beta=(sigma_low, sigma_high)): A_i = U_i diag(s_i) V_i with
    U_i, V_i rotations by U(-pi, pi) after random sign flips of the axes, sigma ~
    U(sigma_low, sigma_high), singular values as `sample_singular_values`, b_i ~ U(-1, 1),
    in the reference's draw order (signs, angles, sigma, singular values, translations).
    """
    check_int("n_maps", n_maps, 1)
    check_sigma(sigma_low, n_maps, "sigma_low")
    check_sigma(sigma_high, n_maps, "sigma_high")
    signs = np.sign(rng.random((2 * n_maps, 2, 1)) - 0.5) * np.eye(2)
    angles = rng.uniform(-math.pi, math.pi, 2 * n_maps)
    rotations = np.empty((2 * n_maps, 2, 2))
    rotations[:, 0, 0] = rotations[:, 1, 1] = np.cos(angles)
    rotations[:, 1, 0] = np.sin(angles)
    rotations[:, 0, 1] = -rotations[:, 1, 0]
    axes = rotations @ signs
    sigma = float(rng.uniform(sigma_low, sigma_high))
    singular = sample_singular_values(rng, n_maps, sigma)
    matrices = axes[:n_maps] * singular[:, None, :] @ axes[n_maps:]
    translations = rng.uniform(-1.0, 1.0, (n_maps, 2))
    maps = np.concatenate([matrices.reshape(n_maps, 4), translations], axis=1)
    return IFSSystem(maps), sigma


def sample_uniform(rng: np.random.Generator, n_maps: int) -> IFSSystem:
    """FractalDB's category sampler: all six parameters of every map U(-1, 1)."""
    check_int("n_maps", n_maps, 1)
    return IFSSystem(rng.uniform(-1.0, 1.0, size=(n_maps, 6)))
