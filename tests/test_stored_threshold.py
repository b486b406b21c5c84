"""Each analysis keeps the metastasis threshold it was decided with (migration 0005)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest

from core.analysis import result_from_masks
from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.queries import cohort_summary, patient_time_series, study_with_masks
from db.store import AnalysisRecord, add_patient, store_analysis, store_study

_SCAN = Scan(
    views={"ANT": np.zeros((ROWS, COLS), np.float32)}, meta=ScanMeta(source_format="dicom")
)


def _patient_with(db_file: Path, name: str, p: float, threshold: float) -> int:
    sha = hashlib.sha256(name.encode()).hexdigest()
    record = AnalysisRecord(
        model_version="m",
        device="cpu",
        quality="ok",
        bstbi=0.1,
        metastasis_probability=p,
        metastasis_threshold=threshold,
    )
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym=name)
        sid = store_study(
            db,
            patient_id=pid,
            scan=_SCAN,
            source_name=f"{name}.dcm",
            source_sha256=sha,
            study_date=dt.date(2021, 1, 1),
        ).study_id
        masks = {"ANT": np.zeros((4, 4), np.uint8)}
        store_analysis(db, study_id=sid, analysis=record, masks=masks, lesions=[], account="t")
    return pid


def test_the_cohort_calls_each_patient_with_its_analysis_threshold(db_file: Path) -> None:
    # 0.6 is positive at the paper's 0.5 but negative at a calibrated 0.7
    _patient_with(db_file, "paper", 0.6, 0.5)
    _patient_with(db_file, "calibrated", 0.6, 0.7)
    _patient_with(db_file, "sure", 0.9, 0.7)
    with open_db(db_file) as db:
        called = {r["pseudonym"]: r["metastasis"] for r in cohort_summary(db)}
    assert called == {"paper": True, "calibrated": False, "sure": True}


def test_the_threshold_reads_back(db_file: Path) -> None:
    pid = _patient_with(db_file, "x", 0.6, 0.7125)
    with open_db(db_file) as db:
        (row,) = patient_time_series(db, pid)
        assert row["metastasis_threshold"] == 0.7125
        study = study_with_masks(db, row["study_id"])
        assert study["analysis"]["metastasis_threshold"] == 0.7125


def test_a_threshold_outside_0_1_is_refused_and_nothing_is_stored(db_file: Path) -> None:
    with pytest.raises(ValueError, match="metastasis_threshold"):
        _patient_with(db_file, "bad", 0.6, 1.5)
    with open_db(db_file) as db:
        assert db.execute("SELECT count(*) FROM analyses").fetchone()[0] == 0


def test_a_result_carries_its_thresholds_to_the_record() -> None:
    masks = {"ANT": np.zeros((ROWS, COLS), np.uint8)}
    probs = {"metastasis": 0.6, "bladder": 0.9}
    paper = result_from_masks(_SCAN, masks, probs)
    assert paper.thresholds == {"metastasis": 0.5, "bladder": 0.5}
    assert paper.positives == {"metastasis": True, "bladder": True}
    calibrated = result_from_masks(
        _SCAN, masks, probs, thresholds={"metastasis": 0.7, "bladder": 0.5}
    )
    assert calibrated.positives == {"metastasis": False, "bladder": True}
