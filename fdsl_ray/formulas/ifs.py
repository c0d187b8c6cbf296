"""Iterated function systems: the maps, their probabilities, JSON storage and two samplers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from fdsl_ray.formulas.validation import check_int

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
        maps.flags.writeable = False
        probabilities.flags.writeable = False
        object.__setattr__(self, "maps", maps)
        object.__setattr__(self, "probabilities", probabilities)

    @property
    def n_maps(self) -> int:
        return self.maps.shape[0]

    @property
    def cumulative(self) -> np.ndarray:
        """Cumulative probabilities with the last entry exactly 1, for the chaos game."""
        cumulative = np.cumsum(self.probabilities)
        cumulative[-1] = 1.0
        return cumulative

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


def _rotation(angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def check_sigma(sigma: float, n_maps: int, field: str = "sigma") -> None:
    """Each map contributes s1 + 2 s2 in [0, 3], so N maps reach exactly (0, 3N]."""
    if not (0 < sigma <= 3 * n_maps):
        raise ValueError(f"{field}={sigma} is impossible for n_maps={n_maps}: "
                         f"must be in (0, {3 * n_maps}]")


def _sample_singular_values(rng: np.random.Generator, n_maps: int, sigma: float) -> np.ndarray:
    """Pairs 1 >= s1 >= s2 >= 0 with sum(s1 + 2 s2) = sigma (WACV 2022 sigma-factor).

    Each map takes a share t of what is left, bounded so the remaining maps can still meet
    sigma; the last map takes the rest exactly. Map order is shuffled so no index is special.
    """
    values = np.empty((n_maps, 2))
    remaining = sigma
    for index in range(n_maps):
        maps_after = n_maps - 1 - index
        low, high = max(0.0, remaining - 3.0 * maps_after), min(3.0, remaining)
        share = high if maps_after == 0 else rng.uniform(low, high)
        s1 = rng.uniform(share / 3.0, min(1.0, share))
        s2 = (share - s1) / 2.0
        values[index] = (s1, min(s2, s1))
        remaining -= share
    return values[rng.permutation(n_maps)]


def sample_sigma_factor(rng: np.random.Generator, n_maps: int, sigma: float) -> IFSSystem:
    """A_i = R(theta) diag(s1, s2) R(phi) D with random sign flips D; b_i ~ U(-1, 1)."""
    check_int("n_maps", n_maps, 1)
    check_sigma(sigma, n_maps)
    singular = _sample_singular_values(rng, n_maps, sigma)
    maps = np.empty((n_maps, 6))
    for index, (s1, s2) in enumerate(singular):
        theta, phi = rng.uniform(0.0, 2.0 * math.pi, size=2)
        signs = np.diag(rng.choice([-1.0, 1.0], size=2))
        matrix = _rotation(theta) @ np.diag([s1, s2]) @ _rotation(phi) @ signs
        maps[index, :4] = matrix.reshape(-1)
        maps[index, 4:] = rng.uniform(-1.0, 1.0, size=2)
    return IFSSystem(maps)


def sample_uniform(rng: np.random.Generator, n_maps: int) -> IFSSystem:
    """FractalDB's category sampler: all six parameters of every map U(-1, 1)."""
    check_int("n_maps", n_maps, 1)
    return IFSSystem(rng.uniform(-1.0, 1.0, size=(n_maps, 6)))
