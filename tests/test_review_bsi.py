"""A physician's review recomputes the Bone Scan Index, by hand-checkable numbers.

The skeleton maps are tiny: on both views a lumbar spine block and a left pelvis block
of 20 x 20 = 400 pixels each (enough spine and pelvis for a readable view). Their shares
of skeletal mass (docs/bsi.md): lumbar spine 8.3 x 0.33 / 100.1 %, left pelvis
(7.5 / 2) / 100.1 %. The model's masks:

============  ===============  ===============  ===========
region        ANT              POST             involvement
============  ===============  ===============  ===========
lumbar_spine  40 px = 0.10     100 px = 0.25    0.25
pelvis_left   200 px = 0.50    160 px = 0.40    0.50
============  ===============  ===============  ===========

BSI = 100 x (0.25 x 8.3 x 0.33 + 0.50 x 3.75) / 100.1 = 2.5572 %.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlite_utils import Database

from core.analysis import REGION_FROM_SKELETON, result_from_masks
from core.anatomy.regions import index_of
from core.burden.lesion_review import (
    lesion_components,
    model_burden,
    recompute_burden,
    study_images,
)
from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS
from core.imaging.display import display_images
from core.imaging.quality import QualityVerdict
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.queries import bsi_regions, patient_time_series, study_with_masks
from db.store import add_patient, store_study
from workflow.ingest import store_result
from workflow.review_changes import draw_lesion, edit_mask, save_review, undo_change

LUMBAR = (slice(500, 520), slice(118, 138))
PELVIS = (slice(600, 620), slice(140, 160))
#: Percent of skeletal mass of a fully involved region.
LUMBAR_PCT = 100 * 8.3 * 0.33 / 100.1
PELVIS_PCT = 100 * (7.5 / 2) / 100.1


def _bsi(lumbar: float, pelvis: float) -> float:
    """The BSI of these maps with the given involvements."""
    return lumbar * LUMBAR_PCT + pelvis * PELVIS_PCT


MODEL_BSI = _bsi(0.25, 0.50)


def _maps() -> dict[str, np.ndarray]:
    sk = np.zeros((ROWS, COLS), np.uint8)
    sk[LUMBAR] = index_of("lumbar_spine")
    sk[PELVIS] = index_of("pelvis_left")
    return {"ANT": sk, "POST": sk.copy()}


def _masks() -> dict[str, np.ndarray]:
    ant = np.zeros((ROWS, COLS), np.uint8)
    ant[500:502, 118:138] = LABEL_METASTASIS  # 40 px of lumbar spine: component 1
    ant[600:610, 140:160] = LABEL_METASTASIS  # 200 px of left pelvis: component 2
    ant[700:720, 100:150] = LABEL_BLADDER
    post = np.zeros((ROWS, COLS), np.uint8)
    post[500:505, 118:138] = LABEL_METASTASIS  # 100 px
    post[600:608, 140:160] = LABEL_METASTASIS  # 160 px
    return {"ANT": ant, "POST": post}


def _scan() -> Scan:
    """Counts with a body and hot bone, so the display images are ordinary."""
    views = {}
    for view, sk in _maps().items():
        counts = np.zeros((ROWS, COLS), np.float32)
        counts[50:1000, 60:196] = 20.0
        counts[sk > 0] = 80.0
        views[view] = counts
    return Scan(views=views, meta=ScanMeta(source_format="phantom", pixel_spacing_mm=(2.3, 2.3)))


def test_the_hand_computed_bsi_of_the_tiny_maps() -> None:
    assert pytest.approx(2.557193, abs=1e-6) == MODEL_BSI
    masks = _masks()
    displays = display_images(_scan())
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    out = recompute_burden(
        displays, masks, comps, set(), pixel_spacing_mm=(1, 1), skeletons=_maps()
    )
    assert out.bsi == pytest.approx(MODEL_BSI, abs=1e-12)
    assert out.bsi_regions == pytest.approx(
        {"lumbar_spine": 0.25 * LUMBAR_PCT, "pelvis_left": 0.5 * PELVIS_PCT}
    )
    assert out.bsi_involvement == pytest.approx({"lumbar_spine": 0.25, "pelvis_left": 0.5})


def test_removing_erasing_and_drawing_change_the_bsi_by_hand() -> None:
    masks, maps = _masks(), _maps()
    displays = display_images(_scan())
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    spacing = (1.0, 1.0)
    # ANT pelvis lesion removed: the pelvis keeps POST's 0.40
    removed = recompute_burden(
        displays, masks, comps, {("ANT", 2)}, pixel_spacing_mm=spacing, skeletons=maps
    )
    assert removed.bsi == pytest.approx(_bsi(0.25, 0.40), abs=1e-12)
    # POST lumbar lesion erased: the lumbar spine keeps ANT's 0.10
    erase = np.zeros((ROWS, COLS), bool)
    erase[495:510, 110:145] = True
    edits = [{"id": 1, "view": "POST", "action": "erase", "pixels": erase}]
    erased = recompute_burden(
        displays, masks, comps, set(), pixel_spacing_mm=spacing, edits=edits, skeletons=maps
    )
    assert erased.bsi == pytest.approx(_bsi(0.10, 0.50), abs=1e-12)
    # 100 px drawn on the ANT lumbar spine: 140 / 400 = 0.35 beats POST's 0.25
    drawn = np.zeros((ROWS, COLS), bool)
    drawn[510:515, 118:138] = True
    added = recompute_burden(
        displays, masks, comps, set(), {"ANT": drawn}, pixel_spacing_mm=spacing, skeletons=maps
    )
    assert added.bsi == pytest.approx(_bsi(0.35, 0.50), abs=1e-12)
    # a lesion drawn off the bone adds no BSI (it still adds burden)
    off = np.zeros((ROWS, COLS), bool)
    off[100:110, 70:80] = True
    outside = recompute_burden(
        displays, masks, comps, set(), {"ANT": off}, pixel_spacing_mm=spacing, skeletons=maps
    )
    assert outside.bsi == pytest.approx(MODEL_BSI, abs=1e-12)
    assert outside.hotspots == removed.hotspots + 2


def test_no_maps_no_bsi_and_a_map_needs_its_mask() -> None:
    masks = _masks()
    displays = display_images(_scan())
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    out = recompute_burden(displays, masks, comps, set(), pixel_spacing_mm=(1, 1))
    assert out.bsi is None and out.bsi_regions == {} and out.bsi_involvement == {}
    only_ant = recompute_burden(
        displays, masks, comps, set(), pixel_spacing_mm=(1, 1), skeletons={"ANT": _maps()["ANT"]}
    )
    assert only_ant.bsi == pytest.approx(_bsi(0.10, 0.50), abs=1e-12)
    with pytest.raises(ValueError, match="skeletons"):
        recompute_burden(
            {k: v for k, v in displays.items() if k[0] == "ANT"},
            {"ANT": masks["ANT"]},
            {"ANT": comps["ANT"]},
            set(),
            pixel_spacing_mm=(1, 1),
            skeletons=_maps(),
        )
    with pytest.raises(ValueError, match="ant_skeleton"):
        recompute_burden(
            displays,
            masks,
            comps,
            set(),
            pixel_spacing_mm=(1, 1),
            skeletons={"ANT": _maps()["ANT"].astype(np.int16)},
        )


# --- stored: each review event stores the BSI, undo gives the model's back ------------


def _stored(db: Database, *, ok: bool = True) -> dict[str, Any]:
    """Store the tiny case's analysis (result_from_masks) and read it back."""
    verdict = QualityVerdict(ok=ok, reason="ok" if ok else "no body in the field", code="ok")
    result = result_from_masks(
        _scan(),
        _masks(),
        {"metastasis": 0.9, "bladder": 0.9},
        skeletons=_maps(),
        verdict=verdict,
        model_version="hand",
    )
    assert result.raw_bsi == pytest.approx(MODEL_BSI, abs=1e-12)
    pid = add_patient(db, pseudonym="hand")
    sid = store_study(
        db,
        patient_id=pid,
        scan=_scan(),
        source_name="hand.dcm",
        source_sha256=hashlib.sha256(b"hand").hexdigest(),
    ).study_id
    store_result(db, sid, result, account="test")
    data = study_with_masks(db, sid)
    data["patient_id"] = pid
    return data


