"""The markdown report of a finished (or running) study: plots, best config, table and failures.

Reads only what run_study leaves in the study directory (spec.json, results.parquet, optuna.db),
so a report can be made on a laptop from results fetched off a cluster.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fdsl_ray import storage
from fdsl_ray.study.plots import plot_importances, plot_objective_vs_param, plot_pareto

SPEC_FILE = "spec.json"
RESULTS_FILE = "results.parquet"
OPTUNA_FILE = "optuna.db"
REPORT_FILE = "report.md"
TRIAL_RECORD = "trial.json"
OVERHEAD_TARGET = 0.10
_TABLE_COLUMNS = ("wall_seconds", "pretrain_compute_seconds", "finetune_compute_seconds",
                  "overhead_fraction")


@dataclass(frozen=True)
class StudyResults:
    """A study directory's spec and per-trial table, with the completed trials picked out."""

    directory: Path
    spec: dict
    table: pd.DataFrame

    @property
    def metric(self) -> str:
        return self.spec.get("metric", "top1")

    @property
    def mode(self) -> str:
        return self.spec.get("mode", "max")

    @property
    def second_metric(self) -> str | None:
        """spec.json's "second_metric", or StudySpec's own field name "second_objective"."""
        return self.spec.get("second_metric") or self.spec.get("second_objective")

    @property
    def second_mode(self) -> str:
        return self.spec.get("second_mode", "min")

    @property
    def params(self) -> list[str]:
        return list(self.spec.get("space", {}))

    @property
    def completed(self) -> pd.DataFrame:
        """Trials that finished and reported the objective (ASHA-stopped ones may not have)."""
        table = self.table
        done = table["status"] == "TERMINATED" if "status" in table else True
        if self.metric not in table:
            return table.iloc[0:0]
        return table[done & table[self.metric].notna()]

    @property
    def failed(self) -> pd.DataFrame:
        if "status" not in self.table:
            return self.table.iloc[0:0]
        return self.table[self.table["status"] == "ERROR"]


def load_results(study_dir: str | os.PathLike) -> StudyResults:
    directory = Path(study_dir)
    if not directory.is_dir():
        raise ValueError(f"study directory {directory} does not exist")
    for name in (SPEC_FILE, RESULTS_FILE):
        if not (directory / name).is_file():
            raise ValueError(f"not a study directory: {directory} has no {name}; "
                             "run a study first (e.g. python studies/quickstart.py)")
    spec = json.loads((directory / SPEC_FILE).read_text())
    table = pd.read_parquet(directory / RESULTS_FILE)
    return StudyResults(directory=directory, spec=spec, table=table)


def best_trial(results: StudyResults) -> pd.Series | None:
    completed = results.completed
    if completed.empty:
        return None
    column = completed[results.metric]
    return completed.loc[column.idxmax() if results.mode == "max" else column.idxmin()]


def pareto_mask(first: np.ndarray, second: np.ndarray, first_mode: str,
                second_mode: str) -> np.ndarray:
    """True for points no other point beats on one objective without losing on the other."""
    a = np.asarray(first, dtype=float) * (1 if first_mode == "max" else -1)
    b = np.asarray(second, dtype=float) * (1 if second_mode == "max" else -1)
    mask = np.ones(len(a), dtype=bool)
    for i in range(len(a)):
        dominated = (a >= a[i]) & (b >= b[i]) & ((a > a[i]) | (b > b[i]))
        mask[i] = not dominated.any()
    return mask


