"""The report of a finished (or running) study: report.md with its PNGs, and report.html, the
same page with the images embedded, to send as one file. Plots, pre-training curves, previews
of the best and worst trials' images, the best config as a command, the table and failures.

Reads only what run_study leaves in the study directory (spec.json, results.parquet, optuna.db)
and the trials' trial.json (curves, generator configs) where they can be read, so a report can
be made on a laptop from results fetched off a cluster.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fdsl_ray import storage
from fdsl_ray.formulas import create_generator
from fdsl_ray.study.document import (
    Block,
    Code,
    Heading,
    Image,
    Table,
    Text,
    format_value,
    to_html,
    to_markdown,
)
from fdsl_ray.study.layout import (
    BASELINE_FILE,
    EXPERIMENT_DIR,
    HTML_FILE,
    OBJECTIVE,
    OBJECTIVE_MODE,
    OPTUNA_DB,
    REPORT_DIR,
    REPORT_FILE,
    RESULTS_PARQUET,
    SECOND_OBJECTIVE_MODE,
    SPEC_FILE,
    TRIAL_RECORD,
    TUNE_RESULTS,
)
from fdsl_ray.study.plots import (
    plot_curves,
    plot_importances,
    plot_objective_vs_param,
    plot_pareto,
    plot_previews,
)
from fdsl_ray.study.stats import ALPHA, TEST_NAME

OVERHEAD_TARGET = 0.10
PREVIEW_CATEGORIES = 4  # of each previewed trial: its first categories x instances
PREVIEW_INSTANCES = 2
_REPLICATE_TABLE = ("top1_std", "n", "probe_top1", "probe_top1_std", "gain_over_scratch",
                    "probe_gain_over_scratch", "vs_best", "vs_scratch", "probe_vs_scratch")
# Each verdict column's sentences (fdsl_ray.study.stats.VERDICTS), with its p and gain columns.
_VERDICT_SENTENCES = (
    ("vs_best", "p_vs_best", None, {
        "best": "Best", "indistinguishable": "Not distinguishable from the best",
        "below": "Below the best", "untested": "Not tested against the best (one replicate)"}),
    ("vs_scratch", "p_vs_scratch", "gain_over_scratch", {
        "above": "Fine-tuning above scratch",
        "indistinguishable": "Fine-tuning not distinguishable from scratch",
        "below": "Fine-tuning below scratch",
        "untested": "Fine-tuning not tested against scratch (one replicate)"}),
    ("probe_vs_scratch", "p_probe_vs_scratch", "probe_gain_over_scratch", {
        "above": "Linear probe above scratch",
        "indistinguishable": "Linear probe not distinguishable from scratch",
        "below": "Linear probe below scratch",
        "untested": "Linear probe not tested against scratch (one replicate)"}),
)
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
        return OBJECTIVE

    @property
    def mode(self) -> str:
        return OBJECTIVE_MODE

    @property
    def second_metric(self) -> str | None:
        return self.spec.get("second_objective")

    @property
    def second_mode(self) -> str:
        return SECOND_OBJECTIVE_MODE

    @property
    def params(self) -> list[str]:
        return list(self.spec["space"])

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
    for name in (SPEC_FILE, RESULTS_PARQUET):
        if not (directory / name).is_file():
            raise ValueError(f"not a study directory: {directory} has no {name}; "
                             "run a study first (e.g. python studies/quickstart.py)")
    spec = json.loads((directory / SPEC_FILE).read_text())
    table = pd.read_parquet(directory / RESULTS_PARQUET)
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

    database = results.directory / OPTUNA_DB
    storage = results.spec.get("storage")
    if database.is_file():
        storage = f"sqlite:///{database.resolve()}"
    if not storage:
        return None, f"no Optuna storage found ({OPTUNA_DB} is missing)."
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
    varied = [name for name, values in distinct.items() if len(values) > 1]
    if not varied:
        return None, "every searched parameter took a single value, so nothing to compare."
    if len(varied) == 1:
        # One parameter always gets all of the importance (1.0): nothing to rank.
        return None, (f"only `{varied[0]}` varied; importances rank two or more searched "
                      "parameters.")
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


def _filename(param: str) -> str:
    return "objective_vs_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", param) + ".png"


def _replicate_errors(results: StudyResults, frame: pd.DataFrame) -> pd.Series | None:
    """Each configuration's std over its replicates (`<metric>_std`), when any has two or more."""
    column = f"{results.metric}_std"
    if column not in frame or frame[column].isna().all():
        return None
    return frame[column]


