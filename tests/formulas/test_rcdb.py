"""RCDB: the reference's procedure and parameter ranges, PIL's lines, determinism, sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fdsl_ray.formulas.generators.rcdb import (
    _GRAY_COUNTER,
    _INSTANCE_STREAM,
    _POSITION_COUNTER,
    RcdbCategory,
)
from fdsl_ray.formulas.perlin import pnoise1
from fdsl_ray.formulas.raster import draw_closed_polyline, draw_line
from fdsl_ray.formulas.registry import create_generator, list_generators
from fdsl_ray.formulas.resize import area_resize
from fdsl_ray.formulas.rng import draw_bits, draw_uniform, keys_for

SMALL = {"image_size": 64, "num_categories": 50, "images_per_category": 4}


@pytest.fixture(scope="module")
def rcdb():
    return create_generator("rcdb", **SMALL)


def test_registered_with_published_defaults():
    assert "rcdb" in list_generators()
    config = create_generator("rcdb").config
    assert (config["image_size"], config["render_size"], config["num_categories"],
            config["images_per_category"]) == (512, 512, 1000, 1000)


def test_category_parameters_stay_in_published_ranges(rcdb):
    categories = [rcdb.category(label) for label in range(rcdb.num_classes)]
    assert all(isinstance(c, RcdbCategory) for c in categories)
    assert all(2 < c.vertices <= 200 for c in categories)
    assert all(1 <= c.contours <= 200 for c in categories)
    assert all(0.0 <= c.amplitude < 4.0 for c in categories)
    assert all(0.0 <= c.radial_step < 0.1 for c in categories)
    assert len({c.vertices for c in categories}) > 10  # categories really differ


def test_category_distributions_with_a_fixed_seed():
    rcdb = create_generator("rcdb", num_categories=2000)
    categories = [rcdb.category(label) for label in range(2000)]
    vertices = np.array([c.vertices for c in categories])
    contours = np.array([c.contours for c in categories])
    # int(Exponential(100)) kept on 3..200 has mean 70.78 (std 55: +-1.2 over 2,000).
    assert vertices.min() == 3 and vertices.max() <= 200 and abs(vertices.mean() - 70.78) < 4
    assert (contours.min(), contours.max()) == (1, 200) and abs(contours.mean() - 100.5) < 5
    assert abs(np.mean([c.amplitude for c in categories]) - 2.0) < 0.15
    assert abs(np.mean([c.radial_step for c in categories]) - 0.05) < 0.004


@pytest.mark.parametrize("render_size", [512, 1024])
def test_instance_placement_ranges_with_a_fixed_seed(render_size):
    rcdb = create_generator("rcdb", render_size=render_size)
    scale = render_size / 512
    places = [rcdb.instance(3, instance) for instance in range(2000)]
    radii = np.array([p.start_radius for p in places]) / scale
    np.testing.assert_array_equal(radii, np.round(radii))  # randint(0, 100) px at 512
    assert (radii.min(), radii.max()) == (0, 100)
    ovals = np.array([(p.oval_x, p.oval_y) for p in places])
    assert ovals.min() >= 1.0 and ovals.max() < 2.0 and abs(ovals.mean() - 1.5) < 0.02
    # centre = (512 + randint(-400, 400)) / 2 on each axis, in px at 512
    for centres in ([p.centre_x for p in places], [p.centre_y for p in places]):
        jitter = (2 * np.array(centres) - render_size) / scale
        np.testing.assert_allclose(jitter, np.round(jitter), atol=1e-9)
        assert -400 <= jitter.min() < -390 and 390 < jitter.max() <= 400


def _reference_image(rcdb, label: int, instance: int) -> np.ndarray:
    """make_rcdb.py:84-116 step by step in plain Python, with our draws in place of Python's
    random stream and PIL's ImageDraw.line doing the drawing on an RGB canvas."""
    category, place = rcdb.category(label), rcdb.instance(label, instance)
    key = keys_for(rcdb.settings.seed, _INSTANCE_STREAM, np.array([label]), np.array([instance]))[0]
    positions = np.uint64(draw_bits(key, np.uint64(_POSITION_COUNTER)))
    v, c, w = category.vertices, category.amplitude, category.radial_step
    image = Image.new("RGB", (512, 512), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    angle = (math.pi * 2) / v
    xs = [math.cos(angle * k) * place.start_radius * place.oval_x for k in range(v)]
    ys = [math.sin(angle * k) * place.start_radius * place.oval_y for k in range(v)]
    for j in range(category.contours):
        r = int(draw_uniform(key, np.uint64(_GRAY_COUNTER + j)) * 257)  # randint(0, 256)
        for k in range(v):
            draws = [draw_uniform(positions, np.uint64(2 * (j * v + k) + axis)) for axis in (0, 1)]
            noise_x, noise_y = (pnoise1(u * 10000.0) * c * 2 - c for u in draws)
            xs[k] -= math.cos(angle * k) * (noise_x - w)
            ys[k] -= math.sin(angle * k) * (noise_y - w)
        for k in range(v):
            following = (k + 1) % v
            draw.line((xs[k] + place.centre_x, ys[k] + place.centre_y,
                       xs[following] + place.centre_x, ys[following] + place.centre_y),
                      fill=(r, r, r), width=1)
    rgb = np.asarray(image)
    assert (rgb == rgb[..., :1]).all()
    return rgb[..., 0]


def _has_white_contour(rcdb, label: int, instance: int) -> bool:
    """Whether one contour draws gray 256, which PIL clips to 255 (white on white)."""
    key = keys_for(rcdb.settings.seed, _INSTANCE_STREAM, np.array([label]), np.array([instance]))[0]
    return any(int(draw_uniform(key, np.uint64(_GRAY_COUNTER + j)) * 257) == 256
               for j in range(rcdb.category(label).contours))


def test_renders_the_reference_procedure_pixel_for_pixel():
    rcdb = create_generator("rcdb", num_categories=300)
    small = [label for label in range(300)
             if 8 <= rcdb.category(label).contours <= 40 and rcdb.category(label).vertices < 60]
    white = next((label, instance) for label in small for instance in range(20)
                 if _has_white_contour(rcdb, label, instance))
    for label, instance in [(small[0], 0), (small[1], 3), white]:
        ours = rcdb.render(np.array([label]), np.array([instance]))[0]
        np.testing.assert_array_equal(ours, _reference_image(rcdb, label, instance))


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
    rcdb = create_generator("rcdb", num_categories=1000)
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
    with pytest.raises(ValueError, match="config key"):
        create_generator("rcdb", delta=0.1)


@pytest.mark.parametrize("sizes", [(128, 128), (64, 255)])
def test_render_size_too_small_for_the_drawing_is_refused(sizes):
    image_size, render_size = sizes
    with pytest.raises(ValueError, match=rf"render_size={render_size} \(image_size={image_size}\)"
                       r".*render_size >= 256"):
        create_generator("rcdb", image_size=image_size, render_size=render_size)
    with pytest.raises(ValueError, match="render_size=512 is smaller than image_size=1024"):
        create_generator("rcdb", image_size=1024)


def test_image_size_is_the_area_resize_of_the_render():
    labels, instances = np.array([4, 4, 17]), np.array([0, 9, 2])
    drawn = create_generator("rcdb", image_size=512).render(labels, instances)
    for image_size, render_size in [(224, 512), (256, 256), (512, 1024)]:
        rcdb = create_generator("rcdb", image_size=image_size, render_size=render_size)
        images = rcdb.render(labels, instances)
        assert images.shape == (3, image_size, image_size) and images.dtype == np.uint8
        at_render = create_generator("rcdb", image_size=render_size,
                                     render_size=render_size).render(labels, instances)
        np.testing.assert_array_equal(images, area_resize(at_render, image_size))
    np.testing.assert_array_equal(
        create_generator("rcdb", image_size=224).render(labels, instances),
        area_resize(drawn, 224))


def test_polylines_set_the_pixels_pil_sets():
    rng = np.random.default_rng(0)
    for trial in range(150):
        size = int(rng.integers(8, 80))
        count = int(rng.integers(2, 30))
        spread = (0.3, 1.2, 3.0)[trial % 3]  # inside, around and far outside the canvas
        xs, ys = rng.uniform(-spread * size / 2, size * (1 + spread / 2), (2, count))
        if trial % 4 == 0:
            xs, ys = np.round(xs * 2) / 2, np.round(ys)  # ties: half and whole coordinates
        ours = np.full((size, size), 255, dtype=np.uint8)
        draw_closed_polyline(ours, xs, ys, 40)
        image = Image.new("L", (size, size), 255)
        draw = ImageDraw.Draw(image)
        for k in range(count):
            following = (k + 1) % count
            draw.line((xs[k], ys[k], xs[following], ys[following]), fill=40, width=1)
        np.testing.assert_array_equal(ours, np.asarray(image), err_msg=f"trial {trial}")


def test_lines_truncate_coordinates_and_skip_pixels_off_the_canvas():
    canvas = np.full((16, 16), 255, dtype=np.uint8)
    draw_line(canvas, -1e6, 8.9, 1e6, 8.2, 0)  # far outside on both ends; rows truncate to 8
    assert (canvas[8] == 0).all() and (canvas[:8] == 255).all() and (canvas[9:] == 255).all()
    canvas[:] = 255
    draw_line(canvas, -5.0, -5.0, -1.0, 30.0, 0)  # misses the canvas entirely
    assert (canvas == 255).all()
    draw_line(canvas, -0.9, 3.7, 2.99, 3.1, 7)  # -0.9 truncates to column 0, not -1
    np.testing.assert_array_equal(np.argwhere(canvas == 7), [[3, 0], [3, 1], [3, 2]])


def test_pickled_generator_renders_the_same_bytes(rcdb):
    # Ray ships generators to actors by pickling them.
    import pickle

    copy = pickle.loads(pickle.dumps(rcdb))
    labels, instances = np.array([1, 2]), np.array([0, 7])
    np.testing.assert_array_equal(copy.render(labels, instances), rcdb.render(labels, instances))
