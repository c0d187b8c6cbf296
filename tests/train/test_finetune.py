"""Fine-tuning and linear probing end to end on digits with a micro ViT, plus `fdsl finetune`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fdsl_ray.cli import main
from fdsl_ray.train.export import export_pretrained
from fdsl_ray.train.finetune import FinetuneConfig, finetune
from fdsl_ray.train.models import create_vit, get_model

MICRO = get_model("cpu_micro")


def _quick(**changes) -> FinetuneConfig:
    settings = dict(dataset="digits", shots=5, epochs=3, warmup_epochs=1, batch_size=16)
    return FinetuneConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(11)
    out = tmp_path_factory.mktemp("pretrained")
    return export_pretrained(create_vit(MICRO, 7), MICRO, 7, str(out))


def test_scratch_full_finetune_is_deterministic_for_a_seed():
    first = finetune(_quick(seed=3), weights=None, model=MICRO)
    again = finetune(_quick(seed=3), weights=None, model=MICRO.to_dict())
    other = finetune(_quick(seed=4), weights=None, model=MICRO)
    assert [r["loss"] for r in first.history] == [r["loss"] for r in again.history]
    assert first.top1 == again.top1
    assert [r["loss"] for r in first.history] != [r["loss"] for r in other.history]
    assert len(first.history) == 3
    assert set(first.history[0]) == {"epoch", "loss", "train_top1", "lr", "epoch_seconds"}
    assert 0.0 <= first.top1 <= 100.0
    assert first.num_train == 50
    assert first.compute_seconds > 0


def test_finetune_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    finetune(_quick(epochs=2), weights=None, model=MICRO)
    assert torch.equal(torch.rand(3), expected)


def test_pretrained_full_finetune_reads_architecture_from_checkpoint(checkpoint):
    result = finetune(_quick(), weights=checkpoint)
    assert len(result.history) == 3
    again = finetune(_quick(), weights=checkpoint, model=MICRO)
    assert result.top1 == again.top1


def test_pretrained_and_scratch_differ(checkpoint):
    scratch = finetune(_quick(), weights=None, model=MICRO)
    pretrained = finetune(_quick(), weights=checkpoint)
    assert scratch.history[0]["loss"] != pretrained.history[0]["loss"]


def test_linear_probe_is_deterministic_and_learns(checkpoint):
    config = _quick(mode="linear", epochs=30, warmup_epochs=2, shots=10, lr=0.5)
    first = finetune(config, weights=checkpoint)
    again = finetune(config, weights=checkpoint)
    assert first.top1 == again.top1
    assert [r["loss"] for r in first.history] == [r["loss"] for r in again.history]
    assert first.history[-1]["loss"] < first.history[0]["loss"]
    assert first.top1 > 20.0  # random features of 10 classes; chance is 10 %


def test_on_epoch_receives_each_record():
    seen = []
    result = finetune(_quick(epochs=2), weights=None, model=MICRO, on_epoch=seen.append)
    assert seen == result.history


def test_other_architecture_checkpoint_is_refused(checkpoint):
    with pytest.raises(ValueError, match="exported for another architecture"):
        finetune(_quick(), weights=checkpoint, model=get_model("cpu_small"))


def test_scratch_needs_a_model():
    with pytest.raises(ValueError, match="scratch fine-tuning .* needs the model architecture"):
        finetune(_quick(), weights=None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": "mnist"}, "dataset='mnist' is not allowed: must be one of cifar10"),
        ({"mode": "probe"}, "mode='probe' is not allowed: must be one of full, linear"),
        ({"epochs": 0}, r"epochs=0 is out of range: must be in \[1, 100000\]"),
        ({"shots": 0}, "shots=0 is out of range: must be >= 1"),
        ({"optimizer": "lamb"}, "optimizer='lamb' is not allowed"),
        ({"lr": 0.0}, r"lr=0.0 is out of range: must be in \(0, 100\]"),
        ({"label_smoothing": 1.0}, r"label_smoothing=1.0 is out of range: must be in \[0, 1\)"),
        ({"epochs": 10, "warmup_epochs": 10},
         r"warmup_epochs=10 is out of range: must be in \[0, epochs=10\)"),
        ({"crop_scale_min": 0.0}, r"crop_scale_min=0.0 is out of range"),
        ({"batch_size": 2.0}, "batch_size=2.0 must be an integer"),
    ],
)
def test_config_errors_name_field_and_range(changes, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**changes)


def test_config_round_trip_and_unknown_keys():
    config = FinetuneConfig(shots=None, mode="linear", hflip=True)
    assert FinetuneConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown finetune key\(s\) lr_scale: allowed keys are"):
        FinetuneConfig.from_dict({"lr_scale": 2})


def test_no_horizontal_flip_on_digits_by_default():
    assert not FinetuneConfig(dataset="digits").uses_hflip
    assert FinetuneConfig(dataset="cifar10").uses_hflip
    assert FinetuneConfig(dataset="digits", hflip=True).uses_hflip


def test_gpu_reference_recipe():
    reference = FinetuneConfig.gpu_reference()
    assert (reference.optimizer, reference.lr, reference.weight_decay) == ("sgd", 0.01, 1e-4)
    # 1p-frac train/finetuning.sh: 96 per GPU x 8 GPUs, lr x 768 / 512 (train/main.py:188).
    assert reference.batch_size == 768 and reference.effective_lr == pytest.approx(0.015)
    assert reference.warmup_epochs == 10 and reference.image_size == 224


def test_cli_scratch_prints_progress_and_summary(tmp_path, capsys):
    out = tmp_path / "result.json"
    status = main(["finetune", "--scratch", "--model", "cpu_micro", "--dataset", "digits",
                   "--shots", "3", "--epochs", "2", "--warmup-epochs", "1", "--seed", "1",
                   "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "epoch    1/2  loss" in printed and "epoch    2/2" in printed
    assert "held-out top-1" in printed
    record = json.loads(out.read_text())
    assert record["config"]["shots"] == 3 and len(record["history"]) == 2
    assert f"held-out top-1 {record['top1']:.2f} %" in printed


def test_cli_checkpoint_linear(checkpoint, capsys):
    status = main(["finetune", "--checkpoint", checkpoint, "--mode", "linear", "--shots", "2",
                   "--epochs", "2", "--warmup-epochs", "0"])
    assert status == 0
    assert "held-out top-1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scratch", "--dataset", "mnist"], "dataset='mnist' is not allowed"),
        (["--scratch", "--model", "vit_huge"], "model 'vit_huge' is unknown: must be one"),
        (["--checkpoint", "{checkpoint}", "--model", "cpu_small"],
         "exported for another architecture"),
        (["--scratch", "--dataset", "cifar10", "--data-root", "{tmp}"],
         "cifar10 not found: looked for {tmp}/cifar-10-batches-py. Pass download=True"),
    ],
)
def test_cli_errors_are_one_line(argv, message, checkpoint, tmp_path, capsys):
    argv = [arg.format(checkpoint=checkpoint, tmp=tmp_path) for arg in argv]
    assert main(["finetune", *argv, "--epochs", "2", "--warmup-epochs", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fdsl finetune: error: ")
    assert message.format(tmp=tmp_path) in error
    assert "Traceback" not in error


@pytest.fixture
def own_checkpoint(tmp_path):
    torch.manual_seed(12)
    return Path(export_pretrained(create_vit(MICRO, 7), MICRO, 7, str(tmp_path / "export")))


def test_cli_refuses_weights_with_flipped_bytes_by_name(own_checkpoint, capsys):
    data = bytearray(own_checkpoint.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(byte ^ 0xFF for byte in data[middle:middle + 4096])
    own_checkpoint.write_bytes(bytes(data))
    assert main(["finetune", "--checkpoint", str(own_checkpoint.parent), "--epochs", "2",
                 "--warmup-epochs", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"fdsl finetune: error: checkpoint {own_checkpoint.parent}: "
                     "model.safetensors is corrupt: its sha256 differs from the one recorded in "
                     "config.json at export")


def test_a_non_finite_loss_fails_naming_the_epoch(own_checkpoint):
    """Finite weights so large that the forward pass overflows: no top-1 comes back."""
    state = {key: torch.full_like(value, 3e38) for key, value in load_file(own_checkpoint).items()}
    save_file(state, own_checkpoint)
    (own_checkpoint.parent / "config.json").unlink()
    with pytest.raises(ValueError, match=r"fine-tuning loss is nan at epoch 1: the run diverged "
                                         r"\(effective lr .*\); no score is reported"):
        finetune(_quick(epochs=2, warmup_epochs=0), weights=str(own_checkpoint), model=MICRO)


def test_the_mixup_and_cutmix_branch_trains_and_repeats_for_a_seed():
    config = _quick(seed=5, epochs=1, warmup_epochs=0, mixup_alpha=0.8, cutmix_alpha=1.0)
    assert config.uses_mixup
    first = finetune(config, weights=None, model=MICRO)
    again = finetune(config, weights=None, model=MICRO)
    plain = finetune(_quick(seed=5, epochs=1, warmup_epochs=0), weights=None, model=MICRO)
    assert math.isfinite(first.history[0]["loss"])
    assert first.history[0]["loss"] == again.history[0]["loss"] != plain.history[0]["loss"]