def optuna_importances(results: StudyResults) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances for the first objective, or why there are none."""
    import optuna

    database = results.directory / OPTUNA_FILE
    storage = results.spec.get("optuna_storage") or results.spec.get("storage")
    if database.is_file():
        storage = f"sqlite:///{database.resolve()}"
    if not storage:
        return None, f"no Optuna storage found ({OPTUNA_FILE} is missing)."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=results.spec["name"], storage=storage)
    except KeyError:
        return None, f"the Optuna storage holds no study named {results.spec['name']!r}."
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return None, f"needs at least 2 completed trials in Optuna, found {len(complete)}."
    distinct = {name: {repr(t.params.get(name)) for t in complete}
                for t in complete for name in t.params}
    if all(len(values) < 2 for values in distinct.values()):
        return None, "every searched parameter took a single value, so nothing to compare."
    # fANOVA rather than Optuna's default PED-ANOVA, which needs tens of trials in its top
    # quantile; fANOVA splits variance, so the direction of the objective does not matter.
    target = None if len(study.directions) == 1 else (lambda trial: trial.values[0])
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=evaluator, target=target, normalize=True)
    except (RuntimeError, ValueError) as error:
        return None, f"Optuna could not compute importances: {error}"
    return dict(importances), "fANOVA importances of the searched parameters (sum to 1)."


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_format(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _filename(param: str) -> str:
    return "objective_vs_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", param) + ".png"


def _objective_section(results: StudyResults, out_dir: Path) -> list[str]:
    lines = [f"## {results.metric} against each searched parameter", ""]
    completed = results.completed
    for param, space in results.spec.get("space", {}).items():
        column = f"param.{param}"
        if column not in completed or completed.empty:
            lines += [f"- `{param}`: no completed trial reported it.", ""]
            continue
        kind = space.get("type", "float")
        log = bool(space.get("log", False))
        path = plot_objective_vs_param(
            completed[column].tolist(), completed[results.metric].tolist(), param=param,
            metric=results.metric, kind=kind, log=log, path=out_dir / _filename(param),
            choices=space.get("choices") or ())
        lines += [f"![{results.metric} against {param}]({path.name})", ""]
    return lines


def _pareto_section(results: StudyResults, out_dir: Path) -> list[str]:
    second = results.second_metric
    lines = [f"## Pareto front: {results.metric} ({results.mode}) and {second} "
             f"({results.second_mode})", ""]
    completed = results.completed
    if second not in completed:
        return lines + [f"No trial reported {second}.", ""]
    completed = completed[completed[second].notna()]
    if completed.empty:
        return lines + [f"No completed trial reported {second}.", ""]
    mask = pareto_mask(completed[results.metric].to_numpy(), completed[second].to_numpy(),
                       results.mode, results.second_mode)
    path = plot_pareto(completed[results.metric], completed[second], mask,
                       metric=results.metric, second_metric=second,
                       path=out_dir / "pareto_front.png")
    front = completed[mask].sort_values(second)
    columns = ["trial_id", results.metric, second, *_param_columns(results, front)]
    return lines + [f"![Pareto front]({path.name})", "",
                    f"{int(mask.sum())} of {len(completed)} completed trials are on the front:",
                    "", markdown_table(front[columns]), ""]


def _param_columns(results: StudyResults, frame: pd.DataFrame) -> list[str]:
    return [f"param.{p}" for p in results.params if f"param.{p}" in frame]


def _importance_section(results: StudyResults, out_dir: Path) -> list[str]:
    lines = ["## Parameter importances", ""]
    importances, note = optuna_importances(results)
    if importances is None:
        return lines + [f"Skipped: {note}", ""]
    path = plot_importances(importances, metric=results.metric,
                            path=out_dir / "param_importances.png")
    table = pd.DataFrame({"parameter": list(importances),
                          "importance": list(importances.values())})
    return lines + [note, "", f"![parameter importances]({path.name})", "",
                    markdown_table(table), ""]


def _best_section(results: StudyResults) -> list[str]:
    lines = ["## Best configuration", ""]
    best = best_trial(results)
    if best is None:
        return lines + ["No trial completed, so there is no best configuration.", ""]
    params = {p: _plain(best[f"param.{p}"]) for p in results.params if f"param.{p}" in best}
    lines += [f"Trial `{best['trial_id']}`: {results.metric} = {_format(best[results.metric])}"
              + (f", {results.second_metric} = {_format(best[results.second_metric])}"
                 if results.second_metric and results.second_metric in best else ""), "",
              "Searched parameters:", "", "```json", json.dumps(params, indent=2), "```", "",
              *_generator_lines(results, best)]
    if isinstance(best.get("trial_dir"), str) and best["trial_dir"]:
        lines += [f"Trial directory (config, metrics, checkpoint): `{best['trial_dir']}`", ""]
    return lines


def _generator_lines(results: StudyResults, best: pd.Series) -> list[str]:
    """The trial's own generator config from its trial.json when its directory can be read
    (local, a mount or an object store); the study's base config otherwise."""
    trial_dir = str(best.get("trial_dir") or "")
    generator = None
    if trial_dir:
        try:
            record = storage.join(trial_dir, TRIAL_RECORD)
            if storage.is_file(record):
                generator = json.loads(storage.read_text(record)).get("generator")
        except (OSError, ValueError):
            generator = None  # storage out of reach from here: the base config below
    if generator:
        return ["Generator configuration of this trial:", "", "```json",
                json.dumps(generator, indent=2), "```", ""]
    return ["Generator configuration of the study (searched parameters above override it):",
            "", "```json", json.dumps(results.spec.get("generator", {}), indent=2), "```", ""]


