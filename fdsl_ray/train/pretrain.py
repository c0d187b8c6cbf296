"""Pre-training a timm ViT on a synthetic stream with Ray Train (DDP over TorchTrainer workers).

`pretrain()` runs on the driver (or inside a Tune trial) of a Ray that an entry point started
(fdsl_ray.cluster.start_ray): it validates everything, checks that the cluster can host the
run, builds the Ray Data stream and fits a `TorchTrainer` whose workers run `_train_loop`.
Every epoch reports metrics with a checkpoint, so Tune sees each epoch and a run resumes from
its latest checkpoint, after a failed fit (the driver retries it `max_failures` times) or when
called again with the same `storage_path` and `run_name`; a stream then starts at the
checkpoint's epoch. The final weights are exported with
`export_pretrained`, ready for `finetune(weights=...)`.
"""

from __future__ import annotations

import copy
import importlib
import itertools
import json
import math
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import ray
import ray.train
import ray.train.torch
import timm.optim
import torch
from timm.data import Mixup

from fdsl_ray import storage
from fdsl_ray.cluster import require_ray
from fdsl_ray.data.stream import check_node_label, missing_labels, node_label
from fdsl_ray.formulas import create_generator
from fdsl_ray.train.augment import (
    TUPLE_FIELDS,
    TimmAugmentActor,
    check_augment_fields,
    check_pair,
    random_resized_crop,
    timm_mixup_kwargs,
    timm_transform_kwargs,
)
from fdsl_ray.train.export import export_pretrained
from fdsl_ray.train.loss import epoch_means, training_loss
from fdsl_ray.train.models import create_vit, get_model, set_drop_path
from fdsl_ray.train.preprocess import to_model_input
from fdsl_ray.train.schedule import SCHEDULES, ScaledLearningRates, warmup_cosine_lr
from fdsl_ray.train.schedule import steps_per_epoch as schedule_steps
from fdsl_ray.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_seed,
    config_from_dict,
)

_STATE_FILE = "state.pt"
_RESULT_FILE = "result.json"
_RUN_FILE = "pretrain_run.json"
_EXPORT_DIR = "pretrained"
_CPUS_PER_AUGMENT_ACTOR = 1.0
# Each report names the workers' placement group, so that a caller that stops the run midway
# (Tune stopping a trial) can free it: it would stay reserved (ray issue 54305).
PLACEMENT_GROUP = "train_placement_group"
_AUGMENT_BATCH = 32


