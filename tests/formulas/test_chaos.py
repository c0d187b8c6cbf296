"""The chaos-game kernel against the references' renderer (ifs_function.py), plus keyed
determinism, patches, flips, resizing, overflow and filling."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.chaos import (
    GRAY,
    MAX_MAPS,
    PAD,
    PAIR_MAX_MAPS,
    canvas_filling,
    filling_rates,
    render_systems,
    shared_uniforms,
)
from fdsl_ray.formulas.ifs import IFSSystem, sample_sigma_factor, sample_uniform
from fdsl_ray.formulas.resize import area_resize
from fdsl_ray.formulas.rng import rng_for

SIZE = 48
POINTS = 3000


def _systems(count: int) -> list[IFSSystem]:
    return [sample_sigma_factor(rng_for(1, index), 2 + index % 3, 3.4, 3.6)[0]
            for index in range(count)]


def _render(systems, mask_keys, flips, **options):
    settings = {"render_size": SIZE, "image_size": SIZE, "n_points": POINTS, "patch": True,
                **options}
    return render_systems(systems, mask_keys, flips, **settings)


def _reference_canvas(system: IFSSystem, size: int, n_points: int) -> np.ndarray:
    """The references' point render, written out from ifs_function.py: the origin plus
    n_points - 1 steps on np.random.seed(100)'s draws, map = first cumulative >= u, min-max
    rescale into [6, size - 6] truncated to integers, gray 127, not yet flipped."""
    uniforms = np.random.RandomState(100).random_sample(n_points)
    cumulative = np.cumsum(system.probabilities)
    xs, ys = [0.0], [0.0]
    x = y = 0.0
    for u in uniforms[: n_points - 1]:
        a, b, c, d, e, f = system.maps[int(np.argmax(u <= cumulative))]
        x, y = x * a + y * b + e, x * c + y * d + f
        xs.append(x)
        ys.append(y)
    xs, ys = np.array(xs), np.array(ys)
    xs, ys = xs - xs.min(), ys - ys.min()
    cols = np.uint16(xs / xs.max() * float(size - 2 * PAD) + float(PAD))
    rows = np.uint16(ys / ys.max() * float(size - 2 * PAD) + float(PAD))
    canvas = np.zeros((size, size), dtype=np.uint8)
    canvas[rows, cols] = GRAY
    return canvas


@pytest.mark.parametrize("index", range(4))
def test_point_render_equals_the_reference_renderer(index):
    """Shared sequence, framing with the start point, rescale and truncation: byte for byte.
    Flip code 1 (top-bottom after the references' own top-bottom flip) is the raw canvas."""
    system = _systems(4)[index]
    image = _render([system], [0], [1], patch=False, n_points=2000, render_size=96,
                    image_size=96)[0]
    np.testing.assert_array_equal(image, _reference_canvas(system, 96, 2000))


def test_a_batch_traced_in_pairs_equals_the_reference_renderer():
    """Batches on the shared sequence trace two orbits per loop (_orbit_pair): each image of
    an odd batch, pairs and the last single alike, is still the reference's, with FractalDB's
    7 maps and with a map of probability 0 (two equal boundaries) among them."""
    base = _systems(1)[0]
    never = IFSSystem(np.vstack([base.maps[:1], base.maps[:1] * 0.5, base.maps[1:]]),
                      np.concatenate([base.probabilities[:1], [0.0], base.probabilities[1:]]))
    systems = [*_systems(3), sample_uniform(rng_for(3, 0), 7), never]
    images = _render(systems, np.zeros(5), np.ones(5), patch=False, n_points=2000,
                     render_size=96, image_size=96)
    for system, image in zip(systems, images, strict=True):
        np.testing.assert_array_equal(image, _reference_canvas(system, 96, 2000))


def test_the_shared_sequence_is_numpys_seed_100():
    np.testing.assert_array_equal(shared_uniforms(10),
                                  np.random.RandomState(100).random_sample(10)[:9])


def test_shared_sequence_makes_equal_systems_equal_and_keys_make_them_differ():
    system = _systems(1) * 2
    shared = _render(system, [1, 1], [0, 0])
    np.testing.assert_array_equal(shared[0], shared[1])
    keyed = _render(system, [1, 1], [0, 0], point_keys=[5, 6])
    assert not np.array_equal(keyed[0], keyed[1])
    np.testing.assert_array_equal(_render(system[:1], [1], [0], point_keys=[5])[0], keyed[0])


def test_shape_dtype_and_gray_levels():
    images = _render(_systems(3), [4, 5, 6], [0, 1, 2])
    assert images.shape == (3, SIZE, SIZE) and images.dtype == np.uint8
    assert set(np.unique(images).tolist()) == {0, GRAY}


@pytest.mark.parametrize("warmup_points", [0, 16])
def test_an_image_depends_on_its_own_inputs_alone(warmup_points):
    """Whatever its neighbours in the batch: in pairs, alone, or beside a 17-map system (which
    is past PAIR_MAX_MAPS, so the batch is traced one orbit at a time)."""
    many = sample_uniform(rng_for(7, 0), PAIR_MAX_MAPS + 1)
    for systems in (_systems(5), [*_systems(4), many]):
        mask_keys, flips, point_keys = np.arange(5) + 20, np.arange(5) % 4, np.arange(5) + 10
        for keys in (None, point_keys):
            batch = _render(systems, mask_keys, flips, point_keys=keys,
                            warmup_points=warmup_points)
            order = [3, 0, 4, 1, 2]
            shuffled = _render([systems[i] for i in order], mask_keys[order], flips[order],
                               point_keys=None if keys is None else keys[order],
                               warmup_points=warmup_points)
            np.testing.assert_array_equal(shuffled, batch[order])
            for index in range(5):
                single = _render([systems[index]], mask_keys[[index]], flips[[index]],
                                 point_keys=None if keys is None else keys[[index]],
                                 warmup_points=warmup_points)
                np.testing.assert_array_equal(single[0], batch[index])


def test_mask_keys_change_patches_only():
    system = _systems(1)
    base = _render(system, [1], [0])[0]
    assert not np.array_equal(_render(system, [2], [0])[0], base)
    points = _render(system, [1], [0], patch=False)[0]
    np.testing.assert_array_equal(_render(system, [2], [0], patch=False)[0], points)


@pytest.mark.parametrize("patch", [True, False])
def test_flip_codes_are_the_references_trans_types(patch):
    """0: the canvas flipped top to bottom (the saved image); 1: then top-bottom again (the
    raw canvas); 2: then left-right; 3: both."""
    images = _render(_systems(1) * 4, [9] * 4, [0, 1, 2, 3], patch=patch)
    canvas = images[1]
    np.testing.assert_array_equal(images[0], canvas[::-1, :])
    np.testing.assert_array_equal(images[2], canvas[::-1, ::-1])
    np.testing.assert_array_equal(images[3], canvas[:, ::-1])


def test_image_size_is_the_area_resized_canvas():
    systems = _systems(3)
    canvases = _render(systems, [1, 2, 3], [1, 1, 1], render_size=96, image_size=96)
    small = _render(systems, [1, 2, 3], [1, 1, 1], render_size=96, image_size=40)
    np.testing.assert_array_equal(small, area_resize(canvases, 40))
    assert len(np.unique(small)) > 2  # a gray texture, not a binary image


def test_points_fill_the_frame_inside_the_pad():
    image = _render(_systems(1), [3], [1], patch=False)[0]
    rows, cols = np.nonzero(image)
    assert rows.min() == cols.min() == PAD
    assert rows.max() <= SIZE - PAD and cols.max() <= SIZE - PAD
    assert max(rows.max(), cols.max()) >= SIZE - PAD - 1


def test_patches_are_non_empty_3x3_masks_below_right_of_the_point():
    # One point (the origin, a flat frame) sits at the centre pixel: each image is one patch
    # with its top-left cell at (pixel + 1, pixel + 1).
    images = _render(_systems(1) * 400, np.arange(400), np.ones(400), n_points=1)
    pixel = int(PAD + (SIZE - 2 * PAD) / 2)
    patches = images[:, pixel + 1:pixel + 4, pixel + 1:pixel + 4]
    assert np.count_nonzero(images) == np.count_nonzero(patches)
    counts = np.count_nonzero(patches.reshape(400, -1), axis=1)
    assert counts.min() >= 1 and counts.max() <= 9
    assert np.all(np.count_nonzero(patches, axis=0) > 0)  # every cell gets used
    assert abs(counts.mean() - 4.5) < 0.4  # each cell on with probability 256/511


def test_warmup_points_leave_the_frame():
    system = _systems(1)
    with_start = _render(system, [1], [1], patch=False)[0]
    without = _render(system, [1], [1], patch=False, warmup_points=16)[0]
    assert not np.array_equal(with_start, without)
    assert np.nonzero(without)[0].min() == PAD  # reframed on the remaining points


def test_an_overflowing_orbit_gives_a_black_image():
    expanding = IFSSystem(np.array([[3.0, 0.0, 0.0, 3.0, 1.0, 1.0]]))
    assert not _render([expanding], [1], [0])[0].any()


def test_canvas_filling_counts_the_canvas_before_resizing():
    systems = [sample_uniform(rng_for(4, i), 3) for i in range(4)]
    canvases = _render(systems, np.arange(4), np.zeros(4), render_size=64, image_size=64)
    filling = canvas_filling(systems, np.arange(4), render_size=64, n_points=POINTS,
                             patch=True)
    np.testing.assert_array_equal(filling, filling_rates(canvases))
    with pytest.raises(ValueError, match=r"must be \[B, H, W\]"):
        filling_rates(canvases[0])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="2 systems need 2 point keys, mask keys and flips"):
        _render(_systems(2), [1, 2], [0])
    with pytest.raises(ValueError, match=r"flip=4 is out of range: must be in \[0, 3\]"):
        _render(_systems(2), [1, 2], [0, 4])
    with pytest.raises(ValueError, match="render_size=12 is too small for the 6 px margin"):
        _render(_systems(1), [1], [0], render_size=12, image_size=12)
    with pytest.raises(ValueError, match=f"a system has {MAX_MAPS + 1} maps: the renderer takes "
                                         f"at most {MAX_MAPS}"):
        _render([sample_uniform(rng_for(2, 0), MAX_MAPS + 1)], [1], [0])
