"""Content-addressed Parquet stores of rendered images: shards plus a manifest written last.

Layout: ROOT/<name>-<hash12>/part-00000.parquet ... manifest.json. hash12 is the sha256 of the
canonical JSON of {format, config}, so the same config always maps to the same directory and
is reused (across trials, re-runs, or by path on shared storage). Each shard holds columns
image (binary: the raw H*W uint8 bytes, row-major), label and instance (int64); the image shape
is in the manifest and in each shard's Parquet key-value metadata (fdsl.image_shape), so
outside tools can read shards with pyarrow or pandas alone. A directory is complete only once
manifest.json exists, and it is written last, inside a temp directory renamed into place.
The config's category table (`fdsl_ray.data.table`) is cached beside the stores, in
ROOT/tables/, and the manifest records its sha256 (`category_table`, null for generators
without searches).

ROOT may also be an object-store URI (s3://bucket/prefix, through fdsl_ray.storage): the driver
renders into a local temp directory, uploads the shards, then PUTs manifest.json last, so a
prefix without a manifest is partial, never read, and overwritten by the next writer. Store
paths are a Path under a local root and a URI string under an object-store root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fdsl_ray import storage
from fdsl_ray.cluster import require_ray
from fdsl_ray.data.stream import build_generator, images_per_epoch, synthetic_dataset
from fdsl_ray.data.table import plan_table
from fdsl_ray.formulas import Generator
from fdsl_ray.formulas.table import CategoryTable
from fdsl_ray.validation import check_choice, check_int

STORE_FORMAT = 1
MANIFEST = "manifest.json"
SHARD_BYTES = 64 * 2**20
COMPRESSIONS = ("zstd", "none")


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps({"format": STORE_FORMAT, "config": config}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


StorePath = Path | str
"""A store's location: a Path under a local root, a URI string under an object-store root."""


