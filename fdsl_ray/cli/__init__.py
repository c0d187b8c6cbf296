"""The `fdsl` command: each module in this package (not starting with "_") adds one subcommand.

A subcommand module defines `HELP` (its one-line summary) and `register(subparsers)`, which
adds its parser and sets `func=run`, where `run(args) -> int` is the exit status. A module
imports nothing heavy at load time (torch, Ray, numba: inside `register` or `run`), and only
the subcommand being run is registered in full, so that `fdsl --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand in full, or with `only` just that one: the others are listed by HELP."""
    parser = argparse.ArgumentParser(
        prog="fdsl", description="Formula-driven supervised learning studies on Ray."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if only is None or module_info.name == only:
            module.register(subparsers)
        else:
            subparsers.add_parser(module_info.name, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=next((arg for arg in argv if not arg.startswith("-")), ""))
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return args.func(args)
    except ValueError as error:
        print(f"fdsl {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
