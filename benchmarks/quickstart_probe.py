"""Which images and model let the CPU quickstart learn? A plain-torch probe, without Ray.

Renders a fixed set (categories x images of one generator config), pre-trains a small ViT on
it in this process (AdamW, peak lr 1e-3, 10 % linear warm-up then cosine, batch 64, flips, the
CPU recipe's label smoothing 0.1; the project schedule of fdsl_ray.train.schedule over ten
"epochs" of steps/10), exports it, and fine-tunes it with the project's
`finetune()` (digits, 10 shots) for several seeds; `--steps 0` fine-tunes from a random init.
One core, so probes can run two at a time on the 2-core machine. The quickstart's choices in
README (Quickstart) were measured with it, e.g.

    python benchmarks/quickstart_probe.py --generator '{"name": "onepfrac", "delta": 0.1,
        "image_size": 32, "render_size": 32, "n_points": 20000, "patch": false,
        "num_categories": 100, "images_per_category": 10}' --model cpu_fast --steps 1000
    python benchmarks/quickstart_probe.py --model cpu_fast --steps 0     # scratch
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import torch

from fdsl_ray.formulas import create_generator
from fdsl_ray.train import (
    FinetuneConfig,
    ModelSpec,
    PretrainConfig,
    create_vit,
    export_pretrained,
    finetune,
    get_model,
)
from fdsl_ray.train.loss import training_loss
from fdsl_ray.train.preprocess import to_model_input
from fdsl_ray.train.schedule import warmup_cosine_lr

BATCH = 64
PEAK_LR = 1e-3


# Ten "epochs" of steps/10 steps, the first one warm-up: 10 % linear warm-up, then cosine to 0.
SCHEDULE = PretrainConfig(lr=PEAK_LR, lr_base_batch=None, epochs=10, warmup_epochs=1)


def pretrain_probe(generator: dict, spec: ModelSpec, steps: int) -> tuple[str, float]:
    """Returns (exported weights, mean loss of the last 30 steps)."""
    config = dict(generator)
    gen = create_generator(config.pop("name"), **config)
    classes, per_class = gen.num_classes, gen.settings.images_per_category
    labels = np.tile(np.arange(classes), per_class)
    instances = np.repeat(np.arange(per_class), classes)
    images = torch.from_numpy(gen.render(labels, instances))
    targets = torch.from_numpy(labels)
    torch.manual_seed(0)
    network = create_vit(spec, classes)
    optimizer = torch.optim.AdamW(network.parameters(), lr=PEAK_LR, weight_decay=0.05)
    draws = torch.Generator().manual_seed(0)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(SCHEDULE, step, steps // 10)
        rows = torch.randint(0, len(labels), (BATCH,), generator=draws)
        inputs = to_model_input(images[rows])
        for dim in (-1, -2):
            if torch.rand(1, generator=draws) < 0.5:
                inputs = inputs.flip(dim)
        loss = training_loss(network(inputs), targets[rows], None, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    weights = export_pretrained(network, spec, classes, tempfile.mkdtemp(prefix="fdsl-probe-"))
    return weights, float(np.mean(losses[-30:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=json.loads, default={"name": "onepfrac"})
    parser.add_argument("--model", default="cpu_fast")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.steps % 10:
        parser.error(f"--steps={args.steps} must be a multiple of 10 (the schedule's ten parts)")
    torch.set_num_threads(1)
    spec = get_model(args.model)
    started = time.perf_counter()
    weights, loss = (None, float("nan"))
    if args.steps:
        weights, loss = pretrain_probe(args.generator, spec, args.steps)
    pretrain_s = time.perf_counter() - started
    scores = [finetune(FinetuneConfig(seed=seed), weights=weights,
                       model=spec if weights is None else None).top1
              for seed in range(args.seeds)]
    print(json.dumps({"generator": args.generator if args.steps else "scratch",
                      "model": args.model, "steps": args.steps, "final_loss": round(loss, 3),
                      "pretrain_s": round(pretrain_s), "top1": [round(s, 1) for s in scores],
                      "mean": round(statistics.mean(scores), 1),
                      "std": round(statistics.stdev(scores), 1) if len(scores) > 1 else 0.0}))


if __name__ == "__main__":
    main()
