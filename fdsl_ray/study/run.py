"""Run, resume or re-read a study, and write its results table.

The study directory's layout is fdsl_ray.study.layout's (REPLICATE_COLUMNS describes the
results table's replicate and baseline fields). With `storage_path` (a directory every node
mounts, e.g. EFS/NFS, or an object-store URI such as s3://bucket/studies/NAME) tune/ and
pretrain/ go there instead, and the rest stays in the study directory; under a URI the study
directory is a local copy that fdsl_ray.study.mirror keeps in step with the same URI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune

from fdsl_ray import storage
from fdsl_ray.cluster import require_ray
from fdsl_ray.data.stream import node_label
from fdsl_ray.study.baseline import (
    read_baseline,
    start_baseline,
    with_comparisons,
    write_baseline,
)
from fdsl_ray.study.cleanup import PlacementGroupReaper
from fdsl_ray.study.console import StudyConsole, error_line
from fdsl_ray.study.layout import (
    EXPERIMENT_DIR,
    RESULTS_CSV,
    RESULTS_PARQUET,
    SPEC_FILE,
    STATE_FILE,
)
from fdsl_ray.study.mirror import StudyMirror, pull_study, push_study
from fdsl_ray.study.search import make_scheduler, make_searcher, storage_url
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.study.trial import run_trial

DASHBOARD = "http://127.0.0.1:8265"
_FIXED_COLUMNS = ["trial_id", "status", "error"]
_METRIC_COLUMNS = ["top1", "pretrain_loss", "pretrain_epochs", "wall_seconds",
                   "pretrain_compute_seconds", "finetune_compute_seconds", "overhead_seconds",
                   "overhead_fraction"]
# Per trial, beside top1 (the mean of its replicates, the searched objective): the sample std
# and count of its replicates, the linear probe's mean and std, the scratch baseline's means
# and the gains over them, Welch verdicts ("best", "above", "below", "indistinguishable",
# "untested") with their p-values against the best configuration and against scratch, and
# `replicates`, a JSON list of {pretrain_seed, finetune_seed, top1, probe_top1}.
REPLICATE_COLUMNS = ["top1_std", "n", "probe_top1", "probe_top1_std", "scratch_top1",
                     "gain_over_scratch", "scratch_probe_top1", "probe_gain_over_scratch",
                     "vs_best", "p_vs_best", "vs_scratch", "p_vs_scratch", "probe_vs_scratch",
                     "p_probe_vs_scratch", "replicates"]
_VERDICT_COLUMNS = ("vs_best", "vs_scratch", "probe_vs_scratch")
_TRIAL_ID = re.compile(r"_([0-9a-f]{5}_\d{5})(?:_|$)")


def results_columns(spec: StudySpec) -> list[str]:
    """The results table's columns, in order (fdsl report reads them)."""
    params = [f"param.{name}" for name in spec.space]
    second = [spec.second_objective] if spec.second_objective else []
    return [*_FIXED_COLUMNS, *params, "top1", *REPLICATE_COLUMNS, *second, *_METRIC_COLUMNS[1:],
            "trial_dir"]


def _trial_id(metrics: dict[str, Any], path: str) -> str:
    if metrics.get("trial_id"):
        return str(metrics["trial_id"])
    found = _TRIAL_ID.search(Path(path).name)
    return found.group(1) if found else Path(path).name


