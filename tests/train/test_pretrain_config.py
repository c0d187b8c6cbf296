"""PretrainConfig validation, the lr schedule, batch augmentation, the training loss and the
epoch metrics over DDP ranks (no Ray needed)."""

from __future__ import annotations

import json

import ddp_ranks
import pytest
import torch
import torch.multiprocessing
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from fdsl_ray.train.augment import random_resized_crop
from fdsl_ray.train.loss import epoch_means, training_loss
from fdsl_ray.train.pretrain import PretrainConfig
from fdsl_ray.train.schedule import warmup_cosine_lr


def test_config_round_trips_through_dict():
    config = PretrainConfig.gpu_reference(epochs=7)
    assert PretrainConfig.from_dict(config.to_dict()) == config
    assert config.crop_scale == (0.08, 1.0) and config.mixup_alpha == 0.8
    assert config.effective_lr == pytest.approx(1e-3 * 256 / 512)
    assert PretrainConfig.cpu_default() == PretrainConfig()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(model="vit_huge"), "model 'vit_huge' is unknown"),
        (dict(epochs=0), "epochs=0 is out of range"),
        (dict(warmup_epochs=5, epochs=5), "warmup_epochs=5 is out of range"),
        (dict(crop_scale=(0.5, 0.2)), "crop_scale=(0.5, 0.2) is out of range"),
        (dict(batch_size=10, num_workers=3), "batch_size=10 is not a multiple of num_workers=3"),
        (dict(batch_size=6, num_workers=2, mixup_alpha=0.8), "needs an even number"),
        (dict(lr=0.0), "lr=0.0 is out of range"),
        (dict(hflip="yes"), "hflip='yes' must be true or false"),
        (dict(worker_resource="CPU"), "worker_resource='CPU' must be None or the name of a "
                                      "custom resource"),
        (dict(data_actor_resource=""), "data_actor_resource='' must be None or the name"),
    ],
)
def test_bad_configs_name_the_field(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PretrainConfig(**changes)


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match=r"unknown pretrain key\(s\) colour_jitter"):
        PretrainConfig.from_dict({"colour_jitter": 0.4})


def test_training_loss_is_the_references_smoothed_and_soft_target_losses():
    logits = torch.randn(8, 5, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    smoothed = training_loss(logits, labels, None, 0.1)
    torch.testing.assert_close(smoothed, LabelSmoothingCrossEntropy(0.1)(logits, labels))
    by_hand = torch.nn.functional.one_hot(labels, 5).float() * 0.9 + 0.1 / 5
    torch.testing.assert_close(smoothed, SoftTargetCrossEntropy()(logits, by_hand))
    assert training_loss(logits.bfloat16(), labels, None, 0.1).dtype == torch.float32
    soft = torch.softmax(torch.randn(8, 5, generator=torch.Generator().manual_seed(1)), dim=1)
    assert torch.equal(training_loss(logits, labels, soft, 0.1),
                       SoftTargetCrossEntropy()(logits, soft))


@pytest.mark.slow  # two spawned processes import torch: ~45 s on 2 loaded cores
def test_epoch_metrics_are_the_mean_over_two_ddp_workers(tmp_path):
    assert epoch_means(torch.tensor(3.0), torch.tensor(10), steps=2, batch_size=8) == (1.5, 62.5)
    sums, hits = [3.0, 5.0], [10, 4]
    torch.multiprocessing.spawn(ddp_ranks.rank_means, args=(str(tmp_path), sums, hits), nprocs=2)
    expected = [(3.0 + 5.0) / 4, 100.0 * (10 + 4) / 32]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == expected


def test_schedule_warms_up_linearly_then_decays_to_zero():
    config = PretrainConfig(epochs=10, warmup_epochs=2, batch_size=512, lr=1e-3)
    steps = 5
    rates = [warmup_cosine_lr(config, step, steps) for step in range(config.epochs * steps)]
    peak = config.effective_lr
    assert rates[:10] == pytest.approx([peak * (i + 1) / 10 for i in range(10)])
    assert rates[10] == pytest.approx(peak)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] < 0.01 * peak


def test_crop_shapes_determinism_and_flips():
    batch = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    first = random_resized_crop(batch, 16, (0.3, 1.0), hflip=True, vflip=True,
                                generator=torch.Generator().manual_seed(1))
    again = random_resized_crop(batch, 16, (0.3, 1.0), hflip=True, vflip=True,
                                generator=torch.Generator().manual_seed(1))
    assert first.shape == (2, 3, 16, 16) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert first.min() >= -1 and first.max() <= 1
    rows = torch.linspace(-1, 1, 8).view(1, 1, 8, 1).expand(1, 3, 8, 8)
    upside_down = [
        bool((crop[0, 0, 0, 0] > crop[0, 0, -1, 0]).item())
        for crop in (
            random_resized_crop(rows, 8, (1.0, 1.0), hflip=False, vflip=vflip,
                                generator=torch.Generator().manual_seed(seed))
            for seed in range(12) for vflip in (False, True)
        )
    ]
    assert not any(upside_down[0::2])  # vflip=False never flips
    assert 0 < sum(upside_down[1::2]) < 12  # vflip=True flips about half


def test_a_crop_of_the_whole_area_is_the_image_itself_flipped():
    """crop_scale (1, 1), the CPU recipe's "no crops": flips only, no stretch and no blur."""
    batch = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = random_resized_crop(batch, 32, (1.0, 1.0), hflip=True, vflip=True,
                              generator=torch.Generator().manual_seed(3))
    for i in range(64):
        flipped = [torch.allclose(out[i], view, atol=1e-5)
                   for view in (batch[i], batch[i].flip(-1), batch[i].flip(-2),
                                batch[i].flip(-1, -2))]
        assert sum(flipped) == 1, f"image {i} is not one of its four flips"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pretrain", "nope"], "generator='nope' is unknown"),
        (["pretrain", "rcdb", "--model", "vit_huge"], "model 'vit_huge' is unknown"),
        (["pretrain", "rcdb", "--colour", "red"], "config key(s) colour"),
        (["pretrain", "rcdb", "--epochs", "0"], "epochs=0 is out of range"),
    ],
)
def test_cli_rejects_bad_input_before_starting_ray(argv, message, capsys):
    from fdsl_ray.cli import main

    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("fdsl pretrain: error: ") and message in error
