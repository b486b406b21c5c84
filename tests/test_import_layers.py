from __future__ import annotations

from pathlib import Path

import pytest

from tests.import_rules import (
    Import,
    all_imports,
    import_cycles,
    layer_violations,
    lazy_violations,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    found = all_imports(ROOT)
    assert len({imp.module for imp in found}) > 50, "the product's modules were not found"
    return found


def test_layers_point_one_way(imports: list[Import]) -> None:
    assert layer_violations(imports) == []


def test_no_import_cycles(imports: list[Import]) -> None:
    assert import_cycles(imports) == []


def test_no_imports_inside_functions(imports: list[Import]) -> None:
    assert lazy_violations(imports) == []


# --- the checker itself finds what it is meant to find ---------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in {p.parent for p in tmp_path.rglob("*.py")}:
        if folder != tmp_path:
            (folder / "__init__.py").touch()
    return tmp_path


def test_core_importing_db_or_streamlit_is_a_violation(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/a.py": "import streamlit as st\nfrom db.store import add_patient\n",
            "db/store.py": "from core.a import x\n",
        },
    )
    bad = layer_violations(all_imports(root))
    assert any("core.a:1" in b and "streamlit" in b for b in bad)
    assert any("core.a:2" in b and "db.store" in b for b in bad)
    assert not any(b.startswith("db.store") for b in bad)


def test_db_importing_ui_and_workflow_importing_ui_are_violations(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "db/q.py": "import ui.common\n",
            "workflow/w.py": "from ui import common\n",
            "ui/common.py": "from workflow import w\n",
        },
    )
    bad = layer_violations(all_imports(root))
    assert sorted(b.split(":")[0] for b in bad) == ["db.q", "workflow.w"]


def test_core_main_may_import_cli_only(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/__main__.py": "from cli import main\n",
            "core/x.py": "import cli\n",
            "cli/__init__.py": "def main() -> int:\n    return 0\n",
        },
    )
    bad = layer_violations(all_imports(root))
    assert [b.split(":")[0] for b in bad] == ["core.x"]


def test_imports_under_type_checking_still_obey_the_layers(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from db.store import Record\n"
        },
    )
    assert len(layer_violations(all_imports(root))) == 1


def test_a_cycle_is_found_and_a_type_only_import_breaks_none(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/a.py": "from core.b import y\nx = 1\n",
            "core/b.py": "from core import a\ny = 2\n",
            "core/c.py": "from core.d import z\n",
            "core/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from core.c import w\nz = 3\n",
        },
    )
    assert import_cycles(all_imports(root)) == [["core.a", "core.b"]]


def test_a_function_level_import_is_a_violation(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/a.py": "def f() -> None:\n    import numpy\n",
            "core/b.py": "import importlib\n\ndef g():\n    return importlib.import_module('x')\n",
            "core/c.py": "import numpy\n",
        },
    )
    bad = lazy_violations(all_imports(root))
    assert sorted(b.split(":")[0] for b in bad) == ["core.a", "core.b"]
