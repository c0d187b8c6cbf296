"""Parquet store: round trip, reuse, manifest checks, and the ImageFolder export."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

from fdsl_ray.data import StoreOptions, ensure_store, find_store, read_store, store_path_for
from fdsl_ray.data.export import export_imagefolder
from fdsl_ray.data.store import remove_stale_temps
from fdsl_ray.formulas import create_generator

CONFIG = {"name": "onepfrac", "image_size": 16, "n_points": 1000, "num_categories": 12,
          "images_per_category": 3}
SMALL_SHARDS = StoreOptions(shard_bytes=10 * 16 * 16)  # 10 rows a shard: 4 shards


@pytest.fixture(scope="module")
def store(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    return ensure_store(CONFIG, root, num_actors=2, progress=False, options=SMALL_SHARDS)


@pytest.fixture
def store_copy(store, tmp_path):
    copy = tmp_path / store.name
    shutil.copytree(store, copy)
    return copy


def manifest_of(path):
    return json.loads((path / "manifest.json").read_text())


def test_round_trip_gives_every_image_as_rendered(store):
    assert store == store_path_for(CONFIG, store.parent)
    rows = read_store(store).take_all()
    assert sorted((row["label"], row["instance"]) for row in rows) == [
        (label, instance) for label in range(12) for instance in range(3)]
    generator = create_generator(**CONFIG)
    for row in rows:
        assert row["image"].dtype == np.uint8 and row["image"].shape == (16, 16)
        expected = generator.render(np.array([row["label"]]), np.array([row["instance"]]))[0]
        assert np.array_equal(row["image"], expected)


def test_manifest_records_config_counts_checksums_and_versions(store):
    manifest = manifest_of(store)
    assert manifest["config"] == create_generator(**CONFIG).config
    assert manifest["seed"] == 0 and manifest["num_images"] == 36
    assert manifest["label_counts"] == [3] * 12
    assert [shard["file"] for shard in manifest["shards"]] == [
        f"part-0000{index}.parquet" for index in range(4)]
    assert [shard["rows"] for shard in manifest["shards"]] == [10, 10, 10, 6]
    assert all(len(shard["sha256"]) == 64 for shard in manifest["shards"])
    assert set(manifest["versions"]) == {"numpy", "numba", "pyarrow", "ray", "fdsl_ray"}
    assert not [name for name in os.listdir(store.parent) if name.startswith(".")]


def test_shards_are_readable_by_pyarrow_alone(store):
    table = pq.read_table(store / "part-00001.parquet")
    shape = json.loads(table.schema.metadata[b"fdsl.image_shape"])
    assert shape == [16, 16] and table.num_rows == 10
    image = np.frombuffer(table.column("image")[0].as_py(), dtype=np.uint8).reshape(shape)
    label, instance = table.column("label")[0].as_py(), table.column("instance")[0].as_py()
    expected = create_generator(**CONFIG).render(np.array([label]), np.array([instance]))[0]
    assert np.array_equal(image, expected)


def test_same_config_reuses_the_store_without_rendering(store):
    before = (store / "manifest.json").stat().st_mtime_ns
    defaults_spelled_out = {**create_generator(**CONFIG).config}
    assert ensure_store(defaults_spelled_out, store.parent, progress=False) == store
    assert (store / "manifest.json").stat().st_mtime_ns == before


def test_store_bytes_do_not_depend_on_the_number_of_actors(store, tmp_path):
    other = ensure_store(CONFIG, tmp_path, num_actors=1, progress=False, options=SMALL_SHARDS)
    checksums = [shard["sha256"] for shard in manifest_of(store)["shards"]]
    assert [shard["sha256"] for shard in manifest_of(other)["shards"]] == checksums


def test_partial_store_is_never_read_and_is_replaced(store_copy):
    (store_copy / "manifest.json").unlink()
    with pytest.raises(ValueError, match="no manifest.json"):
        read_store(store_copy)
    assert find_store(CONFIG, store_copy.parent) is None
    assert ensure_store(CONFIG, store_copy.parent, progress=False,
                        options=SMALL_SHARDS) == store_copy
    assert len(read_store(store_copy).take_all()) == 36


def test_corrupt_shard_is_named(store_copy):
    shard = store_copy / "part-00002.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="shard part-00002.parquet is corrupt"):
        read_store(store_copy)


def test_truncated_shard_is_named_even_without_checksums(store_copy):
    shard = store_copy / "part-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ValueError, match="shard part-00001.parquet is corrupt"):
        read_store(store_copy, verify=False)
    with pytest.raises(ValueError, match="shard part-00001.parquet is corrupt"):
        ensure_store(CONFIG, store_copy.parent, progress=False)


def test_missing_shard_is_named(store_copy):
    (store_copy / "part-00003.parquet").unlink()
    with pytest.raises(ValueError, match="shard part-00003.parquet is missing"):
        read_store(store_copy)


def test_store_of_another_config_is_refused(store_copy):
    manifest = manifest_of(store_copy)
    manifest["config"]["seed"] = 1
    (store_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="belongs to another config"):
        ensure_store(CONFIG, store_copy.parent, progress=False)
    with pytest.raises(ValueError, match="belongs to another config"):
        read_store(store_copy)


def test_bad_arguments_fail_before_any_ray_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="out="):
        ensure_store(CONFIG, blocker / "stores")
    with pytest.raises(ValueError, match="generator='nope' is unknown"):
        ensure_store({"name": "nope"}, tmp_path)
    with pytest.raises(ValueError, match="images_per_category=0"):
        ensure_store({**CONFIG, "images_per_category": 0}, tmp_path)
    with pytest.raises(ValueError, match="compression='gzip'"):
        StoreOptions(compression="gzip")


def test_imagefolder_export_reads_back_with_torchvision(store, tmp_path):
    from torchvision.datasets import ImageFolder

    out = export_imagefolder(store, tmp_path / "png", progress=False)
    folder = ImageFolder(str(out))
    assert folder.classes == [f"{label:02d}" for label in range(12)]
    assert [folder.class_to_idx[f"{label:02d}"] for label in range(12)] == list(range(12))
    assert len(folder) == 36
    generator = create_generator(**CONFIG)
    for path, label in folder.samples[::7]:
        instance = int(os.path.basename(path).split(".")[0])
        pixels = np.asarray(folder.loader(path).convert("L"))
        expected = generator.render(np.array([label]), np.array([instance]))[0]
        assert np.array_equal(pixels, expected)
    with pytest.raises(ValueError, match="already exists"):
        export_imagefolder(store, out, progress=False)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_temp_dirs_of_killed_writers_are_removed(tmp_path):
    child = subprocess.Popen(["true"])
    child.wait()
    host = socket.gethostname()
    store = store_path_for(CONFIG, tmp_path)
    stale = tmp_path / f".{store.name}.tmp-{host}-{child.pid}-0123abcd"
    live = tmp_path / f".{store.name}.tmp-{host}-{os.getpid()}-4567ef01"
    remote = tmp_path / f".{store.name}.tmp-other-host-{child.pid}-89ab0123"
    for directory in (stale, live, remote):
        directory.mkdir()
    assert remove_stale_temps(tmp_path, store.name) == [stale]
    assert not stale.exists() and live.exists() and remote.exists()
