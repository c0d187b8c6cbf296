"""`fdsl preview` and the grid builder: the PNG holds the rendered tiles where the layout says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fdsl_ray.cli import main
from fdsl_ray.formulas.grid import build_grid
from fdsl_ray.formulas.registry import create_generator

SETTINGS = ["--image-size", "32", "--n-points", "2000", "--search-points", "2000",
            "--num-categories", "5", "--patch", "true"]


def test_preview_writes_grid_of_rendered_tiles(tmp_path, capsys):
    out = tmp_path / "sub" / "grid.png"
    status = main(["preview", "exfractaldb", *SETTINGS, "--out", str(out),
                   "--categories", "3", "--instances", "2"])
    assert status == 0
    assert str(out) in capsys.readouterr().out
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]

    generator = create_generator("exfractaldb", image_size=32, n_points=2000,
                                 search_points=2000, num_categories=5, patch=True)
    images = generator.render(np.repeat(np.arange(3), 2), np.tile(np.arange(2), 3))
    _, layout = build_grid(images.reshape(3, 2, 32, 32), ["0", "1", "2"], ["0", "1"],
                           "anything")
    sheet = Image.open(out)
    assert sheet.mode == "L"
    assert sheet.width == layout.size[0]
    assert sheet.height >= 3 * 32 and sheet.width >= 2 * 32
    # Only the title's height depends on its text: locate tiles from the bottom edge.
    shift = sheet.height - layout.size[1]
    for row in range(3):
        for col in range(2):
            left, upper, right, lower = layout.tile_box(row, col)
            tile = np.asarray(sheet.crop((left, upper + shift, right, lower + shift)))
            np.testing.assert_array_equal(tile, images[row * 2 + col])

def test_unknown_generator_is_a_one_line_error(tmp_path, capsys):
    status = main(["preview", "no_such_generator", "--out", str(tmp_path / "g.png")])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.startswith("fdsl preview: error: generator='no_such_generator' is unknown")
    assert "\n" not in error
    assert not (tmp_path / "g.png").exists()


def test_bad_config_key_is_a_one_line_error(tmp_path, capsys):
    status = main(["preview", "exfractaldb", "--colour", "3", "--out", str(tmp_path / "g.png")])
    assert status == 2
    assert "config key(s) colour" in capsys.readouterr().err


def test_more_categories_than_the_generator_has(tmp_path, capsys):
    status = main(["preview", "exfractaldb", *SETTINGS, "--categories", "6",
                   "--out", str(tmp_path / "g.png")])
    assert status == 2
    assert "categories=6 is out of range: must be in [1, 5]" in capsys.readouterr().err


def test_grid_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="1 row and 2 column labels for a 2 x 2 grid"):
        build_grid(np.zeros((2, 2, 8, 8), np.uint8), ["a"], ["0", "1"], "t")


def test_preview_takes_a_published_preset(tmp_path, capsys):
    out = tmp_path / "preset.png"
    status = main(["preview", "1p-frac", "--image-size", "32", "--num-categories", "3",
                   "--n-points", "2000", "--out", str(out), "--categories", "2",
                   "--instances", "2"])
    assert status == 0 and out.is_file()
    assert "1p-frac" in capsys.readouterr().out