def _figures(db: Database, analysis_id: int) -> tuple[float | None, float | None, dict]:
    """The stored ``(bsi, raw_bsi, bsi_regions parsed)`` of an analysis."""
    bsi, raw, regions = db.execute(
        "SELECT bsi, raw_bsi, bsi_regions FROM analyses WHERE id = ?", [analysis_id]
    ).fetchone()
    return bsi, raw, bsi_regions(regions)


def test_review_events_store_the_bsi_and_undo_restores_the_models(db_file: Path) -> None:
    with open_db(db_file) as db:
        data = _stored(db)
        analysis, masks = data["analysis"], data["masks"]
        aid, stored_bsi = int(analysis["id"]), analysis["bsi"]
        assert stored_bsi == pytest.approx(MODEL_BSI, abs=1e-12)
        # the page's images without maps: the stored maps are used all the same
        images = study_images(data["study"], data["views"], masks)
        assert images.skeletons == {}
        with_maps = study_images(data["study"], data["views"], masks, data["skeletons"])
        model = model_burden(with_maps, masks, data["lesions"])
        assert model.bsi == stored_bsi  # the analysis and the review use one formula

        pelvis = next(les for les in data["lesions"] if les["view"] == "ANT"
                      and les["skeletal_region"] == "pelvis_left")  # fmt: skip
        assert (pelvis["side"], pelvis["region_source"]) == ("left", REGION_FROM_SKELETON)
        reviewed = save_review(db, analysis=analysis, images=images, masks=masks,
                               lesions=data["lesions"], changes={int(pelvis["id"]): "removed"},
                               reason="fracture", account="dr.x")  # fmt: skip
        assert reviewed.bsi == pytest.approx(_bsi(0.25, 0.40), abs=1e-12)
        bsi, raw, regions = _figures(db, aid)
        assert bsi == reviewed.bsi and raw == stored_bsi  # raw_bsi stays the model's
        percent = reviewed.bsi_regions["pelvis_left"]
        assert regions["pelvis_left"] == {"involvement": 0.4, "percent": percent}

        erase = np.zeros((ROWS, COLS), bool)
        erase[495:510, 110:145] = True
        edited = edit_mask(db, analysis=analysis, images=images, masks=masks, view="POST",
                           action="erase", pixels=erase, account="dr.x")  # fmt: skip
        assert edited.burden.bsi == pytest.approx(_bsi(0.10, 0.40), abs=1e-12)

        drawn = np.zeros((ROWS, COLS), bool)
        drawn[510:515, 118:138] = True
        made = draw_lesion(db, analysis=analysis, images=images, masks=masks, view="ANT",
                           drawn=drawn, account="dr.x")  # fmt: skip
        assert made.burden.bsi == pytest.approx(_bsi(0.35, 0.40), abs=1e-12)
        assert _figures(db, aid)[0] == made.burden.bsi
        lesion = db.execute(
            "SELECT skeletal_region, side, region_source FROM lesions WHERE id = ?",
            [made.lesion_id],
        ).fetchone()
        assert lesion == ("lumbar_spine", "mid", REGION_FROM_SKELETON)

        for _ in range(3):
            undo_change(db, analysis=analysis, images=images, masks=masks, account="dr.x")
        bsi, raw, regions = _figures(db, aid)
        (row,) = patient_time_series(db, data["patient_id"])
    # exactly the model's, not merely close: the same function on the same arrays
    assert bsi == stored_bsi and raw == stored_bsi and row["bsi"] == stored_bsi
    assert regions == data["analysis"]["bsi_regions"]


def test_an_unreliable_analysis_keeps_no_bsi_after_review(db_file: Path) -> None:
    with open_db(db_file) as db:
        data = _stored(db, ok=False)
        analysis, masks = data["analysis"], data["masks"]
        raw_model = analysis["raw_bsi"]
        assert analysis["bsi"] is None and raw_model == pytest.approx(MODEL_BSI, abs=1e-12)
        images = study_images(data["study"], data["views"], masks, data["skeletons"])
        erase = np.zeros((ROWS, COLS), bool)
        erase[495:510, 110:145] = True
        event = edit_mask(db, analysis=analysis, images=images, masks=masks, view="POST",
                          action="erase", pixels=erase, account="dr.x")  # fmt: skip
        bsi, raw, regions = _figures(db, int(analysis["id"]))
    assert not event.stored and event.burden.bsi == pytest.approx(_bsi(0.10, 0.50), abs=1e-12)
    assert bsi is None and raw == raw_model and regions == {}
