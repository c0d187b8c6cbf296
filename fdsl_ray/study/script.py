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
import json
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
LOCAL_MIN_CPUS = 4  # nested Tune/Train/Data deadlock on fewer logical CPUs (see ray-notes)
# Set for every process of a study's Ray. The Train state actor feeds the dashboard's Train
# view (one run per trial), which stays empty without it. The state tracking serialises the
# run's DataConfig with Ray Train's own default_ingest_options, which passes the deprecated
# ExecutionOptions.exclude_resources (ray/train/_internal/data_config.py:150): a warning per
# trial about Ray's code, not ours, that nothing can act on, so that one message is ignored.
RAY_ENVIRONMENT = {
    "RAY_TRAIN_ENABLE_STATE_TRACKING": "1",
    "PYTHONWARNINGS": "ignore:`ExecutionOptions.exclude_resources` is deprecated",
}
_JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by `ray job submit` for the job's driver


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
                             "default: start a local Ray")
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


def set_local_environment() -> None:
    """RAY_ENVIRONMENT in this process, before it starts a local Ray that inherits it (a
    variable the user set keeps its value)."""
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def _job_environment() -> dict[str, dict[str, str]]:
    """RAY_ENVIRONMENT as the runtime environment of a driver that joins a cluster, less the
    variables a `ray job submit --runtime-env-json` already sets (Ray refuses both)."""
    job = json.loads(os.environ.get(_JOB_CONFIG, "{}"))
    given = (job.get("runtime_env") or {}).get("env_vars") or {}
    return {"env_vars": {key: value for key, value in RAY_ENVIRONMENT.items()
                         if key not in given}}


def start_ray(address: str | None, spec: StudySpec, verbose: bool = False) -> None:
    """Join `address` (or the cluster of a `ray job submit`, which sets RAY_ADDRESS), or start
    a local Ray with logical CPUs for at least one whole trial (more logical CPUs than cores is
    fine: a trial's stages mostly take turns). Workers' output reaches this console only when
    `verbose`; it is always in the log folder printed here."""
    if ray.is_initialized():
        return
    if address or os.environ.get("RAY_ADDRESS"):
        context = ray.init(address=address, log_to_driver=verbose,
                           runtime_env=_job_environment())
        where = " on each node"
    else:
        set_local_environment()
        trial_cpus = math.ceil(spec.trial_resources()["CPU"])
        # "local": a new Ray even where a `ray start` cluster runs (join it with --address).
        context = ray.init(address="local", log_to_driver=verbose,
                           num_cpus=max(LOCAL_MIN_CPUS, os.cpu_count() or 1, trial_cpus))
        where = ""
    logs = Path(context.address_info["session_dir"]) / "logs"
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
                     connect=lambda: start_ray(args.address, spec, args.verbose))


def study_main(build_spec: Callable[..., StudySpec], description: str,
               argv: list[str] | None = None) -> pd.DataFrame | None:
    """Run a study script; a refused spec or flag prints one line and exits with status 2."""
    args = parse_args(description, argv)
    try:
        return run_from_args(args, lambda: script_spec(build_spec, args))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