def _baseline(results: StudyResults) -> float | None:
    """The study's random-init (scratch) score of the objective: `scratch_<metric>`."""
    column = f"scratch_{results.metric}"
    values = results.table[column].dropna() if column in results.table else ()
    return float(values.iloc[0]) if len(values) else None


def _objective_section(results: StudyResults, out_dir: Path) -> list[Block]:
    blocks: list[Block] = [Heading(2, f"{results.metric} against each searched parameter")]
    completed = results.completed
    errors = _replicate_errors(results, completed)
    baseline = _baseline(results)
    notes = []
    if errors is not None:
        notes.append("error bars: one standard deviation over each configuration's replicates")
    if baseline is not None:
        notes.append(f"dashed line: the random-init (scratch) baseline, {baseline:.4g}")
    if notes:
        sentence = "; ".join(notes)
        blocks.append(Text(sentence[0].upper() + sentence[1:] + "."))
    for param, space in results.spec["space"].items():
        column = f"param.{param}"
        if column not in completed or completed.empty:
            blocks.append(Text(f"- `{param}`: no completed trial reported it."))
            continue
        path = plot_objective_vs_param(
            completed[column].tolist(), completed[results.metric].tolist(), param=param,
            metric=results.metric, kind=space.get("type", "float"),
            log=bool(space.get("log", False)), path=out_dir / _filename(param),
            choices=space.get("choices") or (),
            errors=None if errors is None else errors.tolist(), baseline=baseline)
        blocks.append(Image(path, f"{results.metric} against {param}"))
    return blocks


def _pareto_section(results: StudyResults, out_dir: Path) -> list[Block]:
    second = results.second_metric
    blocks: list[Block] = [Heading(2, f"Pareto front: {results.metric} ({results.mode}) and "
                                      f"{second} ({results.second_mode})")]
    completed = results.completed
    if second not in completed:
        return blocks + [Text(f"No trial reported {second}.")]
    completed = completed[completed[second].notna()]
    if completed.empty:
        return blocks + [Text(f"No completed trial reported {second}.")]
    mask = pareto_mask(completed[results.metric].to_numpy(), completed[second].to_numpy(),
                       results.mode, results.second_mode)
    path = plot_pareto(completed[results.metric], completed[second], mask,
                       metric=results.metric, second_metric=second,
                       path=out_dir / "pareto_front.png")
    front = completed[mask].sort_values(second)
    columns = ["trial_id", results.metric, second, *_param_columns(results, front)]
    return blocks + [Image(path, "Pareto front"),
                     Text(f"{int(mask.sum())} of {len(completed)} completed trials are on the "
                          "front:"),
                     Table(front[columns])]


def _param_columns(results: StudyResults, frame: pd.DataFrame) -> list[str]:
    return [f"param.{p}" for p in results.params if f"param.{p}" in frame]


def _importance_section(results: StudyResults, out_dir: Path) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Parameter importances")]
    importances, note = optuna_importances(results)
    if importances is None:
        return blocks + [Text(f"Skipped: {note}")]
    path = plot_importances(importances, metric=results.metric,
                            path=out_dir / "param_importances.png")
    table = pd.DataFrame({"parameter": list(importances),
                          "importance": list(importances.values())})
    return blocks + [Text(note), Image(path, "parameter importances"), Table(table)]


