"""A child's scan gets no Bone Scan Index, and every place says why.

The index's bone weights are the adult Reference Man's, every published BSI was built
and validated on adults, and a child's open growth plates are hot and normal. So below
``ADULT_AGE`` (18 years at the study, as the file says) the analysis withholds the BSI,
keeps the raw index for inspection, and keeps the reason with the stored analysis, so
that a physician's review does not bring the index back. The tiny hand-computed case of
``tests/test_review_bsi.py`` (BSI 2.5572 %) is reused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from core.analysis import AnalysisResult, result_from_masks
from core.anatomy.bsi import ADULT_AGE, withheld_for_age
from core.burden.lesion_review import model_burden, study_images
from core.config import COLS, ROWS
from core.imaging.quality import QualityVerdict
from core.scan import Scan
from db.connection import open_db
from db.queries import stored_scan, study_with_masks
from db.store import AnalysisRecord, add_patient, store_analysis, store_study
from tests.test_pages_bsi import REVIEW
from tests.test_review_bsi import MODEL_BSI, _figures, _maps, _masks, _scan
from ui.body_map import bsi_absent_reason
from ui.common import Keys
from workflow.ingest import ingest, store_result
from workflow.review_changes import edit_mask


def _aged(age: float | None) -> Scan:
    scan = _scan()
    return dataclasses.replace(scan, meta=dataclasses.replace(scan.meta, age=age))


def _result(age: float | None) -> AnalysisResult:
    return result_from_masks(
        _aged(age),
        _masks(),
        {"metastasis": 0.9, "bladder": 0.9},
        skeletons=_maps(),
        verdict=QualityVerdict(ok=True, reason="ok", code="ok"),
        model_version="hand",
    )


def test_the_age_rule_by_hand() -> None:
    assert ADULT_AGE == 18.0
    assert withheld_for_age(None) is None  # the file does not say: reported
    assert withheld_for_age(18.0) is None and withheld_for_age(80) is None
    sentence = withheld_for_age(17.9)
    assert sentence is not None and "aged 17" in sentence and "adult" in sentence
    assert "aged 0" in (withheld_for_age(0.5) or "")
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="age"):
            withheld_for_age(bad)


@given(st.floats(min_value=0, max_value=130))
def test_the_rule_is_a_single_cut(age: float) -> None:
    assert (withheld_for_age(age) is None) == (age >= ADULT_AGE)


def test_a_childs_analysis_keeps_the_raw_index_and_says_why() -> None:
    child, adult, unknown = _result(12), _result(18), _result(None)
    assert child.bsi is None and child.raw_bsi == pytest.approx(MODEL_BSI, abs=1e-12)
    assert child.bsi_withheld is not None and "aged 12" in child.bsi_withheld
    assert child.bsi_withheld in child.notes
    for reported in (adult, unknown):
        assert reported.bsi == pytest.approx(MODEL_BSI, abs=1e-12)
        assert reported.bsi_withheld is None
    # the BSTBI, which has no age rule, is the same for all three
    assert child.bstbi == adult.bstbi == unknown.bstbi


def test_a_childs_review_does_not_bring_the_index_back(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="child")
        sid = store_study(db, patient_id=pid, scan=_aged(9), source_name="child.dcm",
                          source_sha256=hashlib.sha256(b"child").hexdigest()).study_id  # fmt: skip
        store_result(db, sid, _result(9), account="test")
        data = study_with_masks(db, sid)
        analysis, masks = data["analysis"], data["masks"]
        assert analysis["bsi"] is None and analysis["bsi_regions"] == {}
        assert analysis["raw_bsi"] == pytest.approx(MODEL_BSI, abs=1e-12)
        assert "aged 9" in analysis["bsi_withheld"]
        # every page that shows the BSI says why there is none
        assert bsi_absent_reason(analysis, skeleton_network=True) == analysis["bsi_withheld"]
        # the review page's own figures, and an edit stored by the workflow
        images = study_images(data["study"], data["views"], masks, data["skeletons"],
                              bsi_withheld=analysis["bsi_withheld"])  # fmt: skip
        assert model_burden(images, masks, data["lesions"]).bsi is None
        erase = np.zeros((ROWS, COLS), bool)
        erase[495:510, 110:145] = True
        bare = study_images(data["study"], data["views"], masks)  # a caller that forgot it
        event = edit_mask(db, analysis=analysis, images=bare, masks=masks, view="POST",
                          action="erase", pixels=erase, account="dr.x")  # fmt: skip
        bsi, raw, regions = _figures(db, int(analysis["id"]))
    assert event.stored and event.burden.bsi is None and event.burden.bsi_regions == {}
    assert bsi is None and regions == {} and raw == pytest.approx(MODEL_BSI, abs=1e-12)


def test_the_store_refuses_a_reason_beside_an_index(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="bad")
        sid = store_study(db, patient_id=pid, scan=_scan(), source_name="bad.dcm",
                          source_sha256=hashlib.sha256(b"bad").hexdigest()).study_id  # fmt: skip
        for record in (
            AnalysisRecord(
                model_version="m", device="cpu", quality="ok", bsi=1.0, bsi_withheld="a child"
            ),
            AnalysisRecord(model_version="m", device="cpu", quality="ok", bsi_withheld="  "),
        ):
            with pytest.raises(ValueError, match="bsi_withheld"):
                store_analysis(db, study_id=sid, analysis=record, masks={}, lesions=[],
                               account="test")  # fmt: skip
        assert db.execute("SELECT count(*) FROM analyses").fetchone() == (0,)


def test_a_reanalysis_reads_the_age_from_the_birth_year(db_file: Path) -> None:
    """A stored study carries the patient's age by year, so a re-analysis withholds too."""
    with open_db(db_file) as db:
        young = add_patient(db, pseudonym="young", birth_year=2010)
        old = add_patient(db, pseudonym="old", birth_year=1950)
        unknown = add_patient(db, pseudonym="unknown")
        ages = []
        for pid in (young, old, unknown):
            sid = store_study(db, patient_id=pid, scan=_aged(None), source_name=f"{pid}.png",
                              source_sha256=hashlib.sha256(str(pid).encode()).hexdigest(),
                              study_date=dt.date(2024, 1, 2)).study_id  # fmt: skip
            ages.append(stored_scan(db, sid).meta.age)
    assert ages == [14.0, 74.0, None]


