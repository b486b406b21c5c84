"""The review page: exclude a lesion, see BSTBI recomputed, saved with who, undone exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import numpy as np
from streamlit.testing.v1 import AppTest

from core.config import LABEL_METASTASIS
from db.connection import open_db
from db.queries import patient_overview, patient_time_series, study_with_masks
from db.store import AnalysisRecord, LesionRecord, add_drawn_lesion, store_analysis
from ui.common import Keys, account
from ui.review_panel import EXCLUDED_RGB, body_rows, review_picture

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "review.py")
STUDY_LABEL = "Analysed study (latest first)"


def _busiest_study(db_file: Path) -> tuple[int, int]:
    """(patient id, study id) of the analysed study with the most hotspots."""
    with open_db(db_file) as db:
        rows = [
            (s["hotspots"] or 0, cast(int, p["id"]), int(s["study_id"]))
            for p in patient_overview(db)
            for s in patient_time_series(db, cast(int, p["id"]))
            if s["analysis_id"]
        ]
    hotspots, patient_id, study_id = max(rows)
    assert hotspots >= 2
    return patient_id, study_id


def _open(patient_id: int, study_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    next(s for s in at.selectbox if s.label == "Patient").select(patient_id).run()
    next(s for s in at.selectbox if s.label == STUDY_LABEL).select(study_id).run()
    assert not at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    return str(next(m for m in at.metric if m.label.startswith(label)).value)


def _tick(at: AppTest, row: int, include: bool) -> None:
    """Tick or untick one row of the lesion table, as the browser's edit would."""
    key = at.data_editor[0].key
    assert key is not None
    at.session_state[key] = {
        "edited_rows": {row: {"include": include}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception


def _study(db_file: Path, study_id: int) -> dict[str, Any]:
    with open_db(db_file) as db:
        return study_with_masks(db, study_id)


def _audit(db_file: Path, entity: str, entity_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with open_db(db_file) as db:
        rows = db.execute(
            "SELECT account, action, after_json FROM audit_log "
            "WHERE entity = ? AND entity_id = ? ORDER BY id",
            [entity, entity_id],
        ).fetchall()
    return [(who, action, json.loads(after)) for who, action, after in rows]


def _largest_lesion_row(at: AppTest) -> tuple[int, int]:
    """(table row, lesion id) of the largest lesion shown."""
    table = at.data_editor[0].value
    row = int(np.argmax(table["area_cm2"].to_numpy()))
    return row, int(table.index[row])


def test_review_page_renders_on_the_truth_store(truth_store: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert not at.error
    # The latest analysed study of the first patient, its lesions in the table.
    study_id = next(s for s in at.selectbox if s.label == STUDY_LABEL).value
    with open_db(truth_store) as db:
        first = cast(int, patient_overview(db)[0]["id"])
        analysed = [s for s in patient_time_series(db, first) if s["analysis_id"]]
    assert at.selectbox[0].value == first
    assert study_id == analysed[-1]["study_id"]
    data = _study(truth_store, study_id)
    assert len(at.data_editor[0].value) == len(data["lesions"])
    assert _metric(at, "BSTBI, model") == f"{data['analysis']['bstbi']:.4f}"
    assert _metric(at, "BSTBI, reviewed") == _metric(at, "BSTBI, model")
    assert len(at.get("image")) == 2  # ANT and POST


def test_unticking_a_lesion_lowers_bstbi_and_saves_it_with_the_account(
    truth_store: Path,
) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    at = _open(patient_id, study_id)
    before = float(_metric(at, "BSTBI, reviewed"))
    row, lesion_id = _largest_lesion_row(at)

    _tick(at, row, include=False)

    after = float(_metric(at, "BSTBI, reviewed"))
    assert after < before
    assert float(_metric(at, "BSTBI, model")) == before  # the model's figure stays beside it
    assert f"{before:.4f} -> {after:.4f}" in at.success[0].value
    data = _study(truth_store, study_id)
    lesion = next(les for les in data["lesions"] if les["id"] == lesion_id)
    assert lesion["status"] == "removed"
    assert f"{data['analysis']['bstbi']:.4f}" == f"{after:.4f}"
    who, action, change = _audit(truth_store, "lesion", lesion_id)[-1]
    assert (who, action) == (account(), "set_lesion_status")
    assert change == {"status": "removed", "reason": "fracture"}
    who, action, change = _audit(truth_store, "analysis", int(data["analysis"]["id"]))[-1]
    assert (who, action) == (account(), "update_burden")
    assert change["bstbi"] == data["analysis"]["bstbi"]
    table = at.data_editor[0].value
    assert not table.loc[lesion_id, "include"]
    assert table.loc[lesion_id, "reason"] == "fracture"


def test_ticking_the_lesion_again_restores_the_original_bstbi_exactly(
    truth_store: Path,
) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    original = _study(truth_store, study_id)["analysis"]
    at = _open(patient_id, study_id)
    shown = _metric(at, "BSTBI, reviewed")
    row, lesion_id = _largest_lesion_row(at)
    next(s for s in at.selectbox if s.label.startswith("Reason")).select("injection site").run()

    _tick(at, row, include=False)
    assert _metric(at, "BSTBI, reviewed") != shown
    _tick(at, row, include=True)

    assert _metric(at, "BSTBI, reviewed") == shown
    restored = _study(truth_store, study_id)
    assert restored["analysis"]["bstbi"] == original["bstbi"]
    assert restored["analysis"]["bstbi_images"] == original["bstbi_images"]
    assert restored["analysis"]["hotspots"] == original["hotspots"]
    assert next(les for les in restored["lesions"] if les["id"] == lesion_id)["status"] == "model"
    history = [
        (a, c["status"], c["reason"]) for _, a, c in _audit(truth_store, "lesion", lesion_id)
    ]
    assert history == [
        ("set_lesion_status", "removed", "injection site"),
        ("set_lesion_status", "model", "restored on review"),
    ]
    # The page shows that history for the highlighted (last changed) lesion.
    assert list(at.dataframe[-1].value["who"]) == [account(), account()]


def test_an_empty_store_shows_an_info_and_stops(db_file: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "No analysed study yet" in at.info[0].value
    assert not at.selectbox
    assert not at.data_editor


def test_an_unreliable_study_shows_its_verdict_and_stores_no_burden(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    data = _study(truth_store, study_id)
    fields = {f.name for f in dataclasses.fields(LesionRecord)}
    lesions = [
        LesionRecord(**{k: v for k, v in les.items() if k in fields}) for les in data["lesions"]
    ]
    reason = "Too few counts for a diagnostic scan."
    with open_db(truth_store) as db:
        store_analysis(
            db,
            study_id=study_id,
            analysis=AnalysisRecord(model_version="test", device="cpu", quality=reason),
            masks=data["masks"],
            lesions=lesions,
            account="test",
        )
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[Keys.STUDY_ID] = study_id  # as another page would open it
    at.run()
    assert not at.exception
    assert at.selectbox[0].value == patient_id
    assert reason in at.warning[0].value
    assert "not reliable" in at.warning[0].value

    row, lesion_id = _largest_lesion_row(at)
    _tick(at, row, include=False)

    stored = _study(truth_store, study_id)
    assert next(les for les in stored["lesions"] if les["id"] == lesion_id)["status"] == "removed"
    assert stored["analysis"]["bstbi"] is None
    assert "not stored" in at.success[0].value


def test_the_picture_rings_an_excluded_lesion_grey_and_keeps_kept_ones_red() -> None:
    display = np.full((20, 12), 200, np.uint8)
    display[4:7, 4:7] = 0  # a hot spot, excluded
    display[12:15, 4:7] = 0  # another, kept
    reviewed = np.zeros((20, 12), np.uint8)
    reviewed[12:15, 4:7] = LABEL_METASTASIS
    excluded = np.zeros((20, 12), bool)
    excluded[4:7, 4:7] = True

    rgb = review_picture(display, reviewed, excluded, [], opacity=1.0, scale=1)

    assert tuple(rgb[3, 5]) == EXCLUDED_RGB  # just outside the excluded lesion
    assert tuple(rgb[5, 5]) == (0, 0, 0)  # its own pixels untouched (not red)
    assert tuple(rgb[13, 5]) == (220, 30, 30)  # the kept lesion is red
    assert tuple(rgb[0, 0]) == (200, 200, 200)


def test_pictures_leave_out_the_blank_field_below_and_above_the_body() -> None:
    ant = np.full((30, 4), 255, np.uint8)
    ant[5:11, 1] = 100
    post = np.full((30, 4), 255, np.uint8)
    post[8:14, 2] = 0
    displays = {("ANT", 1): ant, ("POST", 1): post, ("ANT", 2): np.zeros((30, 4), np.uint8)}

    assert body_rows(displays, margin=2) == (3, 16)
    assert body_rows(displays, margin=20) == (0, 30)
    assert body_rows({("ANT", 1): np.full((30, 4), 255, np.uint8)}) == (0, 30)


def test_a_drawn_lesion_counts_until_it_is_unticked(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    data = _study(truth_store, study_id)
    drawn = np.zeros(data["masks"]["ANT"].shape, bool)
    drawn[300:306, 100:106] = True  # inside the body
    drawn &= data["masks"]["ANT"] == 0
    with open_db(truth_store) as db:
        lesion_id = add_drawn_lesion(
            db, analysis_id=int(data["analysis"]["id"]), view="ANT", drawn=drawn, account="test"
        )
    at = _open(patient_id, study_id)
    model = _metric(at, "BSTBI, model")
    assert float(_metric(at, "BSTBI, reviewed")) > float(model)
    table = at.data_editor[0].value
    assert table.loc[lesion_id, "status"] == "added"

    _tick(at, list(table.index).index(lesion_id), include=False)

    assert _metric(at, "BSTBI, reviewed") == model
    stored = _study(truth_store, study_id)
    assert next(les for les in stored["lesions"] if les["id"] == lesion_id)["status"] == "removed"
    assert f"{stored['analysis']['bstbi']:.4f}" == model
