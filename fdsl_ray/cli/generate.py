"""`fdsl generate`: render a generator's dataset into a content-addressed Parquet store."""

from __future__ import annotations

import argparse

from fdsl_ray.cli._overrides import parse_overrides

HELP = "render a generator's images into a Parquet store (reused if it exists)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from fdsl_ray.data.store import COMPRESSIONS
    from fdsl_ray.formulas import list_names

    parser = subparsers.add_parser(
        "generate",
        help=HELP,
        description="Render NUM_CATEGORIES x IMAGES_PER_CATEGORY images of generator NAME with a "
        "Ray Data actor pool into OUT/<name>-<hash>/ (Parquet shards + manifest.json). Any "
        "further --key value sets a generator config field, e.g. --image-size 64. The same "
        "config reuses its store.",
    )
    parser.add_argument("name", help=f"generator or preset: one of {', '.join(list_names())}")
    parser.add_argument("--out", required=True,
                        help="store root: a directory, or an object-store URI such as "
                        "s3://bucket/prefix (credentials from the environment)")
    parser.add_argument("--actors", type=int, default=None,
                        help="fixed number of render actors (default: autoscale to the cluster)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: RAY_ADDRESS's, else a new local Ray)")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="zstd",
                        help="Parquet compression of the shards (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from fdsl_ray.data.store import StoreOptions, check_root_writable, find_store
    from fdsl_ray.data.stream import build_generator, images_per_epoch
    from fdsl_ray.validation import check_int

    # Everything is validated before Ray starts.
    gen = build_generator({"name": args.name, **parse_overrides(args.overrides)})
    if args.actors is not None:
        check_int("actors", args.actors, 1)
    options = StoreOptions(compression=args.compression)
    root = check_root_writable(args.out)
    existing = find_store(gen.config, root)
    if existing is not None:
        print(f"{existing} (reused)")
        return 0

    import ray

    from fdsl_ray.cluster import start_ray
    from fdsl_ray.data.store import ensure_store

    print(f"rendering {images_per_epoch(gen)} images of {gen.config}", flush=True)
    context = start_ray(args.address, include_dashboard=False, configure_logging=False,
                        log_to_driver=False)
    try:
        path = ensure_store(gen.config, root, num_actors=args.actors, progress=not args.quiet,
                            options=options)
    finally:
        if context is not None:
            ray.shutdown()
    print(path)
    return 0
