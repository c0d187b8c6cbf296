"""Config checks whose messages name the field, the value and what is allowed.

Every layer (formulas, data, train, study, cli) checks its configs here; the module imports
nothing but the standard library, so fdsl_ray.formulas stays free of Ray and torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from typing import TypeVar

# The largest seed any config takes. numpy's legacy seeding (np.random.seed, RandomState) and
# so Optuna's samplers, which seed a RandomState, accept [0, 2**32 - 1]; torch.manual_seed and
# Python's random accept more, numpy's default_rng any size. One range that all of them take.
SEED_MAX = 2**32 - 1

Config = TypeVar("Config")


def check_int(field: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}={value!r} must be an integer")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{field}={value} is out of range: must be {allowed}")


def check_float(
    field: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    allowed = "a number" if low == -math.inf and high == math.inf else f"a number in {interval}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field}={value!r} is not a number: must be {allowed}")
    if math.isnan(value):
        raise ValueError(f"{field}=nan is not allowed: must be {allowed}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ValueError(f"{field}={value} is out of range: must be in {interval}")


def check_choice(field: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        listed = ", ".join(str(a) for a in allowed)
        raise ValueError(f"{field}={value!r} is not allowed: must be one of {listed}")


def check_bool(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{field}={value!r} must be true or false")


def check_seed(field: str, value: object) -> None:
    check_int(field, value, 0, SEED_MAX)


def check_keys(what: str, data: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Refuse keys that are not in `allowed`, with the one message every config gives."""
    allowed = list(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} key(s) {', '.join(unknown)}: allowed keys are "
                         f"{', '.join(allowed)}")


def config_from_dict(cls: type[Config], data: object, what: str) -> Config:
    """`cls(**data)` for a config dataclass, strictly: unknown or missing keys are a ValueError
    (not cls's TypeError), and a JSON list where a field's default is a tuple becomes a tuple,
    so that `config_from_dict(cls, json.loads(json.dumps(config.to_dict())), ...)` == config."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} config {data!r} must be a mapping of its fields")
    check_keys(what, data, [item.name for item in fields(cls)])
    required = [item.name for item in fields(cls)
                if item.default is MISSING and item.default_factory is MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(f"{what} config lacks key(s) {', '.join(missing)}: required keys are "
                         f"{', '.join(required)}")
    values = dict(data)
    for item in fields(cls):
        if isinstance(item.default, tuple) and isinstance(values.get(item.name), list):
            values[item.name] = tuple(values[item.name])
    return cls(**values)
