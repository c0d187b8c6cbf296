"""Training recipes by name: the references' pre-training and fine-tuning, value for value.

One registry, as for generators and models: `get_recipe(name)` from the API, `--recipe NAME`
in `fdsl pretrain` / `fdsl finetune`, `"recipe": NAME` in a study spec. A recipe holds
PretrainConfig and FinetuneConfig values (changes over the class defaults), the generator
keys it asks for, the files (and lines) each value was read from, and what it does not
reproduce. Citations are `repo@commit:path:lines`; values are only the references' own.

Reference commits read: SUPER-TADORY/1p-frac@413d318 (train/), masora1030/CVPR2022-
Pretrained-ViT-PyTorch@7a28054, masora1030/CVPR2023-FDSL-on-VisualAtom@de80c69.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fdsl_ray.train.finetune import FinetuneConfig
from fdsl_ray.train.pretrain import PretrainConfig

_ONEP = "SUPER-TADORY/1p-frac@413d318"
_CVPR22 = "masora1030/CVPR2022-Pretrained-ViT-PyTorch@7a28054"
_VA = "masora1030/CVPR2023-FDSL-on-VisualAtom@de80c69"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# How one GPU trial is fed here: the project's placement, not a reference value.
_GPU_RESOURCES = dict(use_gpu=True, num_workers=1, cpus_per_worker=2.0, num_data_actors=4,
                      cpus_per_data_actor=1.0, num_augment_actors=8, shuffle_buffer=4096)


@dataclass(frozen=True)
class Recipe:
    """A named recipe. `pretrain` / `finetune` map config fields to values; `sources` maps
    each reference value's field to where it was read; `generator` is what the recipe asks of
    the generator (render 512 px, let the transform crop to 224); `deviations` lists what is
    not reproduced and why."""

    name: str
    summary: str
    pretrain: dict[str, Any]
    finetune: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    deviations: tuple[str, ...] = ()

    def pretrain_config(self, **changes: object) -> PretrainConfig:
        return PretrainConfig.from_dict({**self.pretrain, **changes})

    def finetune_config(self, **changes: object) -> FinetuneConfig:
        return FinetuneConfig.from_dict({**self.finetune, **changes})


# The CIFAR fine-tuning of the 1p-frac and VisualAtom repositories (the same timm script and
# values: 1p-frac train/finetuning.sh, VisualAtom scripts/finetune.sh; sources per recipe).
_CIFAR_FINETUNE = dict(
    shots=None, epochs=1000, batch_size=768, optimizer="sgd", lr=0.01, lr_base_batch=512,
    momentum=0.9, weight_decay=1e-4, schedule="timm_epoch", warmup_epochs=10, warmup_lr=1e-6,
    min_lr=1e-5, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, mixup_prob=1.0,
    mixup_switch_prob=0.5, transform="timm", crop_scale_min=0.08, crop_ratio=(0.75, 1.3333),
    hflip=True, vflip=False, color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1",
    interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD, re_prob=0.25,
    re_mode="pixel", re_count=1, drop_path_rate=0.1, precision="fp16", image_size=224)

_RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add `recipe` under its name, validating both configs now."""
    if recipe.name in _RECIPES:
        raise ValueError(f"recipe {recipe.name!r} is already registered")
    recipe.pretrain_config()
    recipe.finetune_config()
    _RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    if name not in _RECIPES:
        raise ValueError(f"recipe {name!r} is unknown: must be one of {', '.join(list_recipes())}")
    return _RECIPES[name]


def list_recipes() -> list[str]:
    return sorted(_RECIPES)


register_recipe(Recipe(
    name="cpu",
    summary="the CPU recipe: 32 px cpu_small, flips without crops, no mixup, 20 epochs",
    pretrain={},
    finetune={},
    deviations=(
        "pre-training: the 4-block cpu_small ViT at 32 px instead of ViT-Tiny at 224 (CPU "
        "time), chosen in benchmarks/transfer.py (README, Transfer): 75.3 +/- 4.2 % digits "
        "top-1 against 51.4 scratch",
        "pre-training: no crops and no mixup: with crops of area >= 1/4 (and 3x3 patches) the "
        "loss stayed at chance (4.61) and scored 43.8 +/- 1.2 %, below scratch",
        "pre-training: no colour jitter, RandAugment or random erasing; the project's batched "
        "flips (transform='tensor'), per-step cosine from zero ('project' schedule)",
        "fine-tuning: AdamW at effective lr 5e-4, batch 16, 50 epochs, crops >= 1/2 (measured "
        "on digits, 10 shots: SGD stayed well below AdamW, 2e-3 diverged, batch 16 beat 32)",
    ),
))