def _trial_file(row: pd.Series, name: str, study_dir: Path | None) -> str | None:
    """A file of the trial's directory (local, a mount or an object store), else of
    STUDY_DIR/tune/<its name> (a copy fetched off a cluster); None when neither is readable."""
    trial_dir = str(row.get("trial_dir") or "")
    if not trial_dir:
        return None
    candidates = [storage.join(trial_dir, name)]
    if study_dir is not None:
        candidates.append(str(study_dir / EXPERIMENT_DIR / Path(trial_dir).name / name))
    for path in candidates:
        try:
            if storage.is_file(path):
                return storage.read_text(path)
        except OSError:
            continue  # storage out of reach from here
    return None


def trial_record(row: pd.Series, study_dir: Path | None = None) -> dict | None:
    """The trial's trial.json (its generator, pre-training config and epochs), or None."""
    text = _trial_file(row, TRIAL_RECORD, study_dir)
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


def trial_epochs(row: pd.Series, record: dict | None, study_dir: Path | None = None) -> list[dict]:
    """Pre-training epochs with a loss and a train top-1: trial.json's history, written when
    the trial finishes, else the epochs Tune recorded in result.json (a trial stopped early or
    failed); the last report of an epoch counts (a rerun repeats them)."""
    history = (record or {}).get("history") or []
    if not history:
        text = _trial_file(row, TUNE_RESULTS, study_dir) or ""
        history = [json.loads(line) for line in text.splitlines() if line.strip()]
    epochs = {item["epoch"]: item for item in history
              if {"epoch", "loss", "train_top1"} <= set(item)}
    return [epochs[epoch] for epoch in sorted(epochs)]


def _best_section(results: StudyResults, best: pd.Series | None,
                  record: dict | None) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Best configuration")]
    if best is None:
        return blocks + [Text("No trial completed, so there is no best configuration.")]
    params = {p: _plain(best[f"param.{p}"]) for p in results.params if f"param.{p}" in best}
    score = f"{results.metric} = {format_value(best[results.metric])}"
    std = f"{results.metric}_std"
    if std in best and pd.notna(best[std]):
        score += f" ± {format_value(best[std])}" + (
            f" (n = {int(best['n'])})" if "n" in best and pd.notna(best["n"]) else "")
    if results.second_metric and results.second_metric in best:
        score += f", {results.second_metric} = {format_value(best[results.second_metric])}"
    blocks += [Text(f"Trial `{best['trial_id']}`: {score}"), Text("Searched parameters:"),
               Code(json.dumps(params, indent=2), "json")]
    generator = (record or {}).get("generator")
    if generator:
        blocks += [Text("Generator configuration of this trial:"),
                   Code(json.dumps(generator, indent=2), "json")]
    else:
        blocks += [Text("Generator configuration of the study (searched parameters above "
                        "override it):"),
                   Code(json.dumps(results.spec["generator"], indent=2), "json")]
    blocks += _command_blocks(results, record)
    if isinstance(best.get("trial_dir"), str) and best["trial_dir"]:
        blocks.append(Text(f"Trial directory (config, metrics, checkpoint): "
                           f"`{best['trial_dir']}`"))
    return blocks


def _command_blocks(results: StudyResults, record: dict | None) -> list[Block]:
    """The best trial's pre-training as one `fdsl pretrain` command, from its trial.json."""
    # The command is the inverse of the pretrain CLI's own parsing, so it is built there.
    from fdsl_ray.cli.pretrain import pretrain_command

    if not record or not record.get("generator") or not record.get("pretrain"):
        return [Text(f"No `fdsl pretrain` command: the trial's {TRIAL_RECORD} cannot be read "
                     "from here.")]
    argv, unset = pretrain_command(record["generator"], record["pretrain"],
                                   results.spec.get("recipe", "cpu"))
    blocks: list[Block] = [Text("Pre-train this configuration again on its own:"),
                           Code(shell_command(argv), "sh")]
    if unset:
        blocks.append(Text("The study also set, and no `fdsl pretrain` option sets: "
                           + ", ".join(f"`{key}={json.dumps(value)}`"
                                       for key, value in unset.items())
                           + " (the Python API's PretrainConfig takes them)."))
    return blocks


