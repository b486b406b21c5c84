"""The store benchmark times single-writer analyses, each stored in its own transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.bench_store import measure_writes
from db.connection import open_db


def test_measure_writes_stores_each_analysis(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    out = measure_writes(5, path=path)
    assert out["analyses_per_s"] > 0 and out["write_s"] > 0
    with open_db(path) as db:
        # build_store gives each study one analysis; the benchmark adds one more each
        assert db["analyses"].count == 10
        assert db.execute("SELECT count(*) FROM masks WHERE rows = 1024").fetchone()[0] == 10


def test_measure_writes_refuses_nothing_to_store() -> None:
    with pytest.raises(ValueError, match="analyses"):
        measure_writes(0)
