"""A physician's mask edits show wherever the analysis is drawn or sent.

One patient, two studies. The later study has an analysis by the model version in use
(two lesions, BIG and SMALL, and the bladder) and a newer one by another version (no
lesion at all); a physician erased SMALL and marked a patch of background as bladder.
The patient record's reviewed masks, the report's pictures (and its new-lesion count)
and the overlays, figures and report sent to the PACS all show the edited analysis of
the version in use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from sqlite_utils import Database

from core.burden.lesion_review import lesion_components, study_images
from core.burden.patient_record import (
    EDITED_AWAY_REASON,
    lesions_after_edits,
    new_lesion_regions,
    patient_info,
    reviewed_masks,
    study_picture,
)
from core.config import COLS, LABEL_BLADDER, ROWS
from core.imaging.display import stored_display_images
from core.imaging.overlay import overlay_rgb
from core.scan import Scan, ScanMeta
from db import annotations
from db.connection import open_db
from db.model_registry import SYSTEM_ACCOUNT, promote, register_model
from db.queries import patient_overview, patient_time_series, study_with_masks
from db.store import AnalysisRecord, LesionRecord, add_patient, store_analysis, store_study
from workflow.pacs.push import OVERLAY_OPACITY, overlay_pictures, result_summary, send_results
from workflow.patients import load_patient
from workflow.report import report_pictures
from workflow.review_changes import edit_mask

SHAPE = (ROWS, COLS)
#: The later study's two ANT lesions (BIG also at baseline), its bladder, and the
#: background patch the physician marks as bladder.
BIG = (slice(300, 306), slice(100, 106))
SMALL = (slice(520, 524), slice(150, 154))
BLADDER = (slice(800, 810), slice(120, 130))
PATCH = (slice(700, 704), slice(80, 84))
ACTIVE, OTHER = "centre-active", "shipped-1"
STUDY_UID = "1.2.826.0.1.3680043.8.498.777"
#: The Secondary Capture copies these from the analysed instance as the PACS holds it.
SOURCE = {
    "StudyInstanceUID": STUDY_UID,
    "PatientID": "X-edits",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.778",
    "SOPClassUID": "1.2.840.10008.5.1.4.1.1.20",
    "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.779",
    "PatientName": "Edits^Test",
    "StudyDate": "20240610",
}


def _at(where: tuple[slice, slice]) -> np.ndarray:
    out = np.zeros(SHAPE, bool)
    out[where] = True
    return out


def _counts() -> np.ndarray:
    counts = np.zeros(SHAPE, np.float32)
    counts[100:900, 70:190] = 30.0
    for where in (BIG, SMALL, BLADDER):
        counts[where] = 400.0
    return counts


def _study(db: Database, pid: int, date: dt.date, tag: str, uid: str | None = None) -> int:
    counts = _counts()
    meta = ScanMeta(source_format="dicom", study_date=date, study_instance_uid=uid)
    return store_study(
        db,
        patient_id=pid,
        scan=Scan(views={"ANT": counts, "POST": counts.copy()}, meta=meta),
        source_name=f"{tag}.dcm",
        source_sha256=hashlib.sha256(tag.encode()).hexdigest(),
    ).study_id


def _analysis(db: Database, study_id: int, ant: np.ndarray, version: str) -> int:
    lesions = [
        LesionRecord(
            "ANT",
            s.component,
            s.area_px,
            s.area_px * 0.0529,
            2.0,
            "spine",
            s.centroid_row,
            s.centroid_col,
        )
        for s in lesion_components(ant)[1]
    ]
    return store_analysis(
        db,
        study_id=study_id,
        masks={"ANT": ant, "POST": np.zeros(SHAPE, np.uint8)},
        lesions=lesions,
        account="test",
        analysis=AnalysisRecord(
            model_version=version,
            device="cpu",
            quality="ok",
            weights_sha256="ab" * 32,
            metastasis_probability=0.9,
            bstbi=0.1,
            hotspots=len(lesions),
        ),
    )


def _register_versions(db: Database) -> None:
    register_model(db, version=OTHER, path="/models/shipped", kind="shipped", parent=None,
                   weights_sha256="cd" * 32, card={}, account=SYSTEM_ACCOUNT)  # fmt: skip
    register_model(db, version=ACTIVE, path="/models/centre", kind="candidate", parent=OTHER,
                   weights_sha256="ef" * 32, card={}, account="dr.lee")  # fmt: skip
    promote(db, ACTIVE, "dr.lee")


@pytest.fixture
def case(db_file: Path) -> dict[str, Any]:
    """The stored patient, with the later study's edits made through the review workflow."""
    with open_db(db_file) as db:
        _register_versions(db)
        pid = add_patient(db, pseudonym="P-edits", sex="F", birth_year=1950)
        baseline = _study(db, pid, dt.date(2024, 1, 10), "baseline")
        later = _study(db, pid, dt.date(2024, 6, 10), "later", uid=STUDY_UID)
        only_big = np.zeros(SHAPE, np.uint8)
        only_big[BIG] = 1
        only_big[BLADDER] = LABEL_BLADDER
        base_aid = _analysis(db, baseline, only_big, ACTIVE)
        model = only_big.copy()
        model[SMALL] = 1
        shown = _analysis(db, later, model, ACTIVE)
        newer = _analysis(db, later, np.zeros(SHAPE, np.uint8), OTHER)  # newer, other version
        data = study_with_masks(db, later, analysis_id=shown)
        images = study_images(data["study"], data["views"], data["masks"])
        for action, where in (("erase", SMALL), ("bladder", PATCH)):
            edit_mask(db, analysis=data["analysis"], images=images, masks=data["masks"],
                      view="ANT", action=action, pixels=_at(where), account="dr.lee")  # fmt: skip
    expected = model.copy()
    expected[SMALL] = 0
    expected[PATCH] = LABEL_BLADDER
    return {
        "pid": pid, "baseline": baseline, "later": later, "base_aid": base_aid,
        "shown": shown, "newer": newer, "model": model, "expected": expected,
    }  # fmt: skip


