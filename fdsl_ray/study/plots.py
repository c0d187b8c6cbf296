"""PNG plots for study reports, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(figure: Figure, path: Path) -> Path:
    """Write beside the target and rename, so a crash never leaves a half-written PNG."""
    FigureCanvasAgg(figure)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    os.replace(temporary, path)
    return path


def category_order(values: Sequence[object], choices: Sequence[object]) -> list[str]:
    """Labels of the categories seen, in the space's order (1, 5, 10, 1000, not 1, 10, ...)."""
    seen = {str(v) for v in values}
    labels = [label for label in dict.fromkeys(str(c) for c in choices) if label in seen]
    return labels + sorted(seen - set(labels))


def plot_objective_vs_param(
    values: Sequence[object],
    objective: Sequence[float],
    *,
    param: str,
    metric: str,
    kind: str,
    log: bool,
    path: Path,
    choices: Sequence[object] = (),
) -> Path:
    """Objective against one searched parameter; categories as a box + strip plot, in the
    order of `choices` (the space's), then any other value seen."""
    figure = Figure(figsize=(5.0, 3.6))
    axes = figure.add_subplot()
    objective = np.asarray(objective, dtype=float)
    if kind == "categorical":
        labels = category_order(values, choices)
        groups = [[y for v, y in zip(values, objective, strict=True) if str(v) == label]
                  for label in labels]
        axes.boxplot(groups, positions=range(len(labels)), widths=0.5, showfliers=False)
        jitter = np.random.default_rng(0)
        for position, group in enumerate(groups):
            offsets = jitter.uniform(-0.12, 0.12, size=len(group))
            axes.scatter(position + offsets, group, s=22, alpha=0.8, color="C0", zorder=3)
        axes.set_xticks(range(len(labels)), labels)
    else:
        axes.scatter(np.asarray(values, dtype=float), objective, s=26, alpha=0.85, zorder=3)
        if log:
            axes.set_xscale("log")
    axes.set_xlabel(param + (" (log scale)" if log and kind != "categorical" else ""))
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} against {param}")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_pareto(
    first: Sequence[float],
    second: Sequence[float],
    front: Sequence[bool],
    *,
    metric: str,
    second_metric: str,
    path: Path,
) -> Path:
    """All trials in grey, the non-dominated ones highlighted and joined in order."""
    figure = Figure(figsize=(5.0, 3.6))
    axes = figure.add_subplot()
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    front = np.asarray(front, dtype=bool)
    axes.scatter(second[~front], first[~front], s=22, color="0.6", label="dominated")
    order = np.argsort(second[front])
    axes.plot(second[front][order], first[front][order], marker="o", color="C3",
              label="Pareto front", zorder=3)
    axes.set_xlabel(second_metric)
    axes.set_ylabel(metric)
    axes.set_title("Pareto front")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_importances(importances: dict[str, float], *, metric: str, path: Path) -> Path:
    """Horizontal bars, most important parameter on top."""
    names = list(importances)[::-1]
    figure = Figure(figsize=(5.0, 0.6 + 0.45 * len(names)))
    axes = figure.add_subplot()
    axes.barh(names, [importances[name] for name in names], color="C0")
    axes.set_xlabel(f"importance for {metric} (Optuna, fANOVA)")
    axes.set_xlim(0, 1)
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)
