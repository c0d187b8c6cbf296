"""Ray Data over the formula generators: streams rendered by actor pools, and Parquet stores."""

from fdsl_ray.data.store import (
    StoreOptions,
    ensure_store,
    find_store,
    read_store,
    store_path_for,
)
from fdsl_ray.data.stream import RenderActor, synthetic_dataset

__all__ = [
    "RenderActor",
    "StoreOptions",
    "ensure_store",
    "find_store",
    "read_store",
    "store_path_for",
    "synthetic_dataset",
]
