"""A labelled contact sheet of rendered images, to look at a generator before training on it."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GAP = 4
PAD = 6
BACKGROUND = 255
INK = 0
MIN_WIDTH = 360


@dataclass(frozen=True)
class GridLayout:
    """Where each tile goes: rows x cols tiles of tile_size px under a title and column labels."""

    rows: int
    cols: int
    tile_size: int
    left: int
    top: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole sheet."""
        return (self.left + self.cols * (self.tile_size + GAP) + PAD - GAP,
                self.top + self.rows * (self.tile_size + GAP) + PAD - GAP)

    def tile_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, upper, right, lower) of tile (row, col), as PIL's crop takes it."""
        x = self.left + col * (self.tile_size + GAP)
        y = self.top + row * (self.tile_size + GAP)
        return (x, y, x + self.tile_size, y + self.tile_size)


def _text_size(font: ImageFont.ImageFont, text: str) -> tuple[int, int]:
    left, upper, right, lower = font.getbbox(text)
    return right - left, lower - upper


def build_grid(
    images: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
) -> tuple[Image.Image, GridLayout]:
    """Grayscale sheet of images [rows, cols, S, S] (uint8) with row, column and title text."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[2] != images.shape[3] or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [rows, cols, S, S], got {images.dtype} "
                         f"{list(images.shape)}")
    rows, cols, tile = images.shape[:3]
    if len(row_labels) != rows or len(col_labels) != cols:
        raise ValueError(f"{len(row_labels)} row and {len(col_labels)} column labels for a "
                         f"{rows} x {cols} grid")
    font = ImageFont.load_default()
    line_height = _text_size(font, "Mg")[1] + 4
    left = PAD + max(_text_size(font, label)[0] for label in row_labels) + GAP * 2
    # Narrow grids (few small tiles) get a wider left margin so the title stays readable.
    left = max(left, MIN_WIDTH - cols * (tile + GAP) - PAD + GAP)
    text_width = left + cols * (tile + GAP) - GAP - PAD
    char_width = font.getlength(title) / max(len(title), 1)
    title_lines = textwrap.wrap(title, max(20, int(text_width / max(char_width, 1.0))),
                                break_long_words=False, break_on_hyphens=False) or [""]
    top = PAD + line_height * (len(title_lines) + 1) + GAP
    layout = GridLayout(rows, cols, tile, left, top)

    sheet = Image.new("L", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, line in enumerate(title_lines):
        draw.text((PAD, PAD + index * line_height), line, fill=INK, font=font)
    for col, label in enumerate(col_labels):
        x = layout.tile_box(0, col)[0] + (tile - _text_size(font, label)[0]) // 2
        draw.text((x, top - line_height), label, fill=INK, font=font)
    for row, label in enumerate(row_labels):
        y = layout.tile_box(row, 0)[1] + (tile - line_height) // 2
        draw.text((left - 2 * GAP - _text_size(font, label)[0], y), label, fill=INK, font=font)
        for col in range(cols):
            sheet.paste(Image.fromarray(images[row, col]), layout.tile_box(row, col)[:2])
    return sheet, layout