def _plain(value: object) -> object:
    """numpy scalars -> Python, for json.dumps."""
    return value.item() if isinstance(value, np.generic) else value


def _results_section(results: StudyResults) -> list[str]:
    table = results.table
    order = [results.metric] + ([results.second_metric] if results.second_metric else [])
    columns = ["trial_id", "status", *_param_columns(results, table),
               *[c for c in (*order, *_TABLE_COLUMNS) if c in table]]
    if results.metric in table:
        table = table.sort_values(results.metric, ascending=results.mode != "max",
                                  na_position="last")
    return ["## All trials", "", markdown_table(table[columns]), ""]


def _failure_section(results: StudyResults) -> list[str]:
    failed = results.failed
    lines = ["## Failed trials", ""]
    if failed.empty:
        return lines + ["None.", ""]
    for row in failed.itertuples(index=False):
        error = str(getattr(row, "error", "") or "(no error message recorded)").strip()
        lines += [f"### Trial `{row.trial_id}`", "", "```", error[-3000:], "```", ""]
    return lines


def _overhead_section(results: StudyResults) -> list[str]:
    lines = ["## Ray overhead", ""]
    completed = results.completed
    if "overhead_fraction" not in completed or completed["overhead_fraction"].isna().all():
        return lines + ["No completed trial recorded its durations.", ""]
    fraction = completed["overhead_fraction"].dropna()
    mean = float(fraction.mean())
    verdict = "within" if mean <= OVERHEAD_TARGET else "above"
    lines += [f"Mean overhead per trial: {100 * mean:.1f} % of trial wall time (max "
              f"{100 * float(fraction.max()):.1f} %, {len(fraction)} trials), {verdict} the "
              f"{100 * OVERHEAD_TARGET:.0f} % target. Overhead = trial wall time minus "
              "pre-training and fine-tuning compute.", ""]
    if "overhead_seconds" in completed:
        lines += [f"Mean overhead: {float(completed['overhead_seconds'].mean()):.1f} s of "
                  f"{float(completed['wall_seconds'].mean()):.1f} s wall time per trial.", ""]
    return lines


def write_report(study_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write report.md and its PNGs into out_dir (default STUDY_DIR/report); return report.md."""
    results = load_results(study_dir)
    out = Path(out_dir) if out_dir is not None else results.directory / "report"
    storage.check_writable(out, "report folder")  # before any plot is drawn
    completed, total = len(results.completed), len(results.table)
    stopped = total - completed - len(results.failed)
    direction = "maximise" if results.mode == "max" else "minimise"
    lines = [f"# Study report: {results.spec.get('name', results.directory.name)}", "",
             f"Study directory: `{results.directory.resolve()}`. {total} trials, {completed} "
             f"completed, {len(results.failed)} failed"
             + (f", {stopped} stopped early without {results.metric}" if stopped else "")
             + f". Objective: {direction} "
             f"`{results.metric}`"
             + (f" and {'maximise' if results.second_mode == 'max' else 'minimise'} "
                f"`{results.second_metric}`" if results.second_metric else "") + ".", ""]
    lines += _best_section(results)
    lines += _objective_section(results, out)
    if results.second_metric:
        lines += _pareto_section(results, out)
    lines += _importance_section(results, out)
    lines += _overhead_section(results)
    lines += _results_section(results)
    lines += _failure_section(results)
    path = out / REPORT_FILE
    temporary = path.with_name(f".{REPORT_FILE}.tmp")
    temporary.write_text("\n".join(lines))
    os.replace(temporary, path)
    return path
