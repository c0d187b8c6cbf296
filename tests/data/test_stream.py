"""synthetic_dataset: exact row sets, id order across actor counts and splits, fresh instances,
faults."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

import numpy as np
import pytest

from fdsl_ray.data import synthetic_dataset
from fdsl_ray.data.stream import aligned_block_rows, rows_for_ids, stream_blocks
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


ORDER_CONFIG = {**CONFIG, "num_categories": 50, "images_per_category": 4}


def in_arrival_order(batches) -> tuple[list[tuple[int, int, int]], bytes]:
    keys, images = [], []
    for batch in batches:
        keys += zip(batch["epoch"].tolist(), batch["label"].tolist(),
                    batch["instance"].tolist(), strict=True)
        images.append(batch["image"].tobytes())
    return keys, b"".join(images)


def test_rows_arrive_in_id_order_whatever_the_number_of_actors(ray_session):
    ids = np.arange(2 * 200)
    expected = list(zip(*(part.tolist() for part in rows_for_ids(ids, 50, 4, True)), strict=True))
    streams = {actors: in_arrival_order(
        synthetic_dataset(ORDER_CONFIG, epochs=2, fresh_instances=True, num_actors=actors,
                          batch_size=8).iter_batches(batch_size=None, batch_format="numpy"))
        for actors in (1, 2)}
    assert streams[1][0] == expected
    assert streams[2][0] == expected
    assert streams[1][1] == streams[2][1]


def test_block_count_follows_the_rows_and_the_render_batch_only():
    assert stream_blocks(640, 64) == 10
    assert stream_blocks(10, 64) == 1
    assert stream_blocks(10**9, 64) == 100_000


def _read_splits(dataset, splits: int, read) -> list:
    """read(batches) of each consumer of a streaming_split, read concurrently as Train
    workers read."""
    parts = dataset.streaming_split(splits, equal=True)
    rows: list = [None] * splits

    def consume(index: int) -> None:
        rows[index] = read(parts[index].iter_batches(batch_size=None, batch_format="numpy"))

    threads = [threading.Thread(target=consume, args=(index,)) for index in range(splits)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return rows


def _split_rows(actors: int) -> list[tuple[list[tuple[int, int, int]], bytes]]:
    return _read_splits(synthetic_dataset(ORDER_CONFIG, num_actors=actors, batch_size=8), 2,
                        in_arrival_order)


def test_each_split_gets_the_same_rows_in_the_same_order_whatever_the_actors(ray_session):
    one, two = _split_rows(1), _split_rows(2)
    assert one == two
    keys = one[0][0] + one[1][0]
    assert len(keys) == len(set(keys)) == 200
    for split_keys, _ in one:  # row id = instance * num_categories + label
        ids = [instance * 50 + label for _, label, instance in split_keys]
        assert ids == sorted(ids)


def _rows_and_images(batches) -> list[tuple[tuple[int, int, int], bytes]]:
    """(epoch, label, instance) and image bytes of each row, in arrival order."""
    return [((int(epoch), int(label), int(instance)), image.tobytes()) for batch in batches
            for epoch, label, instance, image in zip(batch["epoch"], batch["label"],
                                                     batch["instance"], batch["image"],
                                                     strict=True)]


def test_a_stream_started_at_a_later_epoch_gives_each_split_the_full_runs_rows(ray_session):
    options = dict(epochs=3, rows_per_epoch=48, splits=2, fresh_instances=True, batch_size=8,
                   num_actors=2)
    full = _read_splits(synthetic_dataset(ORDER_CONFIG, **options), 2, _rows_and_images)
    resumed = _read_splits(synthetic_dataset(ORDER_CONFIG, start_epoch=2, **options), 2,
                           _rows_and_images)
    for split in range(2):
        assert [key[0] for key, _ in full[split]] == [0] * 24 + [1] * 24 + [2] * 24
        assert resumed[split] == full[split][48:]  # same rows, same bytes, same order
    ids = sorted(instance * 50 + label for part in full for (epoch, label, instance), _ in part
                 if epoch == 0)
    assert ids == list(range(48))  # the first rows_per_epoch rows of each epoch


def test_aligned_blocks_divide_each_splits_share_of_an_epoch():
    assert aligned_block_rows(96, 64, 4) == 96
    assert aligned_block_rows(640, 64, 4) == 64
    assert aligned_block_rows(24, 8, 6) == 8
    assert aligned_block_rows(997, 64, 2) == 997
    assert aligned_block_rows(1024, 64, 10_000) == 128  # 100,000 blocks at most


@pytest.mark.parametrize(("overrides", "message"), [
    ({"config": {"name": "no_such_generator"}}, "generator='no_such_generator' is unknown"),
    ({"config": {**CONFIG, "num_categories": 0}}, "num_categories=0"),
    ({"config": {"image_size": 32}}, "'name' key"),
    ({"epochs": 0}, "epochs=0"),
    ({"num_actors": 0}, "num_actors=0"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"cpus_per_actor": 0.0}, "cpus_per_actor=0.0"),
    ({"start_epoch": 1}, "start_epoch=1"),
    ({"rows_per_epoch": 21}, "rows_per_epoch=21"),
    ({"rows_per_epoch": 5, "splits": 2}, "must be a multiple of splits=2"),
])
def test_bad_arguments_fail_before_any_ray_work(overrides, message):
    options = dict(overrides)
    config = options.pop("config", CONFIG)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        synthetic_dataset(config, **options)


@pytest.mark.slow
def test_killed_actor_still_yields_every_row_once(ray_session, own_processes):
    def render_actor_pids() -> list[int]:
        return [process.pid for process in own_processes("MapBatches(RenderActor)")]

    config = {**CONFIG, "n_points": 20_000, "num_categories": 50, "images_per_category": 4}
    seen: list[tuple[int, int]] = []
    killed = None
    earlier_pools = set(render_actor_pids())
    for batch in synthetic_dataset(config, num_actors=2, batch_size=4).iter_batches(
            batch_size=4, batch_format="numpy"):
        seen += zip(batch["label"].tolist(), batch["instance"].tolist(), strict=True)
        if killed is None:
            pids = [pid for pid in render_actor_pids() if pid not in earlier_pools]
            assert pids, "no RenderActor process of this dataset found"
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None and killed not in render_actor_pids()
    assert Counter(seen) == Counter((label, instance) for label in range(50)
                                    for instance in range(4))
