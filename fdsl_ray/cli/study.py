"""`fdsl study run SPEC` runs a study from a JSON or YAML spec; `fdsl study show DIR` prints
a study's results table. A new study needs a spec file, not a Python script."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fdsl_ray.study.spec import StudySpec

HELP = "run a study from a spec file, or show a study's results"
SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def register(subparsers: argparse._SubParsersAction) -> None:
    from fdsl_ray.study.script import add_study_flags

    parser = subparsers.add_parser(
        "study", help=HELP,
        description="Run a study from a declarative spec, or print a study's results table.")
    commands = parser.add_subparsers(dest="study_command", required=True)
    run_parser = commands.add_parser(
        "run", help="run (or resume, or re-read) the study a JSON or YAML spec describes",
        description="Run the study SPEC describes: a JSON or YAML mapping with StudySpec's "
        "fields (name, generator, space, sampler, num_samples, pretrain, finetune, ...), "
        "checked as a study script's spec is, before Ray starts. The study goes to "
        "<storage>/<name>.")
    run_parser.add_argument("spec", metavar="SPEC", help="the spec file (.json, .yaml, .yml)")
    add_study_flags(run_parser)
    run_parser.set_defaults(func=run, accepts_overrides=False)
    show_parser = commands.add_parser(
        "show", help="print a study's results table",
        description="Print the results table, the best trial and the failed trials of a study "
        "directory (what the study printed when it ended).")
    show_parser.add_argument("study_dir", metavar="STUDY_DIR",
                             help="the study's directory, or its URI (s3://...)")
    show_parser.set_defaults(func=show, accepts_overrides=False)


def load_spec(path: str | Path) -> StudySpec:
    """The StudySpec in a JSON or YAML file, checked as StudySpec checks any spec."""
    import yaml

    from fdsl_ray.study.spec import StudySpec

    path = Path(path)
    if path.suffix.lower() not in SPEC_SUFFIXES:
        raise ValueError(f"spec {path} must be a {', '.join(SPEC_SUFFIXES)} file")
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"spec {path} cannot be read: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"spec {path} is not valid {path.suffix[1:].upper()}: "
                         f"{first}") from None
    if not isinstance(data, dict):
        raise ValueError(f"spec {path} must hold a mapping of StudySpec fields, got "
                         f"{type(data).__name__}")
    return StudySpec.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from fdsl_ray.study.script import run_from_args

    def build() -> StudySpec:
        spec = load_spec(args.spec)
        if args.num_samples is not None:
            spec = dataclasses.replace(spec, num_samples=args.num_samples)
        return spec

    run_from_args(args, build)
    return 0


def show(args: argparse.Namespace) -> int:
    from fdsl_ray import storage
    from fdsl_ray.study.mirror import local_copy_dir, pull_study
    from fdsl_ray.study.run import show_study

    study_dir = args.study_dir
    if storage.is_uri(study_dir):
        study_dir = local_copy_dir(study_dir)
        pull_study(args.study_dir, study_dir, refresh=True)
    show_study(Path(study_dir))
    return 0
