"""One study trial, a Tune function trainable: generate -> pre-train -> fine-tune -> report.

Ray 2.60 pattern: the trial fit()s the pre-training TorchTrainer itself, with a
TuneReportCallback so that Tune (and ASHA) sees every pre-training epoch, then fine-tunes in
its own process and reports the objective once with `ray.tune.report`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import ray.tune
import torch
from ray.tune.integration.ray_train import TuneReportCallback

from fdsl_ray import storage
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.train import pretrain
from fdsl_ray.train.finetune import _device, finetune
from fdsl_ray.train.pretrain import run_environment

TRIAL_RECORD = "trial.json"
EXPERIMENT = "tune"  # the Tune experiment's directory under the study root


def _write_json(path: str, data: dict[str, Any]) -> None:
    storage.write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def run_trial(params: dict[str, Any], *, spec: dict[str, Any], study_root: str) -> None:
    """The Tune trainable (bind `spec` and `study_root` with tune.with_parameters)."""
    started = time.perf_counter()
    study = StudySpec.from_dict(spec)
    context = ray.tune.get_context()
    trial_id = context.get_trial_id()
    # The trial's directory in storage (Tune's local staging copy is not synced to an object
    # store): same name, under the experiment.
    trial_dir = storage.join(study_root, EXPERIMENT, Path(context.get_trial_dir()).name)
    generator = study.generator_config(params)
    pretrain_config = study.pretrain_config(params)
    finetune_config = study.finetune_config()
    record: dict[str, Any] = {
        "trial_id": trial_id,
        "params": params,
        "generator": generator,
        "pretrain": pretrain_config.to_dict(),
        "finetune": finetune_config.to_dict(),
    }
    _write_json(storage.join(trial_dir, TRIAL_RECORD), record)

    pretrained = pretrain(
        generator,
        pretrain_config,
        storage_path=f"{study_root}/pretrain",
        run_name=trial_id,
        callbacks=[TuneReportCallback()],
        store_root=study.data_store,
    )
    # The trial actor's CPUs run fine-tuning; Ray pins its torch to OMP_NUM_THREADS.
    torch.set_num_threads(max(1, math.floor(study.trial_cpus)))
    scored = finetune(finetune_config, weights=str(pretrained.weights_path))

    wall = time.perf_counter() - started
    # A rerun trial (a resumed study) may find its pre-training finished: the recorded compute
    # was spent before this attempt, so this attempt's overhead counts only what it ran.
    compute_now = min(pretrained.compute_seconds, pretrained.wall_seconds) + scored.compute_seconds
    compute = pretrained.compute_seconds + scored.compute_seconds
    last = pretrained.history[-1] if pretrained.history else {}
    metrics = {
        "top1": scored.top1,
        "synthetic_images": study.synthetic_images(params),
        "compute_seconds": compute,
        "pretrain_loss": last.get("loss", float("nan")),
        "pretrain_epochs": len(pretrained.history),
        "epoch": last.get("epoch", len(pretrained.history)),
        "wall_seconds": wall,
        "pretrain_compute_seconds": pretrained.compute_seconds,
        "finetune_compute_seconds": scored.compute_seconds,
        "overhead_seconds": wall - compute_now,
        "overhead_fraction": (wall - compute_now) / wall if wall > 0 else 0.0,
        "weights_path": str(pretrained.weights_path),
        "checkpoint_path": str(pretrained.checkpoint_path or ""),
    }
    # Where the bits came from: pre-training's workers (one entry per attempt) and this process.
    environment = {"pretrain": pretrained.environments,
                   "finetune": run_environment(_device(finetune_config))}
    _write_json(storage.join(trial_dir, TRIAL_RECORD), {**record, "metrics": metrics,
                                           "history": pretrained.history,
                                           "finetune_history": scored.history,
                                           "environment": environment})
    ray.tune.report(metrics)
