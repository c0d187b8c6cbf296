"""Store -> PNG folders (DIR/<class>/<image>.png) that torchvision's ImageFolder and timm read.

Class folders are zero-padded label numbers, so the alphabetical order ImageFolder sorts by is
the label order, and class index i is label i.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from fdsl_ray import storage
from fdsl_ray.data.store import check_store, load_manifest

EXPORT_FORMATS = ("imagefolder",)


def _width(count: int) -> int:
    return len(str(max(count - 1, 0)))


def export_imagefolder(store: str | os.PathLike, out: str | os.PathLike, *,
                       progress: bool = True) -> Path:
    """Write every image of a verified store as a grayscale PNG; atomic (temp dir + rename).

    `store` may be an object-store URI; `out` is a local directory.
    """
    from tqdm import tqdm

    if storage.is_uri(out):
        raise ValueError(f"out={os.fspath(out)!r} must be a local directory (the store itself "
                         "may be a URI)")
    out = Path(out)
    manifest = load_manifest(store)
    if out.exists():
        raise ValueError(f"out={str(out)!r} already exists: choose a new directory")
    parent = out.parent
    storage.check_writable(parent, f"out={str(out)!r}: its parent")
    check_store(store, manifest, checksums=True)
    filesystem, location = storage.resolve(store)
    num_classes = manifest["num_classes"]
    height, width = manifest["image_shape"]
    class_width = _width(num_classes)
    instance_width = _width(max(manifest["label_counts"]))
    temp = parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        for label in range(num_classes):
            (temp / f"{label:0{class_width}d}").mkdir(parents=True)
        with tqdm(total=manifest["num_images"], unit="img", disable=not progress,
                  desc=f"exporting {storage.name(store)}") as bar:
            for shard in manifest["shards"]:
                table = pq.read_table(location + "/" + shard["file"], filesystem=filesystem)
                labels = table.column("label").to_numpy()
                instances = table.column("instance").to_numpy()
                for image, label, instance in zip(table.column("image").to_pylist(), labels,
                                                  instances, strict=True):
                    pixels = np.frombuffer(image, dtype=np.uint8).reshape(height, width)
                    name = f"{label:0{class_width}d}/{instance:0{instance_width}d}.png"
                    Image.fromarray(pixels, mode="L").save(temp / name)
                bar.update(len(labels))
        os.rename(temp, out)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return out
