"""Mask edits: erase a mark, mark or erase bladder; stored beside the model's masks,
applied in id order after the lesions, and counted in BSTBI, hotspots and lesion area."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlite_utils import Database

from core.auth import AccessDenied
from core.burden.lesion_review import (
    StudyImages,
    burden,
    lesion_components,
    recompute_burden,
    reviewed_masks,
    study_images,
)
from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.accounts import create_account
from db.annotations import add_mask_edit, analysis_review, mask_edits
from db.connection import open_db
from db.queries import study_with_masks
from db.store import AnalysisRecord, LesionRecord, add_patient, store_analysis, store_study
from workflow import review_changes
from workflow.review_changes import edit_mask, reviewed_masks_of

K = 5.0


# --- the core rule, by hand ----------------------------------------------------------


def _scene() -> tuple[dict[tuple[str, int], np.ndarray], dict[str, np.ndarray]]:
    """4x4 views. ANT: lesion 1 at (0,0) heat 100, lesion 2 at (3,3) heat 50, a
    background pixel (1,2) of heat 20, a bladder pixel (2,0) of heat 60. POST: blank."""
    ant = np.full((4, 4), 255, np.uint8)
    ant[0, 0], ant[3, 3], ant[1, 2], ant[2, 0] = 155, 205, 235, 195
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[3, 3] = 1
    mask[2, 0] = 2
    post = np.full((4, 4), 255, np.uint8)
    displays = {("ANT", 1): ant, ("ANT", 2): ant, ("POST", 1): post, ("POST", 2): post}
    return displays, {"ANT": mask, "POST": np.zeros((4, 4), np.uint8)}


def _at(*cells: tuple[int, int]) -> np.ndarray:
    out = np.zeros((4, 4), bool)
    for r, c in cells:
        out[r, c] = True
    return out


def _edit(action: str, *cells: tuple[int, int], view: str = "ANT", **kw: Any) -> dict[str, Any]:
    return {"view": view, "action": action, "pixels": _at(*cells), **kw}


def _ant_bstbi(edits: list[dict[str, Any]], added: dict[str, np.ndarray] | None = None) -> float:
    displays, masks = _scene()
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    out = recompute_burden(
        displays, masks, comps, set(), added, pixel_spacing_mm=(1.0, 1.0), edits=edits
    )
    return out.per_image[("ANT", 1)]


def test_each_edit_gives_the_hand_computed_bstbi() -> None:
    # No edit: S_L = 150, S_R - S_B = 230 - 60 = 170.
    assert _ant_bstbi([]) == pytest.approx(K * 150 / ((K - 1) * 150 + 170))
    # Erase lesion 2: S_L = 100, S_R - S_B = 170.
    assert _ant_bstbi([_edit("erase", (3, 3))]) == pytest.approx(K * 100 / ((K - 1) * 100 + 170))
    # Lesion 2 marked bladder: S_L = 100, S_B = 110, S_R - S_B = 120.
    assert _ant_bstbi([_edit("bladder", (3, 3))]) == pytest.approx(K * 100 / ((K - 1) * 100 + 120))
    # The bladder erased: S_L = 150, S_R - S_B = 230.
    assert _ant_bstbi([_edit("erase_bladder", (2, 0))]) == pytest.approx(
        K * 150 / ((K - 1) * 150 + 230)
    )


def test_erase_touches_only_metastasis_and_erase_bladder_only_bladder() -> None:
    _, masks = _scene()
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    everywhere = np.ones((4, 4), bool)
    erased = reviewed_masks(
        masks, comps, set(), None, [{"view": "ANT", "action": "erase", "pixels": everywhere}]
    )
    assert erased["ANT"].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]]
    unbladdered = reviewed_masks(
        masks,
        comps,
        set(),
        None,
        [{"view": "ANT", "action": "erase_bladder", "pixels": everywhere}],
    )
    assert (
        unbladdered["ANT"][2, 0] == 0 and unbladdered["ANT"][0, 0] == unbladdered["ANT"][3, 3] == 1
    )
    assert np.array_equal(unbladdered["POST"], masks["POST"])


def test_edits_apply_in_id_order_after_the_drawn_lesions() -> None:
    # bladder then erase_bladder on (3,3): background; the other way round: bladder.
    first = _ant_bstbi([_edit("erase_bladder", (3, 3), id=2), _edit("bladder", (3, 3), id=1)])
    assert first == pytest.approx(K * 100 / ((K - 1) * 100 + 170))
    second = _ant_bstbi([_edit("erase_bladder", (3, 3), id=1), _edit("bladder", (3, 3), id=2)])
    assert second == pytest.approx(K * 100 / ((K - 1) * 100 + 120))
    # A drawn lesion at (1,2) counts (S_L = 170) unless an edit erases it afterwards.
    drawn = {"ANT": _at((1, 2))}
    assert _ant_bstbi([], drawn) == pytest.approx(K * 170 / ((K - 1) * 170 + 170))
    assert _ant_bstbi([_edit("erase", (1, 2))], drawn) == pytest.approx(
        K * 150 / ((K - 1) * 150 + 170)
    )


def test_an_undone_edit_counts_for_nothing_and_the_model_masks_stay() -> None:
    displays, masks = _scene()
    original = {v: m.copy() for v, m in masks.items()}
    assert _ant_bstbi([_edit("erase", (0, 0), (3, 3), undone=True)]) == _ant_bstbi([])
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    out = recompute_burden(
        displays, masks, comps, set(), pixel_spacing_mm=(2.0, 3.0), edits=[_edit("erase", (0, 0))]
    )
    assert out.hotspots == 1 and out.lesion_area_cm2 == pytest.approx(0.06)
    assert all(np.array_equal(masks[v], original[v]) for v in masks)


def test_bad_edits_are_refused_by_name() -> None:
    _, masks = _scene()
    comps = {v: lesion_components(m)[0] for v, m in masks.items()}
    with pytest.raises(ValueError, match=r"edits\[0\]: action"):
        reviewed_masks(masks, comps, set(), None, [_edit("paint", (0, 0))])
    with pytest.raises(ValueError, match=r"edits\[0\]: view 'LAT'"):
        reviewed_masks(masks, comps, set(), None, [_edit("erase", (0, 0), view="LAT")])
    with pytest.raises(ValueError, match=r"edits\[1\] pixels must have shape"):
        bad = {"view": "ANT", "action": "erase", "pixels": np.ones((2, 2), bool)}
        reviewed_masks(masks, comps, set(), None, [_edit("erase", (0, 0)), bad])


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.uint8, (8, 6), elements=st.integers(0, 2)),
    arrays(np.uint8, (8, 6)),
    arrays(np.bool_, (8, 6)),
)
def test_erasing_never_raises_bstbi_and_bladder_paints_every_pixel(
    mask: np.ndarray, display: np.ndarray, under: np.ndarray
) -> None:
    displays = {("ANT", 1): display, ("ANT", 2): 255 - display}
    comps = {"ANT": lesion_components(mask)[0]}
    before = recompute_burden(displays, {"ANT": mask}, comps, set(), pixel_spacing_mm=(1, 1))
    erased = recompute_burden(
        displays,
        {"ANT": mask},
        comps,
        set(),
        pixel_spacing_mm=(1, 1),
        edits=[{"view": "ANT", "action": "erase", "pixels": under}],
    )
    assert all(erased.per_image[k] <= before.per_image[k] + 1e-12 for k in before.per_image)
    assert not (erased.masks["ANT"][under] == 1).any()
    painted = reviewed_masks(
        {"ANT": mask}, comps, set(), None, [{"view": "ANT", "action": "bladder", "pixels": under}]
    )
    assert (painted["ANT"][under] == 2).all()
    assert np.array_equal(painted["ANT"][~under], mask[~under])


# --- a small stored analysis (shared by the undo and reviewed-mark tests) ------------

#: Shape of the views and masks of :func:`small_analysis` (the canonical grid).
SHAPE = (ROWS, COLS)
#: Where :func:`small_analysis` puts its two ANT lesions and the bladder.
BIG = (slice(300, 304), slice(100, 104))
SMALL = (slice(500, 502), slice(150, 152))
BLADDER = (slice(800, 810), slice(120, 130))


def small_analysis(
    db: Database, *, tag: str = "a", quality: str = "ok", birth_year: int | None = 1950
) -> dict[str, Any]:
    """Store a patient, a study (a body with three hot spots) and an analysis with two
    ANT lesions (BIG, SMALL) and a bladder (BLADDER).

    Returns:
        ``{"analysis", "images", "masks", "lesions", "study_id"}`` as the review page has them.
    """
    pid = add_patient(
        db,
        pseudonym=f"P-{tag}",
        name=f"Name {tag}",
        external_id=f"X{tag}",
        sex="F",
        birth_year=birth_year,
    )
    counts = np.zeros(SHAPE, np.float32)
    counts[100:900, 70:190] = 30.0
    for where in (BIG, SMALL, BLADDER):
        counts[where] = 400.0
    scan = Scan(
        views={"ANT": counts, "POST": counts.copy()},
        meta=ScanMeta(source_format="dicom", study_date=dt.date(2024, 3, 1)),
    )
    study_id = store_study(
        db,
        patient_id=pid,
        scan=scan,
        source_name=f"{tag}.dcm",
        source_sha256=hashlib.sha256(tag.encode()).hexdigest(),
    ).study_id
    ant = np.zeros(SHAPE, np.uint8)
    ant[BIG] = ant[SMALL] = 1
    ant[BLADDER] = 2
    masks = {"ANT": ant, "POST": np.zeros(SHAPE, np.uint8)}
    lesions = [
        LesionRecord(
            "ANT",
            s.component,
            s.area_px,
            float(s.area_px),
            2.0,
            "spine",
            s.centroid_row,
            s.centroid_col,
        )
        for s in lesion_components(ant)[1]
    ]
    store_analysis(
        db,
        study_id=study_id,
        masks=masks,
        lesions=lesions,
        account="test",
        analysis=AnalysisRecord(model_version="test", device="cpu", quality=quality),
    )
    data = study_with_masks(db, study_id)
    return {
        "analysis": data["analysis"],
        "images": study_images(data["study"], data["views"], data["masks"]),
        "masks": data["masks"],
        "lesions": data["lesions"],
        "study_id": study_id,
    }


def pixels_at(where: tuple[slice, slice]) -> np.ndarray:
    """A bool mask of the canonical grid, True on ``where``."""
    out = np.zeros(SHAPE, bool)
    out[where] = True
    return out


def _images(case: dict[str, Any]) -> StudyImages:
    return case["images"]  # type: ignore[no-any-return]


def _audit(db: Database, action: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT account, entity, entity_id, after_json FROM audit_log WHERE action = ? ORDER BY id",
        [action],
    ).fetchall()
    return [
        {"account": a, "entity": e, "entity_id": i, "after": json.loads(j)} for a, e, i, j in rows
    ]


def test_a_mask_edit_is_stored_beside_the_model_mask_and_audited(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        aid = int(case["analysis"]["id"])
        pixels = np.zeros(SHAPE, bool)
        pixels[501, 150:152] = True
        edit_id = add_mask_edit(
            db, analysis_id=aid, view="ANT", action="erase", pixels=pixels, account="dr.lee"
        )
        stored = mask_edits(db, aid)
        model = study_with_masks(db, case["study_id"])["masks"]
        audit = _audit(db, "add_mask_edit")
    assert [(e["id"], e["view"], e["action"], e["account"], e["undone"]) for e in stored] == [
        (edit_id, "ANT", "erase", "dr.lee", False)
    ]
    assert stored[0]["pixels"].dtype == bool and np.array_equal(stored[0]["pixels"], pixels)
    assert np.array_equal(model["ANT"], case["masks"]["ANT"])  # the model's mask is untouched
    assert audit == [
        {
            "account": "dr.lee",
            "entity": "mask_edit",
            "entity_id": edit_id,
            "after": {"analysis_id": aid, "view": "ANT", "action": "erase", "pixels": 2},
        }
    ]


def test_the_store_refuses_bad_edits_and_a_viewer(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        aid = int(case["analysis"]["id"])
        one = np.zeros(SHAPE, bool)
        one[0, 0] = True
        for kwargs, message in [
            ({"view": "LAT"}, "view must be one of"),
            ({"action": "paint"}, "action must be one of"),
            ({"pixels": np.zeros(SHAPE, bool)}, "at least one pixel"),
            ({"pixels": np.ones((3, 3), bool)}, r"shape \(1024, 256\)"),
            ({"pixels": np.full(SHAPE, 2)}, "only 0 and 1"),
            ({"analysis_id": aid + 9}, "has no 'ANT' mask"),
            ({"account": " "}, "account"),
        ]:
            args: dict[str, Any] = {
                "analysis_id": aid,
                "view": "ANT",
                "action": "erase",
                "pixels": one,
                "account": "dr.lee",
                **kwargs,
            }
            with pytest.raises(ValueError, match=message):
                add_mask_edit(db, **args)
        create_account(db, username="boss", password="long enough 1", role="admin")
        create_account(db, username="kim", password="long enough 1", role="viewer")
        with pytest.raises(AccessDenied, match="may not review lesions"):
            add_mask_edit(
                db, analysis_id=aid, view="ANT", action="erase", pixels=one, account="kim"
            )
        assert mask_edits(db, aid, include_undone=True) == []


def test_an_edit_and_its_burden_are_one_event(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        aid = int(case["analysis"]["id"])
        before = burden(_images(case), case["masks"], case["lesions"])
        erase = pixels_at(SMALL)
        event = edit_mask(
            db,
            analysis=case["analysis"],
            images=_images(case),
            masks=case["masks"],
            view="ANT",
            action="erase",
            pixels=erase,
            account="dr.lee",
        )
        stored = study_with_masks(db, case["study_id"])["analysis"]
        reviewed = reviewed_masks_of(db, aid)
        state = analysis_review(db, aid)
    assert event.what == "erased part of a mark on ANT (4 pixels)" and event.stored
    assert before.hotspots == 2 and event.burden.hotspots == 1
    assert event.burden.scan_bstbi < before.scan_bstbi
    assert stored["bstbi"] == pytest.approx(event.burden.scan_bstbi)
    assert stored["hotspots"] == 1
    assert (reviewed["ANT"][SMALL] == 0).all() and (reviewed["ANT"][BIG] == 1).all()
    assert (reviewed["ANT"][BLADDER] == 2).all()
    assert np.array_equal(reviewed["ANT"], event.burden.masks["ANT"])
    assert len(state["edits"]) == 1 and state["analysis"]["id"] == aid


def test_a_failing_burden_update_rolls_the_edit_back(
    db_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise ValueError("the burden update failed")

    monkeypatch.setattr(review_changes, "update_analysis_burden", refuse)
    with open_db(db_file) as db:
        case = small_analysis(db)
        with pytest.raises(ValueError, match="burden update failed"):
            edit_mask(
                db,
                analysis=case["analysis"],
                images=_images(case),
                masks=case["masks"],
                view="ANT",
                action="erase",
                pixels=pixels_at(BIG),
                account="dr.lee",
            )
        assert mask_edits(db, int(case["analysis"]["id"]), include_undone=True) == []
        assert _audit(db, "add_mask_edit") == []


def test_an_unreliable_analysis_keeps_its_empty_burden(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db, quality="Too few counts.")
        bladder = pixels_at(SMALL)
        event = edit_mask(
            db,
            analysis=case["analysis"],
            images=_images(case),
            masks=case["masks"],
            view="ANT",
            action="bladder",
            pixels=bladder,
            account="dr.lee",
        )
        stored = study_with_masks(db, case["study_id"])["analysis"]
        assert len(mask_edits(db, int(case["analysis"]["id"]))) == 1
    assert not event.stored
    assert stored["bstbi"] is None and stored["hotspots"] is None
    assert (event.burden.masks["ANT"][SMALL] == 2).all() and event.burden.hotspots == 1
