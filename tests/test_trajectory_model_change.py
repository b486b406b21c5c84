"""Trajectory and cohort use the version in use, and mark a change of model between studies."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database
from streamlit.testing.v1 import AppTest

from core.analysis import result_from_masks
from core.burden.charts import (
    MODEL_CHANGE_MARKER,
    MODEL_CHANGE_WARNING,
    model_changes,
    trajectory_figure,
)
from core.burden.patient_record import StudyPoint
from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.model_registry import promote, register_model
from db.queries import cohort_summary, patient_id_by_pseudonym, patient_time_series, study_views
from db.store import AnalysisRecord, add_patient, store_analysis, store_study
from tests.conftest import APP
from tests.store_fixtures import TRUTH_MODEL
from ui.common import Keys
from workflow.ingest import to_records

D0 = dt.date(2024, 1, 10)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def point(study_id: int, days: int, bstbi: float | None, quality: str = "ok") -> StudyPoint:
    return StudyPoint(study_id, day(days), quality, bstbi)


# --- the chart --------------------------------------------------------------------------


def test_changes_are_found_between_consecutive_reliable_studies() -> None:
    points = [point(1, 0, 0.1), point(2, 30, 0.2), point(3, 60, None, "too few counts"),
              point(4, 90, 0.3), point(5, 120, 0.3), point(6, 150, 0.4)]  # fmt: skip
    versions = {1: "A", 2: "A", 3: "B", 4: "B", 5: None, 6: "A"}
    changes = model_changes(list(reversed(points)), versions)  # any order in
    assert [(c.before.study_id, c.after.study_id) for c in changes] == [(2, 4), (4, 6)]
    assert [(c.before_version, c.after_version) for c in changes] == [("A", "B"), ("B", "A")]
    assert changes[0].caption() == (
        "2024-02-09 (A) to 2024-04-09 (B): a step between these studies may come from the "
        "model change, not a response."
    )
    assert model_changes(points, {1: "A", 2: "A", 4: "A"}) == []
    assert model_changes(points, {}) == []


def test_the_figure_rings_the_study_after_a_change_and_names_the_model() -> None:
    points = [point(1, 0, 0.1), point(2, 30, 0.2), point(3, 60, 0.25)]
    fig = trajectory_figure(points, model_versions={1: "A", 2: "B", 3: "B"})
    traces = {t.name: t for t in fig.data}
    ring = traces[MODEL_CHANGE_MARKER[0]]
    assert list(ring.x) == [day(30).isoformat()] and list(ring.y) == [0.2]
    assert ring.marker.symbol == MODEL_CHANGE_MARKER[1]
    assert ring.text[0] == f"Model A -> B<br>{MODEL_CHANGE_WARNING}"
    assert traces["BSTBI"].text[2].endswith("<br>Model B")
    plain = trajectory_figure(points)
    assert [t.name for t in plain.data] == ["BSTBI"]
    assert "Model" not in plain.data[0].text[0]


# --- the queries --------------------------------------------------------------------------

_SCAN = Scan(views={"ANT": np.zeros((ROWS, COLS), np.float32)},
             meta=ScanMeta(source_format="dicom"))  # fmt: skip
_MASK = {"ANT": np.zeros((4, 4), np.uint8)}


def _study(db: Database, pid: int, date: str) -> int:
    sha = hashlib.sha256(f"{pid}{date}".encode()).hexdigest()
    stored = store_study(db, patient_id=pid, scan=_SCAN, source_name=f"{date}.dcm",
                         source_sha256=sha, study_date=dt.date.fromisoformat(date))  # fmt: skip
    return stored.study_id


def _analyse(db: Database, sid: int, version: str, bstbi: float) -> int:
    rec = AnalysisRecord(model_version=version, device="cpu", quality="ok", bstbi=bstbi,
                         metastasis_probability=0.9, hotspots=3)  # fmt: skip
    return store_analysis(db, study_id=sid, analysis=rec, masks=_MASK, lesions=[], account="t")


def _versions(db: Database, shipped: str, candidate: str) -> None:
    register_model(db, version=shipped, path="/s", kind="shipped", parent=None,
                   weights_sha256="a" * 64, card={}, account="system")  # fmt: skip
    register_model(db, version=candidate, path="/c", kind="candidate", parent=shipped,
                   weights_sha256="b" * 64, card={}, account="t")  # fmt: skip


@pytest.fixture
def store(db_file: Path) -> Path:
    """Patient P: 2020 by S (0.1); 2021 by S (0.2) then by C (0.25); 2022 by C only (0.3)."""
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P", birth_year=1960)
        s1, s2, s3 = (_study(db, pid, d) for d in ("2020-01-01", "2021-01-01", "2022-01-01"))
        _analyse(db, s1, "S", 0.1)
        _analyse(db, s2, "S", 0.2)
        _analyse(db, s2, "C", 0.25)
        _analyse(db, s3, "C", 0.3)
        _versions(db, "S", "C")
    return db_file


def _series(db: Database) -> list[tuple[float, str]]:
    return [(r["bstbi"], r["model_version"]) for r in patient_time_series(db, 1)]


def test_each_study_shows_the_newest_analysis_by_the_version_in_use(store: Path) -> None:
    with open_db(store) as db:
        # S in use (nothing promoted): 2021 keeps S's analysis although C's is newer
        assert _series(db) == [(0.1, "S"), (0.2, "S"), (0.3, "C")]
        (row,) = cohort_summary(db)
        assert (row["latest_bstbi"], row["baseline_bstbi"]) == (0.3, 0.1)
        assert (row["model_version"], row["baseline_model_version"]) == ("C", "S")
        promote(db, "C", "t")
        assert _series(db) == [(0.1, "S"), (0.25, "C"), (0.3, "C")]


def test_without_registered_versions_the_newest_analysis_is_shown(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="Q")
        sid = _study(db, pid, "2020-01-01")
        _analyse(db, sid, "S", 0.1)
        _analyse(db, sid, "C", 0.2)
        assert [(r["bstbi"], r["model_version"]) for r in patient_time_series(db, pid)] == [
            (0.2, "C")
        ]


# --- the pages -----------------------------------------------------------------------------

NEW_MODEL = "centre-20261207-0931"


@pytest.fixture
def changed_store(truth_store: Path) -> Path:
    """The truth store, Demo 001's later study re-analysed by NEW_MODEL, which is in use."""
    with open_db(truth_store) as db:
        pid = patient_id_by_pseudonym(db, "Demo 001")
        assert pid is not None
        later = patient_time_series(db, pid)[-1]["study_id"]
        views = study_views(db, later)
        masks = {v: np.zeros(a.shape, np.uint8) for v, a in views.items()}
        masks["ANT"][500:520, 100:120] = 1
        result = result_from_masks(Scan(views=views), masks, {"metastasis": 0.9, "bladder": 0.1},
                                   model_version=NEW_MODEL)  # fmt: skip
        record, stored_masks, lesions = to_records(result)
        store_analysis(db, study_id=later, analysis=record, masks=stored_masks, lesions=lesions,
                       account="test")  # fmt: skip
        _versions(db, TRUTH_MODEL, NEW_MODEL)
        promote(db, NEW_MODEL, "test")
    return truth_store


