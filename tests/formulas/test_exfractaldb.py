"""ExFractalDB: pure-function rendering, the category acceptance rule, config and errors."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.generators.exfractaldb import CLOUDS_PER_CATEGORY, INSTANCE_WEIGHTS
from fdsl_ray.formulas.ifs3d import (
    System3D,
    axis_variances,
    point_cloud,
    sample_system,
    search_variances,
)
from fdsl_ray.formulas.registry import create_generator, list_generators

TINY = {"image_size": 48, "n_points": 2000, "search_points": 2000, "num_categories": 6}


def tiny(**overrides):
    return create_generator("exfractaldb", **{**TINY, **overrides})


def test_registered():
    assert "exfractaldb" in list_generators()


def test_shapes_dtype_and_nonempty():
    images = tiny().render(np.arange(6), np.arange(6))
    assert images.shape == (6, 48, 48) and images.dtype == np.uint8
    assert set(np.unique(images)) <= {0, 127}
    assert (images > 0).any(axis=(1, 2)).sum() >= 4


def test_same_bytes_whatever_the_batch():
    labels = np.array([0, 3, 5, 1, 3])
    instances = np.array([0, 7, 144, 200, 8])
    together = tiny(patch=True).render(labels, instances)
    fresh = tiny(patch=True)
    alone = np.stack([fresh.render(labels[i:i + 1], instances[i:i + 1])[0]
                      for i in reversed(range(len(labels)))][::-1])
    np.testing.assert_array_equal(together, alone)


def test_seed_and_instance_change_the_image():
    base = tiny().render(np.array([2, 2]), np.array([0, 1]))
    other_seed = tiny(seed=1).render(np.array([2]), np.array([0]))
    assert not np.array_equal(base[0], base[1])
    assert not np.array_equal(base[0], other_seed[0])


@pytest.mark.parametrize("threshold", [0.05, 0.07])
def test_accepted_categories_honour_variance_threshold(threshold):
    generator = tiny(variance_threshold=threshold)
    for label in range(generator.num_classes):
        cloud = generator.search_cloud(label)
        assert np.isfinite(cloud).all()
        assert (axis_variances(cloud) > threshold).all()
        assert 2 <= generator.category_system(label).num_maps <= 7


def test_normalisation_keeps_proportions_and_centres():
    # Halving maps towards corners of a 2 x 4 x 1 box: the attractor fills that box, so one
    # scale for all axes maps it to extents 1 x 2 x 0.5, centred on the origin.
    corners = [(0, 0, 0), (1, 0, 0), (0, 2, 0), (0, 0, 0.5)]
    half = np.diag([0.5, 0.5, 0.5]).reshape(-1)
    system = System3D.from_params(np.array([[*half, *corner] for corner in corners]))
    cloud = point_cloud(system, key=11, n_points=20_000)
    np.testing.assert_allclose(cloud.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(cloud.max(axis=0) - cloud.min(axis=0), [1.0, 2.0, 0.5], atol=0.02)


def test_instances_weight_one_parameter_of_every_map():
    generator = tiny()
    base = generator.category_system(1).params
    assert CLOUDS_PER_CATEGORY == 145
    np.testing.assert_array_equal(generator.cloud_system(1, 0).params, base)
    weighted = generator.cloud_system(1, 1 + 12 * 4 + 2).params
    np.testing.assert_array_equal(np.delete(weighted, 4, axis=1), np.delete(base, 4, axis=1))
    np.testing.assert_allclose(weighted[:, 4], base[:, 4] * INSTANCE_WEIGHTS[2])
    assert not np.array_equal(weighted[:, 4], base[:, 4])


def test_instance_ids_wrap_to_new_views_of_the_same_clouds():
    generator = tiny()
    system_a = generator.cloud_system(0, 5)
    system_b = generator.cloud_system(0, (5 + CLOUDS_PER_CATEGORY) % CLOUDS_PER_CATEGORY)
    np.testing.assert_array_equal(system_a.params, system_b.params)
    images = generator.render(np.array([0, 0]), np.array([5, 5 + CLOUDS_PER_CATEGORY]))
    assert not np.array_equal(images[0], images[1])


def test_config_round_trip():
    generator = tiny(patch=True, variance_threshold=0.08, seed=7)
    rebuilt = create_generator(**generator.config)
    assert rebuilt.config == generator.config
    labels, instances = np.array([0, 4]), np.array([3, 99])
    np.testing.assert_array_equal(generator.render(labels, instances),
                                  rebuilt.render(labels, instances))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"variance_threshold": 1.5}, r"variance_threshold=1.5 is out of range: must be in \[0.0"),
    ({"min_maps": 4, "max_maps": 3}, r"max_maps=3 is out of range: must be in \[4, 32\]"),
    ({"min_maps": 0}, r"min_maps=0 is out of range: must be in \[1, 32\]"),
    ({"fov_degrees": 0}, r"fov_degrees=0 is out of range"),
    ({"patch": "yes"}, r"patch='yes' must be true or false"),
    ({"colour": 3}, r"unknown config key\(s\) colour"),
])
def test_bad_config_names_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


def test_search_failure_is_a_value_error():
    generator = tiny(variance_threshold=1.0, max_search_tries=3)
    with pytest.raises(ValueError, match=r"label=0 .*max_search_tries=3"):
        generator.render(np.array([0]), np.array([0]))


def test_label_out_of_range():
    with pytest.raises(ValueError, match=r"label=6 is out of range"):
        tiny().render(np.array([6]), np.array([0]))


def test_search_statistics_match_the_materialised_cloud():
    rng = np.random.default_rng(3)
    finite = 0
    for key in range(40):
        system = sample_system(rng, 2, 8)
        if system is None:
            continue
        cloud = point_cloud(system, key, 2000)
        fast = search_variances(system, key, 2000)
        if np.isfinite(cloud).all():
            finite += 1
            np.testing.assert_allclose(fast, axis_variances(cloud), rtol=1e-9, atol=1e-15)
        else:
            assert fast is None
    assert finite >= 10
