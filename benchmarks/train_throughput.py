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
    python benchmarks/train_throughput.py --augment-only --recipe 1p-frac --image-size 512

`--recipe` picks the training recipe (default 1p-frac: timm's create_transform with RandAugment
and random erasing in Ray Data augment actors, `--augment-actors` of them). `--augment-only`
times that transform alone, in this process on one core, on rendered images of
`--image-size`, and prints the cost per image and the cores it takes to feed a GPU training at
`--gpu-images-per-s` (default 6,225: ViT-Tiny bf16 in README's "Feeding a GPU").
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from fdsl_ray.cluster import start_ray  # noqa: E402
from fdsl_ray.formulas import create_generator  # noqa: E402
from fdsl_ray.train import pretrain  # noqa: E402
from fdsl_ray.train.augment import TimmAugment, timm_transform_kwargs  # noqa: E402
from fdsl_ray.train.models import get_model  # noqa: E402
from fdsl_ray.train.pretrain import required_cpus  # noqa: E402
from fdsl_ray.train.recipes import get_recipe, list_recipes  # noqa: E402

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
    parser.add_argument("--recipe", choices=list_recipes(), default="1p-frac")
    parser.add_argument("--augment-actors", type=int, default=1)
    parser.add_argument("--augment-only", action="store_true")
    parser.add_argument("--images", type=int, default=64, help="images for --augment-only")
    parser.add_argument("--gpu-images-per-s", type=float, default=6225.0)
    args = parser.parse_args()
    if args.augment_only:
        return augment_cost(args)

    cuda = args.device == "cuda"
    batch = args.batch_size or (256 if cuda else 64)
    per_category = math.ceil(args.steps * batch / _CATEGORIES)
    generator = dict(name="onepfrac", delta=0.1, image_size=args.image_size,
                     num_categories=_CATEGORIES, images_per_category=per_category)
    if args.n_points is not None:
        generator["n_points"] = args.n_points
    config = get_recipe(args.recipe).pretrain_config(
        model=args.model, epochs=args.epochs, batch_size=batch, warmup_epochs=0,
        use_gpu=cuda, num_data_actors=args.data_actors, cpus_per_worker=args.cpus_per_worker,
        num_augment_actors=args.augment_actors, fresh_instances=True, max_failures=0,
    )
    start_ray(cpus=required_cpus(config, streaming=True), include_dashboard=False,
              configure_logging=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    print(f"{args.model} on {args.device}{f' ({config.precision})' if cuda else ''}, batch "
          f"{batch}, recipe {args.recipe} ({config.transform} transform, "
          f"{args.augment_actors} augment actor(s)), "
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


def augment_cost(args: argparse.Namespace) -> int:
    """Seconds per image of the recipe's transform alone, on this process's one core."""
    torch.set_num_threads(1)
    config = get_recipe(args.recipe).pretrain_config(model=args.model)
    size = get_model(config.model).resolved_img_size
    generator = create_generator("onepfrac", delta=0.1, image_size=args.image_size,
                                 num_categories=args.images, images_per_category=1)
    labels = np.arange(args.images)
    images = generator.render(labels, np.zeros_like(labels))
    augment = TimmAugment(timm_transform_kwargs(config, size), config.seed)
    augment(images[:4], labels[:4], labels[:4] * 0, labels[:4] * 0)  # warm up
    rates = []
    for epoch in range(3):
        started = time.perf_counter()
        augment(images, labels, labels * 0, np.full_like(labels, epoch + 1))
        rates.append(args.images / (time.perf_counter() - started))
    rate = statistics.median(rates)
    print(f"recipe {args.recipe}: create_transform {args.image_size} px -> {size} px on one "
          f"core: {1000 / rate:.2f} ms/image, {rate:.0f} images/s; a GPU at "
          f"{args.gpu_images_per_s:.0f} images/s needs {args.gpu_images_per_s / rate:.1f} "
          "cores of augmentation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