def _tile(mask: np.ndarray) -> np.ndarray:
    """The ANT overlay picture of the later study drawn with ``mask``, as the pages draw it."""
    display = stored_display_images({"ANT": _counts()})[("ANT", 1)]
    return overlay_rgb(display, mask, OVERLAY_OPACITY)


class FakePacs:
    """Stands in for :class:`workflow.pacs.dicomweb.PacsClient`: keeps what it is sent."""

    url = "http://pacs.test/dicom-web"

    def __init__(self) -> None:
        self.sent: list[Dataset] = []

    def first_instance_metadata(
        self, study_uid: str, sop_instance_uid: str | None = None
    ) -> Dataset:
        assert study_uid == STUDY_UID
        ds = Dataset()
        for keyword, value in SOURCE.items():
            setattr(ds, keyword, value)
        return ds

    def store(self, datasets: list[Dataset]) -> None:
        self.sent.extend(datasets)


# --- which analysis, and its edits ---------------------------------------------------


def test_the_analysis_of_the_version_in_use_is_opened_with_its_edits(
    db_file: Path, case: dict[str, Any]
) -> None:
    with open_db(db_file) as db:
        data = study_with_masks(db, case["later"])
        (row,) = [r for r in patient_time_series(db, case["pid"]) if r["study_id"] == case["later"]]
        newer = study_with_masks(db, case["later"], analysis_id=case["newer"])
        same = annotations.mask_edits(db, case["shown"])
        with pytest.raises(ValueError, match=f"analysis_id {case['base_aid']}"):
            study_with_masks(db, case["later"], analysis_id=case["base_aid"])
    assert data["analysis"]["id"] == case["shown"] == row["analysis_id"]
    assert data["analysis"]["model_version"] == ACTIVE
    assert [(e["action"], e["account"], e["undone"]) for e in data["mask_edits"]] == [
        ("erase", "dr.lee", False),
        ("bladder", "dr.lee", False),
    ]
    # the same edits, in the same order, as the review's own reading gives them
    assert [e["id"] for e in data["mask_edits"]] == [e["id"] for e in same]
    assert all(
        np.array_equal(a["pixels"], b["pixels"])
        for a, b in zip(data["mask_edits"], same, strict=True)
    )
    assert np.array_equal(data["mask_edits"][0]["pixels"], _at(SMALL))
    # any analysis can still be opened, with its own (no) edits
    assert newer["analysis"]["model_version"] == OTHER and newer["mask_edits"] == []


def test_an_undone_edit_is_left_out(db_file: Path, case: dict[str, Any]) -> None:
    with open_db(db_file) as db:
        annotations.undo_last_change(db, case["shown"], "dr.lee")  # the bladder patch
        data = study_with_masks(db, case["later"])
    assert [e["action"] for e in data["mask_edits"]] == ["erase"]
    assert (reviewed_masks(data)["ANT"][PATCH] == 0).all()


# --- the patient record ---------------------------------------------------------------


def test_the_patient_records_masks_and_lesions_follow_the_edits(
    db_file: Path, case: dict[str, Any]
) -> None:
    with open_db(db_file) as db:
        data = study_with_masks(db, case["later"])
    masks = reviewed_masks(data)
    assert np.array_equal(masks["ANT"], case["expected"])
    assert not masks["POST"].any()
    # the model's own masks are untouched; without the edits the picture would differ
    assert np.array_equal(data["masks"]["ANT"], case["model"])
    assert not np.array_equal(reviewed_masks({**data, "mask_edits": []})["ANT"], masks["ANT"])
    # the erased lesion (SMALL, component 2) no longer counts; BIG keeps its figures
    big, small = lesions_after_edits(data)
    assert (big["component"], big["status"], big["edited"]) == (1, "model", False)
    assert (small["component"], small["status"], small["edited"]) == (2, "removed", True)
    assert all(les["status"] == "model" for les in data["lesions"])  # the rows as stored


