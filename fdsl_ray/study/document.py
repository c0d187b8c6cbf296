"""A report as a list of blocks, rendered to markdown (report.md beside its PNGs) and to one
self-contained HTML page (report.html, the PNGs embedded as data URIs), so both say the same."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    """One paragraph; `code` spans are the only markup."""

    text: str


@dataclass(frozen=True)
class Image:
    path: Path
    alt: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


Block = Heading | Text | Image | Table | Code


def format_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(format_value(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _markdown(block: Block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Image):
        return f"![{block.alt}]({block.path.name})"
    if isinstance(block, Table):
        return markdown_table(block.frame)
    if isinstance(block, Code):
        return f"```{block.language}\n{block.text}\n```"
    return block.text


def to_markdown(blocks: list[Block]) -> str:
    return "\n\n".join(_markdown(block) for block in blocks) + "\n"


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code>."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(part)}</code>" if index % 2 else html.escape(part)
                   for index, part in enumerate(parts))


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_inline(block.text)}</h{block.level}>"
    if isinstance(block, Image):
        return (f'<figure><img src="{data_uri(block.path)}" alt="{html.escape(block.alt)}">'
                f"<figcaption>{html.escape(block.alt)}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.frame.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row)
                       + "</tr>" for row in block.frame.itertuples(index=False))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text)}</code></pre>"
    return f"<p>{_inline(block.text)}</p>"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ccc; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
code { font-family: ui-monospace, monospace; font-size: 0.92em; }
"""


def to_html(title: str, blocks: list[Block]) -> str:
    body = "\n".join(_html(block) for block in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")
