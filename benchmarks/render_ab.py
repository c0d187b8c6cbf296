"""Single-core rendering time of this tree against an earlier commit, interleaved batch by batch.

Usage (pin to one core; both sides share it, taking turns):
    taskset -c 1 .venv/bin/python benchmarks/render_ab.py --base 83fe6a2
        [--generators onepfrac,fractaldb] [--rounds 60] [--image-size 224] [--batch 8]

On a shared machine the speed of a core drifts by 1.3x within minutes, more than a kernel
change moves it, so two benchmark runs minutes apart cannot rank two kernels. Here the base
commit's package (extracted with `git archive`) and this tree's each run in a process of its
own, and the two render the same batches (render.py's steady state: `--batch` images of 8
categories at a fresh instance each round) in alternating turns, A then B, then B then A, so
that the drift reaches both alike. It prints each side's median and 10th percentile of CPU
time per image, the median of the per-round ratios (this tree / base), and whether the two
sides made the same bytes (a change meant to keep every image should).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = 8

# The worker: one generator at a time; answers each "render" line with its CPU time per
# image and a digest of the batch.
WORKER = r"""
import hashlib, json, sys, time
import numpy as np
from fdsl_ray.formulas.registry import create_generator
generators = {}
for line in sys.stdin:
    request = json.loads(line)
    name, size, batch = request["generator"], request["image_size"], request["batch"]
    categories = request["categories"]
    if (name, size) not in generators:
        generator = create_generator(name, image_size=size, num_categories=categories)
        generator.render(np.arange(batch) % categories, np.zeros(batch, np.int64))
        generators[name, size] = generator
    labels = np.arange(batch, dtype=np.int64) % categories
    instances = np.full(batch, 2 + request["round"], dtype=np.int64)
    start = time.process_time()
    images = generators[name, size].render(labels, instances)
    seconds = (time.process_time() - start) / batch
    print(json.dumps({"seconds": seconds,
                      "digest": hashlib.sha256(images.tobytes()).hexdigest()}), flush=True)
"""


def extract(base: str, into: Path) -> Path:
    """The base commit's fdsl_ray package under `into` (a clear error for a bad revision)."""
    archive = into / "base.tar"
    result = subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), base,
                             "fdsl_ray"], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"--base {base!r}: git archive failed: {result.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(into / "base", filter="data")
    return into / "base"


def start_worker(package_root: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(package_root), "NUMBA_CACHE_DIR": str(cache),
           "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=package_root)


def ask(worker: subprocess.Popen, request: dict) -> dict:
    worker.stdin.write(json.dumps({**request, "categories": CATEGORIES}) + "\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise SystemExit(f"a worker stopped (exit code {worker.wait()}) on {request}")
    return json.loads(line)


def compare(workers: dict[str, subprocess.Popen], generator: str, image_size: int, batch: int,
            rounds: int) -> None:
    times: dict[str, list[float]] = {side: [] for side in workers}
    same_bytes = True
    for side in workers:  # first use: compilation and the first category searches
        ask(workers[side], {"generator": generator, "image_size": image_size, "batch": batch,
                            "round": -1})
    for round_ in range(rounds):
        order = list(workers) if round_ % 2 == 0 else list(reversed(workers))
        digests = {}
        for side in order:
            answer = ask(workers[side], {"generator": generator, "image_size": image_size,
                                         "batch": batch, "round": round_})
            times[side].append(answer["seconds"])
            digests[side] = answer["digest"]
        same_bytes &= len(set(digests.values())) == 1
    base, tree = (np.array(times[side]) * 1e6 for side in ("base", "tree"))
    print(f"| {generator} | {image_size} | {np.median(base):,.0f} | {np.percentile(base, 10):,.0f} "
          f"| {np.median(tree):,.0f} | {np.percentile(tree, 10):,.0f} | "
          f"{np.median(tree / base):.3f} | {'yes' if same_bytes else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--generators", default="onepfrac,fractaldb")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    for field in ("rounds", "image_size", "batch"):
        if getattr(args, field) < 1:
            parser.error(f"--{field.replace('_', '-')}={getattr(args, field)} must be >= 1")
    with tempfile.TemporaryDirectory(prefix="fdsl-render-ab-") as scratch:
        scratch = Path(scratch)
        roots = {"base": extract(args.base, scratch), "tree": ROOT}
        workers = {side: start_worker(root, scratch / f"numba-{side}")
                   for side, root in roots.items()}
        try:
            print(f"base {args.base} against this tree, {args.rounds} alternating rounds of "
                  f"{args.batch} images; CPU time per image (us)\n")
            print("| generator | image px | base median | base p10 | tree median | tree p10 | "
                  "tree / base (median of rounds) | same bytes |")
            print("|---|---:|---:|---:|---:|---:|---:|---|")
            for generator in filter(None, args.generators.split(",")):
                compare(workers, generator, args.image_size, args.batch, args.rounds)
        finally:
            for worker in workers.values():
                worker.stdin.close()
                worker.wait()


if __name__ == "__main__":
    main()