def store_path_for(generator: dict[str, Any], root: str | os.PathLike) -> StorePath:
    """Where the store of this config lives under root (defaults filled in before hashing)."""
    config = build_generator(generator).config
    name = f"{config['name']}-{config_hash(config)}"
    return storage.join(root, name) if storage.is_uri(root) else Path(root) / name


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def _store_name(path: str | os.PathLike) -> str:
    """The last component as given (not resolved: a symlinked store keeps its own name)."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def load_manifest(path: str | os.PathLike) -> dict[str, Any]:
    manifest_path = storage.join(path, MANIFEST)
    try:
        present = storage.is_file(manifest_path)
        manifest = json.loads(storage.read_text(manifest_path)) if present else None
    except (OSError, ValueError) as error:  # ValueError: bad JSON or UTF-8
        raise ValueError(f"{manifest_path} is unreadable: {storage.short_reason(error)}") from None
    if manifest is None:
        if not storage.exists(path):
            raise ValueError(f"store {path} does not exist")
        raise ValueError(f"{path} has no {MANIFEST}: it is not a store, or a partial one "
                         "(interrupted while being written)")
    if manifest.get("format") != STORE_FORMAT:
        raise ValueError(f"{manifest_path}: format={manifest.get('format')!r} is not supported: "
                         f"must be {STORE_FORMAT}")
    return manifest


# Shards whose sha256 matched, by (path, size, mtime_ns): a store reused and then read in one
# process (ensure_store, then read_store) is hashed once, and any rewrite is hashed again.
_VERIFIED: set[tuple[str, int, int | None]] = set()


def check_store(path: str | os.PathLike, manifest: dict[str, Any], *, checksums: bool) -> None:
    """Every shard the manifest lists must be there with its size (and sha256 if checksums)."""
    filesystem, location = storage.resolve(path)
    config = manifest["config"]
    expected_dir = f"{config['name']}-{config_hash(config)}"
    name = _store_name(path)
    if name.startswith(f"{config['name']}-") and name != expected_dir:
        raise ValueError(f"{path}: its manifest belongs to another config (expected directory "
                         f"{expected_dir})")
    shards = manifest["shards"]
    infos = filesystem.get_file_info([f"{location}/{shard['file']}" for shard in shards])
    for shard, info in zip(shards, infos, strict=True):
        if info.type != pafs.FileType.File:
            raise ValueError(f"{path}: shard {shard['file']} is missing")
        if info.size != shard["bytes"]:
            raise ValueError(f"{path}: shard {shard['file']} is corrupt: "
                             f"{info.size} bytes, manifest says {shard['bytes']}")
        seen = (info.path, info.size, info.mtime_ns)
        if checksums and seen not in _VERIFIED:
            with filesystem.open_input_stream(info.path) as stream:
                if storage.stream_sha256(stream) != shard["sha256"]:
                    raise ValueError(f"{path}: shard {shard['file']} is corrupt: sha256 differs "
                                     "from the manifest (delete the store to render it again)")
            _VERIFIED.add(seen)


def find_store(generator: dict[str, Any], root: str | os.PathLike) -> StorePath | None:
    """The complete store of this config under root, None if there is none yet.

    Raises if the directory holds another config's manifest or a damaged store (a shard
    missing, or its size or sha256 not the manifest's): neither is ever silently used or
    overwritten. A damaged store is refused, not rendered again, because damage in place
    means a failing disk or a second writer, which the user should know about.
    """
    config = build_generator(generator).config
    path = store_path_for(config, root)
    if not storage.is_file(storage.join(path, MANIFEST)):
        return None
    manifest = load_manifest(path)
    if manifest["config"] != json.loads(json.dumps(config)):
        raise ValueError(f"{path}: its manifest belongs to another config "
                         f"({manifest['config']}); refusing to reuse or replace it")
    check_store(path, manifest, checksums=True)
    return path


def check_root_writable(root: str | os.PathLike) -> StorePath:
    """The root as ensure_store uses it, once shown writable (before any rendering starts)."""
    if storage.is_uri(root):
        root = storage.normalize(root)
        storage.check_writable(root, "store root")
        return root
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"out={str(root)!r} cannot be created: {error.strerror}") from None
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        raise ValueError(f"out={str(root)!r} is not a writable directory")
    return root


@dataclass(frozen=True)
class StoreOptions:
    """How shards are written; neither field changes the stored images, so neither is hashed."""

    compression: str = "zstd"
    shard_bytes: int = SHARD_BYTES

    def __post_init__(self) -> None:
        check_choice("compression", self.compression, COMPRESSIONS)
        check_int("shard_bytes", self.shard_bytes, 1)


def _library_versions() -> dict[str, str]:
    import numba
    import ray

    import fdsl_ray

    return {"numpy": np.__version__, "numba": numba.__version__, "pyarrow": pa.__version__,
            "ray": ray.__version__,
            "fdsl_ray": getattr(fdsl_ray, "__version__", _package_version())}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fdsl-ray")
    except PackageNotFoundError:
        return "unknown"


def shard_table(ids: np.ndarray, images: np.ndarray, num_classes: int,
                metadata: dict[bytes, bytes]) -> pa.Table:
    """Rows (id, uint8 [B, H, W]) as a table; images become raw bytes without a copy."""
    images = np.ascontiguousarray(images)
    pixels = images.shape[1] * images.shape[2]
    offsets = np.arange(0, (len(ids) + 1) * pixels, pixels, dtype=np.int64)
    image_column = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ids), [None, pa.py_buffer(offsets), pa.py_buffer(images)]
    )
    return pa.table({"image": image_column, "label": ids % num_classes,
                     "instance": ids // num_classes}).replace_schema_metadata(metadata)


def image_metadata(gen: Generator) -> dict[bytes, bytes]:
    """Parquet key-value metadata that lets outside tools reshape the image bytes."""
    return {b"fdsl.image_shape": json.dumps([gen.image_size, gen.image_size]).encode(),
            b"fdsl.image_dtype": b"uint8",
            b"fdsl.config": json.dumps(gen.config, sort_keys=True).encode()}


def write_shard(table: pa.Table, path: Path, compression: str) -> None:
    pq.write_table(table, path, compression=None if compression == "none" else compression,
                   use_dictionary=False, write_statistics=False)


class _ShardWriter:
    """Collects rendered rows into fixed-size shards in row-id order, whatever order they come.

    Shard k holds ids [k * rows, (k + 1) * rows), so the bytes of a store do not depend on how
    many actors rendered it or in which order batches finished.
    """

    def __init__(self, directory: Path, gen: Generator, options: StoreOptions) -> None:
        self.directory = directory
        self.size = gen.image_size
        self.total = images_per_epoch(gen)
        self.num_classes = gen.num_classes
        self.rows_per_shard = max(1, options.shard_bytes // (self.size * self.size))
        self.compression = options.compression
        self.pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.pending_rows: dict[int, int] = {}
        self.shards: dict[int, dict[str, Any]] = {}
        self.metadata = image_metadata(gen)

    def shard_rows(self, index: int) -> int:
        start = index * self.rows_per_shard
        return min(self.rows_per_shard, self.total - start)

    def add(self, batch: dict[str, np.ndarray]) -> None:
        ids = batch["instance"] * self.num_classes + batch["label"]
        shard_of = ids // self.rows_per_shard
        for index in np.unique(shard_of).tolist():
            mask = shard_of == index
            self.pending.setdefault(index, []).append((ids[mask], batch["image"][mask]))
            self.pending_rows[index] = self.pending_rows.get(index, 0) + int(mask.sum())
            if self.pending_rows[index] == self.shard_rows(index):
                self._write(index)

    def _write(self, index: int) -> None:
        parts = self.pending.pop(index)
        del self.pending_rows[index]
        ids = np.concatenate([part[0] for part in parts])
        images = np.concatenate([part[1] for part in parts])
        order = np.argsort(ids, kind="stable")
        ids, images = ids[order], images[order]
        expected = np.arange(index * self.rows_per_shard,
                             index * self.rows_per_shard + self.shard_rows(index))
        if not np.array_equal(ids, expected):
            raise RuntimeError(f"shard {index}: rendered rows are not the expected id range")
        table = shard_table(ids, images, self.num_classes, self.metadata)
        name = shard_name(index)
        path = self.directory / name
        write_shard(table, path, self.compression)
        labels = ids % self.num_classes
        self.shards[index] = {"file": name, "rows": len(ids), "bytes": path.stat().st_size,
                              "sha256": storage.file_sha256(path),
                              "label_counts": np.bincount(labels, minlength=self.num_classes)}

    def finish(self) -> list[dict[str, Any]]:
        expected = -(-self.total // self.rows_per_shard)
        if self.pending or len(self.shards) != expected:
            raise RuntimeError(f"only {len(self.shards)} of {expected} shards were completed")
        return [self.shards[index] for index in range(expected)]


def _write_manifest(directory: Path, gen: Generator, table: CategoryTable | None,
                    shards: list[dict[str, Any]], options: StoreOptions, seconds: float) -> None:
    counts = sum(shard.pop("label_counts") for shard in shards)
    manifest = {
        "format": STORE_FORMAT,
        "config": gen.config,
        "config_hash": config_hash(gen.config),
        "category_table": None if table is None else table.digest,
        "seed": gen.settings.seed,
        "num_images": images_per_epoch(gen),
        "num_classes": gen.num_classes,
        "label_counts": [int(count) for count in counts],
        "image_shape": [gen.image_size, gen.image_size],
        "image_dtype": "uint8",
        "image_encoding": "raw row-major uint8 bytes in a binary column",
        "compression": options.compression,
        "shards": shards,
        "versions": _library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "render_seconds": round(seconds, 3),
    }
    storage.write_json(directory / MANIFEST, manifest)


def ensure_store(
    generator: dict[str, Any],
    root: str | os.PathLike,
    *,
    num_actors: int | None = None,
    progress: bool = True,
    options: StoreOptions | None = None,
) -> StorePath:
    """The store of this config under root: reused if complete, rendered otherwise.

    A Path under a local root; the store's URI under an object-store root.
    """
    options = options or StoreOptions()
    gen = build_generator(generator)
    if num_actors is not None:
        check_int("num_actors", num_actors, 1)
    root = check_root_writable(root)
    existing = find_store(gen.config, root)
    if existing is not None:
        return existing
    require_ray("ensure_store")
    table = plan_table(gen.config, root, progress=progress)
    path = store_path_for(gen.config, root)
    if isinstance(path, str):
        return _render_and_upload(path, gen, table, num_actors, progress, options)
    remove_stale_temps(root, path.name)
    temp = root / f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        _render_into(temp, gen, table, num_actors, progress, options)
        if path.exists():
            # Partial (no manifest): never used, so replaced. A complete one that appeared
            # meanwhile (a concurrent writer of the same config) is kept and ours dropped.
            if find_store(gen.config, root) is not None:
                return path
            shutil.rmtree(path)
        try:
            os.rename(temp, path)
        except OSError:
            if find_store(gen.config, root) is None:
                raise
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return path


def _render_and_upload(path: str, gen: Generator, table: CategoryTable | None,
                       num_actors: int | None, progress: bool, options: StoreOptions) -> str:
    """Object stores have no rename: render into a local temp dir on the driver, upload the
    shards, then PUT the manifest, which commits the store."""
    with tempfile.TemporaryDirectory(prefix="fdsl-store-") as temp:
        shards = Path(temp) / storage.name(path)
        shards.mkdir()
        _render_into(shards, gen, table, num_actors, progress, options)
        manifest = Path(temp) / MANIFEST
        os.replace(shards / MANIFEST, manifest)
        # A complete store that appeared meanwhile (a concurrent writer of the same config) is
        # kept; a partial one (no manifest) is overwritten, and objects it has beyond our
        # shards are never read, since only the manifest's shards are.
        if find_store(gen.config, storage.parent(path)) is None:
            storage.upload(shards, path)
            storage.upload(manifest, storage.join(path, MANIFEST))
    return path


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(root: Path, store_name: str) -> list[Path]:
    """Delete temp dirs of this store left by killed writers on this host (pid gone).

    Writers on other hosts, or still alive here, are left alone: their dirs may be in use.
    """
    removed = []
    for temp in root.glob(f".{store_name}.tmp-*"):
        host, _, rest = temp.name[len(f".{store_name}.tmp-"):].rpartition("-")
        host, _, pid = host.rpartition("-")
        if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(temp, ignore_errors=True)
            removed.append(temp)
    return removed


def _render_into(directory: Path, gen: Generator, table: CategoryTable | None,
                 num_actors: int | None, progress: bool, options: StoreOptions) -> None:
    from tqdm import tqdm

    start = time.perf_counter()
    writer = _ShardWriter(directory, gen, options)
    dataset = synthetic_dataset(gen.config, num_actors=num_actors,
                                batch_size=min(64, writer.rows_per_shard), table=table)
    with tqdm(total=writer.total, unit="img", disable=not progress, smoothing=0.1,
              desc=f"rendering {directory.name.lstrip('.').split('.tmp-')[0]}") as bar:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy",
                                          prefetch_batches=4):
            writer.add(batch)
            bar.update(len(batch["label"]))
    _write_manifest(directory, gen, table, writer.finish(), options,
                    time.perf_counter() - start)


def _decode_images(batch: pa.Table, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    column = batch.column("image").combine_chunks()
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64)[column.offset:][: len(column) + 1]
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8)
    pixels = shape[0] * shape[1]
    if not np.array_equal(np.diff(offsets), np.full(len(column), pixels)):
        raise ValueError(f"stored images are not {shape[0]}x{shape[1]} uint8")
    images = data[offsets[0]: offsets[0] + len(column) * pixels].reshape(len(column), *shape)
    return {"image": images.copy(), "label": batch.column("label").to_numpy(),
            "instance": batch.column("instance").to_numpy()}


def read_store(path: str | os.PathLike, *, verify: bool = True):
    """A Ray Dataset of a store (image uint8 [H, W], label, instance), checked first.

    `path` is a store directory or URI; Ray's read tasks open the shards through the same
    pyarrow file system (credentials and endpoint from the workers' environment).

    verify=True checks every shard's sha256 against the manifest (reads each shard once);
    verify=False checks only presence and size.
    """
    import ray

    manifest = load_manifest(path)
    check_store(path, manifest, checksums=verify)
    require_ray("read_store")  # Ray Data would start a Ray of its own
    shape = tuple(manifest["image_shape"])
    filesystem, location = storage.resolve(path)
    files = [f"{location}/{shard['file']}" for shard in manifest["shards"]]
    return ray.data.read_parquet(files, filesystem=filesystem).map_batches(
        _decode_images, batch_format="pyarrow", fn_kwargs={"shape": shape}
    )
