"""Search-space entries: what a study may search, how it is sampled, and where a value goes.

A space maps a parameter name to a JSON-friendly distribution, for instance
`{"delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True}}`,
`{"n_maps": {"type": "int", "low": 2, "high": 8}}` or
`{"generator": {"type": "categorical", "choices": ["onepfrac", "fractaldb"]}}`.
A name is "generator" (which generator), a generator config key, or a pre-training key
(the budget: epochs, lr, ...); generator keys win when a name is both.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import optuna

from fdsl_ray.formulas import generator_class

GENERATOR_PARAM = "generator"
DISTRIBUTION_TYPES = ("float", "int", "categorical")
_FLOAT_KEYS = {"type", "low", "high", "log", "step"}
_CATEGORICAL_KEYS = {"type", "choices"}


def generator_keys(names: list[str]) -> set[str]:
    """Config keys of the named generators, "name" excluded (it is the "generator" param)."""
    keys: set[str] = set()
    for name in names:
        keys |= {field.name for field in dataclasses.fields(generator_class(name).config_class)}
    return keys - {"name"}


def check_distribution(param: str, spec: Any) -> None:
    """Refuse a malformed distribution or an empty / impossible range, naming the parameter."""
    if not isinstance(spec, dict):
        raise ValueError(f"space.{param}={spec!r} must be a dict with a 'type' key")
    kind = spec.get("type")
    if kind not in DISTRIBUTION_TYPES:
        raise ValueError(f"space.{param}.type={kind!r} is not allowed: must be one of "
                         f"{', '.join(DISTRIBUTION_TYPES)}")
    allowed = _CATEGORICAL_KEYS if kind == "categorical" else _FLOAT_KEYS
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"space.{param}: unknown key(s) {', '.join(unknown)} for type "
                         f"{kind!r}: allowed keys are {', '.join(sorted(allowed))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ValueError(f"space.{param}.choices={choices!r} must be a non-empty list")
        if len({repr(choice) for choice in choices}) != len(choices):
            raise ValueError(f"space.{param}.choices={list(choices)!r} has duplicates")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ValueError(f"space.{param}.choices: {choice!r} must be a number, string, "
                                 "bool or null")
        return
    low, high = spec.get("low"), spec.get("high")
    for key, value in (("low", low), ("high", high)):
        number = int if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"space.{param}.{key}={value!r} must be a finite "
                             f"{'integer' if kind == 'int' else 'number'}")
    if low >= high:
        raise ValueError(f"space.{param}: low={low} >= high={high}: the range is empty "
                         "(use a categorical with one choice to fix a value)")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"space.{param}.log={log!r} must be true or false")
    if log and low <= 0:
        raise ValueError(f"space.{param}: log=true needs low > 0, got low={low}")
    step = spec.get("step")
    if step is not None:
        if log:
            raise ValueError(f"space.{param}: step and log=true cannot be combined")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise ValueError(f"space.{param}.step={step!r} must be a positive number")
        if kind == "int" and not isinstance(step, int):
            raise ValueError(f"space.{param}.step={step!r} must be an integer for type 'int'")


def bounds(spec: dict) -> list[Any]:
    """The values that probe a range's extremes (all choices for a categorical)."""
    if spec["type"] == "categorical":
        return list(spec["choices"])
    return [spec["low"], spec["high"]]


def contains(spec: dict, value: Any) -> bool:
    if spec["type"] == "categorical":
        return value in spec["choices"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if spec["type"] == "int" and not float(value).is_integer():
        return False
    return spec["low"] <= value <= spec["high"]


def to_optuna(spec: dict) -> optuna.distributions.BaseDistribution:
    if spec["type"] == "categorical":
        return optuna.distributions.CategoricalDistribution(list(spec["choices"]))
    if spec["type"] == "int":
        return optuna.distributions.IntDistribution(
            spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step") or 1)
    return optuna.distributions.FloatDistribution(
        spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step"))


def grid(space: dict[str, dict]) -> dict[str, list[Any]]:
    """The grid of an all-categorical space, as Optuna's GridSampler wants it."""
    not_categorical = sorted(name for name, spec in space.items()
                             if spec["type"] != "categorical")
    if not_categorical:
        raise ValueError(f"sampler='grid' needs categorical parameters only: "
                         f"{', '.join(not_categorical)} are ranges (list their values as choices)")
    return {name: list(spec["choices"]) for name, spec in space.items()}


def grid_size(space: dict[str, dict]) -> int:
    return math.prod(len(values) for values in grid(space).values())
