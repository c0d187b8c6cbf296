"""Parquet store: round trip, reuse, manifest checks, the ImageFolder export, and the same
store under an object-store root (moto's S3 server)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

import fdsl_ray.data.store as store_module
from fdsl_ray import storage
from fdsl_ray.data import StoreOptions, ensure_store, find_store, read_store, store_path_for
from fdsl_ray.data.export import export_imagefolder
from fdsl_ray.data.store import remove_stale_temps
from fdsl_ray.data.table import find_table
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
    assert manifest["category_table"] == find_table(CONFIG, store.parent).digest
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


def test_a_shard_with_flipped_bytes_of_the_same_size_is_refused_not_reused(store_copy):
    """Reuse hashes every shard: a damaged store is refused (never re-rendered over), since
    damage in place means a failing disk or a second writer."""
    shard = store_copy / "part-00001.parquet"
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(byte ^ 0xFF for byte in data[middle:middle + 64])
    shard.write_bytes(bytes(data))
    assert shard.stat().st_size == manifest_of(store_copy)["shards"][1]["bytes"]
    message = ("shard part-00001.parquet is corrupt: sha256 differs from the manifest "
               r"\(delete the store to render it again\)")
    with pytest.raises(ValueError, match=message):
        find_store(CONFIG, store_copy.parent)
    with pytest.raises(ValueError, match=message):
        ensure_store(CONFIG, store_copy.parent, progress=False)


def test_a_store_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"store {tmp_path / 'nope'} does not exist"):
        read_store(tmp_path / "nope")


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


def rows_by_id(rows):
    return {(int(row["label"]), int(row["instance"])): bytes(row["image"]) for row in rows}


def local_rows(store):
    """The local store's images by (label, instance), read with pyarrow alone (no Ray)."""
    rows = {}
    for shard in manifest_of(store)["shards"]:
        table = pq.read_table(store / shard["file"]).to_pylist()
        rows.update(rows_by_id(table))
    return rows


def upload_store(store, root):
    """A copy of the local store under an object-store root, without rendering."""
    path = store_path_for(CONFIG, root)
    storage.upload(store, path)
    return path


def test_object_store_matches_the_local_store_and_is_reused(store, s3_bucket, monkeypatch):
    root = f"{s3_bucket}/stores"
    path = ensure_store(CONFIG, root, num_actors=2, progress=False, options=SMALL_SHARDS)
    assert path == store_path_for(CONFIG, root) == f"{root}/{store.name}"
    local = manifest_of(store)
    remote = json.loads(storage.read_text(f"{path}/manifest.json"))
    for key in ("config", "config_hash", "num_images", "label_counts", "image_shape", "shards"):
        assert remote[key] == local[key]
    assert storage.list_names(path) == sorted(
        [*(shard["file"] for shard in local["shards"]), "manifest.json"])
    assert rows_by_id(read_store(path).take_all()) == local_rows(store)

    def render_again(*args, **kwargs):
        raise AssertionError("a complete store was rendered again")

    monkeypatch.setattr(store_module, "_render_into", render_again)
    assert ensure_store(CONFIG, f"{root}/", progress=False) == path
    assert find_store(CONFIG, root) == path


def test_partial_object_store_is_never_read_and_is_replaced(store, s3_bucket):
    path = upload_store(store, s3_bucket)
    storage.remove_tree(f"{path}/manifest.json")
    storage.write_bytes(f"{path}/part-00000.parquet", b"cut short by a killed writer")
    with pytest.raises(ValueError, match="no manifest.json"):
        read_store(path)
    assert find_store(CONFIG, s3_bucket) is None
    assert ensure_store(CONFIG, s3_bucket, progress=False, options=SMALL_SHARDS) == path
    assert storage.read_bytes(f"{path}/part-00000.parquet") == (
        store / "part-00000.parquet").read_bytes()
    read_store(path)  # every shard's sha256 checked


def test_corrupt_or_truncated_object_is_refused(store, s3_bucket):
    path = upload_store(store, s3_bucket)
    shard = f"{path}/part-00002.parquet"
    data = bytearray(storage.read_bytes(shard))
    data[len(data) // 2] ^= 0xFF
    storage.write_bytes(shard, bytes(data))
    with pytest.raises(ValueError, match="shard part-00002.parquet is corrupt: sha256 differs"):
        read_store(path)
    storage.write_bytes(shard, bytes(data[:-100]))
    with pytest.raises(ValueError, match="shard part-00002.parquet is corrupt: .* bytes"):
        read_store(path, verify=False)
    with pytest.raises(ValueError, match="shard part-00002.parquet is corrupt"):
        ensure_store(CONFIG, s3_bucket, progress=False)


def test_absent_bucket_is_refused_before_rendering(s3_endpoint):
    root = "s3://fdsl-no-such-bucket/stores"
    with pytest.raises(ValueError, match=rf"store root '{root}' is not writable: "
                                         r"The specified bucket does not exist"):
        ensure_store(CONFIG, root)
