from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite path that the app and core.config use for this test."""
    path = tmp_path / "store" / "test.sqlite"
    monkeypatch.setenv("BONESCAN_DB", str(path))
    return path


#: The dashboard's entry script, for Streamlit's AppTest.
APP = str(Path(__file__).resolve().parent.parent / "app.py")
