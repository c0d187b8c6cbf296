"""1p-frac: base and category systems, filling rejection, reproducibility from JSON, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.chaos import filling_rates
from fdsl_ray.formulas.ifs import IFSSystem
from fdsl_ray.formulas.registry import create_generator

SMALL = {"image_size": 48, "n_points": 3000, "num_categories": 12}


@pytest.fixture(scope="module")
def onepfrac():
    return create_generator("onepfrac", **SMALL)


def _sigma_of(system: IFSSystem) -> float:
    singular = np.array([np.linalg.svd(row[:4].reshape(2, 2), compute_uv=False)
                         for row in system.maps])
    return float(singular[:, 0].sum() + 2 * singular[:, 1].sum())


def test_published_defaults():
    config = create_generator("onepfrac").config
    expected = {"delta": 0.1, "sigma": 3.5, "n_maps": 2, "sigma_jitter": 0.1,
                "filling_threshold": 0.05, "num_categories": 1000, "images_per_category": 1,
                "image_size": 224, "n_points": 100_000, "patch": True, "flips": True,
                "base_system": None}
    assert {key: config[key] for key in expected} == expected


def test_base_system_meets_sigma_within_jitter(onepfrac):
    base = onepfrac.base_system
    assert base.n_maps == 2
    assert 3.4 - 1e-9 <= _sigma_of(base) <= 3.6 + 1e-9


def test_categories_scale_every_parameter_within_delta(onepfrac):
    base = onepfrac.base_system
    systems = [onepfrac.category_system(label) for label in range(onepfrac.num_classes)]
    for system in systems:
        ratios = system.maps / base.maps
        assert np.all((ratios >= 0.9) & (ratios <= 1.1))
        np.testing.assert_array_equal(system.probabilities, base.probabilities)
    assert len({system.maps.tobytes() for system in systems}) == len(systems)


def test_delta_zero_gives_one_shape_for_every_category():
    generator = create_generator("onepfrac", delta=0.0, **SMALL)
    for label in range(generator.num_classes):
        assert generator.category_system(label) == generator.base_system


def test_no_accepted_category_fills_at_or_below_the_threshold():
    # The median of unfiltered categories as threshold: about half the first draws fail.
    loose = create_generator("onepfrac", filling_threshold=0.0, **SMALL)
    labels = np.arange(loose.num_classes)
    threshold = float(np.median(filling_rates(loose.render(labels, np.zeros_like(labels)))))
    strict = create_generator(**{**loose.pinned_config, "filling_threshold": threshold})
    images = strict.render(labels, np.zeros_like(labels))
    assert np.all(filling_rates(images) > threshold)
    redrawn = [label for label in labels
               if strict.category_system(label) != loose.category_system(label)]
    assert len(redrawn) >= 3


def test_same_ids_give_the_same_bytes_in_any_batch(onepfrac):
    labels = np.array([0, 5, 11, 5, 3])
    instances = np.array([0, 2, 7, 9, 1])
    batch = onepfrac.render(labels, instances)
    fresh = create_generator(**onepfrac.config)
    reversed_batch = fresh.render(labels[::-1], instances[::-1])
    np.testing.assert_array_equal(reversed_batch[::-1], batch)
    np.testing.assert_array_equal(onepfrac.render(labels[2:3], instances[2:3])[0], batch[2])


def test_instances_differ_by_masks_and_flips_only():
    generator = create_generator("onepfrac", patch=False, **SMALL)
    images = generator.render(np.full(5, 4), np.arange(5))
    np.testing.assert_array_equal(images[1], images[0][:, ::-1])
    np.testing.assert_array_equal(images[2], images[0][::-1])
    np.testing.assert_array_equal(images[3], images[0][::-1, ::-1])
    np.testing.assert_array_equal(images[4], images[0])


def test_patch_instances_differ():
    generator = create_generator("onepfrac", flips=False, **SMALL)
    images = generator.render(np.full(3, 4), np.arange(3))
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


def test_pinned_base_reproduces_the_images_exactly(onepfrac):
    labels, instances = np.arange(6), np.arange(6)
    pinned = onepfrac.pinned_config
    assert IFSSystem.from_json(pinned["base_system"]) == onepfrac.base_system
    rebuilt = create_generator(**pinned)
    np.testing.assert_array_equal(rebuilt.render(labels, instances),
                                  onepfrac.render(labels, instances))
    other_seed = create_generator(**{**pinned, "seed": 99})
    assert other_seed.base_system == onepfrac.base_system


def test_seeds_give_different_bases():
    first = create_generator("onepfrac", seed=1, **SMALL)
    second = create_generator("onepfrac", seed=2, **SMALL)
    assert first.base_system != second.base_system


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"delta": 1.0}, r"delta=1.0 is out of range: must be in \[0.0, 1.0\)"),
     ({"delta": -0.1}, r"delta=-0.1 is out of range"),
     ({"sigma": 7.0}, r"sigma=7.0 is impossible for n_maps=2: must be in \(0, 6\]"),
     ({"sigma": 6.0}, r"sigma \+ sigma_jitter=6.1 is impossible for n_maps=2"),
     ({"n_maps": 0}, r"n_maps=0 is out of range"),
     ({"filling_threshold": 1.0}, r"filling_threshold=1.0 is out of range"),
     ({"patch": "yes"}, r"patch='yes' must be true or false"),
     ({"base_system": "[1, 2]"}, r"base_system is invalid"),
     ({"max_attempts": 0}, r"max_attempts=0 is out of range")],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        create_generator("onepfrac", **{**SMALL, **overrides})


def test_unmeetable_threshold_names_the_settings(onepfrac):
    with pytest.raises(ValueError, match=r"no draw of the base system passed "
                                         r"filling_threshold=0.99 in max_attempts=5 draws"):
        create_generator("onepfrac", filling_threshold=0.99, max_attempts=5, **SMALL)
    pinned = create_generator(**{**onepfrac.pinned_config, "filling_threshold": 0.99,
                                 "max_attempts": 5})
    with pytest.raises(ValueError, match=r"no draw of category 2 passed filling_threshold=0.99"):
        pinned.render([2], [0])