register_recipe(Recipe(
    name="1p-frac",
    summary="1p-frac (Nakamura et al.): ViT-Tiny, 1,000 images for 80,000 epochs; CIFAR-100",
    generator={"image_size": 512, "num_categories": 1000, "images_per_category": 1},
    pretrain=dict(
        model="vit_tiny_patch16_224", epochs=80_000, batch_size=256, lr=1e-3, lr_base_batch=512,
        weight_decay=0.05, schedule="timm_epoch", warmup_epochs=5, warmup_lr=1e-6, min_lr=1e-5,
        label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, mixup_prob=1.0,
        mixup_switch_prob=0.5, transform="timm", crop_scale=(0.08, 1.0),
        crop_ratio=(0.75, 1.3333), hflip=True, vflip=True, color_jitter=0.4,
        auto_augment="rand-m9-mstd0.5-inc1", interpolation="bicubic", mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5), re_prob=0.5, re_mode="pixel", re_count=1, drop_path_rate=0.1,
        precision="fp16", fresh_instances=False, **_GPU_RESOURCES),
    finetune=dict(dataset="cifar100", **_CIFAR_FINETUNE),
    sources={
        "generator": f"{_ONEP}:train/pre-train.sh:9-14 (train_imgs = num_classes = SAMPLE_NUM "
                     "= 1000: one image per category); 1p-frac_generater/src/"
                     "render_from_oneparam_mp.py:113-114 (512 x 512)",
        "pretrain.model": f"{_ONEP}:train/pre-train.sh:20",
        "pretrain.epochs": f"{_ONEP}:train/pre-train.sh:22",
        "pretrain.batch_size": f"{_ONEP}:train/pre-train.sh:4,16 (32 per GPU x 8 GPUs); "
                               "train/main.py:128",
        "pretrain.lr": f"{_ONEP}:train/pre-train.sh:20",
        "pretrain.lr_base_batch": f"{_ONEP}:train/main.py:188-193 (lr, warmup_lr, min_lr x "
                                  "batch / 512)",
        "pretrain.weight_decay": f"{_ONEP}:train/configs/model/vit.yaml:12-14 (adamw)",
        "pretrain.schedule": f"{_ONEP}:train/configs/model/vit.yaml:17-32 (timm create_"
                             "scheduler cosine, step_per_epoch); train/main.py:251-252",
        "pretrain.warmup_epochs": f"{_ONEP}:train/pre-train.sh:21",
        "pretrain.warmup_lr": f"{_ONEP}:train/configs/model/vit.yaml:25",
        "pretrain.min_lr": f"{_ONEP}:train/configs/model/vit.yaml:23",
        "pretrain.label_smoothing": f"{_ONEP}:train/configs/data/grayimagefolder.yaml:67",
        "pretrain.mixup": f"{_ONEP}:train/pre-train.sh:18-19; grayimagefolder.yaml:60-67 "
                          "(timm.data.Mixup, mode batch)",
        "pretrain.transform": f"{_ONEP}:train/configs/data/grayimagefolder.yaml:19-44 "
                              "(timm.data.create_transform, input_size 224); train/data.py:63",
        "pretrain.augment": f"{_ONEP}:train/pre-train.sh:16-18 (no_aug False, auto_augment, "
                            "re_prob 0.5, color_jitter 0.4, hflip/vflip 0.5, scale, ratio)",
        "pretrain.interpolation_mean_std_re": f"{_ONEP}:train/configs/data/"
                                              "grayimagefolder.yaml:33-44",
        "pretrain.drop_path_rate": f"{_ONEP}:train/configs/model/vit.yaml:7",
        "pretrain.precision": f"{_ONEP}:train/main.py:50,214 (cuda.amp.autocast + "
                              "NativeScaler: fp16)",
        "pretrain.fresh_instances": f"{_ONEP}:train/data.py:74 (ImageFolder of the rendered "
                                    "set, the same images every epoch)",
        "finetune.dataset_epochs_batch": f"{_ONEP}:train/finetuning.sh:7,18,23 (CIFAR100, 96 "
                                         "per GPU x 8 GPUs, 1000 epochs)",
        "finetune.optimizer": f"{_ONEP}:train/finetuning.sh:21-22 (sgd, lr 0.01, wd 1e-4, "
                              "warmup 10); timm create_optimizer_v2 sgd momentum 0.9",
        "finetune.schedule": f"{_ONEP}:train/configs/model/vit.yaml:17-32; main.py:188-193",
        "finetune.transform": f"{_ONEP}:train/configs/data/colorimagefolder.yaml:19-44",
        "finetune.mixup": f"{_ONEP}:train/configs/data/colorimagefolder.yaml:59-66",
        "finetune.drop_path_rate": f"{_ONEP}:train/configs/model/vit.yaml:7",
        "finetune.precision": f"{_ONEP}:train/main.py:50,214",
    },
    deviations=(
        "color_jitter 0.4 is passed as the reference passes it, and timm (0.4.12 as 1.0) skips "
        "colour jitter whenever auto_augment is set: neither run applies it",
        "seed: the reference seeds 42 + rank (main.yaml:1, main.py:118) through global RNGs; "
        "here crops, RandAugment and erasing are seeded per (seed, epoch, label, instance)",
        "fine-tuning images are first resized to 224 by the downstream loader (bilinear), then "
        "cropped by create_transform; the reference crops the 32 px CIFAR image directly",
        "timm 1.0 instead of the reference's timm 0.4.12 (requirements.txt)",
    ),
))

