"""The command line declares every command lightly and runs it from its group's module."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from cli import build_parser


def test_every_command_names_a_runner_in_its_group() -> None:
    action = next(a for a in build_parser()._actions if a.dest == "command")
    commands: dict[str, argparse.ArgumentParser] = dict(action.choices)  # type: ignore[arg-type]
    assert commands, "no command registered"
    for name, sub in commands.items():
        group, runner = sub.get_default("group"), sub.get_default("runner")
        assert group and runner, f"{name} names no runner"
        assert callable(getattr(importlib.import_module(group), f"run_{runner}")), name


def test_the_parser_loads_no_imaging_or_network_library() -> None:
    code = (
        "import sys; from cli import build_parser; build_parser(); "
        "print(sorted({'torch', 'monai', 'numpy', 'pydicom', 'PIL'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
