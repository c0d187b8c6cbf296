"""`--key value` pairs after a generator name, turned into a config dict."""

from __future__ import annotations

import json

_SPECIAL_FLOATS = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def parse_value(text: str) -> object:
    """JSON where it parses (numbers, booleans, lists), the plain string otherwise. `nan` and
    `inf` are numbers in any case, so that a config check says what is wrong with them."""
    if text.strip().lower() in _SPECIAL_FLOATS:
        return float(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(tokens: list[str]) -> dict[str, object]:
    """['--num-categories', '10', '--delta=0.1'] -> {'num_categories': 10, 'delta': 0.1}."""
    config: dict[str, object] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--") or token == "--":
            raise ValueError(f"expected --key value, got {token!r}")
        key, sep, value = token[2:].partition("=")
        if not sep:
            if index + 1 >= len(tokens) or tokens[index + 1].startswith("--"):
                raise ValueError(f"option --{key} needs a value")
            value = tokens[index + 1]
            index += 1
        config[key.replace("-", "_")] = parse_value(value)
        index += 1
    return config