def test_the_patient_page_marks_and_explains_the_model_change(changed_store: Path) -> None:
    at = AppTest.from_file(str(Path(APP).parent / "app_pages" / "patient.py"), default_timeout=120)
    with open_db(changed_store) as db:
        at.session_state[Keys.PATIENT_ID] = patient_id_by_pseudonym(db, "Demo 001")
    at.run()
    assert not at.exception, at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = {t["name"]: t for t in spec["data"]}
    assert traces[MODEL_CHANGE_MARKER[0]]["x"] == [traces["BSTBI"]["x"][-1]]
    (caption,) = [c.value for c in at.caption if MODEL_CHANGE_WARNING in c.value]
    assert f"({TRUTH_MODEL}) to " in caption and f"({NEW_MODEL})" in caption
    studies = at.dataframe[-1].value
    assert studies["model_version"].tolist() == [TRUTH_MODEL, NEW_MODEL]


def test_the_patient_page_without_a_change_has_no_mark(truth_store: Path) -> None:
    at = AppTest.from_file(str(Path(APP).parent / "app_pages" / "patient.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert MODEL_CHANGE_MARKER[0] not in {t["name"] for t in spec["data"]}
    assert not [c for c in at.caption if MODEL_CHANGE_WARNING in c.value]


def test_the_cohort_page_shows_the_model_version_column(changed_store: Path) -> None:
    at = AppTest.from_file(str(Path(APP).parent / "app_pages" / "cohort.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("pseudonym")
    assert table.loc["Demo 001", "model_version"] == f"{TRUTH_MODEL} -> {NEW_MODEL}"
    assert table.loc["Demo 002", "model_version"] == TRUTH_MODEL
    assert any(MODEL_CHANGE_WARNING in c.value for c in at.caption)
