"""IFS systems: the sigma-factor constraint, |det| probabilities, samplers and JSON storage."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.ifs import IFSSystem, sample_sigma_factor, sample_uniform
from fdsl_ray.formulas.rng import rng_for


def _singular_values(system: IFSSystem) -> np.ndarray:
    return np.array([np.linalg.svd(row[:4].reshape(2, 2), compute_uv=False)
                     for row in system.maps])


@pytest.mark.parametrize("n_maps", [1, 2, 3, 5])
def test_sigma_factor_meets_the_constraint(n_maps):
    rng = rng_for(7, n_maps)
    for _ in range(50):
        sigma = rng.uniform(0.01, 3 * n_maps)
        system = sample_sigma_factor(rng, n_maps, sigma)
        singular = _singular_values(system)
        assert np.all(singular <= 1 + 1e-12) and np.all(singular >= 0)
        assert np.all(singular[:, 0] >= singular[:, 1] - 1e-12)
        assert singular[:, 0].sum() + 2 * singular[:, 1].sum() == pytest.approx(sigma, abs=1e-9)
        assert np.all(np.abs(system.maps[:, 4:]) <= 1)


def test_sigma_factor_reaches_both_ends():
    assert np.allclose(_singular_values(sample_sigma_factor(rng_for(1), 2, 6.0)), 1.0)
    tiny = _singular_values(sample_sigma_factor(rng_for(1), 2, 1e-6))
    assert tiny.max() <= 1e-6


@pytest.mark.parametrize("sigma", [0.0, -1.0, 6.01])
def test_impossible_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match=rf"sigma={sigma} is impossible for n_maps=2: .*\(0, 6\]"):
        sample_sigma_factor(rng_for(0), 2, sigma)


def test_probabilities_follow_determinants():
    maps = np.array([[0.5, 0.0, 0.0, 0.5, 0, 0], [1.0, 0.0, 0.0, -0.5, 0, 0],
                     [0.2, 0.3, 0.4, 0.9, 0, 0]])
    dets = np.array([0.25, 0.5, 0.2 * 0.9 - 0.3 * 0.4])
    np.testing.assert_allclose(IFSSystem(maps).probabilities, dets / dets.sum())
    assert IFSSystem(maps).cumulative[-1] == 1.0


def test_zero_determinant_still_gives_probabilities():
    singular = IFSSystem(np.array([[1.0, 1.0, 1.0, 1.0, 0, 0], [0, 0, 0, 0, 1, 1]]))
    np.testing.assert_allclose(singular.probabilities, [0.5, 0.5])
    mixed = IFSSystem(np.array([[0.5, 0, 0, 0.5, 0, 0], [0, 0, 0, 0, 1, 1]]))
    assert 0 < mixed.probabilities[1] < 1e-6


def test_sample_uniform_draws_every_parameter_in_range():
    system = sample_uniform(rng_for(3), 7)
    assert system.maps.shape == (7, 6)
    assert np.all(np.abs(system.maps) <= 1) and np.unique(system.maps).size == 42


def test_samplers_are_pure_functions_of_the_generator_seed():
    assert sample_sigma_factor(rng_for(5, 1), 3, 4.0) == sample_sigma_factor(rng_for(5, 1), 3, 4.0)
    assert sample_sigma_factor(rng_for(5, 1), 3, 4.0) != sample_sigma_factor(rng_for(5, 2), 3, 4.0)


def test_json_round_trip_is_exact():
    system = IFSSystem(sample_sigma_factor(rng_for(11), 4, 5.3).maps, [0.1, 0.2, 0.3, 1 / 3])
    back = IFSSystem.from_json(system.to_json())
    assert back == system
    assert back.maps.tobytes() == system.maps.tobytes()
    assert back.probabilities.tobytes() == system.probabilities.tobytes()


def test_systems_are_read_only():
    system = sample_uniform(rng_for(0), 2)
    with pytest.raises(ValueError):
        system.maps[0, 0] = 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "not an IFS system JSON"), ('{"maps": [[1, 2, 3]]}', "not an IFS system JSON"),
     ('{"maps": [[1, 2, 3]], "probabilities": [1]}', r"maps has shape \(1, 3\)"),
     ('{"maps": [[1, 0, 0, 1, 0, 0]], "probabilities": [-1]}', "probabilities must be")],
)
def test_bad_json_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        IFSSystem.from_json(text)


def test_non_finite_maps_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        IFSSystem(np.array([[np.nan, 0, 0, 1, 0, 0]]))
