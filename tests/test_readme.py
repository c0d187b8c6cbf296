"""README's generator table against the config dataclasses: every key it documents exists,
every documented default is the dataclass's, and every key a generator adds (or whose common
default it changes) is documented, so that the table stays true as generators change."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fdsl_ray.formulas import GeneratorConfig
from fdsl_ray.formulas.registry import generator_settings, list_generators

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_rows() -> dict[str, str]:
    """{generator name: its "own keys (defaults)" cell}, from the table under ### Generators."""
    text = README.read_text()
    header = text.index("| name | what (reference) | its own keys (defaults) |")
    rows = {}
    for line in text[header:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[-1]
    return rows


def _documented(cell: str) -> dict[str, str]:
    """{key: the text after it, up to the next key}: "`delta` 0.1, `sigma` 3.5" ->
    {"delta": "0.1", "sigma": "3.5"}."""
    parts = re.split(r"`(\w+)`", cell)
    return {key: text.strip().rstrip(",").strip() for key, text in zip(parts[1::2], parts[2::2],
                                                                      strict=True)}


def _value(text: str) -> object:
    """A documented default as Python reads it ("100,000", "true", '"shared"', "(0.8, 0.9)"),
    or None when the text is prose (">= 256", "(JSON; pins the base)", "")."""
    if not text.startswith("("):
        text = text.split(" (")[0]
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r'"[^"]*"', text):
        return text.strip('"')
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+|-?\d+", text):
        return int(text.replace(",", ""))
    if re.fullmatch(r"-?\d*\.\d+", text):
        return float(text)
    if re.fullmatch(r"\((?:[\d.]+, )*[\d.]+\)", text):
        return tuple(float(item) for item in text.strip("()").split(", "))
    return None


def _common_defaults() -> dict[str, object]:
    return {field.name: field.default for field in dataclasses.fields(GeneratorConfig)
            if field.default is not dataclasses.MISSING}


def test_the_table_has_one_row_per_generator():
    assert sorted(_table_rows()) == list_generators()


@pytest.mark.parametrize("name", list_generators())
def test_documented_keys_and_defaults_are_the_dataclass_ones(name):
    defaults = dataclasses.asdict(generator_settings(name))
    documented = {key: _value(text) for key, text in _documented(_table_rows()[name]).items()}
    unknown = sorted(set(documented) - set(defaults))
    assert not unknown, f"README documents {unknown} for {name}, which has no such keys"
    for key, value in documented.items():
        if value is not None:
            expected = defaults[key]
            if isinstance(value, float) and isinstance(expected, float):
                assert value == pytest.approx(expected, abs=5e-3), key
            else:
                assert value == (tuple(expected) if isinstance(value, tuple) else expected), key
    common = _common_defaults()
    own = [key for key, default in defaults.items()
           if key not in common or (default != common[key] and key != "name")]
    missing = [key for key in own if key not in documented]
    assert not missing, f"README's {name} row lacks {missing}"