def shell_command(argv: list[str], width: int = 88) -> str:
    """argv quoted for a POSIX shell, one `--option value` group kept whole, lines continued
    with a backslash once they pass `width`."""
    groups: list[list[str]] = []
    for token in argv:
        if token.startswith("--") or not groups or not groups[-1][0].startswith("--"):
            groups.append([token])
        else:
            groups[-1].append(token)  # the value of the option before it
    lines = [""]
    for group in (shlex.join(group) for group in groups):
        if lines[-1] and len(lines[-1]) + 1 + len(group) > width:
            lines.append("    ")
        lines[-1] += ("" if lines[-1].strip() == "" else " ") + group
    return " \\\n".join(lines)


def _plain(value: object) -> object:
    """numpy scalars -> Python, for json.dumps."""
    return value.item() if isinstance(value, np.generic) else value


def _curves_section(results: StudyResults, records: dict[str, dict | None],
                    best: pd.Series | None, out_dir: Path) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Pre-training curves")]
    histories = {str(row["trial_id"]): trial_epochs(row, records.get(str(row["trial_id"])),
                                                    results.directory)
                 for _, row in results.table.iterrows()}
    histories = {trial_id: history for trial_id, history in histories.items() if history}
    if not histories:
        return blocks + [Text(f"No trial recorded its pre-training epochs ({TRIAL_RECORD}, "
                              f"{TUNE_RESULTS}), or their directories are out of reach.")]
    missing = sorted(set(records) - set(histories))
    path = plot_curves(histories, best=None if best is None else str(best["trial_id"]),
                       path=out_dir / "pretrain_curves.png")
    blocks += [Text(f"Loss and train top-1 per epoch of {len(histories)} trial(s), the best in "
                    "red."), Image(path, "pre-training loss and train top-1 per epoch")]
    if missing:
        blocks.append(Text(f"Without recorded epochs: {', '.join(f'`{m}`' for m in missing)}."))
    return blocks


def _preview(record: dict) -> np.ndarray:
    """The trial's first categories x instances, rendered from its own generator config."""
    generator = create_generator(**record["generator"])
    categories = min(PREVIEW_CATEGORIES, generator.num_classes)
    labels = np.repeat(np.arange(categories), PREVIEW_INSTANCES)
    instances = np.tile(np.arange(PREVIEW_INSTANCES), categories)
    return generator.render(labels, instances)


def _preview_section(results: StudyResults, records: dict[str, dict | None],
                     out_dir: Path) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Synthetic images of the best and worst trials")]
    completed = results.completed.sort_values(results.metric,
                                              ascending=results.mode != "max")
    if completed.empty:
        return blocks + [Text("No trial completed.")]
    picks = [("best", completed.iloc[0])]
    if len(completed) > 1:
        picks.append(("worst", completed.iloc[-1]))
    rows, unreadable = [], []
    for rank, row in picks:
        record = records.get(str(row["trial_id"]))
        if not record or not record.get("generator"):
            unreadable.append(f"`{row['trial_id']}`")
            continue
        params = ", ".join(f"{p}={format_value(row[f'param.{p}'])}"
                           for p in results.params if f"param.{p}" in row)
        images = _preview(record)
        rows.append((f"{rank}: {row['trial_id']}, {results.metric} "
                     f"{format_value(row[results.metric])} ({params}); brightest pixel "
                     f"{int(images.max())} of 255", images))
    if rows:
        path = plot_previews(rows, path=out_dir / "previews.png")
        blocks += [Text(f"Categories 0-{PREVIEW_CATEGORIES - 1}, instances 0-"
                        f"{PREVIEW_INSTANCES - 1} of each, rendered from the trial's generator "
                        "config; each tile stretched to its own brightest pixel."),
                   Image(path, "synthetic images of the best and worst trials")]
    if unreadable:
        blocks.append(Text(f"Not previewed ({TRIAL_RECORD} out of reach): "
                           f"{', '.join(unreadable)}."))
    return blocks


