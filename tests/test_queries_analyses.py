from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.queries import cohort_summary, patient_time_series, study_with_masks
from db.store import AnalysisRecord, add_patient, store_analysis, store_study

_SCAN = Scan(
    views={"ANT": np.zeros((ROWS, COLS), np.float32)},
    meta=ScanMeta(source_format="dicom"),
)
_MASK = {"ANT": np.zeros((4, 4), np.uint8)}


def _study(db: Database, pid: int, date: str) -> int:
    sha = hashlib.sha256(f"{pid}{date}".encode()).hexdigest()
    day = dt.date.fromisoformat(date)
    stored = store_study(db, patient_id=pid, scan=_SCAN, source_name=f"{date}.dcm",
                         source_sha256=sha, study_date=day)  # fmt: skip
    return stored.study_id


def _analyse(db: Database, sid: int, bstbi: float | None, p: float, quality: str = "ok") -> int:
    rec = AnalysisRecord(model_version="m", device="cpu", quality=quality, bstbi=bstbi,
                         metastasis_probability=p, hotspots=7, lesion_area_cm2=1.5)  # fmt: skip
    return store_analysis(db, study_id=sid, analysis=rec, masks=_MASK, lesions=[], account="t")


@pytest.fixture
def store(db_file: Path) -> dict[str, int]:
    """Two patients with three studies each, and one without studies.

    A (lung, born 1960): 2020-01-10 bstbi 0.1; 2021-03-05 analysed twice (0.9, then 0.2);
    2022-06-01 bstbi 0.3, p 0.8. Studies inserted out of date order.
    B (breast, born 1950): 2019 bstbi 0.0; 2020 bstbi 0.05, p 0.3; 2021 not diagnostic
    (p 0.9, no bstbi). C (prostate, born 1980): no study.
    """
    ids: dict[str, int] = {}
    with open_db(db_file) as db:
        a = add_patient(db, pseudonym="A", sex="M", birth_year=1960, primary_tumour="lung")
        b = add_patient(db, pseudonym="B", sex="F", birth_year=1950, primary_tumour="breast",
                        synthetic=True)  # fmt: skip
        c = add_patient(db, pseudonym="C", birth_year=1980, primary_tumour="prostate")
        ids.update(A=a, B=b, C=c)
        ids["a3"] = _study(db, a, "2022-06-01")
        ids["a1"] = _study(db, a, "2020-01-10")
        ids["a2"] = _study(db, a, "2021-03-05")
        _analyse(db, ids["a1"], 0.1, 0.7)
        _analyse(db, ids["a2"], 0.9, 0.95)
        ids["a2_latest"] = _analyse(db, ids["a2"], 0.2, 0.6)
        _analyse(db, ids["a3"], 0.3, 0.8)
        for date, bstbi, p, quality in (
            ("2019-05-01", 0.0, 0.1, "ok"),
            ("2020-05-01", 0.05, 0.3, "ok"),
            ("2021-05-01", None, 0.9, "only noise: no body in the field"),
        ):
            ids[f"b{date[:4]}"] = sid = _study(db, b, date)
            _analyse(db, sid, bstbi, p, quality)
    return ids


def test_time_series_is_by_date_with_the_latest_analysis(db_file: Path, store: dict) -> None:
    with open_db(db_file) as db:
        rows = patient_time_series(db, store["A"])
        b_rows = patient_time_series(db, store["B"])
        assert patient_time_series(db, store["C"]) == []
    assert [r["study_id"] for r in rows] == [store["a1"], store["a2"], store["a3"]]
    assert [r["study_date"] for r in rows] == ["2020-01-10", "2021-03-05", "2022-06-01"]
    assert [r["bstbi"] for r in rows] == [0.1, 0.2, 0.3]
    assert rows[1]["analysis_id"] == store["a2_latest"]
    assert rows[1]["metastasis_probability"] == 0.6
    assert {r["hotspots"] for r in rows} == {7} and {r["quality"] for r in rows} == {"ok"}
    assert b_rows[2]["quality"] == "only noise: no body in the field" and b_rows[2]["bstbi"] is None


def test_a_study_never_analysed_appears_without_figures(db_file: Path, store: dict) -> None:
    with open_db(db_file) as db:
        sid = _study(db, store["C"], "2023-02-02")
        (row,) = patient_time_series(db, store["C"])
        assert study_with_masks(db, sid)["analysis"] is None
    assert row["study_id"] == sid and row["analysis_id"] is None and row["bstbi"] is None


def test_cohort_summary_rows(db_file: Path, store: dict) -> None:
    with open_db(db_file) as db:
        rows = cohort_summary(db)
    assert [r["pseudonym"] for r in rows] == ["A", "B", "C"]
    a, b, c = rows
    assert a == {
        "patient_id": store["A"], "pseudonym": "A", "sex": "M", "age_group": "50-70",
        "primary_tumour": "lung", "synthetic": False, "n_studies": 3,
        "last_study_date": "2022-06-01", "latest_bstbi": 0.3, "baseline_bstbi": 0.1,
        "bstbi_change": pytest.approx(0.2), "metastasis": True,
        "model_version": "m", "baseline_model_version": "m", "bsi": None,
    }  # fmt: skip
    # B's last study is not diagnostic: its burden and probability are not used.
    assert b == {
        "patient_id": store["B"], "pseudonym": "B", "sex": "F", "age_group": ">=70",
        "primary_tumour": "breast", "synthetic": True, "n_studies": 3,
        "last_study_date": "2021-05-01", "latest_bstbi": 0.05, "baseline_bstbi": 0.0,
        "bstbi_change": 0.05, "metastasis": False,
        "model_version": "m", "baseline_model_version": "m", "bsi": None,
    }  # fmt: skip
    assert c["n_studies"] == 0 and c["age_group"] is None and c["latest_bstbi"] is None
    assert c["metastasis"] is None and c["last_study_date"] is None
    assert c["model_version"] is None and c["baseline_model_version"] is None


def test_study_with_masks_refuses_an_unknown_study(db_file: Path, store: dict) -> None:
    with open_db(db_file) as db, pytest.raises(ValueError, match="study_id"):
        study_with_masks(db, 9999)


def test_the_latest_analysis_query_uses_the_index(db_file: Path, store: dict) -> None:
    with open_db(db_file) as db:
        plan = " ".join(
            str(r[3])
            for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT max(id) FROM analyses WHERE study_id = ?", [1]
            )
        )
    assert "analyses_study_latest" in plan
