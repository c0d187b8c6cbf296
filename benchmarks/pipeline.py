"""Ray Data generation throughput against the bare generator, start-up time, category
tables, Parquet I/O.

    python benchmarks/pipeline.py                      # onepfrac, 224 px, 100k points, 1,2 actors
    python benchmarks/pipeline.py --actors 1,2,16 --num-cpus 17

Each Ray run streams two epochs of a data set whose every image is a new category (one image
per category, as 1p-frac's and FractalDB-style streams), with fresh instances in epoch 2, and
its category table computed first (as Ray tasks; not timed in the rates): epoch 1 renders
every category for the first time, epoch 2 is the steady state. Efficiency = epoch-2
throughput / (actors x single-core throughput of the bare generator, categories known).
Start-up is the time to the first row (actor start, generator build, kernel warm-up). Each
actor count runs with rows in id order (the stream's default, what exact re-runs need) and in
arrival order (`--order both`), and the table gives what the order costs. The category-table
times are one process searching onepfrac L = 1,000 and fractaldb 1,000 categories
(`--table-categories`), i.e. core-seconds. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="onepfrac")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--n-points", type=int, default=100_000)
    parser.add_argument("--actors", default="1,2", help="comma-separated actor counts")
    parser.add_argument("--images-per-actor", type=int, default=20_000,
                        help="images rendered per actor in each Ray run (both epochs; at 400, "
                             "an epoch of 0.2-1 s measured mostly timing noise)")
    parser.add_argument("--bare-images", type=int, default=300,
                        help="images for the single-process baseline and the Parquet figures")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="rows per render call (synthetic_dataset's default)")
    parser.add_argument("--order", choices=("both", "id", "arrival"), default="both",
                        help="rows in id order, in arrival order, or both (to compare)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="logical CPUs of the local Ray, exactly (default: fdsl_ray.cluster's "
                             "rule for max actors + 1)")
    parser.add_argument("--table-categories", type=int, default=1000,
                        help="categories of the timed onepfrac and fractaldb tables (0: skip)")
    return parser.parse_args()


def generator_config(args: argparse.Namespace, num_categories: int) -> dict:
    return {"name": args.generator, "image_size": args.image_size, "n_points": args.n_points,
            "num_categories": num_categories, "images_per_category": 1}


def bare_throughput(args: argparse.Namespace) -> tuple[float, np.ndarray]:
    """Images/s of one process rendering in batches, as an actor does, after warm-up, its
    categories known (given their table, as actors are)."""
    from fdsl_ray.formulas import create_generator
    from fdsl_ray.formulas.table import compute_table

    gen = create_generator(**generator_config(args, args.bare_images))
    if gen.searches:
        gen.use_table(compute_table(gen))
    zero = np.zeros(1, dtype=np.int64)
    gen.render(zero, zero)
    labels = np.arange(args.bare_images)
    start = time.perf_counter()
    batches = [labels[i:i + args.batch_size] for i in range(0, len(labels), args.batch_size)]
    images = [gen.render(batch, np.zeros_like(batch)) for batch in batches]
    return args.bare_images / (time.perf_counter() - start), np.concatenate(images)


def ray_throughput(args: argparse.Namespace, actors: int,
                   ordered: bool) -> tuple[float, float, float, float]:
    """(epoch-1 images/s after the first row, epoch-2 images/s, seconds to the first row,
    seconds of the category table)."""
    from fdsl_ray.data import synthetic_dataset
    from fdsl_ray.data.table import plan_table

    per_epoch = actors * args.images_per_actor // 2
    config = generator_config(args, per_epoch)
    started = time.perf_counter()
    table = plan_table(config)
    table_seconds = time.perf_counter() - started
    dataset = synthetic_dataset(config, epochs=2, fresh_instances=True, num_actors=actors,
                                batch_size=args.batch_size, ordered=ordered, table=table)
    start = time.perf_counter()
    first = None
    rows = [0, 0]
    ends = [0.0, 0.0]
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        now = time.perf_counter()
        if first is None:
            first = now
            continue
        for epoch in (0, 1):
            count = int((batch["epoch"] == epoch).sum())
            if count:
                rows[epoch] += count
                ends[epoch] = now
    # In arrival order the epochs overlap a little; each is timed to its own last row.
    epoch1 = rows[0] / (ends[0] - first)
    epoch2 = rows[1] / (ends[1] - ends[0])
    return epoch1, epoch2, first - start, table_seconds


def table_seconds(name: str, categories: int) -> tuple[float, int]:
    """(seconds, draws) for one process to search a reference-default table."""
    from fdsl_ray.formulas import create_generator
    from fdsl_ray.formulas.table import compute_table

    compute_table(create_generator(name, num_categories=2))  # kernels compiled, not timed
    table = compute_table(create_generator(name, num_categories=categories))
    return table.seconds, sum(table.attempts) + categories


def parquet_figures(args: argparse.Namespace, images: np.ndarray) -> list[tuple[str, ...]]:
    """Write and read one shard of the rendered images per compression, through the store code."""
    import pyarrow.parquet as pq

    from fdsl_ray.data.store import image_metadata, shard_table, write_shard
    from fdsl_ray.formulas import create_generator

    gen = create_generator(**generator_config(args, len(images)))
    ids = np.arange(len(images))
    raw_mb = images.nbytes / 1e6
    rows = []
    directory = Path(tempfile.mkdtemp(prefix="fdsl-bench-"))
    try:
        for compression in ("zstd", "none"):
            path = directory / f"{compression}.parquet"
            start = time.perf_counter()
            write_shard(shard_table(ids, images, gen.num_classes, image_metadata(gen)), path,
                        compression)
            write_s = time.perf_counter() - start
            start = time.perf_counter()
            column = pq.read_table(path).column("image").combine_chunks()
            back = np.frombuffer(column.buffers()[2], dtype=np.uint8).reshape(images.shape)
            read_s = time.perf_counter() - start
            assert np.array_equal(back, images)
            per_image = path.stat().st_size / len(images)
            rows.append((compression, f"{raw_mb / write_s:.0f}", f"{raw_mb / read_s:.0f}",
                         f"{per_image:.0f}", f"{images[0].nbytes / per_image:.1f}x"))
    finally:
        shutil.rmtree(directory)
    return rows


_ORDER = {True: "id", False: "arrival"}


def main() -> None:
    args = parse_args()
    actor_counts = [int(count) for count in args.actors.split(",")]
    orders = {"both": (True, False), "id": (True,), "arrival": (False,)}[args.order]
    import ray

    from fdsl_ray.cluster import start_ray

    print(f"# pipeline benchmark: {args.generator}, {args.image_size} px, {args.n_points} points, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs visible", flush=True)
    bare_before, images = bare_throughput(args)
    print(f"bare generator: {bare_before:.1f} images/s on one core", flush=True)
    # The actors and one CPU for the read tasks; --num-cpus sets the count exactly.
    start_ray(cpus=max(actor_counts) + 1, num_cpus=args.num_cpus, include_dashboard=False,
              configure_logging=False, log_to_driver=False)
    results = []
    try:
        for actors in actor_counts:
            for ordered in orders:
                epoch1, throughput, startup, table_s = ray_throughput(args, actors, ordered)
                results.append((actors, ordered, epoch1, throughput, startup, table_s))
                print(f"{actors} actor(s), {_ORDER[ordered]} order: epoch 1 {epoch1:.1f}, "
                      f"epoch 2 {throughput:.1f} images/s, first row after {startup:.2f} s, "
                      f"table {table_s:.2f} s", flush=True)
    finally:
        ray.shutdown()
    # The baseline is taken before and after the Ray runs; their mean is the single-core rate,
    # so a machine whose speed drifts (frequency, neighbours) shows up as a spread, not a bias.
    bare_after, _ = bare_throughput(args)
    bare = (bare_before + bare_after) / 2

    arrival = {actors: throughput for actors, ordered, _, throughput, *_ in results
               if not ordered}
    print("\n| actors | order | epoch 1 images/s | epoch 2 images/s | epoch 1 / 2 | bare x actors "
          "| efficiency | start-up (s) | table (s) | vs arrival order |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for actors, ordered, epoch1, throughput, startup, table_s in results:
        cost = (f"{100 * (throughput / arrival[actors] - 1):+.1f} %"
                if ordered and actors in arrival else "")
        print(f"| {actors} | {_ORDER[ordered]} | {epoch1:.1f} | {throughput:.1f} | "
              f"{100 * epoch1 / throughput:.0f} % | {bare * actors:.1f} | "
              f"{100 * throughput / (bare * actors):.0f} % | {startup:.2f} | {table_s:.2f} "
              f"| {cost} |")
    print(f"\nbare generator, one process: {bare:.1f} images/s (before Ray {bare_before:.1f}, "
          f"after {bare_after:.1f})")
    if args.table_categories:
        print("\n| category table (one process, reference defaults) | categories | draws "
              "| seconds |")
        print("|---|---:|---:|---:|")
        for name in ("onepfrac", "fractaldb"):
            seconds, draws = table_seconds(name, args.table_categories)
            print(f"| {name} | {args.table_categories} | {draws} | {seconds:.1f} |", flush=True)
    print("\n| compression | write MB/s | read MB/s | bytes/image | ratio |")
    print("|---|---:|---:|---:|---:|")
    for row in parquet_figures(args, images):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