def _mean_std(row: pd.Series, column: str) -> str:
    """'62.1 ± 1.3 (n = 3)' where the row has replicates, else the value alone."""
    text = format_value(row[column])
    if pd.notna(row.get(f"{column}_std", np.nan)):
        text += f" ± {format_value(row[f'{column}_std'])}"
    return text + (f" (n = {int(row['n'])})" if pd.notna(row.get("n", np.nan)) else "")


def _describe(row: pd.Series, params: list[str]) -> str:
    return ", ".join(f"{p}={_plain(row[f'param.{p}'])}" for p in params
                     if f"param.{p}" in row) or f"trial {row['trial_id']}"


def _verdict_sentences(frame: pd.DataFrame, params: list[str]) -> list[Block]:
    """One sentence per verdict: which configurations got it, with the gain and Welch's p."""
    blocks: list[Block] = []
    for column, p_column, gain, phrases in _VERDICT_SENTENCES:
        if column not in frame:
            continue
        for verdict, phrase in phrases.items():
            items = []
            for _, row in frame[frame[column] == verdict].iterrows():
                details = [] if gain is None else [f"{row[gain]:+.2f} points"]
                if pd.notna(row.get(p_column, np.nan)):
                    details.append(f"p = {row[p_column]:.3g}")
                items.append(_describe(row, params)
                             + (f" ({', '.join(details)})" if details else ""))
            if items:
                blocks.append(Text(f"{phrase}: {'; '.join(items)}."))
    return blocks


def _read_baseline(results: StudyResults) -> dict:
    path = results.directory / BASELINE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _uncertainty_section(results: StudyResults) -> list[Block]:
    """Mean ± std per configuration, the scratch baseline, and what differs from what."""
    blocks: list[Block] = [Heading(2, "Replicates, scratch baseline and uncertainty")]
    completed = results.completed
    if "n" not in completed or not (completed["n"] > 0).any():
        return blocks + [Text("No replicate statistics recorded (a study from before "
                              "replicates, or no completed trial).")]
    seeds = results.spec.get("seeds") or {}
    blocks.append(Text(
        f"Each configuration ran {int(completed['n'].max())} replicate(s) (fine-tuning seeds "
        f"{seeds.get('finetune', 'of the recipe')}, pre-training seeds "
        f"{seeds.get('pretrain', 'of the recipe')}); values are mean ± sample std of top-1 "
        f"(%). Two configurations are called distinguishable when {TEST_NAME} gives p < "
        f"{ALPHA}: with 3 to 5 replicates a bootstrap interval is too narrow, the "
        "t-distribution accounts for small n, and Welch does not assume equal spreads. It "
        "ignores that trials and scratch share fine-tuning seeds (conservative) and is not "
        "corrected for many comparisons."))
    scores = _read_baseline(results).get("scores") or {}
    for model, entry in scores.items():
        spread = {name: f"{entry[name]:.2f}" + ("" if entry.get(f"{name}_std") is None
                                                else f" ± {entry[f'{name}_std']:.2f}")
                  for name in ("top1", "probe_top1")}
        blocks.append(Text(f"Scratch baseline (random init, `{model}`, same recipe and seeds, "
                           f"n = {entry['n']}): fine-tuning {spread['top1']} %, linear probe "
                           f"{spread['probe_top1']} %."))
    if not scores:
        blocks.append(Text(f"No scratch baseline was recorded ({BASELINE_FILE} is missing)."))
    blocks += _verdict_sentences(completed, results.params)
    shown = completed.sort_values(results.metric, ascending=results.mode != "max")
    rows = list(shown.iterrows())
    table = pd.DataFrame({
        "configuration": [_describe(row, results.params) for _, row in rows],
        "top1": [_mean_std(row, "top1") for _, row in rows],
        **({"probe_top1": [_mean_std(row, "probe_top1") for _, row in rows]}
           if "probe_top1" in shown else {}),
        **{column: shown[column].tolist() for column in (
            "gain_over_scratch", "probe_gain_over_scratch", "vs_best", "vs_scratch",
            "probe_vs_scratch") if column in shown}})
    return blocks + [Table(table)]


