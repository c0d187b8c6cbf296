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
from fdsl_ray.study.baseline import score_protocols
from fdsl_ray.study.layout import EXPERIMENT_DIR, PRETRAIN_DIR, TRIAL_RECORD
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.study.stats import summary
from fdsl_ray.train import PretrainConfig, pretrain
from fdsl_ray.train.finetune import _device
from fdsl_ray.train.pretrain import run_environment

# What the results table's `replicates` column holds for each replicate (JSON list).
REPLICATE_FIELDS = ("pretrain_seed", "finetune_seed", "top1", "probe_top1")


def _write_record(path: str, record: dict[str, Any]) -> None:
    storage.write_json(path, record, sort_keys=True, default=str)


def _finished_replicates(path: str) -> dict[tuple[int, int], dict[str, Any]]:
    """Replicates an earlier attempt of this trial finished: a resumed study keeps them."""
    if not storage.is_file(path):
        return {}
    record = json.loads(storage.read_text(path))
    return {(item["pretrain_seed"], item["finetune_seed"]): item
            for item in record.get("replicates", [])}


def run_trial(params: dict[str, Any], *, spec: dict[str, Any], study_root: str) -> None:
    """The Tune trainable (bind `spec` and `study_root` with tune.with_parameters). Runs every
    replicate of the configuration (pre-training seeds x fine-tuning seeds) and reports their
    mean; a rerun keeps the replicates an earlier attempt recorded in trial.json."""
    started = time.perf_counter()
    study = StudySpec.from_dict(spec)
    context = ray.tune.get_context()
    trial_id = context.get_trial_id()
    # The trial's directory in storage (Tune's local staging copy is not synced to an object
    # store): same name, under the experiment.
    trial_dir = storage.join(study_root, EXPERIMENT_DIR, Path(context.get_trial_dir()).name)
    record_path = storage.join(trial_dir, TRIAL_RECORD)
    finished = _finished_replicates(record_path)
    generator = study.generator_config(params)
    pretrain_config = study.pretrain_config(params)
    finetune_config = study.finetune_config()
    pretrain_seeds, finetune_seeds = study.pretrain_seeds(), study.finetune_seeds()
    record: dict[str, Any] = {
        "trial_id": trial_id,
        "params": params,
        "generator": generator,
        "pretrain": pretrain_config.to_dict(),
        "finetune": finetune_config.to_dict(),
        "seeds": {"pretrain": pretrain_seeds, "finetune": finetune_seeds},
    }
    _write_record(record_path, {**record, "replicates": list(finished.values())})
    # The trial actor's CPUs run fine-tuning; Ray pins its torch to OMP_NUM_THREADS.
    torch.set_num_threads(max(1, math.floor(study.trial_cpus)))

    runs, replicates, finetune_now = [], [], 0.0
    for pretrain_seed in pretrain_seeds:
        pretrained = pretrain(
            generator,
            PretrainConfig.from_dict({**pretrain_config.to_dict(), "seed": pretrain_seed}),
            storage_path=f"{study_root}/{PRETRAIN_DIR}",
            run_name=trial_id if len(pretrain_seeds) == 1 else f"{trial_id}_seed{pretrain_seed}",
            callbacks=[TuneReportCallback()],
            store_root=study.data_store,
        )
        runs.append(pretrained)
        for seed in finetune_seeds:
            replicate = finished.get((pretrain_seed, seed))
            if replicate is None:
                replicate = {"pretrain_seed": pretrain_seed, "finetune_seed": seed,
                             **score_protocols(finetune_config, seed,
                                                 weights=str(pretrained.weights_path))}
                finetune_now += replicate["compute_seconds"]
            replicates.append(replicate)
            _write_record(record_path, {**record, "replicates": replicates})

    wall = time.perf_counter() - started
    # A rerun trial (a resumed study) may find its pre-training or replicates finished: the
    # recorded compute was spent before this attempt, so its overhead counts only what it ran.
    compute_now = sum(min(run.compute_seconds, run.wall_seconds) for run in runs) + finetune_now
    pretrain_compute = sum(run.compute_seconds for run in runs)
    finetune_compute = sum(item["compute_seconds"] for item in replicates)
    first = runs[0]
    last = first.history[-1] if first.history else {}
    scores = {}
    for name in ("top1", "probe_top1"):
        mean, std, n = summary([item[name] for item in replicates])
        scores.update({name: mean, f"{name}_std": std})
    metrics = {
        **scores,
        "n": n,
        "replicates": json.dumps([{key: item[key] for key in REPLICATE_FIELDS}
                                  for item in replicates]),
        "synthetic_images": study.synthetic_images(params),
        "compute_seconds": pretrain_compute + finetune_compute,
        "pretrain_loss": summary([run.history[-1]["loss"] for run in runs if run.history])[0],
        "pretrain_epochs": len(first.history),
        "epoch": last.get("epoch", len(first.history)),
        "wall_seconds": wall,
        "pretrain_compute_seconds": pretrain_compute,
        "finetune_compute_seconds": finetune_compute,
        "overhead_seconds": wall - compute_now,
        "overhead_fraction": (wall - compute_now) / wall if wall > 0 else 0.0,
        "weights_path": str(first.weights_path),
        "checkpoint_path": str(first.checkpoint_path or ""),
    }
    # Where the bits came from: pre-training's workers (one entry per attempt) and this process.
    environment = {"pretrain": [env for run in runs for env in run.environments],
                   "finetune": run_environment(_device(finetune_config))}
    _write_record(record_path, {**record, "metrics": metrics, "replicates": replicates,
                              "history": first.history,
                              "pretrain_runs": [
                                  {"seed": seed, "weights_path": str(run.weights_path),
                                   "history": run.history}
                                  for seed, run in zip(pretrain_seeds, runs, strict=True)],
                              "environment": environment})
    ray.tune.report(metrics)