_CVPR22_PRETRAIN_SOURCES = {
    "pretrain": f"{_CVPR22}:exe_scripts/exe_rcdb_1k.sh:24-58 (deit_base, 300 epochs, lr 1e-3, "
                "wd 0.05, batch 64 x 4 GPUs, cosine_iter, warmup 5, smoothing 0.1, drop-path 0.1, "
                "rand-m9-mstd0.5-inc1, mixup 0.8, cutmix 1.0, reprob 0.25 pixel, hflip 0, no "
                "--amp); exe_scripts/exe_exfractaldb_1k.sh:21-57 (the same for ExFractalDB-1k)",
    "pretrain.defaults": f"{_CVPR22}:pretrain.py:149-215 (warmup_lr 1e-4, min_lr 1e-5, scale "
                         "(0.08, 1), ratio (3/4, 4/3), vflip 0, color_jitter 0.4, recount 1, "
                         "mixup prob 1.0, switch 0.5, mode batch, train-interpolation random)",
    "pretrain.lr_base_batch": f"{_CVPR22}:pretrain.py:361 (create_optimizer_v2(args): the lr "
                              "is used as given, no batch scaling)",
    "pretrain.schedule": f"{_CVPR22}:scheduler/scheduler_factory.py:110-130 (cosine_iter: "
                         "per-iteration CosineLRScheduler, warmup_t = warmup_epochs x iters)",
    "pretrain.mean_std": f"{_CVPR22}:pretrain.py:350 (resolve_data_config of the DeiT model: "
                         "ImageNet mean/std)",
    "pretrain.interpolation": f"{_CVPR22}:pretrain.py:506-508 (train_interpolation 'random')",
    "generator": f"{_CVPR22}:exe_scripts/exe_rcdb_1k.sh:2-3 (1,000 classes x 1,000 "
                 "instances); rcdb_render/make_rcdb.py:14 (image_size 512)",
    "finetune": f"{_CVPR22}:scripts/finetune.sh:15-48 (ImageNet-1k, deit_base, 300 epochs, "
                "lr 1e-3 adamw, wd 0.05, batch 64 x 16 GPUs, cosine_iter, warmup 5, smoothing "
                "0.1, rand-m9-mstd0.5-inc1, mixup 0.8, cutmix 1.0, drop-path 0.1, reprob 0.25)",
    "finetune.defaults": f"{_CVPR22}:finetune.py:133-199 (warmup_lr 1e-4, min_lr 1e-5, hflip "
                         "0.5, remode const, train-interpolation random)",
}
_REPEATED_AUG = ("--repeated-aug (data/loader.py:20-80, RASampler: every image 3 times per "
                 "epoch on different ranks) is not reproduced: each image appears once per epoch")
_DEIT = ("deit_base_patch16_224 is built as timm's vit_base_patch16_224 (the same "
         "VisionTransformer: 768 wide, 12 blocks, 12 heads)")
_PREFETCHER = ("the reference's default prefetcher erases on the GPU batch; here erasing runs "
               "in create_transform per image (the same RandomErasing, on CPU)")