def results_table(spec: StudySpec, results: tune.ResultGrid, root: str,
                  baseline: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per trial; a trial ASHA stopped early has no top1 (NaN) and no error. `root` is
    the study's storage root, which trial_dir is written like (a URI under a URI); without
    `baseline` the scratch columns stay empty."""
    rows = []
    for result in results:
        metrics = dict(result.metrics or {})
        config = dict(result.config or {})
        row: dict[str, Any] = {
            "trial_id": _trial_id(metrics, result.path),
            "status": "ERROR" if result.error else "TERMINATED",
            "error": error_line(result.error),
        }
        for name in spec.space:
            row[f"param.{name}"] = config.get(name)
        row["top1"] = metrics.get("top1", float("nan"))
        for column in REPLICATE_COLUMNS:
            default = "" if column in _VERDICT_COLUMNS else float("nan")
            row[column] = metrics.get(column, default)
        row["n"] = metrics.get("n", 0)
        row["replicates"] = metrics.get("replicates", "[]")
        if spec.second_objective:
            row[spec.second_objective] = metrics.get(spec.second_objective, float("nan"))
        row["pretrain_loss"] = metrics.get("pretrain_loss", metrics.get("loss", float("nan")))
        row["pretrain_epochs"] = metrics.get("pretrain_epochs", metrics.get("epoch", 0))
        for column in _METRIC_COLUMNS[3:]:
            row[column] = metrics.get(column, float("nan"))
        row["trial_dir"] = storage.as_location(result.path, like=root)
        rows.append(row)
    table = pd.DataFrame(rows, columns=results_columns(spec))
    return with_comparisons(spec, table.sort_values("trial_id", ignore_index=True), baseline)


def write_results(table: pd.DataFrame, study_dir: Path) -> None:
    """results.parquet and results.csv, each written whole (fdsl_ray.storage)."""
    storage.write_bytes(study_dir / RESULTS_PARQUET, table.to_parquet(index=False))
    storage.write_text(study_dir / RESULTS_CSV, table.to_csv(index=False))


def read_results(study_dir: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(study_dir) / RESULTS_PARQUET)


def print_results(spec: StudySpec, table: pd.DataFrame, study_dir: Path) -> None:
    shown = [column for column in results_columns(spec)
             if column.startswith("param.") or column in (
                 "trial_id", "status", "top1", "top1_std", "n", "probe_top1",
                 "gain_over_scratch", "vs_best", "vs_scratch", spec.second_objective,
                 "pretrain_loss",
                 "wall_seconds", "overhead_fraction")]
    with pd.option_context("display.max_columns", None, "display.width", 160,
                           "display.float_format", "{:.4g}".format):
        print(table[shown].to_string(index=False))
    errors = table[table["status"] == "ERROR"]
    for _, row in errors.iterrows():
        print(f"trial {row['trial_id']} failed: {row['error']}")
    done = table.dropna(subset=["top1"])
    if len(done):
        best = done.loc[done["top1"].idxmax()]
        params = {column[6:]: _plain(best[column]) for column in shown
                  if column.startswith("param.")}
        print(f"best: trial {best['trial_id']} top1={best['top1']:.2f} {params}")
        print(f"Ray overhead per trial: median {100 * done['overhead_fraction'].median():.1f} % "
              "of wall time")
    print(f"results: {study_dir / RESULTS_PARQUET} and .csv")
    print(f"report: fdsl report {study_dir}")
    print(f"dashboards: Ray {DASHBOARD} (local; `ray dashboard cluster.yaml` on a cluster), "
          f"optuna-dashboard {storage_url(spec, study_dir)}")


def show_study(study_dir: Path) -> None:
    """Print a study directory's results as the study printed them when it ended."""
    for name in (SPEC_FILE, RESULTS_PARQUET):
        if not (study_dir / name).is_file():
            what = "is not a study directory" if name == SPEC_FILE else "has no results yet"
            raise ValueError(f"{study_dir} {what} ({name} missing)")
    spec = StudySpec.load(study_dir / SPEC_FILE)
    table = read_results(study_dir)
    state = "finished" if _is_finished(study_dir) else "unfinished (resume it with --resume)"
    print(f"study {spec.name}: {state}, {len(table)} of {spec.num_samples} trials")
    print_results(spec, table, study_dir)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, for printing."""
    return value.item() if hasattr(value, "item") else value


def _check_same_spec(spec: StudySpec, study_dir: Path) -> None:
    saved = json.loads((study_dir / SPEC_FILE).read_text())
    saved.setdefault("seeds", {})  # a spec.json from before replicates: one seed of each
    current = json.loads(json.dumps(spec.to_dict()))
    differ = sorted(key for key in set(saved) | set(current)
                    if saved.get(key) != current.get(key))
    if differ:
        raise ValueError(f"{study_dir} holds a different study (fields {', '.join(differ)} "
                         "differ): use another study directory, or the same spec to resume")


def _is_finished(study_dir: Path) -> bool:
    path = study_dir / STATE_FILE
    return path.exists() and json.loads(path.read_text()).get("finished", False)


def run_study(
    spec: StudySpec,
    *,
    study_dir: str | Path,
    resume: bool = False,
    storage_path: str | None = None,
    stop: tune.Stopper | dict | None = None,
    verbose: int = 1,
    connect: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Run the study (or resume it, or re-read it when finished); returns the results table.

    Everything that can be refused is refused before the first trial: the spec at
    construction, the study directory (writable, resumable) before Ray is joined, the
    resources against the connected cluster. `connect`, an entry point's call of
    fdsl_ray.cluster.start_ray, runs once the study directory passed (without it Ray must be
    running already); a finished study is re-read without Ray. `stop` is Tune's stop
    condition (per trial, or a Stopper for the whole study): Tune ends the search for good
    when a Stopper stops everything. `verbose` 0 prints only the results, 1 a line per trial
    event and a status table every few minutes (fdsl_ray.study.console), 2 Tune's own
    reporter besides. A study interrupted by Ctrl+C, a stopped job or a killed
    driver resumes with `resume=True`: finished trials are kept, unfinished ones rerun (their
    pre-training continues from its last checkpoint).
    """
    study_dir = Path(study_dir).resolve()
    root = storage.normalize(storage_path) if storage_path else str(study_dir)
    remote = root if storage.is_uri(root) else None
    if remote and (pulled := pull_study(remote, study_dir)):
        print(f"study files {', '.join(pulled)} copied from {remote} to {study_dir}")
    experiment = f"{root}/{EXPERIMENT_DIR}"
    if (study_dir / SPEC_FILE).exists():
        _check_same_spec(spec, study_dir)
        if _is_finished(study_dir):
            print(f"study {spec.name} is finished; its results:")
            table = read_results(study_dir)
            print_results(spec, table, study_dir)
            return table
        if not resume:
            raise ValueError(f"{study_dir} holds an unfinished study {spec.name!r}: pass "
                             "--resume to continue it, or use another study directory")
    elif resume:
        raise ValueError(f"resume=True but {study_dir} holds no study ({SPEC_FILE} missing)")
    storage.check_writable(study_dir, "study directory")
    # A trial's pre-training epochs reach Tune without the objective (it exists only once the
    # trial has fine-tuned), which Tune's strict metric check would reject; the results
    # table shows a trial that never reported it with top1 NaN.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    if connect is not None:
        connect()
    require_ray("run_study")
    concurrency = spec.concurrency(ray.cluster_resources())
    spec.save(study_dir / SPEC_FILE)
    try:
        return _fit(spec, study_dir, root, remote, experiment, concurrency, resume, stop,
                    verbose)
    finally:
        if remote:
            push_study(study_dir, remote)


def _fit(spec: StudySpec, study_dir: Path, root: str, remote: str | None, experiment: str,
         concurrency: int, resume: bool, stop: tune.Stopper | dict | None,
         verbose: int) -> pd.DataFrame:
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec.to_dict(), study_root=root),
        {"cpu": spec.trial_cpus, **node_label(spec.node_labels()["worker_resource"])},
    )
    if resume and tune.Tuner.can_restore(experiment):
        tuner = tune.Tuner.restore(experiment, trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        callbacks = [PlacementGroupReaper(), *([StudyMirror(study_dir, remote)] if remote else []),
                     *([StudyConsole(spec)] if verbose else [])]
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=make_searcher(spec, study_dir, concurrency),
                scheduler=make_scheduler(spec),
                num_samples=spec.num_samples,
                # A new trial actor imports torch, timm and the study (about 10 s on a core);
                # the next trial of the same resources reuses it.
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT_DIR,
                storage_path=root,
                stop=stop,
                callbacks=callbacks,
                failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                verbose=1 if verbose > 1 else 0,
            ),
        )
    print(f"study {spec.name}: {spec.num_samples} trials, up to {concurrency} at once, "
          f"each holding {spec.trial_resources()}")
    baseline = read_baseline(study_dir, spec)
    pending = None if baseline else start_baseline(spec)
    results = tuner.fit()
    if pending is not None:
        try:
            baseline = ray.get(pending)
            write_baseline(study_dir, baseline)
        except (ray.exceptions.RayError, ValueError) as error:
            print(f"scratch baseline failed (the study stays unfinished): {error_line(error)}")
    table = results_table(spec, results, root, baseline)
    write_results(table, study_dir)
    finished = baseline is not None and len(table) >= spec.num_samples and not any(
        result.metrics is None or (not result.error and "top1" not in result.metrics
                                   and not spec.asha)
        for result in results)
    storage.write_json(study_dir / STATE_FILE, {"finished": finished, "trials": len(table)})
    print_results(spec, table, study_dir)
    if remote:
        print(f"study files: copied to {remote}, beside the trials and pre-training runs")
    return table
