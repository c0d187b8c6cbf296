"""`fdsl export`: a store as PNG class folders for tools outside fdsl (torchvision, timm)."""

from __future__ import annotations

import argparse

HELP = "write a Parquet store as PNG folders (OUT/<class>/<image>.png)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help=HELP,
        description="Verify a store against its manifest and write its images as grayscale "
        "PNGs in class folders that torchvision's ImageFolder and timm's train.py read as they "
        "are. OUT must not exist; it appears only once complete.",
    )
    parser.add_argument("store", help="store directory or URI (holding manifest.json)")
    parser.add_argument("--out", required=True, help="new directory to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run, accepts_overrides=False)


def run(args: argparse.Namespace) -> int:
    from fdsl_ray.data.export import export_imagefolder

    print(export_imagefolder(args.store, args.out, progress=not args.quiet))
    return 0
