"""The area resize from render_size to image_size: exact box means, symmetry, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fdsl_ray.formulas.resize import area_resize, area_taps


def _binary(count: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ((rng.random((count, size, size)) < 0.2) * 127).astype(np.uint8)


@pytest.mark.parametrize("factor", [2, 4, 16])
def test_integer_factors_give_rounded_block_means(factor):
    images = _binary(3, 128)
    size = 128 // factor
    blocks = images.reshape(3, size, factor, size, factor).astype(np.float64).mean(axis=(2, 4))
    np.testing.assert_array_equal(area_resize(images, size), np.floor(blocks + 0.5))


def test_weights_cover_each_output_interval_exactly():
    for source, target in ((512, 224), (362, 224), (512, 32), (224, 224)):
        starts, counts, weights = area_taps(source, target)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
        assert starts[0] == 0 and starts[-1] + counts[-1] == source
        # Mirror symmetry: output j's weights read backwards are output T-1-j's.
        for j in range(target):
            mirrored = weights[target - 1 - j, : counts[target - 1 - j]][::-1]
            np.testing.assert_array_equal(weights[j, : counts[j]], mirrored)


def _box_formula(image: np.ndarray, size: int) -> np.ndarray:
    """The documented float32 expression, in NumPy: the vertical taps summed in order, then
    four horizontal taps as (w0 a + w1 b) + (w2 c + w3 d) (more taps: summed in order),
    rounded half up."""
    starts, counts, weights = area_taps(image.shape[0], size)
    source = image.astype(np.float32)
    rows = np.zeros((size, image.shape[1] + 4), dtype=np.float32)
    for j in range(size):
        rows[j, :-4] = weights[j, 0] * source[starts[j]]
        for k in range(1, counts[j]):
            rows[j, :-4] += weights[j, k] * source[starts[j] + k]
    taps = [rows[:, starts + k] * weights[:, k] for k in range(weights.shape[1])]
    if len(taps) == 4:
        sums = (taps[0] + taps[1]) + (taps[2] + taps[3])
    else:
        sums = np.zeros_like(taps[0])
        for tap in taps:
            sums += tap
    return np.minimum(sums + np.float32(0.5), np.float32(255)).astype(np.int32).astype(np.uint8)


@pytest.mark.parametrize("source, target", [(512, 224), (512, 32), (362, 224), (101, 32)])
def test_both_horizontal_passes_compute_the_same_float32_expression(source, target):
    """512 -> 224 (multiples of 8) takes the transposed, vectorised pass, 362 -> 224 the
    plain 4-tap one, the others the many-tap loop: byte for byte the same expression."""
    image = _binary(1, source, seed=source + target)[0]
    np.testing.assert_array_equal(area_resize(image[None], target)[0],
                                  _box_formula(image, target))


def test_mean_gray_is_kept_and_the_result_is_a_texture():
    images = _binary(4, 512)
    small = area_resize(images, 224)
    assert small.shape == (4, 224, 224) and small.dtype == np.uint8
    assert abs(small.astype(np.float64).mean() - images.mean()) < 0.1
    assert len(np.unique(small)) > 20


def test_close_to_pil_bicubic_which_the_reference_trainers_use():
    """The references resize saved 512 px PNGs with PIL's antialiased bicubic: the area
    filter stays within a few gray levels on average (it has no overshoot on steps)."""
    image = _binary(1, 512)[0]
    ours = area_resize(image[None], 224)[0].astype(np.int64)
    pil = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BICUBIC))
    assert np.abs(ours - pil.astype(np.int64)).mean() < 6


def test_same_size_is_a_copy_and_bad_shapes_are_refused():
    images = _binary(2, 64)
    copy = area_resize(images, 64)
    np.testing.assert_array_equal(copy, images)
    assert copy is not images
    with pytest.raises(ValueError, match=r"must be \[B, R, R\]"):
        area_resize(images[:, :, :32], 16)
    with pytest.raises(ValueError, match="1 <= target <= source"):
        area_taps(64, 128)
