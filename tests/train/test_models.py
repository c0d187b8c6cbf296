"""ModelSpec validation, timm model construction and the uint8 -> model input conversion."""

from __future__ import annotations

import json

import pytest
import torch

from fdsl_ray.train.models import (
    ARCHITECTURES,
    ModelSpec,
    create_vit,
    get_model,
    list_models,
    register_model,
)
from fdsl_ray.train.preprocess import to_model_input


def test_cpu_small_builds_the_requested_architecture():
    spec = get_model("cpu_small")
    model = create_vit(spec, num_classes=7)
    assert model.patch_embed.proj.in_channels == 3
    assert model.patch_embed.proj.kernel_size == (4, 4)
    assert len(model.blocks) == 4
    assert model.embed_dim == 192
    assert model.blocks[0].attn.num_heads == 3
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 7)


def test_default_name_without_overrides_is_timm_vit_tiny():
    spec = ModelSpec()
    assert spec.overrides() == {}
    assert spec.resolved_img_size == 224
    assert spec.resolved_embed_dim == 192


def test_spec_round_trips_through_json():
    spec = get_model("cpu_micro")
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_unknown_architecture_lists_the_timm_names():
    with pytest.raises(ValueError) as excinfo:
        ModelSpec("resnet50")
    message = str(excinfo.value)
    assert "resnet50" in message
    for name in ARCHITECTURES:
        assert name in message


def test_the_registry_holds_the_presets_and_the_timm_names():
    assert list_models() == ["cpu_small", "cpu_fast", "cpu_micro", *ARCHITECTURES]
    assert get_model("vit_small_patch16_224") == ModelSpec("vit_small_patch16_224")
    assert get_model("cpu_fast").overrides()["patch_size"] == 8
    with pytest.raises(ValueError, match="model 'cpu_large' is unknown: must be one of "
                                         "cpu_small, cpu_fast, cpu_micro, vit_tiny"):
        get_model("cpu_large")
    with pytest.raises(ValueError, match="model 'cpu_small' is registered twice"):
        register_model("cpu_small", ModelSpec())


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_sizes_an_override_leaves_are_timms_own(name):
    spec = ModelSpec(name, depth=2)
    network = create_vit(ModelSpec(name), num_classes=3)
    assert spec.resolved_depth == 2
    assert spec.resolved_img_size == network.patch_embed.img_size[0]
    assert spec.resolved_patch_size == network.patch_embed.patch_size[0]
    assert spec.resolved_embed_dim == network.embed_dim
    assert spec.resolved_num_heads == network.blocks[0].attn.num_heads


def test_unknown_keys_in_dict_are_named():
    with pytest.raises(ValueError, match=r"unknown model key\(s\) width.*allowed keys are name"):
        ModelSpec.from_dict({"name": "vit_tiny_patch16_224", "width": 3})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"img_size": 30, "patch_size": 4}, "img_size=30 is not a multiple of patch_size=4"),
        ({"embed_dim": 100, "num_heads": 3}, "embed_dim=100 is not a multiple of num_heads=3"),
        ({"depth": 0}, r"depth=0 is out of range: must be >= 1"),
        ({"img_size": 2048}, r"img_size=2048 is out of range"),
        ({"patch_size": 4.0}, r"patch_size=4.0 must be an integer"),
    ],
)
def test_invalid_overrides_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec("vit_tiny_patch16_224", **overrides)


def test_create_vit_rejects_bad_class_count():
    with pytest.raises(ValueError, match="num_classes=0 is out of range"):
        create_vit(get_model("cpu_micro"), num_classes=0)


def test_grayscale_batch_becomes_three_equal_normalised_channels():
    images = torch.tensor([[[0, 255], [128, 51]]], dtype=torch.uint8)
    batch = to_model_input(images)
    assert batch.dtype == torch.float32
    assert batch.shape == (1, 3, 2, 2)
    assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 0], batch[:, 2])
    expected = torch.tensor([[-1.0, 1.0], [128 / 127.5 - 1, 51 / 127.5 - 1]])
    assert torch.allclose(batch[0, 0], expected, atol=1e-6)


def test_channels_last_and_channels_first_agree():
    generator = torch.Generator().manual_seed(0)
    hwc = torch.randint(0, 256, (2, 5, 5, 3), dtype=torch.uint8, generator=generator)
    chw = hwc.permute(0, 3, 1, 2).contiguous()
    assert torch.equal(to_model_input(hwc), to_model_input(chw))
    assert torch.allclose(to_model_input(hwc)[:, 1], hwc[..., 1].float() / 127.5 - 1, atol=1e-6)


def test_resize_to_model_size():
    images = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    batch = to_model_input(images, image_size=32)
    assert batch.shape == (3, 3, 32, 32)
    assert torch.allclose(batch, torch.ones_like(batch))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(2, 4, 4), "dtype=torch.float32 is not supported"),
        (torch.zeros(2, 4, 4, 2, dtype=torch.uint8), r"shape=\(2, 4, 4, 2\) is not supported"),
        (torch.zeros(4, 4, dtype=torch.uint8), r"shape=\(4, 4\) is not supported"),
    ],
)
def test_bad_batches_are_rejected(images, message):
    with pytest.raises(ValueError, match=message):
        to_model_input(images)
