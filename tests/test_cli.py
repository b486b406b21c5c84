from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli import build_parser, main


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "core", "--help"], capture_output=True, text=True, check=True
    ).stdout
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert commands, "no command registered"
    for name in commands:
        assert name in out


def test_init_db_creates_the_store(tmp_path: Path) -> None:
    target = tmp_path / "new" / "store.sqlite"
    assert main(["init-db", "--db", str(target)]) == 0
    assert target.is_file()
