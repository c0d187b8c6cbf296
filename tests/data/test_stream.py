"""synthetic_dataset: exact row sets, determinism across actor counts, fresh instances, faults."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fdsl_ray.data import synthetic_dataset
from fdsl_ray.formulas import create_generator

CONFIG = {"name": "onepfrac", "image_size": 32, "n_points": 2000, "num_categories": 10,
          "images_per_category": 2}


def collect(dataset) -> dict[tuple[int, int, int], np.ndarray]:
    rows = {}
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for image, epoch, label, instance in zip(batch["image"], batch["epoch"], batch["label"],
                                                 batch["instance"], strict=True):
            key = (int(epoch), int(label), int(instance))
            assert key not in rows, f"duplicate row {key}"
            rows[key] = image
    return rows


def test_rows_are_every_label_and_instance_once_per_epoch(ray_session):
    rows = collect(synthetic_dataset(CONFIG, epochs=2, num_actors=1, batch_size=7))
    expected = {(epoch, label, instance) for epoch in range(2) for label in range(10)
                for instance in range(2)}
    assert set(rows) == expected
    image = rows[(1, 3, 1)]
    assert image.dtype == np.uint8 and image.shape == (32, 32)
    generator = create_generator(**CONFIG)
    direct = generator.render(np.array([3, 3]), np.array([1, 0]))
    assert np.array_equal(rows[(0, 3, 1)], direct[0])
    assert np.array_equal(rows[(1, 3, 1)], direct[0])
    assert np.array_equal(rows[(1, 3, 0)], direct[1])


def test_same_bytes_whatever_the_number_of_actors_or_batch_size(ray_session):
    one = collect(synthetic_dataset(CONFIG, num_actors=1, batch_size=20))
    two = collect(synthetic_dataset(CONFIG, num_actors=2, batch_size=3))
    assert one.keys() == two.keys()
    for key, image in one.items():
        assert image.tobytes() == two[key].tobytes(), key


def test_fresh_instances_render_new_images_each_epoch(ray_session):
    rows = collect(synthetic_dataset(CONFIG, epochs=3, fresh_instances=True, num_actors=2))
    per_epoch = Counter(epoch for epoch, _, _ in rows)
    assert per_epoch == {0: 20, 1: 20, 2: 20}
    assert {(label, instance) for epoch, label, instance in rows if epoch == 2} == {
        (label, instance) for label in range(10) for instance in (4, 5)}
    assert len({(label, instance) for _, label, instance in rows}) == 60
    assert not np.array_equal(rows[(0, 0, 0)], rows[(1, 0, 2)])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"config": {"name": "no_such_generator"}}, "generator='no_such_generator' is unknown"),
    ({"config": {**CONFIG, "num_categories": 0}}, "num_categories=0"),
    ({"config": {"image_size": 32}}, "'name' key"),
    ({"epochs": 0}, "epochs=0"),
    ({"num_actors": 0}, "num_actors=0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"cpus_per_actor": 0.0}, "cpus_per_actor=0.0"),
])
def test_bad_arguments_fail_before_any_ray_work(overrides, message):
    options = dict(overrides)
    config = options.pop("config", CONFIG)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        synthetic_dataset(config, **options)


def _render_actor_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"MapBatches(RenderActor)" in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_killed_actor_still_yields_every_row_once(ray_session):
    config = {**CONFIG, "n_points": 20_000, "num_categories": 50, "images_per_category": 4}
    seen: list[tuple[int, int]] = []
    killed = None
    earlier_pools = set(_render_actor_pids())
    for batch in synthetic_dataset(config, num_actors=2, batch_size=4).iter_batches(
            batch_size=4, batch_format="numpy"):
        seen += zip(batch["label"].tolist(), batch["instance"].tolist(), strict=True)
        if killed is None:
            pids = [pid for pid in _render_actor_pids() if pid not in earlier_pools]
            assert pids, "no RenderActor process of this dataset found"
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None and killed not in _render_actor_pids()
    assert Counter(seen) == Counter((label, instance) for label in range(50)
                                    for instance in range(4))
