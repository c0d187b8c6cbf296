"""Generator config -> a Ray Data stream of rendered images, rendered by an actor pool.

Row r of the stream is a pure function of (config, its start epoch and rows per epoch, r), so
any number of actors on any nodes yield the same rows, and a retried batch (after an actor
dies) renders the same bytes again.
The rows also arrive in id order (Ray Data's `preserve_order`, set on the dataset's own
context so that it travels with it), cut into blocks whose sizes depend only on the row count
and the render batch: whatever consumes the stream (a streaming_split to Train workers, a
seeded local shuffle) sees the same sequence of blocks on any load, actor count or cluster.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import ray

from fdsl_ray.cluster import require_ray
from fdsl_ray.formulas import Generator, create_generator
from fdsl_ray.formulas.table import CategoryTable
from fdsl_ray.validation import check_float, check_int


def build_generator(generator: dict[str, Any]) -> Generator:
    """Validate a generator config dict (incl. "name") before any Ray work starts."""
    if not isinstance(generator, dict) or "name" not in generator:
        raise ValueError(f"generator={generator!r} must be a config dict with a 'name' key")
    config = dict(generator)
    return create_generator(config.pop("name"), **config)


def images_per_epoch(gen: Generator) -> int:
    return gen.num_classes * gen.settings.images_per_category


# Read blocks per stream at most: Ray Data plans one read task per block up front. Above it a
# block holds several render batches, and an actor done with its block early holds it longer
# while the blocks before it are consumed (rows leave in order).
_MAX_BLOCKS = 100_000


def aligned_block_rows(split_rows: int, batch_size: int, units: int) -> int:
    """Rows per block when each of `units` (epochs x splits) holds `split_rows` rows: the
    smallest divisor of split_rows from the render batch up (within the block cap), so no
    block straddles two epochs or two splits' shares of one."""
    floor = max(min(batch_size, split_rows), -(-units * split_rows // _MAX_BLOCKS))
    divisors = [d for d in range(1, math.isqrt(split_rows) + 1) if split_rows % d == 0]
    candidates = sorted({*divisors, *(split_rows // d for d in divisors)})
    return next((d for d in candidates if d >= floor), split_rows)


def stream_blocks(total: int, batch_size: int) -> int:
    """Read blocks for `total` rows: about one per render batch, a function of the spec only.

    Ray Data's own choice follows the cluster's CPUs; the block sizes decide which rows a
    streaming_split hands to each worker and what a local shuffle buffer holds, so they must
    not change with the cluster.
    """
    return max(1, min(total // batch_size, _MAX_BLOCKS))


def rows_for_ids(
    ids: np.ndarray, num_classes: int, images_per_category: int, fresh_instances: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row ids -> (epoch, label, instance): labels cycle fastest so any prefix is balanced."""
    ids = np.asarray(ids, dtype=np.int64)
    per_epoch = num_classes * images_per_category
    epoch, within = np.divmod(ids, per_epoch)
    label = within % num_classes
    instance = within // num_classes
    if fresh_instances:
        instance = instance + epoch * images_per_category
    return epoch, label, instance


class RenderActor:
    """Holds one generator per actor: built and its kernels compiled once, in the constructor.

    `table` (a CategoryTable, or its ObjectRef so that every actor reads the one copy in the
    object store) gives the generator all its categories: the actor only renders.
    """

    def __init__(self, generator: dict[str, Any], fresh_instances: bool = False,
                 table: CategoryTable | ray.ObjectRef | None = None, start_epoch: int = 0,
                 rows_per_epoch: int | None = None) -> None:
        self.generator = build_generator(generator)
        self.start_epoch = start_epoch
        self.rows_per_epoch = rows_per_epoch or images_per_epoch(self.generator)
        if table is not None:
            self.generator.use_table(ray.get(table) if isinstance(table, ray.ObjectRef)
                                     else table)
        self.fresh_instances = fresh_instances
        zero = np.zeros(1, dtype=np.int64)
        self.generator.render(zero, zero)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        gen = self.generator
        epochs, within = np.divmod(batch["id"], self.rows_per_epoch)
        ids = (self.start_epoch + epochs) * images_per_epoch(gen) + within
        epoch, label, instance = rows_for_ids(
            ids, gen.num_classes, gen.settings.images_per_category, self.fresh_instances
        )
        return {
            "image": gen.render(label, instance),
            "label": label,
            "instance": instance,
            "epoch": epoch,
        }


def actor_pool(num_actors: int | None, cpus_per_actor: float) -> ray.data.ActorPoolStrategy:
    """A fixed pool of num_actors, or one that autoscales up to what the cluster can hold."""
    if num_actors is not None:
        return ray.data.ActorPoolStrategy(size=num_actors)
    require_ray("actor_pool")
    cluster_cpus = float(ray.cluster_resources().get("CPU", 1.0))
    # One CPU stays free for the driver-side reads and whatever consumes the stream.
    max_size = max(1, int((cluster_cpus - 1) // cpus_per_actor))
    return ray.data.ActorPoolStrategy(min_size=1, max_size=max_size)


# What a task or actor asks of a node label (a custom resource that a node declares): a sliver,
# so that a node declaring {"render": 1} hosts any number of them and the label only places.
LABEL_AMOUNT = 0.001
_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


def check_node_label(name: str, value: str | None) -> None:
    """A node label is None or the name of a custom resource (not one of Ray's own)."""
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or value in _BUILTIN_RESOURCES:
        raise ValueError(f"{name}={value!r} must be None or the name of a custom resource that "
                         f"nodes declare (not {', '.join(_BUILTIN_RESOURCES)})")


def node_label(resource: str | None) -> dict[str, float]:
    """The Ray resources that place a task or actor on the nodes that declare `resource`."""
    return {resource: LABEL_AMOUNT} if resource else {}


def missing_labels(labels: list[str | None], cluster: dict[str, float]) -> list[str]:
    """The labels no node of `cluster` (ray.cluster_resources()) declares: whatever asks for
    one would wait forever rather than fail."""
    return [label for label in labels if label and cluster.get(label, 0.0) < LABEL_AMOUNT]


def check_stream_args(
    epochs: int, num_actors: int | None, cpus_per_actor: float, batch_size: int,
    actor_resource: str | None = None,
) -> None:
    check_int("epochs", epochs, 1)
    if num_actors is not None:
        check_int("num_actors", num_actors, 1)
    check_float("cpus_per_actor", cpus_per_actor, 0.0, low_open=True)
    check_int("batch_size", batch_size, 1)
    check_node_label("actor_resource", actor_resource)


def synthetic_dataset(
    generator: dict[str, Any],
    *,
    epochs: int = 1,
    start_epoch: int = 0,
    rows_per_epoch: int | None = None,
    splits: int = 1,
    fresh_instances: bool = False,
    num_actors: int | None = None,
    cpus_per_actor: float = 1.0,
    batch_size: int = 64,
    ordered: bool = True,
    actor_resource: str | None = None,
    table: CategoryTable | None = None,
    table_root: str | None = None,
) -> ray.data.Dataset:
    """Columns image (uint8 [H, W]), label, instance, epoch (int64), in id order: the rows of
    epochs start_epoch..epochs-1, N (or rows_per_epoch) each.

    With fresh_instances each epoch renders new instances of every category (instance ids
    offset by epoch * images_per_category): augmentation from the formula itself. `ordered`
    False yields rows as actors finish them, for benchmarks/pipeline.py to measure what the
    order costs; a run that should repeat needs True. `actor_resource` places the render actors
    on the nodes that declare that custom resource (`node_label`). An actor lost with its node
    is restarted (Ray Data's default max_restarts=-1) wherever the label is, and its batches
    are rendered again, to the same bytes.

    `start_epoch` starts the stream at the first row of that epoch: a resumed run renders
    only what it still needs. `rows_per_epoch` keeps the first rows of each epoch only (what
    `splits` trainers consume of it, a multiple of splits); each epoch is then cut into equal
    blocks, a whole number per split, so that a `streaming_split(splits)` (which deals equal
    blocks in turn) gives every split the same rows from any start epoch.

    The category table (`table`, else the one cached under `table_root`, else computed now
    and cached there) goes to the actors through the object store, once.
    """
    from fdsl_ray.data.table import plan_table

    check_stream_args(epochs, num_actors, cpus_per_actor, batch_size, actor_resource)
    gen = build_generator(generator)
    per_epoch = images_per_epoch(gen)
    check_int("start_epoch", start_epoch, 0, epochs - 1)
    check_int("splits", splits, 1)
    if rows_per_epoch is not None:
        check_int("rows_per_epoch", rows_per_epoch, splits, per_epoch)
        if rows_per_epoch % splits:
            raise ValueError(f"rows_per_epoch={rows_per_epoch} must be a multiple of "
                             f"splits={splits}")
    rows = rows_per_epoch or per_epoch
    if table is None:
        table = plan_table(gen.config, table_root)
    elif gen.searches:
        table.check_for(gen)
    total = (epochs - start_epoch) * rows
    if rows_per_epoch is None:
        blocks = stream_blocks(total, batch_size)
    else:
        batch_size = aligned_block_rows(rows // splits, batch_size, epochs * splits)
        blocks = total // batch_size
    require_ray("synthetic_dataset")
    dataset = ray.data.range(total, override_num_blocks=blocks)
    dataset = dataset.map_batches(
        RenderActor,
        compute=actor_pool(num_actors, cpus_per_actor),
        num_cpus=cpus_per_actor,
        resources=node_label(actor_resource),
        batch_size=batch_size,
        batch_format="numpy",
        fn_constructor_kwargs={"generator": gen.config, "fresh_instances": fresh_instances,
                               "table": None if table is None else ray.put(table),
                               "start_epoch": start_epoch, "rows_per_epoch": rows},
    )
    # The dataset's context is its own copy of the driver's, read when it executes.
    dataset.context.execution_options.preserve_order = ordered
    return dataset