@pytest.fixture
def seen_ages(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Ingest analyses with the hand-computed result; the list gets each scan's age."""
    seen: list[float | None] = []

    def analyse(scans: list[Scan], _models: object, **_: object) -> list[AnalysisResult]:
        seen.append(scans[0].meta.age)
        return [_result(scans[0].meta.age)]

    monkeypatch.setattr("workflow.ingest.analyze", analyse)
    return seen


def test_an_upload_without_an_age_takes_the_patients(
    db_file: Path, seen_ages: list[float | None]
) -> None:
    """A PNG says nothing of the patient: the form's birth year and the date give the age."""
    with open_db(db_file) as db:
        done = ingest(db, [("child.png", b"child png")], models=None,
                      account="test", scan=_aged(None), study_date=dt.date(2023, 6, 1),
                      patient={"pseudonym": "form child", "birth_year": 2015})  # fmt: skip
        stored = study_with_masks(db, done.study_id)["analysis"]
        # an existing patient's birth year is read from the store
        pid = add_patient(db, pseudonym="stored adult", birth_year=1960)
        ingest(db, [("adult.png", b"adult png")], models=None,
               account="test", scan=_aged(None), study_date=dt.date(2023, 6, 1),
               patient_id=pid)  # fmt: skip
        # an age in the file is kept as it is
        ingest(db, [("dicom", b"dicom")], models=None,
               account="test", scan=_aged(40.0), study_date=dt.date(2023, 6, 1),
               patient={"pseudonym": "x", "birth_year": 2015})  # fmt: skip
    assert seen_ages == [8.0, 63.0, 40.0]
    assert stored["bsi"] is None and "aged 8" in stored["bsi_withheld"]


def test_the_review_page_says_under_18(db_file: Path) -> None:
    """The review page's BSI reads "under 18", its help the reason."""
    with open_db(db_file) as db:
        # a synthetic patient: the dashboard needs no sign-in then
        pid = add_patient(db, pseudonym="page child", synthetic=True)
        digest = hashlib.sha256(b"page child").hexdigest()
        sid = store_study(db, patient_id=pid, scan=_aged(11), source_name="page.dcm",
                          source_sha256=digest).study_id  # fmt: skip
        store_result(db, sid, _result(11), account="test")
    at = AppTest.from_file(REVIEW, default_timeout=120)
    at.session_state[Keys.STUDY_ID] = sid
    at.run()
    assert not at.exception, at.exception
    shown = next(m for m in at.metric if m.label == "BSI, reviewed")
    assert shown.value == "under 18" and "aged 11" in str(shown.proto.help)


def test_a_file_with_an_age_alone_gives_the_patient_a_birth_year(
    db_file: Path, seen_ages: list[float | None]
) -> None:
    """DICOM PatientAge without a birth date: a re-analysis finds the same age again."""
    scan = _aged(12.0)
    scan = dataclasses.replace(scan, meta=dataclasses.replace(scan.meta, patient_id="PID-12"))
    with open_db(db_file) as db:
        done = ingest(db, [("age.dcm", b"age only")], models=None, account="test", scan=scan,
                      study_date=dt.date(2023, 6, 1))  # fmt: skip
        birth_year = db.execute(
            "SELECT p.birth_year FROM patients p JOIN studies s ON s.patient_id = p.id "
            "WHERE s.id = ?",
            [done.study_id],
        ).fetchone()[0]
        again = stored_scan(db, done.study_id).meta.age
    assert seen_ages == [12.0] and birth_year == 2011 and again == 12.0


def test_a_later_file_without_an_age_takes_the_known_patients(
    db_file: Path, seen_ages: list[float | None]
) -> None:
    """The file's PatientID names a stored patient: that patient's birth year gives the age."""
    first = _aged(12.0)
    first = dataclasses.replace(first, meta=dataclasses.replace(first.meta, patient_id="PID-K"))
    later = dataclasses.replace(first, meta=dataclasses.replace(first.meta, age=None))
    with open_db(db_file) as db:
        ingest(db, [("first.dcm", b"first")], models=None, account="test", scan=first,
               study_date=dt.date(2023, 6, 1))  # fmt: skip
        done = ingest(db, [("later.dcm", b"later")], models=None, account="test", scan=later,
                      study_date=dt.date(2025, 6, 1))  # fmt: skip
        stored = study_with_masks(db, done.study_id)["analysis"]
    assert seen_ages == [12.0, 14.0] and "aged 14" in stored["bsi_withheld"]
