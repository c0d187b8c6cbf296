"""1p-frac: base and category systems, filling rejection, reproducibility from JSON, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.generators.onepfrac import CATEGORY_STREAM
from fdsl_ray.formulas.ifs import IFSSystem
from fdsl_ray.formulas.registry import create_generator
from fdsl_ray.formulas.rng import rng_for

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
                "image_size": 224, "render_size": 512, "n_points": 100_000, "patch": True,
                "flips": True, "map_sequence": "shared", "warmup_points": 0,
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
    """The check is the reference's 512 px patch render of instance 0, whatever the output
    size; the median of unfiltered first draws as threshold redraws about half of them."""
    loose = create_generator("onepfrac", filling_threshold=0.0, **SMALL)
    labels = range(loose.num_classes)
    first = [loose.category_filling(loose.category_system(label), label) for label in labels]
    threshold = float(np.median(first))
    strict = create_generator(**{**loose.pinned_config, "filling_threshold": threshold})
    for label in labels:
        assert strict.category_filling(strict.category_system(label), label) > threshold
    redrawn = [label for label in labels
               if strict.category_system(label) != loose.category_system(label)]
    assert len(redrawn) >= 3


# The reference renderer (1p-frac_generater/src/ifs_function.py `draw_patch` at 512 px, pad 6,
# 100k points, threshold 0.05, its own random masks) run on these same 96 systems rejected 46;
# ours rejects 47, with the same decision on 95 of the 96.
OUR_REJECTED = 47


def test_reference_rejection_rate_on_fixed_draws():
    """sigma 3.5, delta 0.1, threshold 0.05: the first draws of 8 categories of 12 bases; about
    half are rejected, as in the reference."""
    rejected = 0
    for seed in range(12):
        generator = create_generator("onepfrac", seed=seed, num_categories=8)
        for label in range(8):
            factors = rng_for(seed, CATEGORY_STREAM, label, 0).uniform(0.9, 1.1, size=(2, 6))
            system = generator.base_system.scaled(factors)
            rejected += generator.category_filling(system, label) <= 0.05
    assert rejected == OUR_REJECTED


def test_delta_zero_categories_share_one_shape_with_the_shared_sequence():
    labels, instances = np.arange(4), np.zeros(4, dtype=np.int64)
    shared = create_generator("onepfrac", delta=0.0, patch=False, **SMALL)
    images = shared.render(labels, instances)
    assert all(np.array_equal(image, images[0]) for image in images)
    keyed = create_generator("onepfrac", delta=0.0, patch=False, map_sequence="per-category",
                             **SMALL)
    images = keyed.render(labels, instances)
    assert len({image.tobytes() for image in images}) == 4


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
    np.testing.assert_array_equal(images[1], images[0][::-1])
    np.testing.assert_array_equal(images[2], images[0][:, ::-1])
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
    pinned = create_generator(**{**onepfrac.pinned_config, "filling_threshold": 0.99,
                                 "max_attempts": 5})
    with pytest.raises(ValueError, match=r"no draw of category 2 filled more than "
                                         r"filling_threshold=0.99 of the 512 px check render "
                                         r"in max_attempts=5 draws \(seed=0"):
        pinned.render([2], [0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"render_size": 32, "image_size": 48}, r"render_size=32 is smaller than image_size=48"),
     ({"render_size": 12, "image_size": 8}, r"render_size=12 is too small for the 6 px margin"),
     ({"map_sequence": "fresh"}, r"map_sequence='fresh' is not allowed: must be one of shared"),
     ({"warmup_points": 3000}, r"warmup_points=3000 is out of range: must be in \[0, 2999\]")],
)
def test_render_settings_are_checked_before_rendering(overrides, message):
    with pytest.raises(ValueError, match=message):
        create_generator("onepfrac", **{**SMALL, **overrides})
