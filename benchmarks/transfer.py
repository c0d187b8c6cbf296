"""The transfer proof: onepfrac pre-training beats scratch on digits (10 images per class).

Pre-trains the CPU ViT (`cpu_small`) once per column with `pretrain()` on Ray Train, then
fine-tunes it with `finetune()` (its CPU defaults: digits, 10 shots, 50 epochs) for several
seeds, and does the same from a random init (scratch). Prints a markdown table and whether
onepfrac Delta=0.1 beats scratch by >= 20 points and by more than 2 standard deviations.

The images are the reference-parity ones (each generator's defaults: 3x3 patches and 100k
points drawn at 512 px for the IFS formulas, area-resized to 32 px); `--point-mode
--n-points 20000 --render-size 32` draws onepfrac and fractaldb one pixel per point straight
at 32 px instead (the quickstart's deviation: the area-resized 512 px canvas is a faint
texture that the CPU recipe does not learn from in 600 steps). The pre-training recipe is
`PretrainConfig.cpu_default()` over 40 epochs (600 steps) with 3 warm-up epochs.

    python benchmarks/transfer.py                       # scratch, Delta 0.1, Delta 0.01
    python benchmarks/transfer.py --generators fractaldb,rcdb,exfractaldb
    python benchmarks/transfer.py --generators visualatom,ofdb-1k
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

from fdsl_ray.cluster import start_ray  # noqa: E402
from fdsl_ray.formulas.presets import PRESETS  # noqa: E402
from fdsl_ray.train import FinetuneConfig, PretrainConfig, finetune, get_model, pretrain  # noqa: E402
from fdsl_ray.train.pretrain import required_cpus  # noqa: E402

MARGIN_POINTS = 20.0


def _generator(column: str, args: argparse.Namespace) -> dict:
    """'onepfrac:0.1' -> onepfrac with delta 0.1; other names take their own defaults. A
    preset (e.g. ofdb-1k: 1,000 categories x 1 image) keeps its own data set size."""
    name, _, delta = column.partition(":")
    generator = dict(name=name, image_size=args.image_size)
    if name not in PRESETS:
        generator.update(num_categories=args.categories,
                         images_per_category=args.images_per_category)
    if delta:
        generator["delta"] = float(delta)
    if name in ("onepfrac", "fractaldb"):
        if args.point_mode:
            generator["patch"] = False
        if args.n_points is not None:
            generator["n_points"] = args.n_points
    if args.render_size is not None:
        generator["render_size"] = args.render_size
    return generator


def _finetune_seeds(weights: str | None, args: argparse.Namespace) -> list[float]:
    scores = []
    for seed in range(args.seeds):
        result = finetune(FinetuneConfig(seed=seed), weights=weights,
                          model=get_model(args.model) if weights is None else None)
        scores.append(result.top1)
        print(f"    fine-tune seed {seed}: top-1 {result.top1:.1f} % "
              f"({result.compute_seconds:.0f} s)", flush=True)
    return scores


def _spread(scores: list[float]) -> float:
    return statistics.stdev(scores) if len(scores) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default="onepfrac:0.1,onepfrac:0.01",
                        help="comma-separated columns, NAME or onepfrac:DELTA")
    parser.add_argument("--model", default="cpu_small")
    parser.add_argument("--categories", type=int, default=100)
    parser.add_argument("--images-per-category", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--n-points", type=int, default=None,
                        help="points for onepfrac/fractaldb (default: theirs, 100,000)")
    parser.add_argument("--point-mode", action="store_true",
                        help="onepfrac/fractaldb one pixel per point (default: 3x3 patches)")
    parser.add_argument("--render-size", type=int, default=None,
                        help="canvas size (default: each generator's, the reference's)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=PretrainConfig.lr)
    parser.add_argument("--warmup-epochs", type=int, default=3)
    parser.add_argument("--crop-scale-min", type=float, default=PretrainConfig.crop_scale[0],
                        help="smallest crop area fraction of RandomResizedCrop (1.0: flips only)")
    parser.add_argument("--fresh-instances", action="store_true")
    parser.add_argument("--cpus-per-worker", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-minutes", type=float, default=15.0,
                        help="pre-training budget per column (checked, reported)")
    parser.add_argument("--out", default=None, help="storage path (default: a temporary folder)")
    args = parser.parse_args()

    config = PretrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, warmup_epochs=args.warmup_epochs,
                            crop_scale=(args.crop_scale_min, 1.0),
                            fresh_instances=args.fresh_instances,
                            cpus_per_worker=args.cpus_per_worker)
    start_ray(cpus=required_cpus(config, streaming=True), include_dashboard=False,
              configure_logging=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    storage = args.out or tempfile.mkdtemp(prefix="fdsl-transfer-")
    print(f"recipe: {config.to_dict()}", flush=True)
    rows = []
    print("scratch:", flush=True)
    rows.append(("scratch", None, None, _finetune_seeds(None, args)))
    for column in args.generators.split(","):
        generator = _generator(column, args)
        print(f"{column}: pre-training on {generator}", flush=True)
        started = time.perf_counter()
        result = pretrain(generator, config, storage_path=storage,
                          run_name=f"{column.replace(':', '-')}-{int(time.time())}")
        elapsed = time.perf_counter() - started
        images_per_s = statistics.median(record["images_per_s"] for record in result.history)
        last = result.history[-1]
        print(f"    {elapsed:.0f} s, {images_per_s:.0f} img/s, final loss "
              f"{last['loss']:.3f}, train top-1 {last['train_top1']:.1f} %", flush=True)
        rows.append((column, elapsed, images_per_s,
                     _finetune_seeds(result.weights_path, args)))

    print("\n| pre-training | pre-train s | img/s | digits top-1 (10-shot), mean ± std | seeds |")
    print("|---|---|---|---|---|")
    for column, seconds, speed, scores in rows:
        print(f"| {column} | {'-' if seconds is None else f'{seconds:.0f}'} | "
              f"{'-' if speed is None else f'{speed:.0f}'} | "
              f"{statistics.mean(scores):.1f} ± {_spread(scores):.1f} | "
              f"{', '.join(f'{score:.1f}' for score in scores)} |")
    scratch = rows[0][3]
    verdicts = []
    for column, _, _, scores in rows[1:]:
        gain = statistics.mean(scores) - statistics.mean(scratch)
        noise = 2 * max(_spread(scores), _spread(scratch))
        passed = gain >= MARGIN_POINTS and gain > noise
        verdicts.append(passed)
        print(f"{column}: {gain:+.1f} points over scratch (need >= {MARGIN_POINTS:.0f} and > "
              f"2 std = {noise:.1f}): {'PASS' if passed else 'FAIL'}")
    longest = max(seconds for _, seconds, _, _ in rows[1:])
    within = longest <= 60 * args.budget_minutes
    print(f"the longest pre-training took {longest / 60:.1f} min: "
          f"{'within' if within else 'OVER'} the {args.budget_minutes:g} min budget per column")
    return 0 if verdicts and verdicts[0] and within else 1


if __name__ == "__main__":
    raise SystemExit(main())
