"""PNG plots for study reports, drawn with matplotlib's Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fdsl_ray import storage


def save_png(figure: Figure, path: Path) -> Path:
    """Render in memory and write whole, so a crash never leaves a half-written PNG."""
    FigureCanvasAgg(figure)
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=110, bbox_inches="tight")
    storage.write_bytes(path, png.getvalue())
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
    errors: Sequence[float] | None = None,
    baseline: float | None = None,
    baseline_label: str = "random init",
) -> Path:
    """Objective against one searched parameter; categories as a box + strip plot, in the
    order of `choices` (the space's), then any other value seen. `errors` (one std per point,
    from its replicates) draws error bars; `baseline` a horizontal line to beat."""
    figure = Figure(figsize=(5.0, 3.6))
    axes = figure.add_subplot()
    objective = np.asarray(objective, dtype=float)
    spread = None if errors is None else np.nan_to_num(np.asarray(errors, dtype=float))
    if kind == "categorical":
        labels = category_order(values, choices)
        index = np.array([labels.index(str(v)) for v in values], dtype=int)
        groups = [objective[index == position] for position in range(len(labels))]
        axes.boxplot(groups, positions=range(len(labels)), widths=0.5, showfliers=False)
        x = index + np.random.default_rng(0).uniform(-0.12, 0.12, size=len(index))
        axes.set_xticks(range(len(labels)), labels)
    else:
        x = np.asarray(values, dtype=float)
        if log:
            axes.set_xscale("log")
    axes.errorbar(x, objective, yerr=spread, fmt="o", markersize=5, alpha=0.85, color="C0",
                  ecolor="C0", capsize=3, zorder=3,
                  label="trial (mean ± std)" if spread is not None else "trial")
    if baseline is not None and math.isfinite(baseline):
        axes.axhline(baseline, color="C3", linestyle="--", label=f"{baseline_label} "
                     f"({baseline:.4g})")
    if spread is not None or baseline is not None:
        axes.legend(fontsize="small")
    axes.set_xlabel(param + (" (log scale)" if log and kind != "categorical" else ""))
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} against {param}")
    axes.grid(alpha=0.3)
    return save_png(figure, path)


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
    return save_png(figure, path)


def plot_importances(importances: dict[str, float], *, metric: str, path: Path) -> Path:
    """Horizontal bars, most important parameter on top."""
    names = list(importances)[::-1]
    figure = Figure(figsize=(5.0, 0.6 + 0.45 * len(names)))
    axes = figure.add_subplot()
    axes.barh(names, [importances[name] for name in names], color="C0")
    axes.set_xlabel(f"importance for {metric} (Optuna, fANOVA)")
    axes.set_xlim(0, 1)
    axes.grid(axis="x", alpha=0.3)
    return save_png(figure, path)


def plot_curves(histories: dict[str, list[dict]], *, best: str | None, path: Path) -> Path:
    """Pre-training loss and train top-1 per epoch, one line per trial; the best trial in red,
    the others in a muted cycle (named in the legend while there are few)."""
    figure = Figure(figsize=(9.0, 3.4))
    loss_axes, top1_axes = figure.subplots(1, 2)
    for index, (trial_id, history) in enumerate(histories.items()):
        epochs = [record["epoch"] for record in history]
        style = ({"color": "C3", "linewidth": 2.2, "zorder": 3} if trial_id == best
                 else {"color": f"C{index % 10}", "alpha": 0.55, "linewidth": 1.0})
        label = f"{trial_id} (best)" if trial_id == best else trial_id
        loss_axes.plot(epochs, [record["loss"] for record in history], label=label, **style)
        top1_axes.plot(epochs, [record["train_top1"] for record in history], **style)
    for axes, name in ((loss_axes, "pre-training loss"), (top1_axes, "train top-1 (%)")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
    if len(histories) <= 12:
        loss_axes.legend(fontsize="x-small")
    figure.suptitle("Pre-training per epoch")
    return save_png(figure, path)


def plot_previews(rows: Sequence[tuple[str, np.ndarray]], *, path: Path) -> Path:
    """One row of tiles per trial: `rows` holds (title, uint8 images [N, S, S]). Each tile is
    stretched to its own brightest pixel, so sparse low-intensity renders stay visible."""
    columns = max(len(images) for _, images in rows)
    figure = Figure(figsize=(1.25 * columns, 1.55 * len(rows)))
    grid = figure.subplots(len(rows), columns, squeeze=False)
    for (title, images), axes_row in zip(rows, grid, strict=True):
        for column, axes in enumerate(axes_row):
            axes.set_axis_off()
            if column < len(images):
                axes.imshow(images[column], cmap="gray", vmin=0,
                            vmax=max(1, int(images[column].max())), interpolation="nearest")
        axes_row[0].set_title(title, loc="left", fontsize="small")
    return save_png(figure, path)
