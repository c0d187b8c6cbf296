"""One real image (grayscale) with affine-transform categories: the real-image control of
"Scaling Backwards" (ECCV 2024), built like 1p-frac but perturbing a photo instead of a fractal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fdsl_ray.formulas.base import Generator, GeneratorConfig
from fdsl_ray.formulas.raster import warp_affine_batch
from fdsl_ray.formulas.registry import register_generator
from fdsl_ray.formulas.resize import area_resize
from fdsl_ray.formulas.rng import rng_for, tag
from fdsl_ray.validation import check_float

_CATEGORY_STREAM = tag("onepreal")
_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
DEFAULT_SAMPLE = "grace_hopper.jpg"
_FLIP_AXES = ((), (1,), (0,), (0, 1))  # instance % 4: none, left-right, up-down, both


@dataclass(frozen=True)
class OnePRealConfig(GeneratorConfig):
    """image_path None means matplotlib's bundled sample image grace_hopper.jpg."""

    image_path: str | None = None
    delta: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_path is not None and not isinstance(self.image_path, str):
            raise ValueError(f"image_path={self.image_path!r} must be a string path or None")
        check_float("delta", self.delta, 0.0, 1.0, high_open=True)


def default_image_path() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data(DEFAULT_SAMPLE, asfileobj=False))


def load_square_gray(path: Path, size: int) -> np.ndarray:
    """The image as float64 [size, size]: grayscale, centre-cropped to a square, resized."""
    try:
        with Image.open(path) as image:
            gray = image.convert("L")
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"image_path={str(path)!r} cannot be read as an image: {error}") from None
    side = min(gray.size)
    left = (gray.width - side) // 2
    top = (gray.height - side) // 2
    square = gray.crop((left, top, left + side, top + side))
    resized = square.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float64)


@register_generator
class OnePReal(Generator):
    """Category l warps the one image by [1 0 0; 0 1 0] + U(-delta, delta) on all 6 affine
    parameters (from rng_for(seed, tag("onepreal"), l)), in coordinates normalised to [-1, 1]
    about the centre (a translation of 0.1 is 5 % of the side), bilinear, border 0; the matrix
    maps output to source coordinates. Instance i of a category is the warp flipped by i % 4
    (0 none, 1 left-right, 2 up-down, 3 both): fresh instances (i >= 4) add nothing else.
    Default image (image_path None): matplotlib's sample_data/grace_hopper.jpg. The image is
    loaded at render_size, warped there and area-resized to image_size, as the fractals are.
    `n_points` is unused. The image is loaded once per generator; a bad path fails at
    construction.
    """

    name = "onepreal"
    config_class = OnePRealConfig

    def __init__(self, config: OnePRealConfig) -> None:
        super().__init__(config)
        path = default_image_path() if config.image_path is None else Path(config.image_path)
        if not path.is_file():
            raise ValueError(f"image_path={str(path)!r} does not exist or is not a file")
        self.source = load_square_gray(path, config.render_size)

    def category(self, label: int) -> np.ndarray:
        """The 2x3 affine matrix of a category."""
        rng = rng_for(self.settings.seed, _CATEGORY_STREAM, label)
        delta = self.settings.delta
        return _IDENTITY + rng.uniform(-delta, delta, size=(2, 3))

    def _render(self, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        matrices = {label: self.category(label) for label in set(labels.tolist())}
        stacked = np.empty((labels.size, 2, 3))
        for index, label in enumerate(labels.tolist()):
            stacked[index] = matrices[label]
        size = self.settings.render_size
        warped = np.empty((labels.size, size, size), dtype=np.uint8)
        warp_affine_batch(self.source, stacked, warped)
        out = area_resize(warped, self.image_size)
        for index, flip in enumerate((instances % 4).tolist()):
            if flip:
                out[index] = np.flip(out[index], axis=_FLIP_AXES[flip])
        return out
