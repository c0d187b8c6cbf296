"""The one place that starts Ray: entry points (the `fdsl` subcommands that need Ray, the
study scripts, benchmarks/*.py, the tests' session fixture) call `start_ray`; library
functions only `require_ray`, so that a library call never starts a second, differently
sized Ray behind its caller's back."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import ray

# Nested Tune -> Train -> Data (a trial's trainer, its workers, the render actors) deadlock on
# fewer logical CPUs: each level holds a CPU while it waits for the next (see ray-notes).
LOCAL_MIN_CPUS = 4
# Set for every process of the Ray an entry point starts or joins. The Train state actor feeds
# the dashboard's Train view (one run per trial), which stays empty without it. The state
# tracking serialises the run's DataConfig with Ray Train's own default_ingest_options, which
# passes the deprecated ExecutionOptions.exclude_resources
# (ray/train/_internal/data_config.py:150): a warning per trial about Ray's code, not ours,
# that nothing can act on, so that one message is ignored.
# Train's controller takes each worker's report off a one-slot queue when it polls the workers,
# every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default: ray/train/v2/_internal/execution/
# worker_group/worker.py:294, controller/controller.py:424), so every report of an epoch shorter
# than that waited for the poll: 2.3 s an epoch of one step, against 0.8 s at 0.2.
RAY_ENVIRONMENT = {
    "RAY_TRAIN_ENABLE_STATE_TRACKING": "1",
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    "PYTHONWARNINGS": "ignore:`ExecutionOptions.exclude_resources` is deprecated",
}
_JOB_CONFIG = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by `ray job submit` for the job's driver


def local_cpus(needed: float, cores: int | None = None) -> int:
    """Logical CPUs of a local Ray: what the job reserves, the machine's cores, and never
    fewer than LOCAL_MIN_CPUS (more logical CPUs than cores is fine: a job's stages mostly
    take turns on the cores)."""
    return max(LOCAL_MIN_CPUS, cores or os.cpu_count() or 1, math.ceil(needed))


def _job_environment() -> dict[str, dict[str, str]]:
    """RAY_ENVIRONMENT as the runtime environment of a driver that joins a cluster, less the
    variables a `ray job submit --runtime-env-json` already sets (Ray refuses both)."""
    job = json.loads(os.environ.get(_JOB_CONFIG, "{}"))
    given = (job.get("runtime_env") or {}).get("env_vars") or {}
    return {"env_vars": {key: value for key, value in RAY_ENVIRONMENT.items()
                         if key not in given}}


def joins_cluster(address: str | None) -> bool:
    """Whether start_ray(address) joins a running cluster rather than starting a local Ray."""
    return address != "local" and bool(address or os.environ.get("RAY_ADDRESS"))


def start_ray(address: str | None = None, *, cpus: float = 0.0, num_cpus: int | None = None,
              **options: Any) -> Any:
    """Join `address` (or, when it is None, the cluster RAY_ADDRESS names, as `ray job
    submit` sets it), or start a local Ray with local_cpus(cpus) logical CPUs (exactly
    `num_cpus` when given); address "local" always starts a local one, even where a `ray
    start` cluster runs on this host. `options` go to ray.init as they are (log_to_driver,
    configure_logging, include_dashboard, ...). Returns Ray's context, or None when this
    process was already connected and nothing was done (so only a caller that got a context
    shuts Ray down)."""
    if ray.is_initialized():
        return None
    if joins_cluster(address):
        return ray.init(address=address, runtime_env=_job_environment(), **options)
    for key, value in RAY_ENVIRONMENT.items():  # inherited by the local Ray; the user's win
        os.environ.setdefault(key, value)
    return ray.init(address="local", num_cpus=num_cpus or local_cpus(cpus), **options)


def require_ray(caller: str) -> None:
    """Refuse, in one line, a library call that needs Ray before an entry point started it."""
    if not ray.is_initialized():
        raise RuntimeError(f"{caller} needs a running Ray: call fdsl_ray.cluster.start_ray() "
                           "first (the fdsl command, the study scripts and the benchmarks do)")
