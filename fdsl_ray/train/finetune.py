"""Downstream evaluation of a pre-trained (or scratch) ViT: full fine-tuning or a linear probe.

This is the score of every study trial, so it runs in the calling process with plain torch
(a Tune trial calls it directly, using the trial's torch threads) and is an exact function of
the config and the weights: fixed split, seeded init, seeded data order and augmentation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np
import timm.optim
import torch
from timm.data import Mixup
from timm.models.vision_transformer import init_weights_vit_timm

from fdsl_ray.train.augment import (
    TimmAugment,
    check_augment_fields,
    random_resized_crop,
    timm_mixup_kwargs,
    timm_transform_kwargs,
)
from fdsl_ray.train.downstream import DownstreamData, create_downstream, list_downstream
from fdsl_ray.train.export import load_pretrained, read_exported
from fdsl_ray.train.loss import training_loss
from fdsl_ray.train.models import ModelSpec, create_vit, set_drop_path
from fdsl_ray.train.preprocess import to_model_input
from fdsl_ray.train.schedule import SCHEDULES, ScaledLearningRates, warmup_cosine_lr
from fdsl_ray.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_seed,
    config_from_dict,
)

MODES = ("full", "linear")
OPTIMIZERS = ("adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda")
# Horizontal flips change a digit's meaning; datasets not listed here allow them.
_NO_HFLIP_DATASETS = frozenset({"digits"})
_EVAL_BATCH = 256


@dataclass(frozen=True)
class FinetuneConfig(ScaledLearningRates):
    """One downstream evaluation recipe.

    The GPU reference fine-tunes with SGD (lr 0.01 x batch/512, momentum 0.9, wd 1e-4, 10
    warm-up epochs, label smoothing 0.1) for hundreds of epochs at 224 px; see
    `FinetuneConfig.gpu_reference()`. The defaults here are a CPU recipe chosen by measurement
    on digits with 10 images per class and the `get_model("cpu_small")` ViT (about 35 s on two
    cores): AdamW at an effective lr of 5e-4 (base 0.016 x 16 / 512), batch 16, 50 epochs,
    random resized crops of half the area or more. At this scale SGD stayed well below AdamW,
    an effective lr of 2e-3 diverged, and batch 16 beat batch 32 at equal epochs (more steps).
    `lr` (and `min_lr`, `warmup_lr`) is the base lr for batch `lr_base_batch` (linear scaling
    rule, as in 1p-frac train/main.py:188-190); None uses it as given. The reference recipes
    (fdsl_ray.train.recipes) set `transform="timm"`: timm's create_transform per image and
    timm's Mixup, with the fields below; "tensor" is the batched crop-and-flip path above.
    """

    dataset: str = "digits"
    shots: int | None = 10
    mode: str = "full"
    epochs: int = 50
    batch_size: int = 16
    optimizer: str = "adamw"
    lr: float = 0.016
    lr_base_batch: int | None = 512
    momentum: float = 0.9
    weight_decay: float = 0.05
    schedule: str = "project"
    warmup_epochs: int = 5
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    transform: str = "tensor"
    crop_scale_min: float = 0.5
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool | None = None
    vflip: bool = False
    color_jitter: float = 0.0
    auto_augment: str | None = None
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    re_prob: float = 0.0
    re_mode: str = "pixel"
    re_count: int = 1
    drop_path_rate: float = 0.0
    precision: str = "fp32"
    image_size: int | None = None
    seed: int = 0
    data_root: str | None = None
    download: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, tuple(list_downstream()))
        if self.shots is not None:
            check_int("shots", self.shots, 1)
        check_choice("mode", self.mode, MODES)
        check_int("epochs", self.epochs, 1, 100_000)
        check_int("batch_size", self.batch_size, 1, 65_536)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr", self.lr, 0, 100, low_open=True)
        check_float("momentum", self.momentum, 0, 1, high_open=True)
        check_float("weight_decay", self.weight_decay, 0, 10)
        if self.lr_base_batch is not None:
            check_int("lr_base_batch", self.lr_base_batch, 1, 1_048_576)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_float("warmup_lr", self.warmup_lr, 0, 100)
        check_float("min_lr", self.min_lr, 0, 100)
        check_augment_fields(self)
        check_int("warmup_epochs", self.warmup_epochs, 0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs={self.warmup_epochs} is out of range: must be in "
                             f"[0, epochs={self.epochs})")
        check_float("label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        check_float("crop_scale_min", self.crop_scale_min, 0, 1, low_open=True)
        if self.hflip is not None and not isinstance(self.hflip, bool):
            raise ValueError(f"hflip={self.hflip!r} must be true, false or None (dataset default)")
        if self.image_size is not None:
            check_int("image_size", self.image_size, 1, 1024)
        check_seed("seed", self.seed)
        check_bool("download", self.download)
        check_choice("device", self.device, DEVICES)

    @property
    def crop_scale(self) -> tuple[float, float]:
        return (self.crop_scale_min, 1.0)

    @property
    def uses_mixup(self) -> bool:
        return self.mixup_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    @property
    def uses_hflip(self) -> bool:
        return self.dataset not in _NO_HFLIP_DATASETS if self.hflip is None else self.hflip

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for name in ("crop_ratio", "mean", "std"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FinetuneConfig:
        return config_from_dict(cls, data, "finetune")

    @classmethod
    def gpu_reference(cls, dataset: str = "cifar100", **changes: object) -> FinetuneConfig:
        """The 1p-frac reference fine-tuning (`fdsl_ray.train.recipes`, "1p-frac") on
        `dataset`, with `changes`."""
        from fdsl_ray.train.recipes import get_recipe

        return get_recipe("1p-frac").finetune_config(dataset=dataset, **changes)


@dataclass(frozen=True)
class FinetuneResult:
    """Held-out top-1 (percent), per-epoch metrics and the seconds spent computing."""

    top1: float
    history: list[dict]
    compute_seconds: float
    num_train: int
    num_test: int


def _resolve_model(weights: str | None, model: ModelSpec | dict | None) -> ModelSpec | None:
    if isinstance(model, dict):
        return ModelSpec.from_dict(model)
    if model is not None and not isinstance(model, ModelSpec):
        raise ValueError(f"model must be a ModelSpec, a dict of its fields or None, got "
                         f"{type(model).__name__}")
    if model is None and weights is None:
        raise ValueError("scratch fine-tuning (weights=None) needs the model architecture: pass "
                         "model=ModelSpec(...) or its dict")
    return model


def _build_model(weights: str | None, spec: ModelSpec, num_classes: int) -> torch.nn.Module:
    """Seeded by the caller. The head is always re-drawn after construction: timm keeps a
    checkpoint head whose size happens to match, and its classes are synthetic ones. Both paths
    consume the RNG identically while building, so scratch and pre-trained runs of one seed
    start from the same head."""
    if weights is None:
        network = create_vit(spec, num_classes)
    else:
        network = load_pretrained(weights, spec, num_classes)
    init_weights_vit_timm(network.get_classifier())
    return network


def _batches(count: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(count, generator=generator)
    yield from order.split(batch_size)


def _device(config: FinetuneConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA device")
    return torch.device(config.device)


@torch.no_grad()
def _predict(network: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
             size: int, device: torch.device,
             normalise: Callable[[torch.Tensor], torch.Tensor] = lambda batch: batch,
             ) -> torch.Tensor:
    outputs = [
        network(normalise(to_model_input(chunk.to(device), size))).float().cpu()
        for chunk in images.split(_EVAL_BATCH)
    ]
    return torch.cat(outputs)


def _top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (logits.argmax(dim=1) == labels).float().mean().item()


def _train_epochs(
    config: FinetuneConfig,
    trainable: torch.nn.Module,
    step_fn: Callable[[torch.Tensor, torch.Generator, int], tuple[torch.Tensor, torch.Tensor]],
    labels: torch.Tensor,
    generator: torch.Generator,
    on_epoch: Callable[[dict], None] | None,
) -> list[dict]:
    """The loop shared by both modes: `step_fn(indices, generator, epoch)` returns
    (loss, logits)."""
    optimizer = timm.optim.create_optimizer_v2(
        trainable, opt=config.optimizer, lr=config.effective_lr,
        weight_decay=config.weight_decay, momentum=config.momentum,
    )
    steps_per_epoch = math.ceil(len(labels) / config.batch_size)
    # fp16 autocast needs loss scaling (the references' NativeScaler); nothing else does.
    scaler = torch.amp.GradScaler(
        "cuda", enabled=config.precision == "fp16" and _device(config).type == "cuda")
    history = []
    step = 0
    for epoch in range(config.epochs):
        started = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for indices in _batches(len(labels), config.batch_size, generator):
            lr = warmup_cosine_lr(config, step, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, logits = step_fn(indices, generator, epoch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.item() * len(indices)
            correct += int((logits.argmax(dim=1).cpu() == labels[indices]).sum())
            step += 1
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / len(labels),
            "train_top1": 100.0 * correct / len(labels),
            "lr": lr,
            "epoch_seconds": time.perf_counter() - started,
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if not math.isfinite(record["loss"]):
            raise ValueError(f"fine-tuning loss is {record['loss']} at epoch {epoch + 1}: the "
                             f"run diverged (effective lr {config.effective_lr:.2e}); no score "
                             "is reported")
    return history


def _finetune_full(
    config: FinetuneConfig, network: torch.nn.Module, data: DownstreamData, size: int,
    device: torch.device, generator: torch.Generator, on_epoch: Callable[[dict], None] | None,
) -> tuple[list[dict], float]:
    hflip = config.uses_hflip
    timm_augment = None
    if config.transform == "timm":
        timm_augment = TimmAugment(timm_transform_kwargs(config, size), config.seed)
    mixup = Mixup(**timm_mixup_kwargs(config, data.num_classes)) if config.uses_mixup else None
    autocast = _autocast(config, device)

    def step(indices: torch.Tensor, step_generator: torch.Generator, epoch: int):
        if timm_augment is not None:
            epochs = np.full(len(indices), epoch)
            batch = timm_augment(data.train_images[indices].numpy(), indices.numpy(),
                                 np.zeros(len(indices), dtype=np.int64), epochs).to(device)
        else:
            batch = to_model_input(data.train_images[indices].to(device))
            batch = random_resized_crop(batch, size, config.crop_scale, hflip=hflip,
                                        vflip=config.vflip, generator=step_generator,
                                        padding_mode="border")
        target = data.train_labels[indices].to(device)
        soft = None
        if mixup is not None and len(indices) % 2 == 0:
            batch, soft = mixup(batch, target)
        with autocast:
            logits = network(batch)
        return training_loss(logits, target, soft, config.label_smoothing), logits

    network.train()
    history = _train_epochs(config, network, step, data.train_labels, generator, on_epoch)
    network.eval()
    logits = _predict(network, data.test_images, size, device, _normalizer(config))
    return history, _top1(logits, data.test_labels)


def _autocast(config: FinetuneConfig, device: torch.device) -> torch.autocast:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
    return torch.autocast("cuda", dtype=dtype or torch.float32,
                          enabled=device.type == "cuda" and dtype is not None)


def _normalizer(config: FinetuneConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """Held-out images normalised as the training transform does: to_model_input gives
    mean = std = 0.5; a timm recipe's own mean/std (ImageNet's) replaces it."""
    if config.transform != "timm":
        return lambda batch: batch
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)

    def normalise(batch: torch.Tensor) -> torch.Tensor:
        unit = batch * 0.5 + 0.5
        return (unit - mean.to(batch.device)) / std.to(batch.device)

    return normalise


def _finetune_linear(
    config: FinetuneConfig, network: torch.nn.Module, data: DownstreamData, size: int,
    device: torch.device, generator: torch.Generator, on_epoch: Callable[[dict], None] | None,
) -> tuple[list[dict], float]:
    """Frozen backbone: features are computed once (no augmentation), only the head trains.

    Features are standardised with the training set's statistics (as MAE's probe does with a
    parameter-free BatchNorm), so one learning rate suits backbones of any feature scale.
    """
    network.eval()
    network.requires_grad_(False)

    def features(batch: torch.Tensor) -> torch.Tensor:
        return network.forward_head(network.forward_features(batch), pre_logits=True)

    normalise = _normalizer(config)
    train_features = _predict(features, data.train_images, size, device, normalise).to(device)
    test_features = _predict(features, data.test_images, size, device, normalise).to(device)
    mean, std = train_features.mean(dim=0), train_features.std(dim=0, unbiased=False) + 1e-6
    train_features = (train_features - mean) / std
    test_features = (test_features - mean) / std
    head = network.get_classifier()
    head.requires_grad_(True)

    def step(indices: torch.Tensor, step_generator: torch.Generator, epoch: int):
        logits = head(train_features[indices.to(device)])
        target = data.train_labels[indices].to(device)
        return training_loss(logits, target, None, config.label_smoothing), logits

    history = _train_epochs(config, head, step, data.train_labels, generator, on_epoch)
    with torch.no_grad():
        top1 = _top1(head(test_features).cpu(), data.test_labels)
    return history, top1


def finetune(
    config: FinetuneConfig,
    *,
    weights: str | None,
    model: ModelSpec | dict | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> FinetuneResult:
    """Fine-tune (`mode="full"`) or linearly probe (`mode="linear"`) and score on held-out data.

    `weights` is an exported `model.safetensors` (or its directory); None trains the same
    recipe from a random init, the baseline every pre-training is compared with. `model` gives
    the architecture for scratch runs; with weights it defaults to the one recorded beside them.
    `on_epoch` receives each epoch's metrics as they are produced (for progress display).
    """
    spec = _resolve_model(weights, model)
    if spec is None:
        spec = read_exported(weights).spec
    if config.image_size is not None and config.image_size != spec.resolved_img_size:
        spec = replace(spec, img_size=config.image_size)
    device = _device(config)
    data = create_downstream(config.dataset, seed=config.seed, shots=config.shots,
                             data_root=config.data_root, download=config.download,
                             image_size=spec.resolved_img_size)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = _build_model(weights, spec, data.num_classes)
        network = set_drop_path(network, config.drop_path_rate).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    run = _finetune_full if config.mode == "full" else _finetune_linear
    # timm's Mixup draws its lambda and its mixup/cutmix switch from np.random: seeded here
    # (and the caller's state restored), or a mixup run would depend on what ran before it.
    numpy_state = np.random.get_state()
    np.random.seed(config.seed)  # seeds are in numpy's [0, 2**32 - 1] (fdsl_ray.validation)
    try:
        history, top1 = run(config, network, data, spec.resolved_img_size, device, generator,
                            on_epoch)
    finally:
        np.random.set_state(numpy_state)
    return FinetuneResult(
        top1=top1,
        history=history,
        compute_seconds=time.perf_counter() - started,
        num_train=len(data.train_labels),
        num_test=len(data.test_labels),
    )
