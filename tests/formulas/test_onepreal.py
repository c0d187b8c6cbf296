"""onepreal: one grayscale image, affine categories near identity, flips as instances."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fdsl_ray.formulas.generators.onepreal import default_image_path, load_square_gray
from fdsl_ray.formulas.raster import warp_affine_batch
from fdsl_ray.formulas.registry import create_generator
from fdsl_ray.formulas.resize import area_resize

SMALL = {"image_size": 32, "num_categories": 20}


@pytest.fixture(scope="module")
def onepreal():
    return create_generator("onepreal", **SMALL)


def test_defaults_and_round_trip(onepreal):
    config = onepreal.config
    assert config["image_path"] is None and config["delta"] == 0.1
    assert config["images_per_category"] == 1 and config["num_categories"] == 20
    assert create_generator(**config).config == config
    assert default_image_path().name == "grace_hopper.jpg"


def test_categories_are_bounded_perturbations_of_identity(onepreal):
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    matrices = np.stack([onepreal.category(label) for label in range(20)])
    assert np.abs(matrices - identity).max() <= 0.1
    assert np.abs(matrices - identity).max() > 0.05
    assert len({m.tobytes() for m in matrices}) == 20


def test_same_bytes_whatever_the_batch(onepreal):
    labels = np.array([4, 1, 4, 19])
    instances = np.array([0, 3, 6, 1])
    batch = onepreal.render(labels, instances)
    singles = np.stack([onepreal.render(labels[i:i + 1], instances[i:i + 1])[0]
                        for i in range(4)])
    np.testing.assert_array_equal(batch, singles)
    np.testing.assert_array_equal(batch, create_generator(**onepreal.config).render(labels,
                                                                                    instances))
    assert batch.shape == (4, 32, 32) and batch.dtype == np.uint8


def test_instances_are_the_four_flips(onepreal):
    images = onepreal.render(np.full(6, 2), np.arange(6))
    np.testing.assert_array_equal(images[1], images[0][:, ::-1])
    np.testing.assert_array_equal(images[2], images[0][::-1, :])
    np.testing.assert_array_equal(images[3], images[0][::-1, ::-1])
    np.testing.assert_array_equal(images[4], images[0])  # fresh instances repeat the flips
    np.testing.assert_array_equal(images[5], images[1])


def test_categories_differ_and_delta_zero_makes_them_identical(onepreal):
    images = onepreal.render(np.arange(5), np.zeros(5, dtype=np.int64))
    assert len({image.tobytes() for image in images}) == 5
    still = create_generator("onepreal", **SMALL, delta=0.0)
    same = still.render(np.arange(5), np.zeros(5, dtype=np.int64))
    assert all(np.array_equal(image, same[0]) for image in same)
    identity = np.round(still.source).astype(np.uint8)[None]  # the photo at render_size
    np.testing.assert_array_equal(same[0], area_resize(identity, still.image_size)[0])


def test_warp_border_is_black():
    source = np.full((8, 8), 200.0)
    shifted = np.array([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]])  # samples 2 px to the right
    out = np.empty((1, 8, 8), dtype=np.uint8)
    warp_affine_batch(source, shifted, out)
    assert (out[0, :, :6] == 200).all() and (out[0, :, 6:] == 0).all()


def test_custom_image_is_cropped_to_its_centre(tmp_path):
    pixels = np.zeros((20, 40), dtype=np.uint8)
    pixels[:, 10:30] = 255  # the central square is white, the sides black
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    loaded = load_square_gray(path, 10)
    assert loaded.shape == (10, 10) and (loaded == 255).all()
    gen = create_generator("onepreal", image_path=str(path), image_size=10, delta=0.0)
    assert (gen.render(np.array([0]), np.array([0])) == 255).all()


def test_bad_delta_and_bad_path_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match=r"delta=1\.0 is out of range"):
        create_generator("onepreal", delta=1.0)
    with pytest.raises(ValueError, match=r"delta=-0\.1 is out of range"):
        create_generator("onepreal", delta=-0.1)
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ValueError, match="nope.jpg"):
        create_generator("onepreal", image_path=str(missing))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="garbage.jpg.*cannot be read"):
        create_generator("onepreal", image_path=str(garbage))
    with pytest.raises(ValueError, match="image_path=3"):
        create_generator("onepreal", image_path=3)


def test_pickled_generator_renders_the_same_bytes(onepreal):
    # Ray ships generators to actors by pickling them.
    import pickle

    copy = pickle.loads(pickle.dumps(onepreal))
    labels, instances = np.array([1, 2]), np.array([0, 7])
    np.testing.assert_array_equal(copy.render(labels, instances),
                                  onepreal.render(labels, instances))
