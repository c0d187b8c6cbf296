"""Ray Data generation throughput against the bare generator, start-up time, Parquet I/O.

    python benchmarks/pipeline.py                      # onepfrac, 224 px, 100k points, 1,2 actors
    python benchmarks/pipeline.py --actors 1,2,16 --num-cpus 17

Efficiency = Ray throughput / (actors x single-core throughput of the bare generator). Ray
throughput is the steady rate after the first row arrives; start-up is the time to that first
row (actor start, generator build, kernel warm-up). Each actor count runs with rows in id
order (the stream's default, what exact re-runs need) and in arrival order (`--order both`),
and the table gives what the order costs. Prints a Markdown table.
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
    parser.add_argument("--images-per-actor", type=int, default=400,
                        help="images rendered per actor in each Ray run")
    parser.add_argument("--bare-images", type=int, default=300,
                        help="images for the single-process baseline and the Parquet figures")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="rows per render call (synthetic_dataset's default)")
    parser.add_argument("--order", choices=("both", "id", "arrival"), default="both",
                        help="rows in id order, in arrival order, or both (to compare)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="logical CPUs for ray.init (default: max actors + 1)")
    return parser.parse_args()


def generator_config(args: argparse.Namespace, num_categories: int) -> dict:
    return {"name": args.generator, "image_size": args.image_size, "n_points": args.n_points,
            "num_categories": num_categories, "images_per_category": 1}


def bare_throughput(args: argparse.Namespace) -> tuple[float, np.ndarray]:
    """Images/s of one process rendering in batches, as an actor does, after warm-up."""
    from fdsl_ray.formulas import create_generator

    gen = create_generator(**generator_config(args, args.bare_images))
    zero = np.zeros(1, dtype=np.int64)
    gen.render(zero, zero)
    labels = np.arange(args.bare_images)
    start = time.perf_counter()
    batches = [labels[i:i + args.batch_size] for i in range(0, len(labels), args.batch_size)]
    images = [gen.render(batch, np.zeros_like(batch)) for batch in batches]
    return args.bare_images / (time.perf_counter() - start), np.concatenate(images)


def ray_throughput(args: argparse.Namespace, actors: int, ordered: bool) -> tuple[float, float]:
    """(steady images/s after the first row, seconds to the first row)."""
    from fdsl_ray.data import synthetic_dataset

    total = actors * args.images_per_actor
    dataset = synthetic_dataset(generator_config(args, total), num_actors=actors,
                                batch_size=args.batch_size, ordered=ordered)
    start = time.perf_counter()
    first = None
    rows_after_first = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        if first is None:
            first = time.perf_counter()
        else:
            rows_after_first += len(batch["label"])
    end = time.perf_counter()
    return rows_after_first / (end - first), first - start


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

    print(f"# pipeline benchmark: {args.generator}, {args.image_size} px, {args.n_points} points, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs visible", flush=True)
    bare_before, images = bare_throughput(args)
    print(f"bare generator: {bare_before:.1f} images/s on one core", flush=True)
    ray.init(num_cpus=args.num_cpus or max(actor_counts) + 1, include_dashboard=False,
             configure_logging=False, log_to_driver=False)
    results = []
    try:
        for actors in actor_counts:
            for ordered in orders:
                throughput, startup = ray_throughput(args, actors, ordered)
                results.append((actors, ordered, throughput, startup))
                print(f"{actors} actor(s), {_ORDER[ordered]} order: {throughput:.1f} images/s, "
                      f"first row after {startup:.2f} s", flush=True)
    finally:
        ray.shutdown()
    # The baseline is taken before and after the Ray runs; their mean is the single-core rate,
    # so a machine whose speed drifts (frequency, neighbours) shows up as a spread, not a bias.
    bare_after, _ = bare_throughput(args)
    bare = (bare_before + bare_after) / 2

    arrival = {actors: throughput for actors, ordered, throughput, _ in results if not ordered}
    print("\n| actors | order | Ray Data images/s | bare x actors | efficiency | start-up (s) "
          "| vs arrival order |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for actors, ordered, throughput, startup in results:
        cost = (f"{100 * (throughput / arrival[actors] - 1):+.1f} %"
                if ordered and actors in arrival else "")
        print(f"| {actors} | {_ORDER[ordered]} | {throughput:.1f} | {bare * actors:.1f} | "
              f"{100 * throughput / (bare * actors):.0f} % | {startup:.2f} | {cost} |")
    print(f"\nbare generator, one process: {bare:.1f} images/s (before Ray {bare_before:.1f}, "
          f"after {bare_after:.1f})")
    print("\n| compression | write MB/s | read MB/s | bytes/image | ratio |")
    print("|---|---:|---:|---:|---:|")
    for row in parquet_figures(args, images):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
