"""fdsl_ray.validation across every config: one message for unknown keys, one seed range, and a
JSON string where a number or a flag belongs refused as a ValueError that names the field."""

from __future__ import annotations

import json
import typing

import numpy as np
import optuna
import pytest
import torch

from fdsl_ray.data.store import StoreOptions
from fdsl_ray.formulas.registry import generator_class, generator_settings, list_generators
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.train.finetune import FinetuneConfig
from fdsl_ray.train.models import ModelSpec
from fdsl_ray.train.pretrain import PretrainConfig
from fdsl_ray.validation import SEED_MAX

STUDY = {"name": "s", "generator": {"name": "onepfrac", "num_categories": 4, "image_size": 16,
                                    "n_points": 200},
         "space": {"delta": {"type": "float", "low": 0.01, "high": 0.4}}}
# name -> builds the config from keyword changes, the way a dict from JSON reaches it.
BUILDERS = {
    "pretrain": PretrainConfig.from_dict,
    "finetune": FinetuneConfig.from_dict,
    "model": ModelSpec.from_dict,
    "study": lambda changes: StudySpec.from_dict({**STUDY, **changes}),
    **{f"{name} config": (lambda changes, name=name: generator_settings(name, **changes))
       for name in list_generators()},
}
CLASSES = {"pretrain": PretrainConfig, "finetune": FinetuneConfig, "model": ModelSpec,
           "study": StudySpec,
           **{f"{name} config": generator_class(name).config_class for name in list_generators()}}
# A JSON value of the wrong kind for each kind of field.
WRONG = {float: "0.5", int: "1", bool: "true"}


def _typed_fields(cls: type) -> list[tuple[str, object]]:
    """(field, a wrong JSON value) for the number and flag fields of a config class."""
    out = []
    for name, hint in typing.get_type_hints(cls).items():
        kinds = set(typing.get_args(hint)) - {type(None)} or {hint}
        if len(kinds) == 1 and (kind := kinds.pop()) in WRONG:
            out.append((name, WRONG[kind]))
    return out


@pytest.mark.parametrize("what", sorted(BUILDERS))
def test_unknown_keys_get_one_message_everywhere(what):
    with pytest.raises(ValueError, match=rf"^unknown {what} key\(s\) colour: allowed keys are "):
        BUILDERS[what]({"colour": 1})


@pytest.mark.parametrize(("what", "field", "value"), [
    (what, field, value) for what in sorted(BUILDERS) for field, value in
    _typed_fields(CLASSES[what])])
def test_a_json_string_for_a_number_or_flag_is_a_value_error_naming_the_field(what, field,
                                                                                value):
    with pytest.raises(ValueError, match=rf"\b{field}='{value}'"):
        BUILDERS[what]({field: value})


@pytest.mark.parametrize(("field", "value"), _typed_fields(StoreOptions))
def test_store_options_refuse_a_json_string_for_a_number(field, value):
    with pytest.raises(ValueError, match=rf"\b{field}='{value}'"):
        StoreOptions(**{field: value})


def test_finetune_lr_from_json_is_a_value_error():
    with pytest.raises(ValueError, match=r"^lr='0.01' is not a number"):
        FinetuneConfig.from_dict(json.loads('{"lr": "0.01"}'))


def test_missing_required_keys_are_named():
    with pytest.raises(ValueError, match=r"^study config lacks key\(s\) generator, space: "
                                         r"required keys are name, generator, space"):
        StudySpec.from_dict({"name": "s"})


@pytest.mark.parametrize("what", sorted(what for what in BUILDERS if what != "model"))
def test_one_seed_range_everywhere(what):
    assert BUILDERS[what]({"seed": SEED_MAX}).seed == SEED_MAX
    with pytest.raises(ValueError, match=rf"seed={SEED_MAX + 1} is out of range: must be in "
                                         rf"\[0, {SEED_MAX}\]"):
        BUILDERS[what]({"seed": SEED_MAX + 1})


def test_replicate_seeds_share_the_range():
    spec = StudySpec.from_dict({**STUDY, "seeds": {"finetune": [SEED_MAX],
                                                   "pretrain": [SEED_MAX]}})
    assert spec.seeds == {"finetune": [SEED_MAX], "pretrain": [SEED_MAX]}
    with pytest.raises(ValueError, match=r"seeds.pretrain entry=4294967296 is out of range"):
        StudySpec.from_dict({**STUDY, "seeds": {"pretrain": [SEED_MAX + 1]}})


def test_the_seed_range_is_what_numpy_torch_and_optuna_all_take():
    np.random.seed(SEED_MAX)
    np.random.RandomState(SEED_MAX)
    torch.manual_seed(SEED_MAX)
    optuna.samplers.TPESampler(seed=SEED_MAX).reseed_rng()
    with pytest.raises(ValueError):
        np.random.seed(SEED_MAX + 1)
