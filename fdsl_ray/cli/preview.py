"""`fdsl preview`: render a few categories x instances of a generator into one labelled PNG."""

from __future__ import annotations

import argparse
import io

from fdsl_ray.cli._overrides import parse_overrides

HELP = "render a grid of categories x instances of a generator into a PNG"


def register(subparsers: argparse._SubParsersAction) -> None:
    from fdsl_ray.formulas.registry import list_names

    parser = subparsers.add_parser(
        "preview",
        help=HELP,
        description="Render the first CATEGORIES categories (rows) x INSTANCES instances "
        "(columns) of a generator into one labelled PNG. Any generator config key can be set "
        "as --key value (e.g. --image-size 128 --n-points 50000).",
    )
    parser.add_argument("generator", help=f"generator or preset: one of {', '.join(list_names())}")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--categories", type=int, default=4, help="rows (default: %(default)s)")
    parser.add_argument("--instances", type=int, default=4, help="columns (default: %(default)s)")
    parser.add_argument("--tables", default=None,
                        help="cache root of category tables (`fdsl plan --out`): the config's "
                        "table is read there, or computed for every category and cached; "
                        "without it only the shown categories are searched")
    parser.set_defaults(func=run, accepts_overrides=True)


def _config_text(config: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in config.items())


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from fdsl_ray import storage
    from fdsl_ray.formulas.grid import build_grid
    from fdsl_ray.formulas.registry import create_generator
    from fdsl_ray.validation import check_int

    check_int("categories", args.categories, 1, 64)
    check_int("instances", args.instances, 1, 64)
    generator = create_generator(args.generator, **parse_overrides(args.overrides))
    check_int("categories", args.categories, 1, generator.num_classes)
    storage.check_file_writable(args.out, "--out")
    if args.tables is not None and generator.searches:
        from fdsl_ray.data.table import plan_table, table_path_for

        generator.use_table(plan_table(generator.config, args.tables, progress=True),
                            table_path_for(generator.config, args.tables))
    labels = np.repeat(np.arange(args.categories), args.instances)
    instances = np.tile(np.arange(args.instances), args.categories)
    print(f"rendering {args.categories} x {args.instances} images of {args.generator} at "
          f"{generator.image_size} px", flush=True)
    images = generator.render(labels, instances)
    size = generator.image_size
    sheet, _ = build_grid(
        images.reshape(args.categories, args.instances, size, size),
        row_labels=[str(label) for label in range(args.categories)],
        col_labels=[str(instance) for instance in range(args.instances)],
        title=f"{_config_text(generator.config)} | rows: category, columns: instance",
    )
    png = io.BytesIO()
    sheet.save(png, format="PNG")
    storage.write_bytes(args.out, png.getvalue())
    print(f"wrote {args.out} ({sheet.width} x {sheet.height} px)")
    return 0
