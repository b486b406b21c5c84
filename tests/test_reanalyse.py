"""Re-analysing the stored cohort with the version in use keeps the older analyses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from core.analysis import analyze, model_identity
from core.networks.models import LoadedModels, load_models
from db.connection import open_db
from db.model_registry import rollback
from db.queries import (
    patient_time_series,
    stored_scan,
    studies_without_analysis,
    studies_without_analysis_by,
)
from tests.test_model_registry import model_copy
from tests.test_pipeline import fake_predict_batch
from workflow.ingest import store_stored_result
from workflow.model_versions import (
    ensure_shipped,
    promote_version,
    reanalyse_cohort,
    register_candidate,
)
from workflow.ray_engine import ray_available

CANDIDATE = "centre-reanalyse"


@pytest.fixture(autouse=True)
def fake_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)


@pytest.fixture
def cohort(db_file: Path, model_env: Path, tmp_path: Path) -> Path:
    """Two demo patients analysed by the shipped folder; a candidate registered, not promoted."""
    assert main(["demo-cohort", "--db", str(db_file), "--patients", "2"]) == 0
    assert main(["analyze-stored", "--db", str(db_file), "--quiet"]) == 0
    folder = model_copy(model_env, tmp_path / "candidate")
    with open_db(db_file) as db:
        parent = ensure_shipped(db)
        register_candidate(db, folder, parent=parent, card_extra=None, account="t",
                           name=CANDIDATE)  # fmt: skip
    return db_file


def per_study(path: Path) -> dict[int, list[str]]:
    """``{study_id: model versions of its analyses, oldest first}``."""
    out: dict[int, list[str]] = {}
    with open_db(path) as db:
        for study_id, version in db.execute(
            "SELECT study_id, model_version FROM analyses ORDER BY id"
        ).fetchall():
            out.setdefault(study_id, []).append(version)
    return out


def shown(path: Path) -> set[str]:
    """The model versions of the analyses the patient pages show."""
    with open_db(path) as db:
        patients = [r[0] for r in db.execute("SELECT id FROM patients")]
        return {row["model_version"] for p in patients for row in patient_time_series(db, p)}


def test_reanalyse_adds_one_analysis_per_study_by_the_version_in_use(
    cohort: Path, model_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_db(cohort) as db:
        shipped = ensure_shipped(db)
        studies = db["studies"].count
        assert studies_without_analysis_by(db, shipped) == []
        promote_version(db, CANDIDATE, "t")
        assert len(studies_without_analysis_by(db, CANDIDATE)) == studies
    assert shown(cohort) == {shipped}  # nothing analysed by the candidate yet
    capsys.readouterr()
    assert main(["analyze-stored", "--db", str(cohort), "--reanalyse", "--quiet"]) == 0
    assert f"re-analysed {studies} stored studies with {CANDIDATE}" in capsys.readouterr().out
    assert main(["analyze-stored", "--db", str(cohort), "--reanalyse", "--quiet"]) == 0
    assert "re-analysed 0 stored studies" in capsys.readouterr().out
    assert set(map(tuple, per_study(cohort).values())) == {(shipped, CANDIDATE)}
    assert shown(cohort) == {CANDIDATE}
    with open_db(cohort) as db:
        rollback(db, "t")
    assert shown(cohort) == {shipped}  # the older analyses are the ones in use again


def test_analyze_stored_without_reanalyse_leaves_analysed_studies_alone(cohort: Path) -> None:
    with open_db(cohort) as db:
        promote_version(db, CANDIDATE, "t")
    before = per_study(cohort)
    assert main(["analyze-stored", "--db", str(cohort), "--quiet"]) == 0
    assert per_study(cohort) == before


def test_reanalyse_refuses_a_model_folder(cohort: Path, model_env: Path) -> None:
    argv = ["analyze-stored", "--db", str(cohort), "--reanalyse", "--model", str(model_env)]
    assert main(argv) == 2


def test_the_workflow_function_reports_progress_and_carries_on(
    cohort: Path, model_env: Path
) -> None:
    with open_db(cohort) as db:
        promote_version(db, CANDIDATE, "t")
        studies = db["studies"].count
    seen: list[tuple[int, int]] = []
    assert reanalyse_cohort(cohort, limit=2, device="cpu", batch=1,
                            progress=lambda d, t: seen.append((d, t))) == 2  # fmt: skip
    assert seen == [(1, 2), (2, 2)]
    assert reanalyse_cohort(cohort, device="cpu") == studies - 2
    assert reanalyse_cohort(cohort, device="cpu") == 0
    with open_db(cohort) as db:
        assert studies_without_analysis(db) == []
        assert db.execute(
            "SELECT account FROM audit_log WHERE action = 'store_analysis' ORDER BY id DESC"
        ).fetchone() == ("system",)


def test_models_not_in_use_are_refused(cohort: Path, untrained_models: LoadedModels) -> None:
    with open_db(cohort) as db:
        promote_version(db, CANDIDATE, "t")
        (result,) = analyze([stored_scan(db, 1)], untrained_models)
        with pytest.raises(ValueError, match="not by version 'centre-reanalyse'"):
            store_stored_result(db, 1, result, version=CANDIDATE, account="t")
    with pytest.raises(ValueError, match="the version in use is 'centre-reanalyse'"):
        reanalyse_cohort(cohort, models=untrained_models)


def test_a_page_may_pass_the_models_it_holds(cohort: Path, tmp_path: Path) -> None:
    with open_db(cohort) as db:
        promote_version(db, CANDIDATE, "t")
    held = load_models(tmp_path / "candidate", device="cpu")
    assert model_identity(held)[0] == CANDIDATE
    assert reanalyse_cohort(cohort, models=held, account="dr.page", limit=1) == 1


@pytest.mark.slow
@pytest.mark.skipif(not ray_available(), reason="Ray is not installed")
def test_reanalyse_on_ray_stores_the_same_as_locally(
    cohort: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_db(cohort) as db:
        promote_version(db, CANDIDATE, "t")
    argv = ["analyze-stored", "--db", str(cohort), "--reanalyse", "--quiet", "--engine", "ray",
            "--device", "cpu", "--limit", "2"]  # fmt: skip
    assert main(argv) == 0
    assert f"re-analysed 2 stored studies with {CANDIDATE}" in capsys.readouterr().out
    with open_db(cohort) as db:
        assert len(studies_without_analysis_by(db, CANDIDATE)) == db["studies"].count - 2
