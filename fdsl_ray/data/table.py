"""Category tables across a cluster: searched as Ray tasks over label ranges, cached by config.

Layout: ROOT/tables/<name>-<table_hash>.json beside the stores (ROOT a local path or an
object-store URI), written in one atomic write once every range is searched, so an interrupted
computation leaves nothing under the name; read back, it is checked (its sha256, its config,
the library version) before anything renders with it.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import ray

from fdsl_ray import storage
from fdsl_ray.data.stream import build_generator
from fdsl_ray.formulas import Generator
from fdsl_ray.formulas.table import (
    CategoryTable,
    assemble_table,
    compute_table,
    search_range,
    table_hash,
)

TABLES = "tables"
# Below this many categories the search runs in the calling process: a Ray task round trip
# and a worker's numba compile cost more than the searches themselves.
PARALLEL_MIN = 64


def table_path_for(generator: dict[str, Any], root: str | os.PathLike) -> str:
    gen = build_generator(generator)
    return storage.join(root, TABLES, f"{gen.name}-{table_hash(gen)}.json")


def find_table(generator: dict[str, Any], root: str | os.PathLike) -> CategoryTable | None:
    """The cached table of this config under root, None if there is none; a damaged one, or
    one of another config or library version, is refused by name."""
    gen = build_generator(generator)
    path = table_path_for(gen.config, root)
    if not storage.is_file(path):
        return None
    try:
        text = storage.read_text(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"category table {path} is unreadable: "
                         f"{storage.short_reason(error)}") from None
    table = CategoryTable.from_json(text, path)
    table.check_for(gen, path)
    return table


def _search_ranges(gen: Generator, progress: bool) -> CategoryTable:
    """Every label range as one Ray task (about four per CPU), gathered as they finish.

    The tasks are spread over the cluster explicitly: inside a study trial they would
    otherwise be captured by the trial's one-bundle placement group, which has no CPU left for
    them (Tune refuses them), and the CPUs its stream's actors will hold are still free."""
    from tqdm import tqdm

    started = time.perf_counter()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    chunk = max(1, math.ceil(gen.num_classes / (4 * cpus)))
    search = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(search_range)
    starts = range(0, gen.num_classes, chunk)
    refs = {search.remote(gen.config, start, min(start + chunk, gen.num_classes)): start
            for start in starts}
    pieces: dict[int, list[tuple[str, int]]] = {}
    with tqdm(total=gen.num_classes, unit="cat", disable=not progress,
              desc=f"category table {gen.name}-{table_hash(gen)}") as bar:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            piece = ray.get(done[0])
            pieces[refs[done[0]]] = piece
            bar.update(len(piece))
    return assemble_table(gen, [pieces[start] for start in starts],
                          time.perf_counter() - started)


def _search_here(gen: Generator, progress: bool) -> CategoryTable:
    from tqdm import tqdm

    with tqdm(total=gen.num_classes, unit="cat", disable=not progress,
              desc=f"category table {gen.name}-{table_hash(gen)}") as bar:
        return compute_table(gen, progress=bar.update)


def plan_table(generator: dict[str, Any], root: str | os.PathLike | None = None, *,
               progress: bool = False) -> CategoryTable | None:
    """The category table of this config: read from root's cache, or searched (as Ray tasks
    when Ray is running and the table is large) and then cached there. None for a generator
    without searches; root None computes without caching."""
    gen = build_generator(generator)
    if not gen.searches:
        return None
    if root is not None:
        cached = find_table(gen.config, root)
        if cached is not None:
            return cached
    parallel = ray.is_initialized() and gen.num_classes >= PARALLEL_MIN
    table = _search_ranges(gen, progress) if parallel else _search_here(gen, progress)
    if root is not None:
        storage.write_text(table_path_for(gen.config, root), table.to_json())
    return table