def _results_section(results: StudyResults) -> list[Block]:
    table = results.table
    order = [results.metric] + ([results.second_metric] if results.second_metric else [])
    columns = ["trial_id", "status", *_param_columns(results, table),
               *[c for c in (order[0], *_REPLICATE_TABLE, *order[1:], *_TABLE_COLUMNS)
                 if c in table]]
    if results.metric in table:
        table = table.sort_values(results.metric, ascending=results.mode != "max",
                                  na_position="last")
    return [Heading(2, "All trials"), Table(table[columns])]


def _failure_section(results: StudyResults) -> list[Block]:
    failed = results.failed
    blocks: list[Block] = [Heading(2, "Failed trials")]
    if failed.empty:
        return blocks + [Text("None.")]
    for row in failed.itertuples(index=False):
        error = str(getattr(row, "error", "") or "(no error message recorded)").strip()
        blocks += [Heading(3, f"Trial `{row.trial_id}`"), Code(error[-3000:])]
    return blocks


def _overhead_section(results: StudyResults) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Ray overhead")]
    completed = results.completed
    if "overhead_fraction" not in completed or completed["overhead_fraction"].isna().all():
        return blocks + [Text("No completed trial recorded its durations.")]
    fraction = completed["overhead_fraction"].dropna()
    mean = float(fraction.mean())
    verdict = "within" if mean <= OVERHEAD_TARGET else "above"
    blocks.append(Text(
        f"Mean overhead per trial: {100 * mean:.1f} % of trial wall time (max "
        f"{100 * float(fraction.max()):.1f} %, {len(fraction)} trials), {verdict} the "
        f"{100 * OVERHEAD_TARGET:.0f} % target. Overhead = trial wall time minus pre-training "
        "and fine-tuning compute."))
    if "overhead_seconds" in completed:
        blocks.append(Text(f"Mean overhead: {float(completed['overhead_seconds'].mean()):.1f} s "
                           f"of {float(completed['wall_seconds'].mean()):.1f} s wall time per "
                           "trial."))
    return blocks


def write_report(study_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write report.md, its PNGs and report.html (self-contained) into out_dir (default
    STUDY_DIR/report); return report.md."""
    results = load_results(study_dir)
    out = Path(out_dir) if out_dir is not None else results.directory / REPORT_DIR
    storage.check_writable(out, "report folder")  # before any plot is drawn
    completed, total = len(results.completed), len(results.table)
    stopped = total - completed - len(results.failed)
    direction = "maximise" if results.mode == "max" else "minimise"
    title = f"Study report: {results.spec['name']}"
    records = {str(row["trial_id"]): trial_record(row, results.directory)
               for _, row in results.table.iterrows()}
    best = best_trial(results)
    blocks: list[Block] = [
        Heading(1, title),
        Text(f"Study directory: `{results.directory.resolve()}`. {total} trials, {completed} "
             f"completed, {len(results.failed)} failed"
             + (f", {stopped} stopped early without {results.metric}" if stopped else "")
             + f". Objective: {direction} `{results.metric}`"
             + (f" and {'maximise' if results.second_mode == 'max' else 'minimise'} "
                f"`{results.second_metric}`" if results.second_metric else "") + ".")]
    blocks += _best_section(results, best,
                            None if best is None else records.get(str(best["trial_id"])))
    blocks += _uncertainty_section(results)
    blocks += _objective_section(results, out)
    if results.second_metric:
        blocks += _pareto_section(results, out)
    blocks += _curves_section(results, records, best, out)
    blocks += _preview_section(results, records, out)
    blocks += _importance_section(results, out)
    blocks += _overhead_section(results)
    blocks += _results_section(results)
    blocks += _failure_section(results)
    path = out / REPORT_FILE
    storage.write_text(path, to_markdown(blocks))
    storage.write_text(out / HTML_FILE, to_html(title, blocks))
    return path
