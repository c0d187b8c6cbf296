"""What a study prints while it runs: one line per trial event and a status table now and then.

Tune's own reporter (verbose=1) prints a configuration table when a trial starts, a table of
every metric when it ends and the status table every 30 s: thousands of lines for a
quickstart. This callback prints one line per event instead, and the status table every
`interval` seconds; `--verbose` brings Tune's reporter back beside it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
from ray import tune
from ray.tune.experiment import Trial

from fdsl_ray.study.layout import OBJECTIVE
from fdsl_ray.study.spec import StudySpec

STATUS_INTERVAL_S = 300.0
EPOCH_LINES = 5  # progress lines per trial's pre-training, at most (plus its last epoch)


def error_line(error: BaseException | str | None) -> str:
    """The line of an error that says what went wrong: a Ray task error's traceback ends with
    the exception's own `Type: message` line."""
    if error is None:
        return ""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _params(trial: Trial) -> str:
    return " ".join(f"{name}={value}" for name, value in sorted((trial.config or {}).items()))


class StudyConsole(tune.Callback):
    """Prints `trial ID started/epoch/finished/failed` lines and, every `interval` seconds
    while trials run, a table of every trial's status, parameters, epoch, loss and top-1."""

    def __init__(self, spec: StudySpec, interval: float = STATUS_INTERVAL_S) -> None:
        self._spec = spec
        self._interval = interval
        self._last_table = time.monotonic()

    def _every(self, trial: Trial) -> int:
        epochs = self._spec.pretrain_config(trial.config or {}).epochs
        return max(1, math.ceil(epochs / EPOCH_LINES))

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        print(f"trial {trial.trial_id} started: {_params(trial)}", flush=True)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial,
                        result: dict, **info: Any) -> None:
        if OBJECTIVE in result or "loss" not in result:
            return
        epoch = int(result.get("epoch", 0))
        epochs = self._spec.pretrain_config(trial.config or {}).epochs
        if epoch % self._every(trial) == 0 or epoch == epochs:
            print(f"trial {trial.trial_id} epoch {epoch}/{epochs}: loss {result['loss']:.4f}",
                  flush=True)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial,
                          **info: Any) -> None:
        result = trial.last_result or {}
        if OBJECTIVE in result:
            print(f"trial {trial.trial_id} finished: {OBJECTIVE} {result[OBJECTIVE]:.2f}",
                  flush=True)
        else:
            print(f"trial {trial.trial_id} stopped early at epoch {result.get('epoch', 0)}",
                  flush=True)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial,
                       **info: Any) -> None:
        error = trial.get_pickled_error() or trial.get_error()
        print(f"trial {trial.trial_id} failed: {error_line(error)}", flush=True)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        now = time.monotonic()
        if now - self._last_table < self._interval or not any(
                trial.status == "RUNNING" for trial in trials):
            return
        self._last_table = now
        print(status_table(trials), flush=True)


def status_table(trials: list[Trial]) -> str:
    """Tune's trials as a small table: id, status, searched parameters, epoch, loss, top-1."""
    rows = []
    for trial in trials:
        result = trial.last_result or {}
        rows.append({"trial": trial.trial_id, "status": trial.status, **(trial.config or {}),
                     "epoch": result.get("epoch", ""),
                     "loss": result.get("pretrain_loss", result.get("loss", float("nan"))),
                     OBJECTIVE: result.get(OBJECTIVE, float("nan"))})
    counts = pd.Series([trial.status for trial in trials]).value_counts()
    header = "trials: " + ", ".join(f"{count} {status}" for status, count in counts.items())
    with pd.option_context("display.width", 160, "display.float_format", "{:.4g}".format):
        return f"{header}\n{pd.DataFrame(rows).to_string(index=False)}"
