"""Local paths and object-store URIs (s3://, gs://, ...) behind one small set of functions.

Ray Train and Tune take a URI as `storage_path` and persist through pyarrow.fs; the files
fdsl-ray writes itself (pre-training exports, Parquet stores, study records) go through the
same pyarrow file systems here, so a study can keep everything in an S3 bucket instead of a
mounted file system. A local file is written to a temporary name and renamed; an object
becomes visible only once its upload completes, so neither is ever seen half-written.
Credentials and endpoints come from the environment as pyarrow reads them (instance roles,
AWS_* variables such as AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.fs as pafs

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_AWS_ERROR = re.compile(r"AWS Error (\w+) during \w+ operation: (.*?)(?: \(Request ID: [^)]*\))?$")
SUPPORTED_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs", "file")
_HASH_CHUNK = 8 * 2**20


def is_uri(path: str | os.PathLike) -> bool:
    """True for a `scheme://...` location other than a plain local path."""
    return bool(_SCHEME.match(os.fspath(path)))


def normalize(path: str | os.PathLike) -> str:
    """A URI without its trailing '/', or an absolute local path (~ expanded)."""
    path = os.fspath(path)
    if is_uri(path):
        scheme = _SCHEME.match(path).group(1).lower()
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(f"storage location {path!r} has an unsupported scheme {scheme!r}: "
                             f"use a local path or one of {', '.join(SUPPORTED_SCHEMES)}")
        return path.rstrip("/")
    return str(Path(path).expanduser().resolve())


def join(base: str | os.PathLike, *parts: str) -> str:
    """`base/part/...` for a URI or a local path."""
    return "/".join([normalize(base), *(part.strip("/") for part in parts)])


def resolve(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system and the path on it (what Ray's storage_filesystem takes)."""
    path = normalize(path)
    if not is_uri(path):
        return pafs.LocalFileSystem(), path
    try:
        return pafs.FileSystem.from_uri(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot open storage location {path!r}: {error}") from error


def as_location(filesystem_path: str, *, like: str | os.PathLike) -> str:
    """A path as Ray reports it (on the storage file system, without the URI scheme) written
    the way `like`, the storage location it lies in, is written."""
    like = os.fspath(like)
    if not is_uri(like):
        return filesystem_path
    return f"{_SCHEME.match(like).group(1)}://{filesystem_path}"


def name(path: str | os.PathLike) -> str:
    return normalize(path).rsplit("/", 1)[-1]


def parent(path: str | os.PathLike) -> str:
    return normalize(path).rsplit("/", 1)[0]


def short_reason(error: Exception) -> str:
    """The reason in a pyarrow error, without the request and ids around it (one line)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    aws = _AWS_ERROR.search(lines[-1])
    return f"{aws.group(2)} ({aws.group(1)})" if aws else lines[-1]


def check_writable(uri: str | os.PathLike, what: str) -> None:
    """Write and delete a probe object under `uri`, so that a missing bucket or a denied write
    is a one-line error naming `what` before any work starts, not a failure at the end. A local
    directory is created first (with its parents) if it does not exist yet."""
    filesystem, location = resolve(uri)
    local = not is_uri(uri)  # `location` has lost the scheme: "bucket/key" for s3://bucket/key
    if local:
        target = Path(location)
        if target.exists() and not target.is_dir():
            raise ValueError(f"{what} {location!r} is not writable: it is a file, not a directory")
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"{what} {location!r} is not writable: cannot create it "
                             f"({error.strerror or error})") from None
    probe = f"{location}/.fdsl-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        with filesystem.open_output_stream(probe) as stream:
            stream.write(b"")
        filesystem.delete_file(probe)
    except OSError as error:
        reason = error.strerror if local and error.strerror else short_reason(error)
        raise ValueError(f"{what} {normalize(uri)!r} is not writable: {reason}") from None


def check_file_writable(path: str | os.PathLike, what: str) -> None:
    """check_writable for the folder a file will be written into (before the work that makes
    it), and a refusal when `path` names an existing directory."""
    if not is_uri(path) and Path(normalize(path)).is_dir():
        raise ValueError(f"{what} {normalize(path)!r} is a directory: give a file name")
    check_writable(parent(path), what)


def stream_sha256(handle: BinaryIO) -> str:
    """The hex sha256 of what is left to read in a binary stream (a file or pyarrow stream)."""
    digest = hashlib.sha256()
    while chunk := handle.read(_HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, local or at a URI (read once, in chunks)."""
    filesystem, location = resolve(path)
    with filesystem.open_input_stream(location) as stream:
        return stream_sha256(stream)


def exists(path: str | os.PathLike) -> bool:
    filesystem, location = resolve(path)
    return filesystem.get_file_info(location).type != pafs.FileType.NotFound


def is_file(path: str | os.PathLike) -> bool:
    filesystem, location = resolve(path)
    return filesystem.get_file_info(location).type == pafs.FileType.File


def read_bytes(path: str | os.PathLike) -> bytes:
    filesystem, location = resolve(path)
    with filesystem.open_input_stream(location) as stream:
        return stream.read()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write the whole file, never leaving a partial one under its name."""
    path = normalize(path)
    if not is_uri(path):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            partial.write_bytes(data)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return
    filesystem, location = resolve(path)
    with filesystem.open_output_stream(location) as stream:
        stream.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, data: Any, *, sort_keys: bool = False,
               default: Callable[[Any], Any] | None = None) -> None:
    """`data` as indented JSON with a final newline, written as write_bytes writes."""
    write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=default) + "\n")


def list_names(path: str | os.PathLike) -> list[str]:
    """The names directly under a directory (or key prefix); [] when there is none."""
    filesystem, location = resolve(path)
    selector = pafs.FileSelector(location, allow_not_found=True)
    return sorted(info.base_name for info in filesystem.get_file_info(selector))


def remove_tree(path: str | os.PathLike) -> None:
    filesystem, location = resolve(path)
    info = filesystem.get_file_info(location)
    if info.type == pafs.FileType.Directory:
        filesystem.delete_dir(location)
    elif info.type == pafs.FileType.File:
        filesystem.delete_file(location)


def upload(local_path: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Copy a local file or directory tree to `destination` (a URI or a local path)."""
    filesystem, location = resolve(destination)
    pafs.copy_files(os.fspath(local_path), location, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=filesystem)


def download(source: str | os.PathLike, local_path: str | os.PathLike) -> None:
    """Copy a file or directory tree at `source` to a local path (parents created as needed:
    an object store need not hold directory markers)."""
    filesystem, location = resolve(source)
    if filesystem.get_file_info(location).type == pafs.FileType.Directory:
        selector = pafs.FileSelector(location, recursive=True)
        files = [(info.path, Path(local_path) / info.path[len(location):].lstrip("/"))
                 for info in filesystem.get_file_info(selector)
                 if info.type == pafs.FileType.File]
    else:
        files = [(location, Path(local_path))]
    for remote, local in files:
        local.parent.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(remote, str(local), source_filesystem=filesystem,
                        destination_filesystem=pafs.LocalFileSystem())


def local_copy(path: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> Path:
    """A local path holding `path`'s file or directory: itself when local, else a download
    into `cache_root` (default: a new temporary directory) that later calls reuse."""
    path = normalize(path)
    if not is_uri(path):
        return Path(path)
    root = Path(cache_root) if cache_root else Path(tempfile.mkdtemp(prefix="fdsl-download-"))
    target = root / re.sub(r"[^A-Za-z0-9._-]", "_", _SCHEME.sub("", path))
    if not target.exists():
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.partial")
        download(path, partial)
        partial.replace(target)
    return target
