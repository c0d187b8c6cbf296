"""How many 16-core generation nodes keep one GPU fed while it pre-trains a ViT?

    python benchmarks/gpu_feed.py --processes 1,8,16 --models vit_tiny_patch16_224

Measures (1) the generator's images/s with 1..N worker processes (plain multiprocessing, so
it runs where Ray is not installed; benchmarks/pipeline.py gives Ray Data's efficiency on top
of this), and (2) a timm ViT's training images/s on the GPU (bf16 autocast, AdamW, uint8
grayscale batches already on the device, as Ray Data hands them over). Prints Markdown.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np

_GENERATOR = None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="onepfrac")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--n-points", type=int, default=100_000)
    parser.add_argument("--processes", default="1,8,16")
    parser.add_argument("--images-per-process", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--models", default="vit_tiny_patch16_224,vit_small_patch16_224")
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    return parser.parse_args()


def _init_worker(config: dict) -> None:
    global _GENERATOR
    from fdsl_ray.formulas import create_generator

    _GENERATOR = create_generator(**config)
    zero = np.zeros(1, dtype=np.int64)
    _GENERATOR.render(zero, zero)


def _render(labels: np.ndarray) -> int:
    return len(_GENERATOR.render(labels, np.zeros_like(labels)))


def generation_rate(args: argparse.Namespace, processes: int) -> float:
    total = processes * args.images_per_process
    config = {"name": args.generator, "image_size": args.image_size, "n_points": args.n_points,
              "num_categories": total, "images_per_category": 1}
    labels = np.arange(total)
    batches = [labels[i:i + args.batch_size] for i in range(0, total, args.batch_size)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_init_worker, initargs=(config,)) as pool:
        pool.map(_render, [labels[:1]] * processes)  # every worker built and warm
        start = time.perf_counter()
        done = sum(pool.map(_render, batches, chunksize=1))
        return done / (time.perf_counter() - start)


def training_rate(model_name: str, args: argparse.Namespace) -> float:
    import timm
    import torch

    device = torch.device("cuda")
    model = timm.create_model(model_name, num_classes=1000).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    size = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    images = torch.randint(0, 256, (args.gpu_batch, size, size), dtype=torch.uint8,
                           device=device)
    labels = torch.randint(0, 1000, (args.gpu_batch,), device=device)

    def step() -> None:
        inputs = (images.float().div_(127.5).sub_(1.0)).unsqueeze(1).expand(-1, 3, -1, -1)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    return args.steps * args.gpu_batch / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    print(f"# gpu feed: {args.generator}, {args.image_size} px, {args.n_points} points, "
          f"{os.cpu_count()} CPUs", flush=True)
    rates = {}
    for processes in (int(count) for count in args.processes.split(",")):
        rates[processes] = generation_rate(args, processes)
        print(f"{processes} process(es): {rates[processes]:.1f} images/s", flush=True)
    print("\n| processes | images/s | per process | scaling vs 1 |")
    print("|---:|---:|---:|---:|")
    single = rates.get(1)
    for processes, rate in rates.items():
        scaling = f"{100 * rate / (processes * single):.0f} %" if single else "-"
        print(f"| {processes} | {rate:.1f} | {rate / processes:.1f} | {scaling} |", flush=True)
    import torch

    if not torch.cuda.is_available():
        print("\nno GPU: training rates skipped")
        return
    best = max(rates.values())
    top = max(rates)
    print(f"\nGPU: {torch.cuda.get_device_name()}, batch {args.gpu_batch}, bf16 autocast")
    print(f"\n| model | train images/s | {top}-process nodes to feed it |")
    print("|---|---:|---:|")
    for name in args.models.split(","):
        rate = training_rate(name, args)
        print(f"| {name} | {rate:.0f} | {rate / best:.1f} |", flush=True)


if __name__ == "__main__":
    main()
