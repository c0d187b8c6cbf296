"""VisualAtom: the reference's procedure and parameter ranges, PIL's lines, determinism, sizes."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fdsl_ray.formulas.generators.visualatom import (
    _GRAY_COUNTER,
    _INSTANCE_STREAM,
    _POSITION_COUNTER,
    VisualAtomCategory,
)
from fdsl_ray.formulas.perlin import pnoise1
from fdsl_ray.formulas.registry import create_generator, list_generators
from fdsl_ray.formulas.resize import area_resize
from fdsl_ray.formulas.rng import draw_bits, draw_uniform, keys_for

SMALL = {"image_size": 64, "num_categories": 50, "images_per_category": 4}


@pytest.fixture(scope="module")
def atoms():
    return create_generator("visualatom", **SMALL)


def test_registered_with_the_release_defaults():
    assert "visualatom" in list_generators()
    config = create_generator("visualatom").config
    assert (config["image_size"], config["render_size"], config["num_categories"],
            config["images_per_category"]) == (512, 512, 1000, 1000)
    # make_VisualAtom.sh:13-16
    assert (config["min_vertices"], config["max_vertices"], config["max_orbits"],
            config["min_noise"], config["max_line_width"], config["min_radius"],
            config["max_frequency"]) == (200, 1000, 200, 0.0, 0.1, 10, 20)


def test_category_parameters_with_a_fixed_seed():
    atoms = create_generator("visualatom", num_categories=3000)
    categories = [atoms.category(label) for label in range(3000)]
    assert all(isinstance(c, VisualAtomCategory) for c in categories)
    column = {name: np.array([getattr(c, name) for c in categories])
              for name in VisualAtomCategory.__dataclass_fields__}
    # randint(200, 1000), randint(1, 200), randint(10, 60), randint(0, 20): bounds reached
    for name, low, high in [("vertices", 200, 1000), ("orbits", 1, 200),
                            ("start_radius", 10, 60), ("frequency_1", 0, 20),
                            ("frequency_2", 0, 20)]:
        assert (column[name].min(), column[name].max()) == (low, high), name
    assert abs(column["vertices"].mean() - 600) < 10
    assert abs(column["orbits"].mean() - 100.5) < 3
    # U(0, 4), U(0, 0.1), U(1, 2)
    for name, low, high in [("noise_coefficient", 0, 4), ("line_width", 0, 0.1),
                            ("oval_x", 1, 2), ("oval_y", 1, 2)]:
        values = column[name]
        assert low <= values.min() and values.max() < high, name
        assert abs(values.mean() - (low + high) / 2) < 0.03 * (high - low), name
    # n2 != n1 unless n1 = 0 (render_VisualAtom.py:67-72): then n2 is any of 0..20
    same = column["frequency_1"] == column["frequency_2"]
    assert (column["frequency_1"][same] == 0).all() and same.any()
    n1_zero = column["frequency_1"] == 0
    assert abs(same[n1_zero].mean() - 1 / 21) < 0.05


def test_release_knobs_move_the_ranges():
    atoms = create_generator("visualatom", num_categories=300, min_vertices=3, max_vertices=5,
                             max_orbits=2, min_noise=2.0, max_line_width=0.01, min_radius=0,
                             max_frequency=1)
    categories = [atoms.category(label) for label in range(300)]
    assert {c.vertices for c in categories} == {3, 4, 5}
    assert {c.orbits for c in categories} == {1, 2}
    assert all(2.0 <= c.noise_coefficient < 6.0 for c in categories)  # the argparse default
    assert all(c.line_width < 0.01 and 0 <= c.start_radius <= 50 for c in categories)
    assert all((c.frequency_1, c.frequency_2) in {(0, 0), (0, 1), (1, 0)} for c in categories)


@pytest.mark.parametrize("render_size", [512, 1024])
def test_centres_with_a_fixed_seed(render_size):
    atoms = create_generator("visualatom", render_size=render_size)
    scale = render_size / 512
    centres = np.array([atoms.centre(3, instance) for instance in range(3000)])
    # (512 + randint(-512, 512)) / 2 on each axis, in px at 512
    jitter = (2 * centres - render_size) / scale
    np.testing.assert_allclose(jitter, np.round(jitter), atol=1e-9)
    assert -512 <= jitter.min() < -500 and 500 < jitter.max() <= 512
    assert abs(np.corrcoef(jitter.T)[0, 1]) < 0.1  # x and y are separate draws


def _reference_image(atoms, label: int, instance: int) -> np.ndarray:
    """render_VisualAtom.py:85-117 step by step in plain Python, with our draws in place of
    Python's random stream and PIL's ImageDraw.line doing the drawing on an RGB canvas."""
    c = atoms.category(label)
    centre_x, centre_y = atoms.centre(label, instance)
    key = keys_for(atoms.settings.seed, _INSTANCE_STREAM, np.array([label]),
                   np.array([instance]))[0]
    positions = np.uint64(draw_bits(key, np.uint64(_POSITION_COUNTER)))
    v, coefficient, width = c.vertices, c.noise_coefficient, c.line_width
    image = Image.new("RGB", (512, 512), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    angle = (math.pi * 2) / v
    xs = [math.cos(angle * k) * c.start_radius * c.oval_x + centre_x for k in range(v)]
    ys = [math.sin(angle * k) * c.start_radius * c.oval_y + centre_y for k in range(v)]
    xs.append(xs[0])
    ys.append(ys[0])
    for j in range(c.orbits):
        gray = int(draw_uniform(key, np.uint64(_GRAY_COUNTER + j)) * 256)  # randint(0, 255)
        shifts = []
        for axis in (0, 1):
            shifts.append([
                pnoise1(draw_uniform(positions, np.uint64(2 * (j * v + k) + axis)) * 10000.0)
                * coefficient - coefficient - 0.5 * math.sin(angle * k * c.frequency_1)
                - 0.5 * math.sin(angle * k * c.frequency_2) for k in range(v)])
        for k in range(v):
            xs[k] -= math.cos(angle * k) * (shifts[0][k] - width)
            ys[k] -= math.sin(angle * k) * (shifts[1][k] - width)
        xs[v], ys[v] = xs[0], ys[0]
        for k in range(v):
            draw.line((xs[k], ys[k], xs[k + 1], ys[k + 1]), fill=(gray, gray, gray), width=1)
    rgb = np.asarray(image)
    assert (rgb == rgb[..., :1]).all()
    return rgb[..., 0]


def test_renders_the_reference_procedure_pixel_for_pixel():
    atoms = create_generator("visualatom", num_categories=300)
    small = [label for label in range(300)
             if atoms.category(label).orbits <= 25 and atoms.category(label).vertices < 400]
    zero_wave = next(label for label in range(300) if atoms.category(label).frequency_1 == 0
                     and atoms.category(label).orbits <= 60)
    for label, instance in [(small[0], 0), (small[1], 3), (small[2], 11), (zero_wave, 1)]:
        ours = atoms.render(np.array([label]), np.array([instance]))[0]
        reference = _reference_image(atoms, label, instance)
        assert (reference > 0).any()
        np.testing.assert_array_equal(ours, reference)


def test_category_is_a_function_of_seed_and_label():
    first = create_generator("visualatom", **SMALL)
    again = create_generator("visualatom", **SMALL)
    other_seed = create_generator("visualatom", **SMALL, seed=1)
    assert first.category(7) == again.category(7)
    assert [first.category(i) for i in range(20)] != [other_seed.category(i) for i in range(20)]


def test_same_bytes_whatever_the_batch(atoms):
    labels = np.array([3, 9, 3, 0, 41])
    instances = np.array([0, 2, 1, 5, 3])
    batch = atoms.render(labels, instances)
    reversed_batch = atoms.render(labels[::-1], instances[::-1])[::-1]
    singles = np.stack([atoms.render(labels[i:i + 1], instances[i:i + 1])[0]
                        for i in range(labels.size)])
    rebuilt = create_generator(**atoms.config).render(labels, instances)
    copy = pickle.loads(pickle.dumps(atoms)).render(labels, instances)
    for other in (reversed_batch, singles, rebuilt, copy):
        np.testing.assert_array_equal(batch, other)


def test_instances_and_seeds_give_different_images(atoms):
    images = atoms.render(np.array([5, 5, 6]), np.array([0, 1, 0]))
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])
    reseeded = create_generator("visualatom", **{**SMALL, "seed": 3})
    assert not np.array_equal(images[0], reseeded.render(np.array([5]), np.array([0]))[0])


def test_black_background_with_gray_orbits():
    atoms = create_generator("visualatom", image_size=512, num_categories=1000)
    images = atoms.render(np.arange(12), np.zeros(12, dtype=np.int64))
    assert images.shape == (12, 512, 512) and images.dtype == np.uint8
    assert ((images > 0).sum(axis=(1, 2)) > 0).all()
    assert (images == 0).mean() > 0.2  # black canvas around the orbits


def test_each_orbit_has_one_gray_level():
    atoms = create_generator("visualatom", image_size=512, num_categories=1000)
    label = min(range(1000), key=lambda label: atoms.category(label).orbits)
    orbits = atoms.category(label).orbits
    assert orbits <= 3
    for image in atoms.render(np.full(4, label), np.arange(4)):
        assert np.unique(image[image > 0]).size <= orbits


def test_config_round_trip(atoms):
    rebuilt = create_generator(**atoms.config)
    assert rebuilt.config == atoms.config and rebuilt.name == "visualatom"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("image_size", 4, r"image_size=4 is out of range"),
    ("min_vertices", 2, r"min_vertices=2 is out of range: must be in \[3, 100000\]"),
    ("max_vertices", 100, r"max_vertices=100 is out of range: must be in \[200, 100000\]"),
    ("max_orbits", 0, r"max_orbits=0 is out of range"),
    ("min_noise", -1.0, r"min_noise=-1.0 is out of range"),
    ("max_line_width", "wide", r"max_line_width='wide' is not a number: must be a number"),
    ("max_frequency", -1, r"max_frequency=-1 is out of range"),
])
def test_bad_config_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        create_generator("visualatom", **{field: value})


def test_unknown_key_and_small_render_size_are_refused():
    with pytest.raises(ValueError, match="config key"):
        create_generator("visualatom", delta=0.1)
    with pytest.raises(ValueError, match=r"render_size=128 \(image_size=128\).*>= 256"):
        create_generator("visualatom", image_size=128, render_size=128)


def test_image_size_is_the_area_resize_of_the_render():
    labels, instances = np.array([4, 4, 17]), np.array([0, 9, 2])
    for image_size, render_size in [(224, 512), (256, 1024)]:
        atoms = create_generator("visualatom", image_size=image_size, render_size=render_size)
        images = atoms.render(labels, instances)
        assert images.shape == (3, image_size, image_size) and images.dtype == np.uint8
        at_render = create_generator("visualatom", image_size=render_size,
                                     render_size=render_size).render(labels, instances)
        np.testing.assert_array_equal(images, area_resize(at_render, image_size))
