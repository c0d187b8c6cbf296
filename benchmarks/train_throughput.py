"""Pre-training throughput on the on-the-fly stream: images/s and stall time per step.

Runs `pretrain()` (Ray Train, one worker) on an onepfrac stream rendered by K Ray Data actors
and prints, per epoch, the training images/s and the time each step waited for its batch
(stall) against the whole step. The first epoch includes start-up (pipeline, kernels), so the
summary uses the later ones. A stall near zero means the actors keep the trainer fed; run
enough epochs (10 x 150 steps) that images rendered ahead during the slow first epoch cannot
hide a stream slower than the trainer.

    python benchmarks/train_throughput.py --model vit_tiny_patch16_224 --image-size 224 \\
        --device cuda --data-actors 13 --steps 150 --epochs 10   # the GPU check (bf16, batch 256)
    python benchmarks/train_throughput.py --model cpu_micro --image-size 16 --steps 20
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

from fdsl_ray.train import PretrainConfig, pretrain  # noqa: E402
from fdsl_ray.train.pretrain import required_cpus  # noqa: E402

_CATEGORIES = 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cpu_small")
    parser.add_argument("--image-size", type=int, default=32, help="rendered image size")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 256 on cuda, 64 on cpu")
    parser.add_argument("--data-actors", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30, help="training steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-points", type=int, default=None, help="default: the generator's")
    parser.add_argument("--cpus-per-worker", type=float, default=2.0)
    args = parser.parse_args()

    cuda = args.device == "cuda"
    batch = args.batch_size or (256 if cuda else 64)
    per_category = math.ceil(args.steps * batch / _CATEGORIES)
    generator = dict(name="onepfrac", delta=0.1, image_size=args.image_size,
                     num_categories=_CATEGORIES, images_per_category=per_category)
    if args.n_points is not None:
        generator["n_points"] = args.n_points
    config = PretrainConfig.gpu_reference(
        model=args.model, epochs=args.epochs, batch_size=batch, warmup_epochs=0,
        use_gpu=cuda, num_data_actors=args.data_actors, cpus_per_worker=args.cpus_per_worker,
        fresh_instances=True, max_failures=0,
    )
    needed = math.ceil(required_cpus(config, streaming=True))
    ray.init(num_cpus=max(os.cpu_count() or 1, needed), include_dashboard=False,
             configure_logging=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    print(f"{args.model} on {args.device}{' (bf16)' if cuda else ''}, batch {batch}, "
          f"onepfrac {args.image_size} px fed by {args.data_actors} data actor(s), "
          f"{args.steps} steps x {args.epochs} epochs", flush=True)
    with tempfile.TemporaryDirectory(prefix="fdsl-throughput-") as storage:
        result = pretrain(generator, config, storage_path=storage, run_name="throughput")
    print("\n| epoch | images/s | step ms | stall ms/step | stall % |")
    print("|---|---|---|---|---|")
    steps = result.history[0]["epoch_seconds"] * result.history[0]["images_per_s"] / batch
    for record in result.history:
        step_ms = 1000 * record["epoch_seconds"] / steps
        stall_ms = 1000 * record["stall_seconds_per_step"]
        print(f"| {record['epoch']} | {record['images_per_s']:.1f} | {step_ms:.1f} | "
              f"{stall_ms:.1f} | {100 * stall_ms / step_ms:.0f} |")
    steady = result.history[1:] or result.history
    print(f"\nsteady state (epochs {steady[0]['epoch']}..{steady[-1]['epoch']}): "
          f"{statistics.median(r['images_per_s'] for r in steady):.1f} images/s, stall "
          f"{1000 * statistics.median(r['stall_seconds_per_step'] for r in steady):.1f} ms/step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
