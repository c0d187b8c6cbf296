"""The chaos-game kernel: keyed determinism, rescaling, patches, flips, overflow, filling."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.chaos import GRAY, filling_rates, margin_for, render_systems
from fdsl_ray.formulas.ifs import IFSSystem, sample_sigma_factor, sample_uniform
from fdsl_ray.formulas.rng import rng_for

SIZE = 48
POINTS = 3000


def _systems(count: int) -> list[IFSSystem]:
    return [sample_sigma_factor(rng_for(1, index), 2 + index % 3, 3.5) for index in range(count)]


def _render(systems, point_keys, mask_keys, flips, **options):
    settings = {"image_size": SIZE, "n_points": POINTS, "patch": True, **options}
    return render_systems(systems, point_keys, mask_keys, flips, **settings)


def test_shape_dtype_and_gray_levels():
    images = _render(_systems(3), [1, 2, 3], [4, 5, 6], [0, 1, 2])
    assert images.shape == (3, SIZE, SIZE) and images.dtype == np.uint8
    assert set(np.unique(images).tolist()) == {0, GRAY}


def test_an_image_depends_on_its_own_inputs_alone():
    systems = _systems(5)
    point_keys, mask_keys, flips = np.arange(5) + 10, np.arange(5) + 20, np.arange(5) % 4
    batch = _render(systems, point_keys, mask_keys, flips)
    order = [3, 0, 4, 1, 2]
    shuffled = _render([systems[i] for i in order], point_keys[order], mask_keys[order],
                       flips[order])
    np.testing.assert_array_equal(shuffled, batch[order])
    for index in range(5):
        single = _render([systems[index]], point_keys[[index]], mask_keys[[index]], flips[[index]])
        np.testing.assert_array_equal(single[0], batch[index])


def test_keys_change_points_and_masks():
    system = _systems(1)
    base = _render(system, [1], [1], [0])[0]
    assert not np.array_equal(_render(system, [2], [1], [0])[0], base)
    assert not np.array_equal(_render(system, [1], [2], [0])[0], base)
    points_only = _render(system, [1], [1], [0], patch=False)[0]
    np.testing.assert_array_equal(_render(system, [1], [2], [0], patch=False)[0], points_only)


@pytest.mark.parametrize("patch", [True, False])
def test_flips_mirror_the_same_render(patch):
    system = _systems(1) * 4
    images = _render(system, [5] * 4, [9] * 4, [0, 1, 2, 3], patch=patch)
    np.testing.assert_array_equal(images[1], images[0][:, ::-1])
    np.testing.assert_array_equal(images[2], images[0][::-1, :])
    np.testing.assert_array_equal(images[3], images[0][::-1, ::-1])


def test_points_fill_the_frame_inside_the_margin():
    margin = margin_for(SIZE)
    image = _render(_systems(1), [3], [3], [0], patch=False)[0]
    rows, cols = np.nonzero(image)
    assert rows.min() == cols.min() == margin
    assert rows.max() == cols.max() == SIZE - 1 - margin
    assert margin_for(512) == 6 and margin_for(224) == 3 and margin_for(16) == 1


def test_patches_are_non_empty_3x3_masks():
    # One point sits in the middle of the image, so each image is one patch.
    systems = _systems(1) * 400
    images = _render(systems, np.zeros(400), np.arange(400), np.zeros(400), n_points=1)
    centre = SIZE // 2
    patches = images[:, centre - 2:centre + 1, centre - 2:centre + 1]
    assert np.count_nonzero(images) == np.count_nonzero(patches)
    counts = np.count_nonzero(patches.reshape(400, -1), axis=1)
    assert counts.min() >= 1 and counts.max() <= 9
    assert np.all(np.count_nonzero(patches, axis=0) > 0)  # every cell gets used
    assert abs(counts.mean() - 4.5) < 0.4  # each cell on with probability 256/511


def test_an_overflowing_orbit_gives_a_black_image():
    expanding = IFSSystem(np.array([[3.0, 0.0, 0.0, 3.0, 1.0, 1.0]]))
    image = _render([expanding], [1], [1], [0])[0]
    assert not image.any()


def test_a_fixed_point_lands_in_the_middle():
    collapsing = IFSSystem(np.array([[0.0, 0.0, 0.0, 0.0, 0.3, 0.3]]))
    image = _render([collapsing], [1], [1], [0], patch=False)[0]
    assert np.count_nonzero(image) == 1


def test_filling_rates_count_non_zero_pixels():
    images = _render([sample_uniform(rng_for(4, i), 3) for i in range(4)], np.arange(4),
                     np.arange(4), np.zeros(4))
    expected = np.count_nonzero(images.reshape(4, -1), axis=1) / SIZE**2
    np.testing.assert_array_equal(filling_rates(images), expected)
    with pytest.raises(ValueError, match=r"must be \[B, H, W\]"):
        filling_rates(images[0])


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="2 systems need 2 point keys"):
        _render(_systems(2), [1], [1, 2], [0, 0])
    with pytest.raises(ValueError, match=r"flip=4 is out of range: must be in \[0, 3\]"):
        _render(_systems(2), [1, 2], [1, 2], [0, 4])
