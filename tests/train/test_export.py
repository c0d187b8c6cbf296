"""Exported weights load with plain timm, with a new head, and wrong architectures are refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from fdsl_ray.train.export import (
    SHA256_KEY,
    export_pretrained,
    load_pretrained,
    read_exported,
)
from fdsl_ray.train.models import ModelSpec, create_vit, get_model

PRETRAIN_CLASSES = 12


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(3)
    spec = get_model("cpu_micro")
    model = create_vit(spec, PRETRAIN_CLASSES)
    path = export_pretrained(model, spec, PRETRAIN_CLASSES, str(tmp_path / "export"))
    return spec, model, path


def _assert_backbone_equal(loaded: torch.nn.Module, source: torch.nn.Module) -> None:
    source_state = source.state_dict()
    loaded_state = loaded.state_dict()
    backbone = [key for key in source_state if not key.startswith("head.")]
    assert backbone and set(backbone) <= set(loaded_state)
    for key in backbone:
        assert torch.equal(loaded_state[key], source_state[key]), key


def test_plain_timm_loads_export_with_new_head(exported):
    spec, model, path = exported
    assert Path(path).name == "model.safetensors"
    loaded = timm.create_model(
        spec.name,
        pretrained=True,
        pretrained_cfg_overlay=dict(file=path),
        num_classes=5,
        **spec.overrides(),
    )
    _assert_backbone_equal(loaded, model)
    assert loaded.head.weight.shape == (5, spec.resolved_embed_dim)


def test_timm_local_dir_reads_the_exported_config(exported):
    spec, model, path = exported
    loaded = timm.create_model(f"local-dir:{Path(path).parent}", pretrained=True, num_classes=4)
    _assert_backbone_equal(loaded, model)
    assert loaded.head.weight.shape == (4, spec.resolved_embed_dim)
    config = json.loads((Path(path).parent / "config.json").read_text())
    assert config["num_classes"] == PRETRAIN_CLASSES
    assert config["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5]


def test_head_kept_exactly_when_class_count_matches(exported):
    spec, model, path = exported
    same = load_pretrained(path, spec, PRETRAIN_CLASSES)
    assert torch.equal(same.head.weight, model.head.weight)
    other = load_pretrained(path, spec, 3)
    _assert_backbone_equal(other, model)
    assert other.head.weight.shape == (3, spec.resolved_embed_dim)


def test_read_exported_returns_spec_and_class_count(exported):
    spec, _, path = exported
    info = read_exported(str(Path(path).parent))
    assert info.spec == spec
    assert info.num_classes == PRETRAIN_CLASSES
    assert info.weights_path == path


def test_export_unwraps_wrapper_modules(tmp_path):
    spec = get_model("cpu_micro")
    model = create_vit(spec, 2)
    wrapper = torch.nn.Module()
    wrapper.module = model
    path = export_pretrained(wrapper, spec, 2, str(tmp_path))
    _assert_backbone_equal(load_pretrained(path, spec, 2), model)


def test_export_refuses_model_that_does_not_match_spec(tmp_path):
    model = create_vit(get_model("cpu_micro"), 2)
    with pytest.raises(ValueError, match="the model to export does not match architecture"):
        export_pretrained(model, get_model("cpu_small"), 2, str(tmp_path))


def test_other_architecture_gives_clear_error(exported):
    _, _, path = exported
    deeper = ModelSpec("vit_tiny_patch16_224", img_size=16, patch_size=4, depth=3, embed_dim=64,
                       num_heads=2)
    message = r"exported for another architecture: depth=2 \(requested 3\)"
    with pytest.raises(ValueError, match=message):
        load_pretrained(path, deeper, 10)


def test_other_architecture_without_config_is_caught_by_tensor_shapes(exported):
    _, _, path = exported
    Path(path).with_name("config.json").unlink()
    with pytest.raises(ValueError, match=r"does not match architecture.*blocks\.0\.attn\.qkv"):
        load_pretrained(path, get_model("cpu_small"), 10)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"checkpoint {tmp_path} not found"):
        load_pretrained(str(tmp_path), get_model("cpu_micro"), 10)


def test_fine_tuning_resolution_may_differ(exported):
    spec, model, path = exported
    larger = ModelSpec.from_dict({**spec.to_dict(), "img_size": 32})
    loaded = load_pretrained(path, larger, 3)
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert torch.equal(loaded.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight)


def _flip(path: Path, count: int = 4096) -> None:
    """Invert `count` bytes in the middle of a file, keeping its size."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + count] = bytes(byte ^ 0xFF for byte in data[middle:middle + count])
    path.write_bytes(bytes(data))


def test_export_records_the_sha256_of_its_weights(exported):
    _, _, path = exported
    expected = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert read_exported(path).weights_sha256 == expected
    assert json.loads((Path(path).parent / "config.json").read_text())[SHA256_KEY] == expected


def test_flipped_bytes_in_the_weights_refuse_the_load_by_name(exported):
    spec, _, path = exported
    _flip(Path(path))
    with pytest.raises(ValueError, match=rf"checkpoint {path}: model.safetensors is corrupt: "
                                         r"its sha256 differs from the one recorded in "
                                         r"config.json"):
        load_pretrained(path, spec, 5)


def test_nan_weights_are_refused_on_export(tmp_path):
    spec = get_model("cpu_micro")
    model = create_vit(spec, PRETRAIN_CLASSES)
    with torch.no_grad():
        model.blocks[0].attn.qkv.weight[0, 0] = float("nan")
        model.head.bias[1] = float("inf")
    with pytest.raises(ValueError, match=r"non-finite weights \(nan or inf\) in "
                                         r"blocks.0.attn.qkv.weight, head.bias: the training "
                                         r"diverged; nothing was exported"):
        export_pretrained(model, spec, PRETRAIN_CLASSES, str(tmp_path / "export"))
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("recorded", [True, False], ids=["record-updated", "no-config"])
def test_nan_weights_are_refused_on_load(exported, recorded):
    """All weights NaN, with a matching sha256 in the record or with no record at all."""
    spec, _, path = exported
    save_file({key: torch.full_like(value, float("nan"))
               for key, value in load_file(path).items()}, path)
    config_path = Path(path).parent / "config.json"
    if recorded:
        config = json.loads(config_path.read_text())
        config[SHA256_KEY] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        config_path.write_text(json.dumps(config))
    else:
        config_path.unlink()
    with pytest.raises(ValueError, match=rf"checkpoint {path} has non-finite weights \(nan or "
                                         r"inf\) in blocks.0.attn.proj.bias, .* more: refusing"):
        load_pretrained(path, spec, 5)
