"""Render throughput of the rcdb and onepreal generators on one core (numba, no prange).

    .venv/bin/python benchmarks/bench_rcdb_onepreal.py [--images 2000] [--batch 64]

Prints images/s per generator at its default size (rcdb 512 px, onepreal 224 px), after a
warm-up call so numba compilation is not counted. Target for rcdb: >= 200 images/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fdsl_ray.formulas.registry import create_generator


def throughput(name: str, images: int, batch: int) -> float:
    generator = create_generator(name)
    ids = np.arange(images, dtype=np.int64)
    labels = ids % generator.num_classes
    instances = ids // generator.num_classes
    generator.render(labels[:2], instances[:2])
    start = time.perf_counter()
    for first in range(0, images, batch):
        generator.render(labels[first:first + batch], instances[first:first + batch])
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    for name in ("rcdb", "onepreal"):
        size = create_generator(name).image_size
        rate = throughput(name, args.images, args.batch)
        print(f"{name}: {rate:.0f} images/s at {size} px "
              f"({args.images} images, batch {args.batch}, 1 core)", flush=True)


if __name__ == "__main__":
    main()