register_recipe(Recipe(
    name="cvpr2022",
    summary="RCDB / ExFractalDB-1k (Kataoka et al., CVPR 2022): ViT-B, 300 epochs; ImageNet",
    generator={"name": "rcdb", "image_size": 512, "num_categories": 1000,
               "images_per_category": 1000},
    pretrain=dict(
        model="vit_base_patch16_224", epochs=300, batch_size=256, lr=1e-3, lr_base_batch=None,
        weight_decay=0.05, schedule="timm_step", warmup_epochs=5, warmup_lr=1e-4, min_lr=1e-5,
        label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, mixup_prob=1.0,
        mixup_switch_prob=0.5, transform="timm", crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3), hflip=False, vflip=False, color_jitter=0.4,
        auto_augment="rand-m9-mstd0.5-inc1", interpolation="random", mean=IMAGENET_MEAN,
        std=IMAGENET_STD, re_prob=0.25, re_mode="pixel", re_count=1, drop_path_rate=0.1,
        precision="fp32", fresh_instances=False, **_GPU_RESOURCES),
    finetune=dict(
        dataset="imagefolder", shots=None, epochs=300, batch_size=1024, optimizer="adamw",
        lr=1e-3, lr_base_batch=None, weight_decay=0.05, schedule="timm_step", warmup_epochs=5,
        warmup_lr=1e-4, min_lr=1e-5, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
        mixup_prob=1.0, mixup_switch_prob=0.5, transform="timm", crop_scale_min=0.08,
        crop_ratio=(3 / 4, 4 / 3), hflip=True, vflip=False, color_jitter=0.4,
        auto_augment="rand-m9-mstd0.5-inc1", interpolation="random", mean=IMAGENET_MEAN,
        std=IMAGENET_STD, re_prob=0.25, re_mode="const", re_count=1, drop_path_rate=0.1,
        precision="fp32", image_size=224),
    sources=_CVPR22_PRETRAIN_SOURCES,
    deviations=(_REPEATED_AUG, _DEIT, _PREFETCHER,
                "fine-tuning data: ImageNet-1k is read as an imagefolder (data_root)"),
))

register_recipe(Recipe(
    name="visualatom",
    summary="VisualAtom (Takashima et al., CVPR 2023): ViT-B, 90 epochs at batch 8,192; "
            "CIFAR-10",
    pretrain=dict(
        model="vit_base_patch16_224", epochs=90, batch_size=8192, lr=1e-3, lr_base_batch=None,
        weight_decay=0.05, schedule="timm_step", warmup_epochs=0, warmup_steps=5000,
        warmup_lr=1e-6, min_lr=1e-5, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
        mixup_prob=1.0, mixup_switch_prob=0.5, transform="timm", crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3), hflip=False, vflip=False, color_jitter=0.4,
        auto_augment="rand-m9-mstd0.5-inc1", interpolation="random", mean=IMAGENET_MEAN,
        std=IMAGENET_STD, re_prob=0.25, re_mode="pixel", re_count=1, drop_path_rate=0.1,
        precision="fp16", fresh_instances=False, **_GPU_RESOURCES),
    finetune=dict(dataset="cifar10", **_CIFAR_FINETUNE),
    sources={
        "pretrain": f"{_VA}:scripts/pretrain.sh:4-46 (deit_base, VisualAtom-21k, 90 epochs, lr "
                    "1e-3, wd 0.05, min-lr 1e-5, warmup-lr 1e-6, warmup-iter 5000, batch 64 x "
                    "128 GPUs, cosine_iter, smoothing 0.1, drop-path 0.1, rand-m9-mstd0.5-inc1, "
                    "mixup 0.8, cutmix 1.0, reprob 0.25 pixel, hflip 0, --amp)",
        "pretrain.defaults": f"{_VA}:pretrain.py:163-215 (warmup-iter, scale, ratio, vflip 0, "
                             "color_jitter 0.4, mixup prob 1.0, switch 0.5, train-interpolation "
                             "random)",
        "pretrain.schedule": f"{_VA}:scheduler/scheduler_factory.py:91-110 (cosine_iter; "
                             "warmup_iter overrides warmup_epochs)",
        "finetune": f"{_VA}:scripts/finetune.sh:5-68 (CIFAR10, vit_base, 96 x 8 GPUs, sgd 0.01, "
                    "wd 1e-4, warmup 10, 1000 epochs); finetune.py:184-189 (x batch / 512)",
        "finetune.transform_mixup": f"{_VA}:configs/data/colorimagefolder.yaml:19-66",
        "finetune.schedule_drop_path": f"{_VA}:configs/model/vit.yaml:7,17-31",
        "finetune.precision": f"{_VA}:finetune.py:36 (cuda.amp.autocast, NativeScaler)",
    },
    deviations=(
        "no VisualAtom generator exists here: the recipe trains on whichever generator is given "
        "(its 21k-category data set is not reproduced)",
        _REPEATED_AUG, _DEIT, _PREFETCHER,
    ),
))
