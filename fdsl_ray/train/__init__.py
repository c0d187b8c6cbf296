"""Ray Train + timm: ViT pre-training on synthetic streams, export, downstream evaluation."""

from fdsl_ray.train.export import export_pretrained, load_pretrained, read_exported
from fdsl_ray.train.finetune import FinetuneConfig, FinetuneResult, finetune
from fdsl_ray.train.models import ModelSpec, create_vit, list_models, list_presets
from fdsl_ray.train.pretrain import PretrainConfig, PretrainResult, pretrain

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "ModelSpec",
    "PretrainConfig",
    "PretrainResult",
    "create_vit",
    "export_pretrained",
    "finetune",
    "list_models",
    "list_presets",
    "load_pretrained",
    "pretrain",
    "read_exported",
]
