"""Single-core rendering throughput of every registered generator, beside a plain-Python baseline.

Usage (pin to one core so the figures are per core):
    taskset -c 0 .venv/bin/python benchmarks/render.py [--sizes 224,512] [--seconds 3]
        [--generators fractaldb,exfractaldb] [--categories 8]

For each generator (or preset) at its defaults, which reproduce the reference (render_size 512,
or 224 for exfractaldb; the reference point counts and patch modes), with only image_size set,
it prints the first-call time (in a fresh process with an empty numba cache: import,
compilation and the first category search), the first use of each further category (its
search plus one render, the cost of an image of a new category), then images/s (by the wall
clock and by CPU time) and ns per point (wall clock) in the steady state, and a per-point
NumPy/Python chaos game as the baseline. It then projects FractalDB-1k as released (the
`fractaldb-1k` preset: 1,000 x 1,000 images drawn and saved at 362 px, 200k points) in
core-hours, against the published 1-2 days on 40 processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

# Compile into an empty cache so the first-call figure is a real compile, and keep numba, BLAS
# and OpenMP on one thread: the figures are per core.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fdsl-bench-numba-")
for _variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import numpy as np  # noqa: E402

from fdsl_ray.formulas.registry import create_generator, list_generators, list_names  # noqa: E402

REFERENCE_POINTS = 100_000
FRACTALDB_1K = {"images": 1_000 * 1_000, "image_size": 362, "n_points": 200_000}
FRACTALDB_1K_PRESET = "fractaldb-1k"
PUBLISHED_CORE_HOURS = (1 * 24 * 40, 2 * 24 * 40)
BASELINE_IMAGES = 2


@dataclasses.dataclass
class Row:
    generator: str
    image_size: int
    n_points: int | None
    patch: bool | None
    render_size: int | None = None
    first_call_s: float = float("nan")
    first_use_ms: float = float("nan")
    images_per_s: float = float("nan")
    cpu_images_per_s: float = float("nan")
    error: str = ""

    @property
    def ns_per_point(self) -> float:
        if not self.n_points:
            return float("nan")
        return 1e9 / (self.images_per_s * self.n_points)


def _uses_points(config: dict) -> bool:
    """Whether n_points changes the image (every config has the field; some ignore it)."""
    small = {**config, "image_size": 64, "num_categories": 1}
    images = [create_generator(**{**small, "n_points": n})
              .render(np.zeros(1, np.int64), np.zeros(1, np.int64)) for n in (300, 3000)]
    return not np.array_equal(*images)


def measure(name: str, image_size: int, categories: int, seconds: float,
            batch: int = 8) -> Row:
    """First-call time, first use of each further category, then images/s over at least
    `seconds` of batches of fresh ids, by the wall clock and by this process' CPU time (on a
    shared machine the second leaves out the time the scheduler gave to other jobs).

    The first call counts importing the generator modules (kernels compiled eagerly at import),
    building the generator, compiling its kernels lazily and its first category search.
    """
    start = time.perf_counter()
    generator = create_generator(name, image_size=image_size,
                                 num_categories=max(categories, 2))
    generator.render(np.zeros(1, np.int64), np.zeros(1, np.int64))
    first_call_s = time.perf_counter() - start
    config = generator.config
    points = config["n_points"] if _uses_points(config) else None
    row = Row(name, image_size, points, config.get("patch"), config["render_size"],
              first_call_s)
    start = time.perf_counter()
    for label in range(1, generator.num_classes):  # search + one render per new category
        generator.render(np.array([label]), np.zeros(1, np.int64))
    row.first_use_ms = (time.perf_counter() - start) / (generator.num_classes - 1) * 1e3
    labels = np.arange(batch, dtype=np.int64) % generator.num_classes
    rendered = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while True:
        instances = np.full(batch, 2 + rendered // batch, dtype=np.int64)
        generator.render(labels, instances)
        rendered += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    row.images_per_s = rendered / elapsed
    row.cpu_images_per_s = rendered / (time.process_time() - cpu_start)
    return row


def baseline_image(rng: np.random.Generator, image_size: int, n_points: int) -> np.ndarray:
    """FractalDB's reference renderer, one point at a time in Python: the cost we replace."""
    num_maps = int(rng.integers(2, 9))
    maps = rng.uniform(-1.0, 1.0, size=(num_maps, 6))
    dets = np.abs(maps[:, 0] * maps[:, 3] - maps[:, 1] * maps[:, 2])
    cumulative = np.cumsum(dets / dets.sum())
    xs = np.empty(n_points)
    ys = np.empty(n_points)
    x = y = 0.0
    for i in range(n_points):
        a, b, c, d, e, f = maps[min(int(np.searchsorted(cumulative, rng.random())), num_maps - 1)]
        x, y = a * x + b * y + e, c * x + d * y + f
        xs[i] = x
        ys[i] = y
    margin = max(1, round(6 * image_size / 512))
    span = image_size - 1 - 2 * margin
    cols = margin + (xs - xs.min()) / max(np.ptp(xs), 1e-12) * span
    rows = margin + (ys - ys.min()) / max(np.ptp(ys), 1e-12) * span
    image = np.zeros((image_size, image_size), np.uint8)
    for col, row in zip(cols.astype(int), rows.astype(int), strict=True):
        mask = int(rng.integers(1, 512))
        for cell in range(9):
            if mask >> cell & 1:
                r, c = row + cell // 3 - 1, col + cell % 3 - 1
                if 0 <= r < image_size and 0 <= c < image_size:
                    image[r, c] = 127
    return image


