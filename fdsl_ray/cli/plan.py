"""`fdsl plan NAME [--key value ...]`: compute and cache a config's category table."""

from __future__ import annotations

import argparse
import time

from fdsl_ray.cli._overrides import parse_overrides

HELP = "search a generator's categories once and cache the category table"


def register(subparsers: argparse._SubParsersAction) -> None:
    from fdsl_ray.formulas import list_names

    parser = subparsers.add_parser(
        "plan",
        help=HELP,
        description="Run every search generator NAME's config needs (1p-frac's base and "
        "category draws, FractalDB's and ExFractalDB's category searches) and cache the result "
        "as OUT/tables/<name>-<hash>.json, which `fdsl generate`, the stream and `fdsl "
        "preview --tables` then read instead of searching. Large tables are searched as Ray "
        "tasks. Any further --key value sets a generator config field.",
    )
    parser.add_argument("name", help=f"generator or preset: one of {', '.join(list_names())}")
    parser.add_argument("--out", required=True,
                        help="cache root (the store root): a directory or an object-store URI")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: for a large table, RAY_ADDRESS's, "
                             "else a new local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from fdsl_ray import storage
    from fdsl_ray.data.stream import build_generator
    from fdsl_ray.data.table import PARALLEL_MIN, find_table, plan_table, table_path_for

    # Everything is validated before Ray starts.
    gen = build_generator({"name": args.name, **parse_overrides(args.overrides)})
    if not gen.searches:
        print(f"{gen.name} has no category search: its categories need no table")
        return 0
    storage.check_writable(args.out, "--out")
    path = table_path_for(gen.config, args.out)
    table = find_table(gen.config, args.out)
    reused = table is not None
    started = time.perf_counter()
    if table is None:
        import ray

        from fdsl_ray.cluster import start_ray

        context = None
        if args.address is not None or gen.num_classes >= PARALLEL_MIN:
            context = start_ray(args.address, include_dashboard=False, configure_logging=False,
                                log_to_driver=False)
        try:
            table = plan_table(gen.config, args.out, progress=not args.quiet)
        finally:
            if context is not None:
                ray.shutdown()
    draws = [attempt + 1 for attempt in table.attempts]
    wall = "" if reused else f", wall {time.perf_counter() - started:.1f} s"
    print(f"{path}{' (reused)' if reused else ''}\n"
          f"categories: {table.num_categories}  draws: {sum(draws)} (mean "
          f"{sum(draws) / len(draws):.2f}, max {max(draws)})  search: {table.seconds:.1f} s"
          f"{wall}\nsha256: {table.digest}")
    return 0
