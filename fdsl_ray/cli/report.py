"""`fdsl report`: the markdown report (with PNG plots) of a study directory."""

from __future__ import annotations

import argparse

HELP = "write a markdown report with plots for a study directory"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help=HELP,
        description="Read a study directory (spec.json, results.parquet, optuna.db) and write "
        "report.md with PNG plots: the best configuration, mean +- std per configuration with "
        "Welch verdicts against the best and the scratch baseline (baseline.json), the "
        "objective against each searched parameter, the Pareto front for two objectives, "
        "Optuna parameter importances, all trials, failed trials and the Ray overhead.",
    )
    parser.add_argument("study_dir", metavar="STUDY_DIR",
                        help="the study's directory, or its URI (s3://...) when the study ran "
                             "with an object-store --storage")
    parser.add_argument("--out", default=None,
                        help="folder for report.md and the PNGs (default: STUDY_DIR/report)")
    parser.set_defaults(func=run, accepts_overrides=False)


def run(args: argparse.Namespace) -> int:
    from fdsl_ray import storage
    from fdsl_ray.study.mirror import local_copy_dir, pull_study
    from fdsl_ray.study.report import write_report

    study_dir = args.study_dir
    if storage.is_uri(study_dir):
        study_dir = local_copy_dir(study_dir)
        pull_study(args.study_dir, study_dir, refresh=True)
        print(f"study files of {args.study_dir} are in {study_dir}")
    path = write_report(study_dir, args.out)
    print(f"report written to {path}")
    return 0
