"""The review page's drawing panel, undo and reviewed mark, driven through Streamlit's AppTest.

Outside a browser the canvas component returns its default (an empty drawing); a test
draws by putting what the browser would send into the component's session state: the
canvas' RGBA picture as a PNG data URL.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.burden import lesion_review as rv
from db.annotations import mask_edits, review_mark
from db.connection import open_db
from tests.conftest import APP
from tests.test_page_login import add_account, sign_in
from tests.test_page_review import _busiest_study, _metric, _open, _study, _tick
from ui.common import Keys
from ui.review_panel import CANVAS_SCALE, ReviewKeys, body_rows


def _canvas(at: AppTest) -> Any:
    found = [c for c in at.get("bidi_component") if str(c.key).startswith(ReviewKeys.CANVAS)]
    assert len(found) == 1
    return found[0]


def _rows(db_file: Path, study_id: int) -> tuple[int, int]:
    data = _study(db_file, study_id)
    images = rv.study_images(data["study"], data["views"], data["masks"])
    return body_rows(images.displays)


def _draw(at: AppTest, rows: tuple[int, int], region: np.ndarray) -> None:
    """Send a drawing covering ``region`` (scan pixels of the view) as the browser would."""
    canvas = _canvas(at)
    shown = region[rows[0] : rows[1]]
    alpha = np.kron(shown, np.ones((CANVAS_SCALE, CANVAS_SCALE), np.uint8)) * 128
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[:, :, 0], rgba[:, :, 3] = 255, alpha
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    at.session_state[canvas.key] = {
        "drawing": {"raw": {"objects": [{"type": "Path"}]}, "data": url},
        "backgroundFit": None,
    }
    at.run()
    assert not at.exception


def _button(at: AppTest, start: str) -> Any:
    return next(b for b in at.button if b.label.startswith(start))


def _click(at: AppTest, start: str) -> None:
    _button(at, start).click().run()
    assert not at.exception


def test_the_canvas_shows_the_view_at_its_scale_and_nothing_to_save(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    at = _open(patient_id, study_id)
    top, bottom = _rows(truth_store, study_id)
    spec = json.loads(_canvas(at).proto.json)
    assert (spec["canvasWidth"], spec["canvasHeight"]) == (
        256 * CANVAS_SCALE,
        (bottom - top) * CANVAS_SCALE,
    )
    assert spec["backgroundImageURL"].startswith("data:image/png;base64,")
    assert spec["drawingMode"] == "polygon"
    assert _button(at, "Save").disabled
    assert _button(at, "Undo last change").disabled  # nothing changed yet
    assert any(m.value == "Not marked reviewed yet." for m in at.markdown)


def test_a_drawn_lesion_raises_bstbi_at_once_and_undo_takes_it_back(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    at = _open(patient_id, study_id)
    model = _metric(at, "BSTBI, model")
    rows = _rows(truth_store, study_id)
    masks = _study(truth_store, study_id)["masks"]
    region = np.zeros(masks["ANT"].shape, np.uint8)
    region[300:306, 100:106] = 1
    region &= masks["ANT"] == 0

    _draw(at, rows, region)
    assert not _button(at, "Save").disabled
    _click(at, "Save: draw a missed lesion")

    after = _metric(at, "BSTBI, reviewed")
    assert float(after) > float(model)
    assert _metric(at, "BSTBI, model") == model
    stored = _study(truth_store, study_id)
    drawn = [les for les in stored["lesions"] if les["drawn"] is not None]
    assert len(drawn) == 1 and drawn[0]["status"] == "added" and drawn[0]["view"] == "ANT"
    assert np.array_equal(drawn[0]["drawn"], region.astype(bool))
    # its figures as a model lesion has them: area, centroid, uptake, skeletal region
    assert drawn[0]["area_px"] == int(region.sum()) and drawn[0]["area_cm2"] > 0
    assert drawn[0]["centroid_row"] == pytest.approx(302.5)
    assert drawn[0]["uptake_ratio"] > 0 and drawn[0]["skeletal_region"]
    assert f"{stored['analysis']['bstbi']:.4f}" == after
    notice = at.success[0].value
    assert notice.startswith(f"Drew ANT lesion {drawn[0]['component']}: BSTBI {model} -> {after}")
    assert _button(at, "Save").disabled  # a fresh canvas after the save

    _click(at, "Undo last change")
    assert _metric(at, "BSTBI, reviewed") == model
    assert at.success[0].value.startswith(f"Undone: drew ANT lesion {drawn[0]['component']}")
    stored = _study(truth_store, study_id)
    assert next(les for les in stored["lesions"] if les["drawn"] is not None)["status"] == "removed"
    assert f"{stored['analysis']['bstbi']:.4f}" == model


def test_erasing_a_mark_lowers_the_hotspots_and_is_undone_exactly(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    original = _study(truth_store, study_id)
    at = _open(patient_id, study_id)
    spots = int(_metric(at, "Hotspots, reviewed"))
    shown = _metric(at, "BSTBI, reviewed")
    ant = original["masks"]["ANT"]
    labels, stats = rv.lesion_components(ant)
    biggest = max(stats, key=lambda s: s.area_px)
    next(r for r in at.radio if r.label == "Tool").set_value("Erase part of a mark").run()

    _draw(at, _rows(truth_store, study_id), (labels == biggest.component).astype(np.uint8))
    _click(at, "Save: erase part of a mark")

    assert int(_metric(at, "Hotspots, reviewed")) == spots - 1
    assert float(_metric(at, "BSTBI, reviewed")) < float(shown)
    with open_db(truth_store) as db:
        edits = mask_edits(db, int(original["analysis"]["id"]))
    assert [(e["view"], e["action"]) for e in edits] == [("ANT", "erase")]
    assert at.success[0].value.startswith(
        f"Erased part of a mark on ANT ({biggest.area_px} pixels)"
    )

    _click(at, "Undo last change")
    restored = _study(truth_store, study_id)
    assert _metric(at, "BSTBI, reviewed") == shown
    assert restored["analysis"]["bstbi"] == original["analysis"]["bstbi"]
    assert restored["analysis"]["hotspots"] == original["analysis"]["hotspots"]
    assert np.array_equal(restored["masks"]["ANT"], ant)  # the model's mask was never touched


def test_unticking_a_lesion_is_undoable_too(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    original = _study(truth_store, study_id)["analysis"]
    at = _open(patient_id, study_id)
    shown = _metric(at, "BSTBI, reviewed")
    table = at.data_editor[0].value
    row = int(np.argmax(table["area_cm2"].to_numpy()))
    _tick(at, row, include=False)
    assert _metric(at, "BSTBI, reviewed") != shown

    _click(at, "Undo last change")

    assert _metric(at, "BSTBI, reviewed") == shown
    assert "Undone: excluded" in at.success[0].value
    assert _study(truth_store, study_id)["analysis"]["bstbi"] == original["bstbi"]
    assert bool(at.data_editor[0].value.iloc[row]["include"])


def test_marking_the_study_reviewed_shows_who_and_when(truth_store: Path) -> None:
    patient_id, study_id = _busiest_study(truth_store)
    at = _open(patient_id, study_id)
    assert _button(at, "Mark this study reviewed").disabled  # the scan label comes first
    next(r for r in at.radio if r.label == "Physician's scan label").set_value("Metastasis").run()
    _click(at, "Mark this study reviewed")

    analysis_id = int(_study(truth_store, study_id)["analysis"]["id"])
    with open_db(truth_store) as db:
        mark = review_mark(db, analysis_id)
    assert mark is not None and mark["by"] == "demo" and mark["metastasis"] is True
    words = [m.value for m in at.markdown if m.value.startswith("Marked reviewed by demo")]
    assert words and words[0].endswith("UTC: metastasis.")
    assert at.success[0].value.startswith("Marked reviewed (metastasis)")

    _click(at, "Unmark reviewed")
    with open_db(truth_store) as db:
        assert review_mark(db, analysis_id) is None
    assert any(m.value == "Not marked reviewed yet." for m in at.markdown)


@pytest.mark.parametrize("role", ["viewer", "clinician"])
def test_a_viewer_sees_no_drawing_tools_and_no_buttons(truth_store: Path, role: str) -> None:
    add_account(truth_store, "kim", role)
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "kim")
    assert at.session_state[Keys.ROLE] == role
    at.switch_page("app_pages/review.py").run()
    assert not at.exception
    canvases = [c for c in at.get("bidi_component") if str(c.key).startswith(ReviewKeys.CANVAS)]
    labels = {b.label for b in at.main.button}
    marks = [m.value for m in at.markdown if "marked reviewed" in m.value.lower()]
    assert marks == ["Not marked reviewed yet."]
    if role == "viewer":
        assert not canvases and not labels
        assert not [r for r in at.radio if r.label in ("Tool", "Physician's scan label")]
    else:
        assert len(canvases) == 1
        assert {"Undo last change", "Mark this study reviewed"} <= labels