def test_a_lesion_erased_in_part_is_measured_on_what_is_left(
    db_file: Path, case: dict[str, Any]
) -> None:
    with open_db(db_file) as db:
        data = study_with_masks(db, case["later"])
    half = np.zeros(SHAPE, bool)
    half[300:303, 100:106] = True  # the top half of BIG
    edits = [*data["mask_edits"], {"view": "ANT", "action": "erase", "pixels": half}]
    big = next(les for les in lesions_after_edits({**data, "mask_edits": edits}) if les["edited"]
               and les["status"] != "removed")  # fmt: skip
    stored = next(les for les in data["lesions"] if les["id"] == big["id"])
    assert big["area_px"] == 18 and stored["area_px"] == 36
    assert big["area_cm2"] == pytest.approx(stored["area_cm2"] / 2)
    assert big["centroid_row"] == pytest.approx(304.0)


# --- the report ---------------------------------------------------------------------


def test_the_reports_pictures_show_the_edits_and_count_no_erased_lesion_as_new(
    db_file: Path, case: dict[str, Any]
) -> None:
    with open_db(db_file) as db:
        (row,) = patient_overview(db)
        record = load_patient(db, patient_info(row))
        pictures = report_pictures(db, record)
    _, latest = pictures
    assert latest.caption.startswith("Latest 2024-06-10")
    # SMALL would be a new lesion against the baseline; the physician erased it
    assert "0 new lesion(s)" in latest.caption
    assert np.array_equal(latest.rgb[:, :COLS], _tile(case["expected"]))
    assert not np.array_equal(latest.rgb[:, :COLS], _tile(case["model"]))
    # the trajectory's figures are those of the edited analysis of the version in use
    (point,) = [p for p in record.studies if p.study_id == case["later"]]
    assert point.hotspots == 1


def test_a_new_lesion_erased_in_part_is_ringed_where_it_is_left(
    db_file: Path, case: dict[str, Any]
) -> None:
    with open_db(db_file) as db:
        baseline = study_with_masks(db, case["baseline"])
        later = study_with_masks(db, case["later"])
    # instead of all of SMALL, the physician erased its top half: still new, but smaller
    top, bottom = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    top[520:522, 150:154], bottom[522:524, 150:154] = True, True
    edits = [{"view": "ANT", "action": "erase", "pixels": top}]
    regions, n_new = new_lesion_regions(baseline, {**later, "mask_edits": edits})
    assert n_new == 1 and np.array_equal(regions["ANT"], bottom)
    # unedited, all of SMALL is ringed
    regions, _ = new_lesion_regions(baseline, {**later, "mask_edits": []})
    assert np.array_equal(regions["ANT"], _at(SMALL))
    picture = study_picture({**later, "mask_edits": edits}, highlight={"ANT": bottom})
    assert not np.array_equal(picture[:, :COLS], _tile(case["model"]))


# --- what is sent to the PACS ---------------------------------------------------------


def test_the_overlays_and_figures_sent_to_the_pacs_follow_the_edits(
    db_file: Path, case: dict[str, Any]
) -> None:
    client = FakePacs()
    with open_db(db_file) as db:
        data = study_with_masks(db, case["later"])
        overlays = overlay_pictures(data)
        summary = result_summary(db, data)
        sent = send_results(db, client, case["later"], account="dr.lee")
    assert np.array_equal(overlays["ANT"], _tile(case["expected"]))
    assert sent.analysis_id == case["shown"]
    ant, _, report = client.sent
    assert ant.Modality == "OT" and report.Modality == "SR"
    pixels = np.frombuffer(ant.PixelData, np.uint8).reshape(int(ant.Rows), int(ant.Columns), 3)
    assert np.array_equal(pixels[-ROWS:], _tile(case["expected"]))  # under the caption band
    # the erased lesion is reported removed, with why; the edit's author reviewed it
    removed = [les for les in summary.lesions if les.status == "removed"]
    assert [(les.removal_reason, les.area_cm2 > 0) for les in removed] == [
        (EDITED_AWAY_REASON, True)
    ]
    assert summary.hotspots == 1 and summary.reviewed_by == "dr.lee"
    assert summary.model_version == ACTIVE
    texts: list[str] = []
    report.walk(lambda _, el: texts.append(str(el.value)) if el.keyword == "TextValue" else None)
    assert EDITED_AWAY_REASON in texts