def measure_baseline(image_size: int, n_points: int) -> Row:
    rng = np.random.default_rng(0)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(BASELINE_IMAGES):
        baseline_image(rng, image_size, n_points)
    elapsed = time.perf_counter() - start
    return Row("baseline (Python per point)", image_size, n_points, True, image_size,
               images_per_s=BASELINE_IMAGES / elapsed,
               cpu_images_per_s=BASELINE_IMAGES / (time.process_time() - cpu_start))


def _cell(value: float | None, digits: int) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(rows: list[Row]) -> None:
    print("| generator | render px | image px | points | patch | first call s | "
          "new category ms | images/s | images/s (CPU time) | ns/point |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        points = f"{row.n_points:,}" if row.n_points else "-"
        patch = "-" if row.patch is None else ("yes" if row.patch else "no")
        render = row.render_size or "-"
        if row.error:
            print(f"| {row.generator} | {render} | {row.image_size} | {points} | {patch} | "
                  f"error: {row.error} | | | | |")
            continue
        print(f"| {row.generator} | {render} | {row.image_size} | {points} | {patch} | "
              f"{_cell(row.first_call_s, 2)} | {_cell(row.first_use_ms, 2)} | "
              f"{_cell(row.images_per_s, 2)} | {_cell(row.cpu_images_per_s, 2)} | "
              f"{_cell(row.ns_per_point, 1)} |")


def project_fractaldb(fractaldb: Row, baseline: Row) -> None:
    images = FRACTALDB_1K["images"]
    low, high = PUBLISHED_CORE_HOURS
    print(f"\nFractalDB-1k as released ({images:,} images, {FRACTALDB_1K['image_size']} px, "
          f"{FRACTALDB_1K['n_points']:,} points), single-core projection:")
    print(f"- published: 1-2 days on 40 processes = {low:,}-{high:,} core-hours (with PNG "
          "encoding and writes; the figures below are rendering only)")
    baseline_hours = images / baseline.images_per_s / 3600
    print(f"- Python baseline: {baseline_hours:,.0f} core-hours "
          f"({baseline.images_per_s:.3f} images/s at {baseline.image_size} px, "
          f"{baseline.n_points:,} points)")
    if fractaldb.error:
        print(f"- {FRACTALDB_1K_PRESET}: not measured ({fractaldb.error})")
        return
    hours = images / fractaldb.images_per_s / 3600
    print(f"- fractaldb: {hours:,.1f} core-hours ({fractaldb.images_per_s:,.1f} images/s), "
          f"{baseline_hours / hours:,.0f}x the baseline, {low / hours:,.0f}-{high / hours:,.0f}x "
          "the published cost")


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None


def run_worker(name: str, sizes: list[int], categories: int, seconds: float) -> list[Row]:
    """Measure one generator in a fresh process, so its first call compiles from nothing."""
    command = [sys.executable, __file__, "--worker", name, "--sizes", ",".join(map(str, sizes)),
               "--categories", str(categories), "--seconds", str(seconds)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        return [Row(name, size, None, None, error=f"worker exited with {done.returncode}")
                for size in sizes]
    return [Row(**fields) for fields in json.loads(done.stdout.strip().splitlines()[-1])]


def worker(name: str, sizes: list[int], categories: int, seconds: float) -> None:
    rows = []
    for size in sizes:
        print(f"measuring {name} at {size} px ...", file=sys.stderr, flush=True)
        try:
            rows.append(measure(name, size, categories, seconds))
        except Exception as error:  # a broken generator must not hide the others' figures
            message = (str(error).splitlines() or [""])[0][:80]
            rows.append(Row(name, size, None, None, error=f"{type(error).__name__}: {message}"))
    print(json.dumps([dataclasses.asdict(row) for row in rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_int_list, default=[224, 512],
                        help="image sizes in px (default: 224,512)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="wall time per measurement after warm-up (default: 3)")
    parser.add_argument("--generators", default=None,
                        help="comma-separated generators or presets (default: every "
                        "registered generator)")
    parser.add_argument("--categories", type=int, default=8,
                        help="categories cycled through by each measurement (default: 8)")
    parser.add_argument("--no-projection", action="store_true",
                        help="skip the FractalDB-1k measurement at 362 px / 200k points")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.sizes or min(args.sizes) < 8 or args.seconds <= 0 or args.categories < 1:
        parser.error("--sizes must be >= 8 px, --seconds > 0 and --categories >= 1")
    if args.worker:
        worker(args.worker, args.sizes, args.categories, args.seconds)
        return 0
    names = list_generators() if args.generators is None else args.generators.split(",")
    unknown = sorted(set(names) - set(list_names()))
    if unknown:
        parser.error(f"unknown generator(s) {', '.join(unknown)}: known are "
                     f"{', '.join(list_names())}")

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if affinity != 1:
        print(f"note: this process may run on {affinity} cores; pin it with taskset -c 0 "
              "(the kernels are single-threaded either way)", file=sys.stderr)
    rows: list[Row] = []
    for name in names:
        rows += run_worker(name, args.sizes, args.categories, args.seconds)
    for size in args.sizes:
        print(f"measuring the Python baseline at {size} px ...", file=sys.stderr, flush=True)
        rows.append(measure_baseline(size, REFERENCE_POINTS))
    print_table(rows)

    if args.no_projection:
        return 0
    release = FRACTALDB_1K["image_size"]
    fractaldb = run_worker(FRACTALDB_1K_PRESET, [release], args.categories, args.seconds)[0]
    print(f"measuring the Python baseline at {release} px ...", file=sys.stderr, flush=True)
    project_fractaldb(fractaldb, measure_baseline(release, FRACTALDB_1K["n_points"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
