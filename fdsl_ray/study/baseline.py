"""The study's random-init ("scratch") baseline, computed once and cached in baseline.json.

Every pre-training is worth its gain over the same fine-tuning from a random init, with the
same seeds, so that gain and its uncertainty can be read off the results table. Both
protocols are scored: full fine-tuning (the study's `finetune` recipe) and a linear probe of
the frozen features (the same recipe with mode "linear", fdsl_ray.train.finetune).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import torch

from fdsl_ray import storage
from fdsl_ray.data.stream import node_label
from fdsl_ray.study.layout import BASELINE_FILE
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.study.stats import summary, verdict
from fdsl_ray.train.finetune import FinetuneConfig, finetune
from fdsl_ray.train.models import ModelSpec, get_model


def protocols(config: FinetuneConfig) -> dict[str, FinetuneConfig]:
    """{"top1": the study's recipe (full fine-tuning unless it sets mode "linear"),
    "probe_top1": the same recipe as a linear probe of the frozen features}."""
    return {"top1": config, "probe_top1": replace(config, mode="linear")}


def score_protocols(config: FinetuneConfig, seed: int, *, weights: str | None,
                    model: ModelSpec | None = None) -> dict[str, Any]:
    """One replicate: both protocols' top-1 with fine-tuning seed `seed` (`weights` None:
    from a random init of `model`); a recipe that is itself a probe runs once."""
    full = finetune(replace(config, seed=seed), weights=weights, model=model)
    probe = full if config.mode == "linear" else finetune(
        replace(config, mode="linear", seed=seed), weights=weights, model=model)
    return {"top1": full.top1, "probe_top1": probe.top1,
            "compute_seconds": full.compute_seconds
            + (0.0 if probe is full else probe.compute_seconds),
            "finetune_history": full.history}


def baseline_key(spec: StudySpec) -> dict[str, Any]:
    """What the cached baseline depends on; a cache with another key is recomputed."""
    models = sorted({spec.pretrain_config(params).model for params in spec.corner_params()})
    return {"models": models, "finetune_seeds": spec.finetune_seeds(),
            "protocols": {name: config.to_dict()
                          for name, config in protocols(spec.finetune_config()).items()}}


def scratch_baseline(spec: StudySpec) -> dict[str, Any]:
    """Fine-tune and probe a random-init model of each pre-training architecture, per seed."""
    key = baseline_key(spec)
    models = {}
    for model in key["models"]:
        started = time.perf_counter()
        replicates = []
        for seed in key["finetune_seeds"]:
            scores = score_protocols(spec.finetune_config(), seed, weights=None,
                                     model=get_model(model))
            replicates.append({"finetune_seed": seed, "top1": scores["top1"],
                               "probe_top1": scores["probe_top1"]})
        entry: dict[str, Any] = {"replicates": replicates}
        for name in ("top1", "probe_top1"):
            mean, std, n = summary([item[name] for item in replicates])
            entry.update({name: mean, f"{name}_std": std if math.isfinite(std) else None})
        entry["n"] = n
        entry["compute_seconds"] = time.perf_counter() - started
        models[model] = entry
    return {**key, "scores": models}


@ray.remote
def _scratch_task(spec: dict[str, Any]) -> dict[str, Any]:
    study = StudySpec.from_dict(spec)
    torch.set_num_threads(max(1, math.floor(study.trial_cpus)))
    return scratch_baseline(study)


def start_baseline(spec: StudySpec) -> ray.ObjectRef:
    """Run scratch_baseline as a Ray task holding one trial's CPUs (and a GPU when trials pre-
    train on GPUs), on the nodes the trials' workers use, beside the trials rather than
    before them."""
    gpu = any(spec.pretrain_config(params).use_gpu for params in spec.corner_params())
    return _scratch_task.options(
        num_cpus=spec.trial_cpus, num_gpus=1 if gpu else 0,
        resources=node_label(spec.node_labels()["worker_resource"])).remote(spec.to_dict())


def read_baseline(study_dir: Path, spec: StudySpec) -> dict[str, Any] | None:
    """The cached baseline if it was computed for this spec's models, seeds and recipe."""
    path = Path(study_dir) / BASELINE_FILE
    if not path.is_file():
        return None
    cached = json.loads(path.read_text())
    key = json.loads(json.dumps(baseline_key(spec)))
    return cached if all(cached.get(name) == value for name, value in key.items()) else None


def write_baseline(study_dir: Path, baseline: dict[str, Any]) -> None:
    storage.write_json(Path(study_dir) / BASELINE_FILE, baseline, sort_keys=True)


def _top1s(replicates: str | list, name: str) -> list[float]:
    items = json.loads(replicates) if isinstance(replicates, str) else replicates
    return [item[name] for item in items if item.get(name) is not None]


def with_comparisons(spec: StudySpec, table: pd.DataFrame,
                     baseline: dict[str, Any] | None) -> pd.DataFrame:
    """Fill the results table's scratch, gain and verdict columns (fdsl_ray.study.stats):
    each configuration's replicates against the best configuration's and the baseline's."""
    table = table.copy()
    scored = table["top1"].notna() & (table["n"] > 0)
    best = table.loc[table.loc[scored, "top1"].idxmax()] if scored.any() else None
    for index, row in table[scored].iterrows():
        params = {name: row[f"param.{name}"] for name in spec.space}
        scratch = ((baseline or {}).get("scores") or {}).get(spec.pretrain_config(params).model)
        top1 = _top1s(row["replicates"], "top1")
        if index == best.name:
            table.loc[index, "vs_best"] = "best"
        else:
            table.loc[index, ["vs_best", "p_vs_best"]] = verdict(
                top1, _top1s(best["replicates"], "top1"))
        if scratch is None:
            continue
        for name, prefix in (("top1", ""), ("probe_top1", "probe_")):
            table.loc[index, f"scratch_{name}"] = scratch[name]
            table.loc[index, f"{prefix}gain_over_scratch"] = row[name] - scratch[name]
            table.loc[index, [f"{prefix}vs_scratch", f"p_{prefix}vs_scratch"]] = verdict(
                _top1s(row["replicates"], name), _top1s(scratch["replicates"], name))
    return table
