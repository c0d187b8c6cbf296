"""IFS systems: the sigma-factor constraint, |det| probabilities, samplers and JSON storage."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.ifs import (
    IFSSystem,
    sample_sigma_factor,
    sample_singular_values,
    sample_uniform,
)
from fdsl_ray.formulas.rng import rng_for


def _singular_values(system: IFSSystem) -> np.ndarray:
    return np.array([np.linalg.svd(row[:4].reshape(2, 2), compute_uv=False)
                     for row in system.maps])


# Recorded from the reference sampler (SUPER-TADORY/1p-frac 1p-frac_generater/src/utils.py
# `sample_system(2, beta=(3.4, 3.6), rng=np.random.default_rng(2024))`, run beside ours on
# 250 generator states: identical to the bit).
REFERENCE_MAPS_2024 = [
    [0.33684166768839746, 0.21274047182555683, -0.41143124170613604, -0.25445147711697036,
     0.9512443952570753, 0.5988568769029938],
    [-0.8813185270343157, -0.27835009877118544, -0.33341527209841887, 0.894146408698857,
     0.19364473340823718, -0.349300689834555],
]
REFERENCE_SIGMA_2024 = 3.421077135949675


def test_sigma_factor_sampler_draws_as_the_reference():
    system, sigma = sample_sigma_factor(np.random.default_rng(2024), 2, 3.4, 3.6)
    assert sigma == REFERENCE_SIGMA_2024
    assert system.maps.tolist() == REFERENCE_MAPS_2024


def test_first_singular_value_follows_the_reference_bounds():
    """N = 2, sigma 3.5: the first pair's s1 ~ U(max(0, q / 3), min(1, p)) with q = sigma - 3,
    p = sigma, i.e. U(1/6, 1); its s2 ~ U(max(0, (q - s1) / 2), min(s1, (p - s1) / 2))."""
    from scipy import stats

    rng = rng_for(3)
    pairs = np.array([sample_singular_values(rng, 2, 3.5)[0] for _ in range(4000)])
    assert stats.kstest(pairs[:, 0], stats.uniform(1 / 6, 5 / 6).cdf).pvalue > 0.01
    low = np.maximum(0.0, (0.5 - pairs[:, 0]) / 2)
    high = np.minimum(pairs[:, 0], (3.5 - pairs[:, 0]) / 2)
    position = (pairs[:, 1] - low) / (high - low)
    assert stats.kstest(position, stats.uniform(0, 1).cdf).pvalue > 0.01


@pytest.mark.parametrize("n_maps", [1, 2, 3, 5])
def test_sigma_factor_meets_the_constraint(n_maps):
    rng = rng_for(7, n_maps)
    for _ in range(50):
        low = rng.uniform(0.01, 3 * n_maps - 0.01)
        system, sigma = sample_sigma_factor(rng, n_maps, low, min(low + 0.2, 3 * n_maps))
        singular = _singular_values(system)
        assert np.all(singular <= 1 + 1e-12) and np.all(singular >= 0)
        assert np.all(singular[:, 0] >= singular[:, 1] - 1e-12)
        assert singular[:, 0].sum() + 2 * singular[:, 1].sum() == pytest.approx(sigma, abs=1e-9)
        assert np.all(np.abs(system.maps[:, 4:]) <= 1)


def test_sigma_factor_reaches_both_ends():
    full, _ = sample_sigma_factor(rng_for(1), 2, 6.0, 6.0)
    assert np.allclose(_singular_values(full), 1.0)
    tiny, _ = sample_sigma_factor(rng_for(1), 2, 1e-6, 1e-6)
    assert _singular_values(tiny).max() <= 1e-6


@pytest.mark.parametrize("sigma", [0.0, -1.0, 6.01])
def test_impossible_sigma_is_refused(sigma):
    with pytest.raises(ValueError,
                       match=rf"sigma_low={sigma} is impossible for n_maps=2: .*\(0, 6\]"):
        sample_sigma_factor(rng_for(0), 2, sigma, 3.0)


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
    def draw(*words):
        return sample_sigma_factor(rng_for(*words), 3, 4.0, 4.2)[0]

    assert draw(5, 1) == draw(5, 1)
    assert draw(5, 1) != draw(5, 2)


def test_json_round_trip_is_exact():
    system = IFSSystem(sample_sigma_factor(rng_for(11), 4, 5.3, 5.3)[0].maps,
                       [0.1, 0.2, 0.3, 1 / 3])
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
