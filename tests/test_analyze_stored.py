"""Stored studies without an analysis (the demo cohort) are analysed once, each atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from core.networks.models import LoadedModels, load_models
from db.connection import open_db
from db.queries import stored_scan, studies_without_analysis
from tests.test_pipeline import fake_predict_batch
from workflow.ingest import analyze_stored


@pytest.fixture
def demo_db(db_file: Path) -> Path:
    assert main(["demo-cohort", "--db", str(db_file), "--patients", "2"]) == 0
    return db_file


@pytest.fixture
def models(untrained_model_dir: Path) -> LoadedModels:
    return load_models(untrained_model_dir, device="cpu")


def test_every_pending_study_is_analysed_once(
    demo_db: Path, model_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    with open_db(demo_db) as db:
        studies = db["studies"].count
        assert len(studies_without_analysis(db)) == studies > 2
    assert main(["analyze-stored", "--db", str(demo_db), "--limit", "2", "--quiet"]) == 0
    with open_db(demo_db) as db:
        assert db["analyses"].count == 2
        assert len(studies_without_analysis(db)) == studies - 2
    assert main(["analyze-stored", "--db", str(demo_db), "--quiet"]) == 0
    assert main(["analyze-stored", "--db", str(demo_db), "--quiet"]) == 0  # nothing left
    with open_db(demo_db) as db:
        assert db["analyses"].count == studies
        assert studies_without_analysis(db) == []
        per_study = db.execute("SELECT count(*) FROM analyses GROUP BY study_id").fetchall()
        assert {r[0] for r in per_study} == {1}
        assert db.execute("SELECT count(*) FROM masks").fetchone()[0] == 2 * studies


def test_an_interruption_keeps_finished_analyses(
    demo_db: Path, models: LoadedModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with open_db(demo_db) as db, pytest.raises(KeyboardInterrupt):
        analyze_stored(db, models, account="test", batch=2, progress=stop)
    with open_db(demo_db) as db:
        assert db["analyses"].count == 2
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_stored_scan_round_trips_the_views(demo_db: Path) -> None:
    with open_db(demo_db) as db:
        scan = stored_scan(db, 1)
        assert set(scan.views) == {"ANT", "POST"}
        assert scan.meta.study_date is not None and scan.meta.pixel_spacing_mm is not None
        with pytest.raises(ValueError, match="study_id"):
            stored_scan(db, 10_000)


def test_bad_arguments(demo_db: Path, models: LoadedModels) -> None:
    with open_db(demo_db) as db:
        with pytest.raises(ValueError, match="account"):
            analyze_stored(db, models, account=" ")
        with pytest.raises(ValueError, match="batch"):
            analyze_stored(db, models, account="x", batch=0)


def test_missing_models_give_a_clear_message(
    demo_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze-stored", "--db", str(demo_db), "--model", str(tmp_path / "none")]) == 2
    assert "no usable model" in capsys.readouterr().err
