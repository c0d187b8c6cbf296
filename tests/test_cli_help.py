"""`fdsl --help` lists every subcommand without importing torch, Ray, timm or numba (which
take seconds); a subcommand's own --help builds its options in full."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import fdsl_ray.cli
from fdsl_ray.cli import build_parser, main

_SHOW = """
import contextlib, io, sys
from fdsl_ray.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main({argv!r})
    except SystemExit:
        pass
heavy = sorted(name for name in ("torch", "ray", "timm", "numba", "pandas", "pyarrow")
               if name in sys.modules)
print(" ".join(heavy) or "-")
print(out.getvalue())
"""


def _help(argv: list[str]) -> tuple[str, str]:
    shown = subprocess.run([sys.executable, "-c", _SHOW.format(argv=argv)], check=True,
                           capture_output=True, text=True).stdout
    heavy, _, text = shown.partition("\n")
    return heavy, text


def test_top_level_help_imports_nothing_heavy_and_lists_every_subcommand():
    heavy, text = _help(["--help"])
    assert heavy == "-"
    names = [module.name for module in pkgutil.iter_modules(fdsl_ray.cli.__path__)
             if not module.name.startswith("_")]
    assert "pretrain" in names
    shown = " ".join(text.split())  # argparse wraps long lines
    for name in names:
        assert f"{name} {importlib.import_module(f'fdsl_ray.cli.{name}').HELP}" in shown


def test_a_subcommand_takes_its_choices_from_the_config_constants():
    from fdsl_ray.data.store import COMPRESSIONS
    from fdsl_ray.train.finetune import DEVICES, MODES, OPTIMIZERS

    for command, expected in (("finetune", {"mode": MODES, "optimizer": OPTIMIZERS,
                                            "device": DEVICES}),
                              ("generate", {"compression": COMPRESSIONS})):
        subparser = build_parser(only=command)._subparsers._group_actions[0].choices[command]
        choices = {action.dest: action.choices for action in subparser._actions
                   if action.dest in expected}
        assert choices == expected


def test_export_has_no_format_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "store", "--format", "imagefolder", "--out", "png"])
    assert exit_info.value.code == 2
    assert "unrecognised arguments: --format imagefolder" in capsys.readouterr().err
