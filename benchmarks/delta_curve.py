"""A Delta sweep's answer beside the 1p-frac README's CIFAR-100 curve, as a PNG.

Reads a finished `studies/delta_sweep.py` study (its results table and scratch baseline) and
plots the objective's mean +- std per Delta with the scratch band, and on a second axis the
reference's CIFAR-100 top-1 (ViT-Tiny, 224 px; SUPER-TADORY/1p-frac README): the shape to
compare, not the level.

    python benchmarks/delta_curve.py /tmp/ds1/delta-sweep-cpu --out docs/delta_sweep_cpu.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

from fdsl_ray.study.layout import BASELINE_FILE
from fdsl_ray.study.plots import save_png
from fdsl_ray.study.run import read_results

# 1p-frac README (sigma 3.5, L = 1,000): CIFAR-100 fine-tuning top-1 per Delta.
REFERENCE_CIFAR100 = {0.01: 19.9, 0.05: 83.0, 0.1: 84.2, 0.2: 83.4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    table = read_results(args.study_dir).sort_values("param.delta")
    baseline = json.loads((args.study_dir / BASELINE_FILE).read_text())
    scratch = next(iter(baseline["scores"].values()))
    deltas = [float(delta) for delta in table["param.delta"]]
    positions = {delta: index for index, delta in enumerate(sorted(set(deltas)
                                                                 | set(REFERENCE_CIFAR100)))}
    figure = Figure(figsize=(7, 4))
    ours = figure.subplots()
    ours.errorbar([positions[d] for d in deltas], table["top1"], yerr=table["top1_std"],
                  marker="o", capsize=3, label=f"this study: digits, n = {int(table['n'].min())}")
    low, high = scratch["top1"] - scratch["top1_std"], scratch["top1"] + scratch["top1_std"]
    ours.axhspan(low, high, color="grey", alpha=0.25, label="scratch (mean +- std)")
    ours.set_xticks(list(positions.values()), [f"{delta:g}" for delta in positions])
    ours.set_xlabel("Delta")
    ours.set_ylabel("digits top-1 (%), 10 images per class")
    paper = ours.twinx()
    paper.plot([positions[d] for d in REFERENCE_CIFAR100], list(REFERENCE_CIFAR100.values()),
               "s--", color="tab:red", label="1p-frac README: CIFAR-100")
    paper.set_ylabel("CIFAR-100 top-1 (%), ViT-Tiny 224 px", color="tab:red")
    handles = [*ours.get_legend_handles_labels()[0], *paper.get_legend_handles_labels()[0]]
    ours.legend(handles=handles, loc="lower right", fontsize=8)
    print(f"wrote {save_png(figure, Path(args.out))}")


if __name__ == "__main__":
    main()
