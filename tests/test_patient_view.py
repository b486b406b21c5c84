"""From stored studies to follow-up figures and pictures (core.burden.patient_record)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.burden.lesion_matching import LesionPoint
from core.burden.patient_record import (
    NOT_ANALYSED,
    StudyPoint,
    Treatment,
    default_pair,
    default_treatment_start,
    findings_from_stored,
    followup_studies,
    new_lesion_regions,
    patient_info,
    reviewed_masks,
    with_followup,
)
from core.burden.pcwg3 import FLAG_PENDING, StudyFindings
from core.config import COLS, ROWS
from db.connection import open_db
from db.queries import patient_id_by_pseudonym, patient_overview, study_with_masks
from workflow.patients import load_patient

D0 = dt.date(2024, 1, 1)
SITES = [(100.0, 60.0), (300.0, 128.0), (500.0, 70.0), (700.0, 180.0)]


def lesions(points: list[tuple[float, float]]) -> tuple[LesionPoint, ...]:
    return tuple(LesionPoint("ANT", r, c, 20.0) for r, c in points)


def test_followup_takes_reliable_dated_studies_once_per_date() -> None:
    points = [
        StudyPoint(1, D0, "ok", 0.1),
        StudyPoint(2, D0 + dt.timedelta(days=30), "too few counts"),
        StudyPoint(3, D0 + dt.timedelta(days=60), "ok", 0.2),
        StudyPoint(4, D0 + dt.timedelta(days=60), "ok", 0.3),  # same date, stored later
        StudyPoint(5, None, "ok", 0.2),
        StudyPoint(6, D0 + dt.timedelta(days=90), NOT_ANALYSED),
    ]
    assert [p.study_id for p in followup_studies(points)] == [1, 4]
    assert [p.reliable for p in points] == [True, False, True, True, True, False]
    assert points[1].status == "not diagnostic: too few counts"


def test_with_followup_fills_the_studies_that_took_part() -> None:
    points = [
        StudyPoint(1, D0, "ok", 0.1),
        StudyPoint(2, D0 + dt.timedelta(days=20), "no body in the field"),
        StudyPoint(3, D0 + dt.timedelta(days=60), "ok", 0.2),
    ]
    findings = {
        1: StudyFindings(D0, 3.0, 0.1, lesions(SITES[:2])),
        3: StudyFindings(D0 + dt.timedelta(days=60), 3.0, 0.2, lesions(SITES)),
    }
    filled, fu = with_followup(points, findings, treatment_start=D0 + dt.timedelta(days=5))
    assert fu is not None and len(fu.studies) == 1
    assert [p.study_id for p in filled] == [1, 2, 3]
    assert filled[0].in_followup and filled[0].new_vs_baseline is None
    assert filled[1] == points[1]  # the non-diagnostic study keeps its own figures only
    later = filled[2]
    assert (later.new_vs_baseline, later.new_vs_previous) == (2, 2)
    assert later.bstbi_change_baseline == pytest.approx(0.1)
    assert later.pcwg3 == FLAG_PENDING  # day 55 of treatment, 2 new lesions
    with pytest.raises(ValueError, match="findings lack"):
        with_followup(points, {1: findings[1]})


def test_no_reliable_study_no_followup() -> None:
    points = [StudyPoint(1, D0, "too few counts")]
    assert with_followup(points, {}) == (tuple(points), None)


def test_default_start_and_pair() -> None:
    assert default_treatment_start([]) is None
    treatments = [Treatment("radium-223", D0 + dt.timedelta(days=9)), Treatment("adt", D0)]
    assert default_treatment_start(treatments) == D0
    points = [StudyPoint(1, None, "ok", 0.1), StudyPoint(2, D0, "ok", 0.1)]
    assert default_pair(points) == (points[1], points[1])
    assert default_pair([]) is None
    with pytest.raises(ValueError, match="end"):
        Treatment("adt", D0, D0 - dt.timedelta(days=1))


def stored(lesion_rows: list[dict[str, Any]], quality: str = "ok") -> dict[str, Any]:
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[100:104, 50:54] = 1
    return {
        "study": {"id": 1, "study_date": "2024-01-01", "injection_delay_h": 2.5},
        "views": {"ANT": np.ones((ROWS, COLS), np.float32)},
        "analysis": {"quality": quality, "bstbi": 0.2},
        "masks": {"ANT": mask},
        "lesions": lesion_rows,
    }


def lesion_row(**kw: Any) -> dict[str, Any]:
    base = {"view": "ANT", "component": 1, "area_px": 16, "centroid_row": 101.5,
            "centroid_col": 51.5, "skeletal_region": "skull", "status": "model",
            "drawn": None}  # fmt: skip
    return {**base, **kw}


def test_findings_from_stored_lesions() -> None:
    drawn = np.zeros((ROWS, COLS), bool)
    drawn[200:202, 10:12] = True
    rows = [
        lesion_row(),
        lesion_row(component=2, status="removed"),
        lesion_row(component=3, status="added", centroid_row=None, centroid_col=None, drawn=drawn),
    ]
    findings, origin = findings_from_stored(stored(rows))
    assert findings.date == D0 and findings.injection_delay_h == 2.5 and findings.bstbi == 0.2
    assert [p.status for p in findings.lesions] == ["model", "removed", "added"]
    assert len(findings.active("ANT")) == 2
    assert (findings.lesions[2].row, findings.lesions[2].col) == (200.5, 10.5)
    # each point maps back to its row as the mask edits leave it (here: unedited)
    assert origin[id(findings.lesions[0])] == {**rows[0], "edited": False}
    assert findings_from_stored(stored(rows, quality="cut off"))[0].bstbi is None


def test_reviewed_masks_drop_removed_and_add_drawn_lesions() -> None:
    drawn = np.zeros((ROWS, COLS), bool)
    drawn[300:303, 20:23] = True
    data = stored(
        [lesion_row(status="removed"), lesion_row(component=2, status="added", drawn=drawn)]
    )
    mask = reviewed_masks(data)["ANT"]
    assert not mask[100:104, 50:54].any()
    assert (mask[300:303, 20:23] == 1).all()
    assert (stored([])["masks"]["ANT"] == 1).sum() == 16  # the model's mask is untouched


def test_ringed_new_lesions_agree_with_the_followup_count(truth_store: Path) -> None:
    with open_db(truth_store) as db:
        pid = patient_id_by_pseudonym(db, "Demo 002")
        row = next(r for r in patient_overview(db) if r["id"] == pid)
        record = load_patient(db, patient_info(row))
        first, last = record.studies[0], record.studies[-1]
        regions, n_new = new_lesion_regions(
            study_with_masks(db, first.study_id), study_with_masks(db, last.study_id)
        )
    assert record.treatment_start == dt.date(2018, 1, 28)
    assert n_new == last.new_vs_baseline and n_new > 0
    assert set(regions) == {"ANT", "POST"}
    assert all(r.dtype == bool and r.shape == (ROWS, COLS) and r.any() for r in regions.values())
