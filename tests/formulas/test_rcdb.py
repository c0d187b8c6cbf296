"""RCDB: published parameter ranges, determinism per (config, label, instance), drawing."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.generators.rcdb import RcdbCategory
from fdsl_ray.formulas.perlin import perlin1d_array
from fdsl_ray.formulas.raster import draw_closed_polyline, draw_line
from fdsl_ray.formulas.registry import create_generator, list_generators

SMALL = {"image_size": 64, "num_categories": 50, "images_per_category": 4}


@pytest.fixture(scope="module")
def rcdb():
    return create_generator("rcdb", **SMALL)


def test_registered_with_published_defaults():
    assert "rcdb" in list_generators()
    config = create_generator("rcdb").config
    assert (config["image_size"], config["num_categories"], config["images_per_category"]) == (
        512, 1000, 1000)


def test_category_parameters_stay_in_published_ranges(rcdb):
    categories = [rcdb.category(label) for label in range(rcdb.num_classes)]
    assert all(isinstance(c, RcdbCategory) for c in categories)
    assert all(2 < c.vertices <= 200 for c in categories)
    assert all(1 <= c.contours <= 200 for c in categories)
    assert all(0.0 <= c.amplitude < 4.0 for c in categories)
    assert all(0.0 <= c.radial_step < 0.1 for c in categories)
    assert len({c.vertices for c in categories}) > 10  # categories really differ


def test_category_is_a_function_of_seed_and_label():
    first = create_generator("rcdb", **SMALL)
    again = create_generator("rcdb", **SMALL)
    other_seed = create_generator("rcdb", **SMALL, seed=1)
    assert first.category(7) == again.category(7)
    assert [first.category(i) for i in range(20)] != [other_seed.category(i) for i in range(20)]


def test_same_bytes_whatever_the_batch(rcdb):
    labels = np.array([3, 9, 3, 0, 41])
    instances = np.array([0, 2, 1, 5, 3])
    batch = rcdb.render(labels, instances)
    reversed_batch = rcdb.render(labels[::-1], instances[::-1])[::-1]
    singles = np.stack([rcdb.render(labels[i:i + 1], instances[i:i + 1])[0]
                        for i in range(labels.size)])
    rebuilt = create_generator(**rcdb.config).render(labels, instances)
    np.testing.assert_array_equal(batch, reversed_batch)
    np.testing.assert_array_equal(batch, singles)
    np.testing.assert_array_equal(batch, rebuilt)


def test_instances_and_seeds_give_different_images(rcdb):
    images = rcdb.render(np.array([5, 5, 6]), np.array([0, 1, 0]))
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])
    reseeded = create_generator("rcdb", **{**SMALL, "seed": 3}).render(np.array([5]), np.array([0]))
    assert not np.array_equal(images[0], reseeded[0])


def test_white_background_with_gray_contours():
    rcdb = create_generator("rcdb", image_size=128, num_categories=1000)
    images = rcdb.render(np.arange(30), np.zeros(30, dtype=np.int64))
    assert images.shape == (30, 128, 128) and images.dtype == np.uint8
    assert (images == 255).mean() > 0.4  # white canvas, 1 px lines
    assert ((images < 255).sum(axis=(1, 2)) > 0).all()


def test_each_contour_has_one_gray_level():
    rcdb = create_generator("rcdb", image_size=128, num_categories=1000)
    label = min(range(1000), key=lambda label: rcdb.category(label).contours)
    contours = rcdb.category(label).contours
    assert contours <= 3
    for image in rcdb.render(np.full(4, label), np.arange(4)):
        grays = np.unique(image[image < 255])
        assert 1 <= grays.size <= contours


def test_config_round_trip(rcdb):
    rebuilt = create_generator(**rcdb.config)
    assert rebuilt.config == rcdb.config and rebuilt.name == "rcdb"


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="image_size=4"):
        create_generator("rcdb", image_size=4)
    with pytest.raises(ValueError, match="unknown config key"):
        create_generator("rcdb", delta=0.1)


def test_perlin_noise_is_smooth_bounded_and_keyed():
    xs = np.linspace(0.0, 40.0, 4001)
    noise = perlin1d_array(11, xs)
    assert np.abs(noise).max() <= 1.0
    np.testing.assert_allclose(perlin1d_array(11, np.arange(10.0)), 0.0, atol=1e-12)
    assert np.abs(np.diff(noise)).max() < 0.05  # continuous: tiny steps give tiny changes
    np.testing.assert_array_equal(noise, perlin1d_array(11, xs))
    assert not np.array_equal(noise, perlin1d_array(12, xs))


def test_lines_are_clipped_and_connected():
    canvas = np.full((16, 16), 255, dtype=np.uint8)
    draw_line(canvas, -1e6, 8.0, 1e6, 8.0, 0)  # far outside on both ends
    assert (canvas[8] == 0).all() and (canvas[:8] == 255).all() and (canvas[9:] == 255).all()
    canvas[:] = 255
    draw_line(canvas, -5.0, -5.0, -1.0, 30.0, 0)  # misses the canvas entirely
    assert (canvas == 255).all()
    draw_closed_polyline(canvas, np.array([2.0, 12.0, 12.0, 2.0]),
                         np.array([2.0, 2.0, 12.0, 12.0]), 100)
    ring = np.zeros((16, 16), dtype=bool)
    ring[2, 2:13] = ring[12, 2:13] = ring[2:13, 2] = ring[2:13, 12] = True
    np.testing.assert_array_equal(canvas == 100, ring)


def test_pickled_generator_renders_the_same_bytes(rcdb):
    # Ray ships generators to actors by pickling them.
    import pickle

    copy = pickle.loads(pickle.dumps(rcdb))
    labels, instances = np.array([1, 2]), np.array([0, 7])
    np.testing.assert_array_equal(copy.render(labels, instances), rcdb.render(labels, instances))
