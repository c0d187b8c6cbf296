"""What every studies/*.py script shares: its flags, where the study goes, and Ray start-up.

A script defines `build_spec(smoke, num_samples) -> StudySpec` and calls
`study_main(build_spec, description)`. Flags: --smoke (a tiny version, minutes on a laptop),
--address (a running cluster, e.g. "auto" inside `ray job submit`), --storage (the study root:
a directory, on a file system every node mounts when on a cluster, or an object-store URI such
as s3://bucket/studies), --resume, --num-samples.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import ray

from fdsl_ray import storage as storage_paths
from fdsl_ray.study.mirror import local_copy_dir
from fdsl_ray.study.run import run_study
from fdsl_ray.study.spec import StudySpec

DEFAULT_ROOT = "runs"
LOCAL_MIN_CPUS = 4  # nested Tune/Train/Data deadlock on fewer logical CPUs (see ray-notes)


def parse_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny, fast version of the study (used by the tests)")
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join ('auto' inside `ray job submit`); "
                             "default: start a local Ray")
    parser.add_argument("--storage", default=DEFAULT_ROOT,
                        help="study root: a directory (on a cluster, one every node mounts) or an "
                             f"object-store URI such as s3://bucket/studies (default: "
                             f"./{DEFAULT_ROOT})")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted study in the same --storage")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="number of trials (default: the study's own)")
    return parser.parse_args(argv)


def study_paths(storage: str, name: str) -> tuple[Path, str | None]:
    """(study directory, remote study root or None): under an object-store URI the study
    directory is a local copy of the remote one (fdsl_ray.study.mirror)."""
    if not storage_paths.is_uri(storage):
        return Path(storage) / name, None
    remote = storage_paths.join(storage, name)
    storage_paths.check_writable(remote, "--storage")  # before Ray starts, not at the end
    return local_copy_dir(remote), remote


def start_ray(address: str | None, spec: StudySpec) -> None:
    """Join `address` (or the cluster of a `ray job submit`, which sets RAY_ADDRESS), or start
    a local Ray with logical CPUs for at least one whole trial (more logical CPUs than cores is
    fine: a trial's stages mostly take turns)."""
    if ray.is_initialized():
        return
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address)
        return
    trial_cpus = math.ceil(spec.trial_resources()["CPU"])
    ray.init(num_cpus=max(LOCAL_MIN_CPUS, os.cpu_count() or 1, trial_cpus))


def study_main(build_spec: Callable[[bool, int | None], StudySpec], description: str,
               argv: list[str] | None = None) -> pd.DataFrame | None:
    """Run a study script; a refused spec or flag prints one line and exits with status 2."""
    args = parse_args(description, argv)
    try:
        if args.num_samples is not None and args.num_samples < 1:
            raise ValueError(f"--num-samples={args.num_samples} is out of range: must be >= 1")
        spec = build_spec(args.smoke, args.num_samples)
        study_dir, storage_path = study_paths(args.storage, spec.name)
        # Ray starts only once the study directory is known to be writable and resumable.
        return run_study(spec, study_dir=study_dir, resume=args.resume,
                         storage_path=storage_path, connect=lambda: start_ray(args.address, spec))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
