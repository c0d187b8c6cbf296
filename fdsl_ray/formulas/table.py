"""Category tables: every search a config needs, computed once and handed to every renderer.

1p-frac, FractalDB and ExFractalDB find each category by redrawing until a check render passes
(a filling rate or a variance); a render actor that repeated those searches itself would spend
most of an epoch-1 step on them. A `CategoryTable` holds their results (the base system, each
category's accepted system and the attempt that found it) as a pure function of the config's
search fields (`Generator.table_ignores` names the fields that only change how an image is
drawn); a generator given a table never searches. The table names its config hash and the
library version, and carries a sha256 of its content, so a table of another config, another
version or a damaged file is refused on read rather than silently rendering other categories.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fdsl_ray.formulas.base import Generator
from fdsl_ray.formulas.registry import create_generator

TABLE_FORMAT = 1


def library_version() -> str:
    """The installed fdsl-ray version: a new release may change a search, so it is in the
    table (and a table of another version is refused)."""
    try:
        return version("fdsl-ray")
    except PackageNotFoundError:
        return "unknown"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def table_config(gen: Generator) -> dict[str, Any]:
    """The config fields the searches read: the full config less the drawing-only fields."""
    return {key: value for key, value in gen.config.items() if key not in gen.table_ignores}


def table_hash(gen: Generator) -> str:
    """12 hex digits naming the table of this config (the same for configs that differ only
    in drawing fields, e.g. image_size)."""
    canonical = _canonical({"format": TABLE_FORMAT, "config": table_config(gen)})
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CategoryTable:
    """The searches' results for one config; `seconds` (search time) is not hashed."""

    generator: str
    config: str  # canonical JSON of table_config
    config_hash: str
    version: str
    base: str | None  # the base system's JSON (1p-frac), None for generators without one
    systems: tuple[str, ...]  # category l's accepted system as JSON
    attempts: tuple[int, ...]  # the draw that category l accepted (0 = the first)
    seconds: float = 0.0

    @property
    def num_categories(self) -> int:
        return len(self.systems)

    def _content(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "generator": self.generator, "config": self.config,
                "config_hash": self.config_hash, "version": self.version, "base": self.base,
                "systems": list(self.systems), "attempts": list(self.attempts)}

    @property
    def digest(self) -> str:
        """sha256 of the content, what a store's manifest records as its table."""
        return hashlib.sha256(_canonical(self._content()).encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps({**self._content(), "seconds": round(self.seconds, 3),
                           "sha256": self.digest})

    @classmethod
    def from_json(cls, text: str, where: str) -> CategoryTable:
        """Parse and verify a table file; `where` names it in the errors."""
        try:
            data = json.loads(text)
            if data.get("format") != TABLE_FORMAT:
                raise ValueError(f"format={data.get('format')!r} is not supported: must be "
                                 f"{TABLE_FORMAT}")
            table = cls(data["generator"], data["config"], data["config_hash"], data["version"],
                        data["base"], tuple(data["systems"]),
                        tuple(int(a) for a in data["attempts"]), float(data["seconds"]))
            recorded = data["sha256"]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"category table {where} is unreadable ({error}): delete it to "
                             "compute it again") from None
        if table.digest != recorded:
            raise ValueError(f"category table {where} is corrupt: its sha256 differs from its "
                             "content (delete it to compute it again)")
        return table

    def check_for(self, gen: Generator, where: str = "given") -> None:
        """Refuse a table of another config or library version, naming what differs."""
        if self.generator != gen.name or self.config_hash != table_hash(gen):
            raise ValueError(
                f"category table {where} belongs to another config ({self.generator}-"
                f"{self.config_hash}, expected {gen.name}-{table_hash(gen)}): refusing to "
                "render with it")
        if self.version != library_version():
            raise ValueError(
                f"category table {where} was computed by fdsl-ray {self.version}, this is "
                f"{library_version()}: its searches may differ, so it is refused (delete it "
                "to compute it again)")


def search_range(config: dict[str, Any], start: int, stop: int) -> list[tuple[str, int]]:
    """(system JSON, attempt) of categories start..stop-1: one piece of a table, a pure
    function of (config, label), so ranges can be searched anywhere and in any order."""
    values = dict(config)
    gen = create_generator(values.pop("name"), **values)
    return [gen.search_category(label) for label in range(start, stop)]


def assemble_table(gen: Generator, pieces: list[list[tuple[str, int]]],
                   seconds: float) -> CategoryTable:
    """The table from the pieces of consecutive label ranges, in label order."""
    entries = [entry for piece in pieces for entry in piece]
    if len(entries) != gen.num_classes:
        raise ValueError(f"{len(entries)} category entries for {gen.num_classes} categories")
    return CategoryTable(
        generator=gen.name, config=_canonical(table_config(gen)), config_hash=table_hash(gen),
        version=library_version(), base=gen.base_record(),
        systems=tuple(system for system, _ in entries),
        attempts=tuple(attempt for _, attempt in entries), seconds=seconds)


def compute_table(gen: Generator, chunk: int = 16,
                  progress: Callable[[int], None] | None = None) -> CategoryTable:
    """The whole table in this process (what the Ray fan-out in fdsl_ray.data does across a
    cluster); `progress` is called with each finished range's category count."""
    started = time.perf_counter()
    pieces = []
    for start in range(0, gen.num_classes, chunk):
        stop = min(start + chunk, gen.num_classes)
        pieces.append(search_range(gen.config, start, stop))
        if progress is not None:
            progress(stop - start)
    return assemble_table(gen, pieces, time.perf_counter() - started)
