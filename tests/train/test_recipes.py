"""Recipe presets pinned value for value, timm's transform and Mixup, schedules (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from timm.data import Mixup, create_transform
from timm.loss import SoftTargetCrossEntropy
from timm.scheduler import CosineLRScheduler

from fdsl_ray.data.stream import rows_for_ids
from fdsl_ray.formulas import create_generator
from fdsl_ray.train.augment import TimmAugment, timm_mixup_kwargs, timm_transform_kwargs
from fdsl_ray.train.finetune import FinetuneConfig
from fdsl_ray.train.models import create_vit, get_model, set_drop_path
from fdsl_ray.train.pretrain import PretrainConfig
from fdsl_ray.train.recipes import get_recipe, list_recipes
from fdsl_ray.train.schedule import (
    epochs_for_iterations,
    iterations_for_epochs,
    steps_per_epoch,
    warmup_cosine_lr,
)

IMNET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# SUPER-TADORY/1p-frac@413d318: train/pre-train.sh:4,12-23, train/main.py:50,188-214,
# train/configs/model/vit.yaml:7,12-32, train/configs/data/grayimagefolder.yaml:19-67.
ONEP_PRETRAIN = dict(
    model="vit_tiny_patch16_224", epochs=80_000, batch_size=256, lr=1e-3, lr_base_batch=512,
    weight_decay=0.05, schedule="timm_epoch", warmup_epochs=5, warmup_lr=1e-6, min_lr=1e-5,
    label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, mixup_prob=1.0,
    mixup_switch_prob=0.5, transform="timm", crop_scale=(0.08, 1.0), crop_ratio=(0.75, 1.3333),
    hflip=True, vflip=True, color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1",
    interpolation="bicubic", mean=(0.5,) * 3, std=(0.5,) * 3, re_prob=0.5, re_mode="pixel",
    re_count=1, drop_path_rate=0.1, precision="fp16", fresh_instances=False)
# train/finetuning.sh:7-25, train/configs/data/colorimagefolder.yaml:19-66, vit.yaml.
ONEP_FINETUNE = dict(
    dataset="cifar100", shots=None, epochs=1000, batch_size=768, optimizer="sgd", lr=0.01,
    lr_base_batch=512, momentum=0.9, weight_decay=1e-4, schedule="timm_epoch", warmup_epochs=10,
    warmup_lr=1e-6, min_lr=1e-5, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
    mixup_prob=1.0, mixup_switch_prob=0.5, transform="timm", crop_scale_min=0.08,
    crop_ratio=(0.75, 1.3333), hflip=True, vflip=False, color_jitter=0.4,
    auto_augment="rand-m9-mstd0.5-inc1", interpolation="bicubic", mean=IMNET[0], std=IMNET[1],
    re_prob=0.25, re_mode="pixel", re_count=1, drop_path_rate=0.1, precision="fp16",
    image_size=224)
# masora1030/CVPR2022-Pretrained-ViT-PyTorch@7a28054: exe_scripts/exe_rcdb_1k.sh:24-58 over
# pretrain.py:149-215 defaults; scripts/finetune.sh:15-48 over finetune.py:133-199.
CVPR22_PRETRAIN = dict(
    model="vit_base_patch16_224", epochs=300, batch_size=256, lr=1e-3, lr_base_batch=None,
    weight_decay=0.05, schedule="timm_step", warmup_epochs=5, warmup_lr=1e-4, min_lr=1e-5,
    label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, mixup_prob=1.0,
    mixup_switch_prob=0.5, transform="timm", crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3),
    hflip=False, vflip=False, color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1",
    interpolation="random", mean=IMNET[0], std=IMNET[1], re_prob=0.25, re_mode="pixel",
    re_count=1, drop_path_rate=0.1, precision="fp32", fresh_instances=False)
CVPR22_FINETUNE = dict(
    dataset="imagefolder", shots=None, epochs=300, batch_size=1024, optimizer="adamw", lr=1e-3,
    lr_base_batch=None, weight_decay=0.05, schedule="timm_step", warmup_epochs=5,
    warmup_lr=1e-4, min_lr=1e-5, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
    re_prob=0.25, re_mode="const", hflip=True, interpolation="random", drop_path_rate=0.1,
    precision="fp32", image_size=224)
# masora1030/CVPR2023-FDSL-on-VisualAtom@de80c69: scripts/pretrain.sh:4-46 over pretrain.py
# defaults; scripts/finetune.sh:5-68, configs/data/colorimagefolder.yaml, configs/model/vit.yaml.
VA_PRETRAIN = dict(
    model="vit_base_patch16_224", epochs=90, batch_size=8192, lr=1e-3, lr_base_batch=None,
    weight_decay=0.05, schedule="timm_step", warmup_steps=5000, warmup_lr=1e-6, min_lr=1e-5,
    mixup_alpha=0.8, cutmix_alpha=1.0, hflip=False, vflip=False, re_prob=0.25, re_mode="pixel",
    interpolation="random", mean=IMNET[0], std=IMNET[1], drop_path_rate=0.1, precision="fp16")
VA_FINETUNE = dict(
    dataset="cifar10", epochs=1000, batch_size=768, optimizer="sgd", lr=0.01, lr_base_batch=512,
    weight_decay=1e-4, schedule="timm_epoch", warmup_epochs=10, warmup_lr=1e-6, min_lr=1e-5,
    re_prob=0.25, re_mode="pixel", interpolation="bicubic", crop_ratio=(0.75, 1.3333),
    drop_path_rate=0.1, precision="fp16")

PINNED = {
    "1p-frac": (ONEP_PRETRAIN, ONEP_FINETUNE),
    "cvpr2022": (CVPR22_PRETRAIN, CVPR22_FINETUNE),
    "visualatom": (VA_PRETRAIN, VA_FINETUNE),
}


def test_registry_lists_every_recipe_and_names_the_unknown():
    assert list_recipes() == ["1p-frac", "cpu", "cvpr2022", "visualatom"]
    with pytest.raises(ValueError, match="recipe 'nope' is unknown: must be one of 1p-frac"):
        get_recipe("nope")


@pytest.mark.parametrize("name", sorted(PINNED))
def test_every_reference_value_is_pinned(name):
    recipe = get_recipe(name)
    pretrain, finetune = recipe.pretrain_config(), recipe.finetune_config()
    expected_pretrain, expected_finetune = PINNED[name]
    assert {key: getattr(pretrain, key) for key in expected_pretrain} == expected_pretrain
    assert {key: getattr(finetune, key) for key in expected_finetune} == expected_finetune
    assert recipe.sources and all("@" in where for where in recipe.sources.values())
    assert recipe.deviations


def test_reference_lr_scaling_follows_the_reference_code():
    onep = get_recipe("1p-frac")
    # 1p-frac train/main.py:188-190: lr, warmup_lr and min_lr x batch / 512.
    assert onep.pretrain_config().effective_lr == pytest.approx(1e-3 * 256 / 512)
    assert onep.pretrain_config().effective_min_lr == pytest.approx(1e-5 * 256 / 512)
    assert onep.finetune_config().effective_lr == pytest.approx(0.01 * 768 / 512)
    # CVPR 2022 pretrain.py:361 passes args.lr to the optimizer unscaled.
    assert get_recipe("cvpr2022").pretrain_config().effective_lr == 1e-3
    assert PretrainConfig.gpu_reference() == onep.pretrain_config()
    assert FinetuneConfig.gpu_reference("cifar10").dataset == "cifar10"


def test_cpu_recipe_is_the_class_defaults():
    assert get_recipe("cpu").pretrain_config() == PretrainConfig()
    assert get_recipe("cpu").finetune_config() == FinetuneConfig()


def test_the_1p_frac_transform_is_timms_own_for_the_reference_arguments():
    # grayimagefolder.yaml:19-44 with pre-train.sh:16-18's overrides, as hydra passes them.
    reference = create_transform(
        input_size=224, is_training=True, no_aug=False, scale=(0.08, 1.0), ratio=(0.75, 1.3333),
        hflip=0.5, vflip=0.5, color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1",
        interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), re_prob=0.5,
        re_mode="pixel", re_count=1)
    built = TimmAugment(timm_transform_kwargs(get_recipe("1p-frac").pretrain_config(), 224), 0)
    assert repr(built.transform) == repr(reference)
    names = [type(step).__name__ for step in built.transform.transforms]
    assert names == ["RandomResizedCropAndInterpolation", "RandomHorizontalFlip",
                     "RandomVerticalFlip", "RandAugment", "MaybeToTensor", "Normalize",
                     "RandomErasing"]


def test_the_1p_frac_finetune_transform_and_mixup_are_the_references():
    config = get_recipe("1p-frac").finetune_config()
    reference = create_transform(
        input_size=224, is_training=True, no_aug=False, scale=(0.08, 1.0), ratio=(0.75, 1.3333),
        hflip=0.5, vflip=0.0, color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1",
        interpolation="bicubic", mean=IMNET[0], std=IMNET[1], re_prob=0.25, re_mode="pixel",
        re_count=1)
    assert repr(create_transform(**timm_transform_kwargs(config, 224))) == repr(reference)
    assert timm_mixup_kwargs(config, 100) == dict(
        mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode="batch",
        label_smoothing=0.1, num_classes=100)


def test_mixup_args_of_the_pretraining_recipes():
    for name in ("1p-frac", "cvpr2022", "visualatom"):
        kwargs = timm_mixup_kwargs(get_recipe(name).pretrain_config(), 1000)
        assert kwargs == dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                              mode="batch", label_smoothing=0.1, num_classes=1000)
        Mixup(**kwargs)


def test_timm_augment_is_a_function_of_the_image_and_epoch():
    config = get_recipe("1p-frac").pretrain_config()
    augment = TimmAugment(timm_transform_kwargs(config, 32), seed=3)
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    labels, instances = np.arange(4), np.zeros(4, dtype=np.int64)
    first = augment(images, labels, instances, np.zeros(4, dtype=np.int64))
    assert first.shape == (4, 3, 32, 32) and first.dtype == torch.float32
    # The same image alone, or in another batch order, gets the same augmentation.
    alone = augment(images[2:3], labels[2:3], instances[2:3], np.zeros(1, dtype=np.int64))
    assert torch.equal(alone[0], first[2])
    reordered = augment(images[::-1].copy(), labels[::-1].copy(), instances,
                        np.zeros(4, dtype=np.int64))
    assert torch.equal(reordered[3], first[0])
    later = augment(images, labels, instances, np.ones(4, dtype=np.int64))
    assert not torch.equal(later, first)


def test_the_fixed_set_repeats_the_same_instance_ids_every_epoch():
    num_classes, per_category = 5, 3
    ids = np.arange(4 * num_classes * per_category)
    epoch, label, instance = rows_for_ids(ids, num_classes, per_category, fresh_instances=False)
    assert PretrainConfig().fresh_instances is False
    for index in range(4):
        in_epoch = epoch == index
        assert sorted(zip(label[in_epoch], instance[in_epoch], strict=True)) == sorted(
            (c, i) for c in range(num_classes) for i in range(per_category))
    _, _, fresh = rows_for_ids(ids, num_classes, per_category, fresh_instances=True)
    assert fresh.max() == 4 * per_category - 1


def test_schedule_units_convert_both_ways():
    # 1p-frac: 1,000 images, batch 256 -> 3 steps per epoch; 80,000 epochs = 240,000 steps.
    assert steps_per_epoch(1000, 256) == 3
    assert iterations_for_epochs(80_000, 1000, 256) == 240_000
    assert epochs_for_iterations(240_000, 1000, 256) == 80_000
    assert epochs_for_iterations(240_001, 1000, 256) == 80_001
    assert steps_per_epoch(1000, 256, num_workers=8) == 3  # 125 per rank // 32
    with pytest.raises(ValueError, match="batch_size=256 is out of range"):
        epochs_for_iterations(10, 100, 256)


@pytest.mark.parametrize("schedule", ["timm_epoch", "timm_step"])
def test_timm_schedules_equal_timms_cosine_scheduler(schedule):
    config = PretrainConfig(epochs=12, warmup_epochs=3, lr=1e-3, warmup_lr=1e-6, min_lr=1e-5,
                            batch_size=256, schedule=schedule)
    per_epoch = 4
    per_step = schedule == "timm_step"
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.effective_lr)
    scheduler = CosineLRScheduler(
        optimizer, t_initial=config.epochs * (per_epoch if per_step else 1),
        lr_min=config.effective_min_lr, warmup_t=config.warmup_epochs * (
            per_epoch if per_step else 1), warmup_lr_init=config.effective_warmup_lr,
        t_in_epochs=not per_step)
    for step in range(config.epochs * per_epoch):
        if per_step:
            scheduler.step_update(step)
        elif step % per_epoch == 0:
            scheduler.step(step // per_epoch)
        assert warmup_cosine_lr(config, step, per_epoch) == pytest.approx(
            optimizer.param_groups[0]["lr"], rel=1e-9)


def test_drop_path_matches_timms_own_rate_rule():
    spec = get_model("cpu_micro")
    ours = set_drop_path(create_vit(spec, 3), 0.1)
    theirs = timm.create_model(spec.name, num_classes=3, drop_path_rate=0.1, **spec.overrides())
    rates = [[getattr(getattr(block, name), "drop_prob", 0.0) for name in ("drop_path1",
                                                                           "drop_path2")]
             for model in (ours, theirs) for block in model.blocks]
    assert np.allclose(rates[:len(ours.blocks)], rates[len(ours.blocks):])


@pytest.mark.parametrize(("changes", "message"), [
    (dict(transform="kornia"), "transform='kornia' is not allowed"),
    (dict(re_mode="zero"), "re_mode='zero' is not allowed"),
    (dict(auto_augment="v0"), "auto_augment='v0' must be None or a timm RandAugment"),
    (dict(mean=(0.5, 0.5)), r"mean=\(0.5, 0.5\) is out of range"),
    (dict(warmup_steps=10), "warmup_steps=10 needs schedule='timm_step'"),
    (dict(precision="fp8"), "precision='fp8' is not allowed"),
])
def test_bad_recipe_fields_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**changes)


def test_a_cpu_pretraining_step_with_the_full_reference_augmentation():
    """Render at 64 px, augment with the 1p-frac transform to 32 px, mix, one AdamW step."""
    config = get_recipe("1p-frac").pretrain_config(model="cpu_small", batch_size=8)
    generator = create_generator("onepfrac", image_size=64, num_categories=4,
                                 images_per_category=2, n_points=2000)
    labels, instances = np.arange(8) % 4, np.arange(8) // 4
    images = generator.render(labels, instances)
    augment = TimmAugment(timm_transform_kwargs(config, 32), config.seed)
    batch = augment(images, labels, instances, np.zeros(8, dtype=np.int64))
    torch.manual_seed(0)
    network = set_drop_path(create_vit(get_model("cpu_small"), 4), config.drop_path_rate)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.effective_lr)
    mixed, targets = Mixup(**timm_mixup_kwargs(config, 4))(batch, torch.as_tensor(labels))
    loss = SoftTargetCrossEntropy()(network(mixed), targets)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and targets.shape == (8, 4)


def test_zero_bit_posterize_gives_black_as_the_references_pillow_did():
    """rand-m9-mstd0.5-inc1 can ask posterize for 0 bits; Pillow >= 10 raises there."""
    import numpy as np
    from PIL import Image, ImageOps
    from timm.data.auto_augment import RandAugment

    from fdsl_ray.train.augment import TimmAugment, _posterize_any_bits

    picture = Image.fromarray((np.arange(4096).reshape(64, 64) % 256).astype(np.uint8))
    assert np.asarray(_posterize_any_bits(picture, 0)).max() == 0
    assert np.array_equal(np.asarray(_posterize_any_bits(picture, 3)),
                          np.asarray(ImageOps.posterize(picture, 3)))
    augment = TimmAugment(dict(input_size=32, is_training=True,
                               auto_augment="rand-m9-mstd0.5-inc1"), seed=0)
    (policy,) = [step for step in augment.transform.transforms
                 if isinstance(step, RandAugment)]
    assert [op.name for op in policy.ops if op.aug_fn is _posterize_any_bits] == [
        "PosterizeIncreasing"]
