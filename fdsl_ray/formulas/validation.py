"""Config checks whose messages name the field, the value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable


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
