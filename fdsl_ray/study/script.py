"""What every studies/*.py script shares: its flags, where the study goes, and Ray start-up.

A script defines `build_spec(smoke, num_samples) -> StudySpec` (with a keyword `cpu` when it
has a CPU-scale version) and calls `study_main(build_spec, description)`. Flags: --smoke (a
tiny version, minutes on a laptop), --cpu (the study at the scale of a 2-core machine),
--address (a running cluster, e.g. "auto" inside `ray job submit`), --storage (the study root:
a directory, on a file system every node mounts when on a cluster, or an object-store URI such
as s3://bucket/studies), --resume, --num-samples, --verbose (Ray's worker output and Tune's
own reporter on the console; without it they stay in Ray's log files), --seeds /
--pretrain-seeds (replicates per configuration: StudySpec.seeds). `fdsl study run` takes the
same flags but --smoke and --cpu (fdsl_ray.cli.study).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fdsl_ray import storage as storage_paths
from fdsl_ray.cluster import joins_cluster, start_ray
from fdsl_ray.study.mirror import local_copy_dir
from fdsl_ray.study.run import run_study
from fdsl_ray.study.spec import StudySpec

DEFAULT_ROOT = "runs"
# The CPU scale of a 2-core machine (the quickstart's, and --cpu's): 1p-frac-like images drawn
# at 32 px in point mode with 20k points (studies/quickstart.py says why), the 4-block 32 px
# cpu_fast ViT (8 px patches) with 2 CPUs for 30 epochs (450 steps), fine-tuned on digits with
# 10 images per class and 3 seeds. cpu_fast rather than cpu_small: a third of the time per
# step, and in benchmarks/quickstart_probe.py it separates Delta 0.01 from 0.1 (README).
CPU_GENERATOR = {"name": "onepfrac", "image_size": 32, "render_size": 32, "n_points": 20_000,
                 "num_categories": 100, "images_per_category": 10, "patch": False}
CPU_PRETRAIN = {"model": "cpu_fast", "epochs": 30, "batch_size": 64, "warmup_epochs": 3,
                "crop_scale": [1.0, 1.0], "cpus_per_worker": 2.0}
CPU_FINETUNE = {"dataset": "digits", "shots": 10}
CPU_SEEDS = {"finetune": 3}
CPU_TRIAL_CPUS = 2.0


def parse_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny, fast version of the study (used by the tests)")
    parser.add_argument("--cpu", action="store_true",
                        help="the study at CPU scale (a 2-core machine), where the script has one")
    add_study_flags(parser)
    return parser.parse_args(argv)


def add_study_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every way of running a study shares (the scripts and `fdsl study run`)."""
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join ('auto' inside `ray job submit`); "
                             "default: RAY_ADDRESS's, else a new local Ray")
    parser.add_argument("--storage", default=DEFAULT_ROOT,
                        help="study root: a directory (on a cluster, one every node mounts) or an "
                             f"object-store URI such as s3://bucket/studies (default: "
                             f"./{DEFAULT_ROOT})")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted study in the same --storage")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="number of trials (default: the study's own)")
    parser.add_argument("--verbose", action="store_true",
                        help="print Ray's worker output (Ray Data progress bars, Train workers' "
                             "logs) and Tune's own reporter here; by default they stay in "
                             "Ray's log files, whose folder the study prints first")
    parser.add_argument("--seeds", type=int, default=None, metavar="K",
                        help="fine-tuning seeds 0..K-1 per configuration (default: the study's)")
    parser.add_argument("--pretrain-seeds", type=int, default=None, metavar="K",
                        help="pre-training seeds 0..K-1 per configuration (default: the "
                             "study's)")


def cpu_study(name: str, space: dict, num_samples: int, **changes: object) -> StudySpec:
    """A grid study at the CPU scale above; `changes` set or replace StudySpec fields."""
    fields = dict(name=name, generator=CPU_GENERATOR, space=space, sampler="grid",
                  num_samples=num_samples, pretrain=CPU_PRETRAIN, finetune=CPU_FINETUNE,
                  trial_cpus=CPU_TRIAL_CPUS, seeds=CPU_SEEDS)
    return StudySpec(**{**fields, **changes})


def script_spec(build_spec: Callable[..., StudySpec], args: argparse.Namespace) -> StudySpec:
    """A script's spec at the scale its flags name (--smoke, --cpu or its full scale)."""
    if args.cpu and args.smoke:
        raise ValueError("--cpu and --smoke are two scales: give one of them")
    if args.cpu and "cpu" not in inspect.signature(build_spec).parameters:
        raise ValueError("--cpu: this study has no CPU-scale version (it runs at CPU scale "
                         "already, or needs GPUs)")
    return build_spec(args.smoke, args.num_samples, **({"cpu": True} if args.cpu else {}))


def with_seeds(spec: StudySpec, args: argparse.Namespace) -> StudySpec:
    """`spec` with the replicate counts --seeds and --pretrain-seeds give."""
    seeds = dict(spec.seeds)
    for kind, count in (("finetune", args.seeds), ("pretrain", args.pretrain_seeds)):
        if count is not None:
            seeds[kind] = count
    if seeds == spec.seeds:
        return spec
    try:
        return StudySpec.from_dict({**spec.to_dict(), "seeds": seeds})
    except ValueError as error:
        raise ValueError(str(error).replace("seeds.finetune=", "--seeds=").replace(
            "seeds.pretrain=", "--pretrain-seeds=")) from None


def study_paths(storage: str, name: str) -> tuple[Path, str | None]:
    """(study directory, remote study root or None): under an object-store URI the study
    directory is a local copy of the remote one (fdsl_ray.study.mirror)."""
    if not storage_paths.is_uri(storage):
        return Path(storage) / name, None
    remote = storage_paths.join(storage, name)
    storage_paths.check_writable(remote, "--storage")  # before Ray starts, not at the end
    return local_copy_dir(remote), remote


def connect_study(address: str | None, spec: StudySpec, verbose: bool = False) -> None:
    """start_ray for a study: a local Ray holds at least one whole trial. Workers' output
    reaches this console only when `verbose`; it is always in the log folder printed here."""
    context = start_ray(address, cpus=spec.trial_resources()["CPU"], log_to_driver=verbose)
    if context is None:
        return
    logs = Path(context.address_info["session_dir"]) / "logs"
    where = " on each node" if joins_cluster(address) else ""
    print(f"Ray's logs (Ray Data progress bars, Train workers' output): {logs}{where}"
          + ("" if verbose else "; --verbose prints them here"))


def run_from_args(args: argparse.Namespace, build: Callable[[], StudySpec]) -> pd.DataFrame:
    """Run the spec `build` returns with the study flags in `args` (add_study_flags)."""
    if args.num_samples is not None and args.num_samples < 1:
        raise ValueError(f"--num-samples={args.num_samples} is out of range: must be >= 1")
    spec = with_seeds(build(), args)
    study_dir, storage_path = study_paths(args.storage, spec.name)
    # Ray starts only once the study directory is known to be writable and resumable.
    return run_study(spec, study_dir=study_dir, resume=args.resume, storage_path=storage_path,
                     verbose=2 if args.verbose else 1,
                     connect=lambda: connect_study(args.address, spec, args.verbose))


def study_main(build_spec: Callable[..., StudySpec], description: str,
               argv: list[str] | None = None) -> pd.DataFrame | None:
    """Run a study script; a refused spec or flag prints one line and exits with status 2."""
    args = parse_args(description, argv)
    try:
        return run_from_args(args, lambda: script_spec(build_spec, args))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