@dataclass(frozen=True)
class PretrainConfig(ScaledLearningRates):
    """One pre-training recipe. `batch_size` is global (split over workers); `lr`, `min_lr`
    and `warmup_lr` are scaled by batch_size / lr_base_batch (1p-frac train/main.py:188-190);
    `lr_base_batch` None uses them as given (the CVPR 2022 and VisualAtom timm scripts).

    The defaults are the CPU recipe (`cpu_default()`, registry name "cpu"): the 4-block 32 px
    `cpu_small` ViT, AdamW, a short cosine schedule, flips but no crops and no mixup, on the
    project's batched tensor augmentation. It is the recipe of benchmarks/transfer.py, chosen
    by measurement on 32 px point-mode fractals: with crops (area >= 1/4) or 3x3 patches the
    loss stayed at chance for hundreds of steps, and a pre-training that learns nothing
    fine-tunes worse than scratch. The references' recipes are in fdsl_ray.train.recipes
    (`get_recipe("1p-frac")`, ...): timm's create_transform and Mixup with their arguments.

    `transform` "timm" runs create_transform (crop_scale, crop_ratio, hflip/vflip as p = 0.5,
    color_jitter, auto_augment, interpolation, mean/std, re_*) in `num_augment_actors` Ray
    Data actors; "tensor" crops and flips on the device (bilinear, mean = std = 0.5) and ignores
    those timm-only fields. `worker_resource` and `data_actor_resource` name custom resources
    (node labels, `fdsl_ray.data.stream.node_label`) that place the Train workers and the
    stream's render and augment actors on the nodes that declare them (cluster.yaml,
    docs/cluster.md); None places them wherever their CPUs fit. `fresh_instances` False (the
    default) is the references' fixed set: instance ids 0..images_per_category-1 every epoch.
    `precision` applies on CUDA only.
    """

    model: str = "cpu_small"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.008
    lr_base_batch: int | None = 512
    weight_decay: float = 0.05
    schedule: str = "project"
    warmup_epochs: int = 1
    warmup_steps: int | None = None
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    transform: str = "tensor"
    crop_scale: tuple[float, float] = (1.0, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    vflip: bool = True
    color_jitter: float = 0.0
    auto_augment: str | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    re_prob: float = 0.0
    re_mode: str = "pixel"
    re_count: int = 1
    drop_path_rate: float = 0.0
    precision: str = "bf16"
    shuffle_buffer: int = 1024
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    num_data_actors: int = 1
    cpus_per_data_actor: float = 1.0
    num_augment_actors: int = 1
    fresh_instances: bool = False
    worker_resource: str | None = None
    data_actor_resource: str | None = None
    seed: int = 0
    max_failures: int = 1

    def __post_init__(self) -> None:
        get_model(self.model)
        check_int("epochs", self.epochs, 1, 100_000_000)
        check_int("batch_size", self.batch_size, 1, 1_048_576)
        check_float("lr", self.lr, 0, 100, low_open=True)
        if self.lr_base_batch is not None:
            check_int("lr_base_batch", self.lr_base_batch, 1, 1_048_576)
        check_float("weight_decay", self.weight_decay, 0, 10)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_int("warmup_epochs", self.warmup_epochs, 0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} is out of range: must be in "
                             f"[0, epochs={self.epochs})")
        if self.warmup_steps is not None:
            check_int("warmup_steps", self.warmup_steps, 0)
            if self.schedule != "timm_step":
                raise ValueError(f"warmup_steps={self.warmup_steps} needs schedule='timm_step' "
                                 f"(schedule={self.schedule!r} warms up over warmup_epochs)")
        check_float("warmup_lr", self.warmup_lr, 0, 100)
        check_float("min_lr", self.min_lr, 0, 100)
        check_float("label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        check_augment_fields(self)
        check_pair("crop_scale", self.crop_scale, 1.0)
        for name in ("hflip", "use_gpu", "fresh_instances"):
            check_bool(name, getattr(self, name))
        check_int("shuffle_buffer", self.shuffle_buffer, 0)
        check_int("num_workers", self.num_workers, 1, 4096)
        check_float("cpus_per_worker", self.cpus_per_worker, 0, 1024)
        check_int("num_data_actors", self.num_data_actors, 1, 4096)
        check_float("cpus_per_data_actor", self.cpus_per_data_actor, 0, 1024, low_open=True)
        check_int("num_augment_actors", self.num_augment_actors, 1, 4096)
        check_node_label("worker_resource", self.worker_resource)
        check_node_label("data_actor_resource", self.data_actor_resource)
        check_seed("seed", self.seed)
        check_int("max_failures", self.max_failures, -1)
        if self.batch_size % self.num_workers:
            raise ValueError(f"batch_size={self.batch_size} is not a multiple of "
                             f"num_workers={self.num_workers}: each worker takes an equal share")
        if self.uses_mixup and self.worker_batch_size % 2:
            raise ValueError(f"batch_size={self.batch_size} gives {self.worker_batch_size} images "
                             "per worker: mixup/cutmix needs an even number")

    @property
    def uses_hflip(self) -> bool:
        return self.hflip

    @property
    def worker_batch_size(self) -> int:
        return self.batch_size // self.num_workers

    @property
    def uses_mixup(self) -> bool:
        return self.mixup_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for name in TUPLE_FIELDS:
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PretrainConfig:
        return config_from_dict(cls, data, "pretrain")

    @classmethod
    def cpu_default(cls, **changes: object) -> PretrainConfig:
        """The CPU recipe of the class defaults, with `changes` applied."""
        return replace(cls(), **changes)

    @classmethod
    def gpu_reference(cls, **changes: object) -> PretrainConfig:
        """The 1p-frac reference recipe (`fdsl_ray.train.recipes`, "1p-frac"), with `changes`."""
        from fdsl_ray.train.recipes import get_recipe

        return get_recipe("1p-frac").pretrain_config(**changes)


@dataclass
class PretrainResult:
    """Where the weights went and what the run measured (history: one dict per epoch;
    environments: `run_environment` of the rank-0 worker, one per attempt)."""

    weights_path: str
    checkpoint_path: str | None
    history: list[dict]
    compute_seconds: float
    wall_seconds: float
    num_classes: int
    environments: list[dict] = field(default_factory=list)


_VERSIONED = ("torch", "timm", "ray", "numpy", "numba")


def run_environment(device: torch.device) -> dict[str, str]:
    """What a run's bits depend on beyond its spec: library versions, the CPU kernels torch
    dispatches to (AVX2, AVX512, ...) and the device. Two runs of one spec and seed agree
    bit for bit when these agree; when they do not, this says why they may differ."""
    # str(): torch's __version__ is a TorchVersion, which a weights-only torch.load refuses.
    environment = {name: str(importlib.import_module(name).__version__) for name in _VERSIONED}
    environment.update(python=platform.python_version(), machine=platform.machine(),
                       cpu_capability=torch.backends.cpu.get_cpu_capability(),
                       device=str(device))
    if device.type == "cuda":
        environment.update(device_name=torch.cuda.get_device_name(device),
                           cuda=str(torch.version.cuda),
                           cudnn=str(torch.backends.cudnn.version()))
    return environment


# ----------------------------------------------------------------------------- worker side


def _shuffled(batches: Iterator[dict[str, torch.Tensor]], buffer: int,
              generator: torch.Generator) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch's batches drawn at random from a pool of about `buffer` rows that the
    incoming batches refill (Ray's local shuffle, but restarted every epoch, so that an
    epoch's batches depend on that epoch's rows and seed alone: a run resumed at any epoch
    draws what the uninterrupted run drew). As many batches leave as came in."""
    pool: dict[str, torch.Tensor] = {}
    filled = capacity = 0
    for batch in batches:
        size = len(batch["label"])
        if not pool:
            capacity = max(size, -(-buffer // size) * size)
            pool = {key: value.new_empty((capacity, *value.shape[1:]))
                    for key, value in batch.items()}
        if filled < capacity:
            for key, value in batch.items():
                pool[key][filled:filled + size] = value
            filled += size
            continue
        slots = torch.randperm(capacity, generator=generator)[:size]
        yield {key: value[slots] for key, value in pool.items()}
        for key, value in batch.items():
            pool[key][slots] = value
    if pool:
        order = torch.randperm(filled, generator=generator)
        for start in range(0, filled, size):
            yield {key: value[order[start:start + size]] for key, value in pool.items()}


def _batch_stream(
    shard: ray.data.DataIterator, config: PretrainConfig, plan: dict, start_epoch: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Exactly the batches of epochs start_epoch.. of the run, then the rest of the shard.

    A dataset holding one epoch (`plan["epochs_per_pass"] == 1`, a store) is iterated once
    per epoch and its leftover rows (fewer than a batch per worker) drained. A stream holds
    the rows every epoch from `plan["stream_start_epoch"]` on needs, exactly `steps` batches
    per worker and epoch, and is iterated once: a run resumed by the driver starts its stream
    at its checkpoint's epoch and renders nothing twice.
    """
    steps, per_pass = plan["steps_per_epoch"], plan["epochs_per_pass"]
    batch_size = config.worker_batch_size
    if per_pass == 1:
        for epoch in range(start_epoch, config.epochs):
            batches = iter(shard.iter_torch_batches(batch_size=batch_size, drop_last=True))
            yield from _epoch_batches(batches, steps, config, epoch)
            for _ in batches:
                pass
        return
    if plan["stream_start_epoch"] != min(start_epoch, config.epochs - 1):
        # Rows of the wrong epochs would train without an error: refuse instead.
        raise RuntimeError(f"the checkpoint is at epoch {start_epoch} but the stream starts "
                           f"at epoch {plan['stream_start_epoch']}")
    batches = iter(shard.iter_torch_batches(batch_size=batch_size, drop_last=True))
    for epoch in range(start_epoch, config.epochs):
        yield from _epoch_batches(batches, steps, config, epoch)
    for _ in batches:
        pass


def _epoch_batches(batches: Iterator[dict[str, torch.Tensor]], steps: int,
                   config: PretrainConfig, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
    """The next `steps` batches, shuffled within the epoch when shuffle_buffer is set."""
    taken = itertools.islice(batches, steps)
    if not config.shuffle_buffer:
        return taken
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    return _shuffled(taken, config.shuffle_buffer, generator)


@dataclass
class _Worker:
    """What one worker trains with: the model, optimiser and loss set up by `_start_worker`,
    and the run's progress (fresh, or restored from the latest checkpoint)."""

    config: PretrainConfig
    device: torch.device
    rank: int
    network: torch.nn.Module  # the bare module, saved in checkpoints
    model: torch.nn.Module  # the DDP-wrapped one, trained
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast_dtype: torch.dtype | None
    mixup: Mixup | None
    image_size: int
    start_epoch: int
    history: list[dict]
    attempt: int
    environments: list[dict]
    tags: dict[str, str]


def _start_worker(config: PretrainConfig, num_classes: int) -> _Worker:
    """Seed, build the ViT and its optimiser, restore both from the run's checkpoint if there is
    one, and pick the precision and the mixup of the recipe."""
    device = ray.train.torch.get_device()
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    spec = get_model(config.model)
    torch.manual_seed(config.seed)
    network = set_drop_path(create_vit(spec, num_classes), config.drop_path_rate)
    state = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / _STATE_FILE, map_location="cpu",
                               weights_only=True)
        network.load_state_dict(state["model"])
    model = ray.train.torch.prepare_model(network)
    optimizer = timm.optim.create_optimizer_v2(network, opt="adamw", lr=config.effective_lr,
                                               weight_decay=config.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    attempt = state["attempt"] + 1 if state else 1
    earlier = state.get("environments", []) if state else []  # older checkpoints lack it
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    if device.type != "cuda":
        autocast_dtype = None
    placement = ray.util.get_current_placement_group()
    return _Worker(
        config=config, device=device, rank=ray.train.get_context().get_world_rank(),
        network=network, model=model, optimizer=optimizer,
        # fp16 needs loss scaling (the references' NativeScaler); bf16 and fp32 do not.
        scaler=torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16),
        autocast_dtype=autocast_dtype,
        mixup=Mixup(**timm_mixup_kwargs(config, num_classes)) if config.uses_mixup else None,
        image_size=spec.resolved_img_size,
        start_epoch=state["epoch"] if state else 0,
        history=state["history"] if state else [],
        attempt=attempt,
        environments=[*earlier, {"attempt": attempt, **run_environment(device)}],
        tags={PLACEMENT_GROUP: placement.id.hex()} if placement is not None else {},
    )


def _epoch_generator(worker: _Worker, epoch: int) -> torch.Generator:
    """Crops, flips and mixing are a function of (seed, rank, epoch): resuming redraws them.
    Mixup draws from numpy's global state, so that is seeded too."""
    draws = (worker.config.seed * 1_000_003 + worker.rank * 10_007 + epoch) % 2**32
    np.random.seed(draws)
    return torch.Generator().manual_seed(draws)


def _train_step(worker: _Worker, batch: dict[str, torch.Tensor], lr: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step; returns (the step's loss, how many of its labels were top-1)."""
    config, device = worker.config, worker.device
    labels = batch["label"].to(device, non_blocking=True)
    if config.transform == "timm":
        images = batch["input"].to(device, non_blocking=True)
    else:
        images = to_model_input(batch["image"].to(device, non_blocking=True))
        images = random_resized_crop(images, worker.image_size, config.crop_scale,
                                     hflip=config.hflip, vflip=config.vflip,
                                     generator=generator)
    mixed = None
    if worker.mixup is not None:
        images, mixed = worker.mixup(images, labels)
    for group in worker.optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast("cuda", dtype=worker.autocast_dtype or torch.float32,
                        enabled=worker.autocast_dtype is not None):
        logits = worker.model(images)
        loss = training_loss(logits, labels, mixed, config.label_smoothing)
    worker.optimizer.zero_grad(set_to_none=True)
    worker.scaler.scale(loss).backward()
    worker.scaler.step(worker.optimizer)
    worker.scaler.update()
    return loss.detach(), (logits.argmax(dim=1) == labels).sum()


def _report_epoch(worker: _Worker, record: dict) -> None:
    """Report the epoch to Train with a checkpoint of the model, optimiser and history (rank 0
    writes it; every rank reports)."""
    worker.history.append(record)
    with tempfile.TemporaryDirectory() as directory:
        saved = None
        if worker.rank == 0:
            torch.save({"model": worker.network.state_dict(),
                        "optimizer": worker.optimizer.state_dict(), "epoch": record["epoch"],
                        "history": worker.history, "attempt": worker.attempt,
                        "environments": worker.environments},
                       Path(directory) / _STATE_FILE)
            saved = ray.train.Checkpoint.from_directory(directory)
        ray.train.report({**record, **worker.tags}, checkpoint=saved)


def _train_loop(loop_config: dict) -> dict | None:
    """The workers' loop; returns the record of the epoch whose loss went non-finite, if one
    did (the driver reads rank 0's value as Result.return_value)."""
    config = PretrainConfig.from_dict(loop_config["config"])
    plan = loop_config["plan"]
    steps = plan["steps_per_epoch"]
    worker = _start_worker(config, plan["num_classes"])
    batches = _batch_stream(ray.train.get_dataset_shard("train"), config, plan,
                            worker.start_epoch)
    for epoch in range(worker.start_epoch, config.epochs):
        generator = _epoch_generator(worker, epoch)
        worker.model.train()
        loss_sum = torch.zeros((), device=worker.device)
        correct = torch.zeros((), device=worker.device, dtype=torch.long)
        stall, started = 0.0, time.perf_counter()
        for step in range(steps):
            waiting = time.perf_counter()
            batch = next(batches)
            stall += time.perf_counter() - waiting
            lr = warmup_cosine_lr(config, epoch * steps + step, steps)
            loss, hits = _train_step(worker, batch, lr, generator)
            loss_sum += loss
            correct += hits
        epoch_seconds = time.perf_counter() - started
        epoch_loss, top1 = epoch_means(loss_sum, correct, steps, config.worker_batch_size)
        record = {
            "epoch": epoch + 1,
            "loss": epoch_loss,
            "train_top1": top1,
            "images_per_s": steps * config.batch_size / epoch_seconds,
            "epoch_seconds": epoch_seconds,
            "stall_seconds_per_step": stall / steps,
            "lr": lr,
            "attempt": worker.attempt,
            # The epoch this attempt's stream began at (None for a store): a resumed run's
            # stream starts at its checkpoint, so nothing before it is rendered again.
            "stream_start_epoch": (plan["stream_start_epoch"] if plan["epochs_per_pass"] > 1
                                   else None),
        }
        if not math.isfinite(epoch_loss):
            # Shown (reported without a checkpoint) and returned, so that the driver names the
            # epoch and fails the run: a raise would be retried by FailureConfig, and diverge
            # again from the same checkpoint.
            ray.train.report({**record, **worker.tags})
            return record
        _report_epoch(worker, record)
    for _ in batches:
        pass
    return None


# ----------------------------------------------------------------------------- driver side


def _plan(generator: dict, config: PretrainConfig, streaming: bool) -> tuple[dict, dict]:
    """The validated generator config and what every worker must agree on before starting.

    A stream holds all epochs and is read in one pass (a Ray Data pipeline takes seconds to
    start, too long to pay every epoch of a small run); a store is read once per epoch.
    """
    if not isinstance(generator, dict) or "name" not in generator:
        raise ValueError(f"generator must be a config dict with a 'name' key, got {generator!r}")
    if config.transform == "timm" and not streaming:
        raise ValueError("transform='timm' needs the stream (store_root=None): a store is read "
                         "once per epoch without the epoch, so its augmentation would repeat")
    settings = create_generator(**generator)
    images = settings.num_classes * settings.config["images_per_category"]
    steps_per_epoch = schedule_steps(images, config.batch_size, config.num_workers)
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size={config.batch_size} is out of range: an epoch has {images} "
                         f"images over {config.num_workers} worker(s), so batch_size must be <= "
                         f"{images // config.num_workers * config.num_workers}")
    plan = {"num_classes": settings.num_classes, "steps_per_epoch": steps_per_epoch,
            "epochs_per_pass": config.epochs if streaming else 1, "stream_start_epoch": 0}
    return settings.config, plan


def required_cpus(config: PretrainConfig, streaming: bool) -> float:
    """Logical CPUs a run reserves: its workers and, for a stream, the render actors plus one
    CPU for Ray Data's read tasks (without it the stream stalls)."""
    need = config.num_workers * config.cpus_per_worker
    if streaming:
        need += config.num_data_actors * config.cpus_per_data_actor + 1
        if config.transform == "timm":
            need += config.num_augment_actors * _CPUS_PER_AUGMENT_ACTOR
    return need


def _check_resources(config: PretrainConfig, streaming: bool) -> None:
    """Fail now rather than let Train wait forever for workers the cluster cannot place."""
    require_ray("pretrain")
    total = ray.cluster_resources()
    need_cpu = required_cpus(config, streaming)
    need_gpu = config.num_workers if config.use_gpu else 0
    have_cpu, have_gpu = total.get("CPU", 0.0), total.get("GPU", 0.0)
    if need_cpu > have_cpu or need_gpu > have_gpu:
        raise ValueError(
            f"the cluster cannot host this run: it needs {need_cpu:g} CPU and {need_gpu:g} GPU "
            f"(num_workers={config.num_workers} x cpus_per_worker={config.cpus_per_worker:g}"
            + (f" + num_data_actors={config.num_data_actors} x cpus_per_data_actor="
               f"{config.cpus_per_data_actor:g} + 1 for read tasks" if streaming else "")
            + f"), the cluster has {have_cpu:g} CPU and {have_gpu:g} GPU"
        )
    labels = {"worker_resource": config.worker_resource}
    if streaming:
        labels["data_actor_resource"] = config.data_actor_resource
    for name, label in labels.items():
        if missing_labels([label], total):
            raise ValueError(f"{name}={label!r}: no node of the cluster declares the resource "
                             f"{label!r} (`ray start --resources '{{\"{label}\": 1}}'`), so the "
                             "run would wait forever")


def _dataset(generator: dict, config: PretrainConfig, plan: dict, store_root: str | None,
             table_root: str):
    """Rendered rows, and for transform="timm" a second actor pool that augments them. The
    stream holds the rows the workers consume of each epoch from plan["stream_start_epoch"]
    on; its category table is cached under table_root (a store's beside the store)."""
    from fdsl_ray.data import ensure_store, read_store, synthetic_dataset

    if store_root is not None:
        return read_store(ensure_store(generator, store_root))
    rendered = synthetic_dataset(
        generator, epochs=config.epochs, start_epoch=plan["stream_start_epoch"],
        rows_per_epoch=plan["steps_per_epoch"] * config.worker_batch_size * config.num_workers,
        splits=config.num_workers,
        fresh_instances=config.fresh_instances, num_actors=config.num_data_actors,
        cpus_per_actor=config.cpus_per_data_actor, actor_resource=config.data_actor_resource,
        table_root=table_root,
    )
    if config.transform != "timm":
        return rendered
    size = get_model(config.model).resolved_img_size
    return rendered.map_batches(
        TimmAugmentActor,
        compute=ray.data.ActorPoolStrategy(size=config.num_augment_actors),
        num_cpus=_CPUS_PER_AUGMENT_ACTOR,
        resources=node_label(config.data_actor_resource),
        batch_size=_AUGMENT_BATCH,
        batch_format="numpy",
        fn_constructor_kwargs={"kwargs": timm_transform_kwargs(config, size),
                               "seed": config.seed},
    )


def _ordered_ingest(dataset: ray.data.Dataset) -> ray.train.DataConfig:
    """Train's ingest with the dataset's own execution options and rows in id order.

    Train replaces a dataset's execution options with its DataConfig's before the
    streaming_split (ray/train/_internal/data_config.py:122, defaults from the Train
    controller's context, where preserve_order is off). With it on, the split ignores
    locality and hands the blocks out in order (output_splitter.py:135-138), and each worker's
    iterator restores the batch order after its format threads (data/iterator.py:286), so a
    worker's rows, and what its seeded local shuffle makes of them, depend on the spec alone,
    not on timing, actor count or node count.
    """
    options = copy.deepcopy(dataset.context.execution_options)
    options.preserve_order = True
    return ray.train.DataConfig(execution_options={"train": options})


def _claim_run(run_dir: str, identity: dict) -> None:
    """Refuse to resume a run directory that holds a run of another config."""
    run_file = storage.join(run_dir, _RUN_FILE)
    if storage.is_file(run_file):
        recorded = json.loads(storage.read_text(run_file))
        if recorded != identity:
            raise ValueError(f"run {run_dir} already holds a pre-training run of another "
                             f"generator or config ({run_file}): choose another run_name")
    else:
        storage.write_json(run_file, identity)


def _finished(run_dir: str, started: float) -> PretrainResult | None:
    result_file = storage.join(run_dir, _EXPORT_DIR, _RESULT_FILE)
    if not storage.is_file(result_file):
        return None
    recorded = json.loads(storage.read_text(result_file))
    return PretrainResult(**{**recorded, "wall_seconds": time.perf_counter() - started})


def check_pretrain(
    generator: dict,
    config: PretrainConfig,
    *,
    storage_path: str,
    run_name: str,
    store_root: str | None = None,
) -> tuple[dict, dict, str]:
    """Every check of a run that needs no cluster, so that a caller can refuse a run before
    starting Ray: (the generator's full config, the plan, the run directory). The run
    directory and the store root must be writable, and a store already there undamaged."""
    if not isinstance(config, PretrainConfig):
        raise ValueError(f"config must be a PretrainConfig, got {type(config).__name__}")
    if not run_name or "/" in run_name:
        raise ValueError(f"run_name={run_name!r} must be a non-empty name without '/'")
    generator, plan = _plan(generator, config, streaming=store_root is None)
    run_dir = storage.join(storage_path, run_name)
    storage.check_writable(run_dir, "storage_path")
    if store_root is not None:
        from fdsl_ray.data.store import check_root_writable, find_store

        find_store(generator, check_root_writable(store_root))
    return generator, plan, run_dir


def _checkpointed_epoch(run_dir: str) -> int:
    """Epochs done by the run's latest registered checkpoint (0 without one)."""
    try:
        metrics = ray.train.Result.from_path(run_dir).metrics
    except RuntimeError:  # no run there yet
        return 0
    return int((metrics or {}).get("epoch", 0))


def _fit(generator: dict, config: PretrainConfig, plan: dict, run_dir: str, run_name: str,
         callbacks: list | None, store_root: str | None, storage_path: str,
         last_try: bool) -> ray.train.Result | None:
    """One TorchTrainer fit from the run's latest checkpoint, its stream starting at that
    checkpoint's epoch; None when it failed and the run may try again. The driver retries
    (max_failures) rather than Train's FailureConfig, which would restart the workers on
    the stream of the first try and make them read and drop every epoch since."""
    if store_root is None:
        plan = {**plan, "stream_start_epoch": min(_checkpointed_epoch(run_dir),
                                                  config.epochs - 1)}
    dataset = _dataset(generator, config, plan, store_root, table_root=storage_path)
    trainer = ray.train.torch.TorchTrainer(
        _train_loop,
        train_loop_config={"config": config.to_dict(), "plan": plan},
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.num_workers, use_gpu=config.use_gpu,
            resources_per_worker={"CPU": config.cpus_per_worker,
                                  **({"GPU": 1} if config.use_gpu else {}),
                                  **node_label(config.worker_resource)},
        ),
        datasets={"train": dataset},
        dataset_config=_ordered_ingest(dataset),
        run_config=ray.train.RunConfig(
            name=run_name, storage_path=storage.parent(run_dir),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            failure_config=ray.train.FailureConfig(max_failures=0),
            callbacks=callbacks,
        ),
    )
    try:
        return trainer.fit()
    except ray.train.TrainingFailedError:
        if last_try:
            raise
        return None


def pretrain(
    generator: dict,
    config: PretrainConfig,
    *,
    storage_path: str,
    run_name: str,
    callbacks: list | None = None,
    store_root: str | None = None,
) -> PretrainResult:
    """Pre-train `config.model` on `generator`'s images and export the weights.

    `store_root` None streams images from data actors (nothing on disk but the generator's
    category table, cached in storage_path/tables/); otherwise the images are written once
    under `store_root` and read back each epoch. Calling again with the same
    `storage_path` and `run_name` resumes from the latest checkpoint, or returns at once when
    the run has finished. `storage_path` is a directory every worker node can reach (local,
    a shared mount) or an object-store URI such as s3://bucket/prefix.
    """
    started = time.perf_counter()
    generator, plan, run_dir = check_pretrain(generator, config, storage_path=storage_path,
                                              run_name=run_name, store_root=store_root)
    _claim_run(run_dir, {"generator": generator, "config": config.to_dict()})
    done = _finished(run_dir, started)
    if done is not None:
        return done
    _check_resources(config, streaming=store_root is None)
    for failures in itertools.count():
        result = _fit(generator, config, plan, run_dir, run_name, callbacks, store_root,
                      storage_path, last_try=failures == config.max_failures)
        if result is not None:
            break
    diverged = result.return_value
    if diverged is not None:
        raise ValueError(f"pre-training loss is {diverged['loss']} at epoch {diverged['epoch']} "
                         f"of run {run_dir}: the run diverged (effective lr "
                         f"{config.effective_lr:.2e}); nothing was exported")
    with result.checkpoint.as_directory() as directory:
        state = torch.load(Path(directory) / _STATE_FILE, map_location="cpu", weights_only=True)
    spec = get_model(config.model)
    network = create_vit(spec, plan["num_classes"])
    network.load_state_dict(state["model"])
    export_dir = storage.join(run_dir, _EXPORT_DIR)
    weights_path = export_pretrained(network, spec, plan["num_classes"], export_dir)
    history = state["history"]
    recorded = {
        "weights_path": weights_path,
        "checkpoint_path": storage.as_location(result.checkpoint.path, like=run_dir),
        "history": history,
        "compute_seconds": float(sum(record["epoch_seconds"] for record in history)),
        "num_classes": plan["num_classes"],
        "environments": state["environments"],
    }
    storage.write_json(storage.join(export_dir, _RESULT_FILE), recorded)
    return PretrainResult(**recorded, wall_seconds=time.perf_counter() - started)
