"""Undo: the newest physician change of an analysis, whichever kind, newest first,
each undo audited in words, the burden stored with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlite_utils import Database

from core.auth import AccessDenied
from core.burden.lesion_review import burden, model_burden
from db.accounts import create_account
from db.annotations import UNDO_ACTION, last_change, mask_edits, undo_last_change
from db.connection import open_db
from db.queries import lesion_history, study_with_masks
from tests.test_mask_edits import BIG, BLADDER, SMALL, pixels_at, small_analysis
from workflow.review_changes import draw_lesion, edit_mask, save_review, undo_change


def _undo_rows(db: Database) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT account, entity, before_json, after_json FROM audit_log WHERE action = ? "
        "ORDER BY id",
        [UNDO_ACTION],
    ).fetchall()
    return [
        {"account": a, "entity": e, "before": json.loads(b), "after": json.loads(c)}
        for a, e, b, c in rows
    ]


def _stored(db: Database, case: dict[str, Any]) -> dict[str, Any]:
    return study_with_masks(db, case["study_id"])


def _big_lesion_id(case: dict[str, Any]) -> int:
    return next(int(les["id"]) for les in case["lesions"] if les["area_px"] == 16)


def test_undo_walks_back_every_kind_of_change_newest_first(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        aid = int(case["analysis"]["id"])
        kw: dict[str, Any] = {
            "analysis": case["analysis"],
            "images": case["images"],
            "masks": case["masks"],
            "account": "dr.lee",
        }
        model = model_burden(case["images"], case["masks"], case["lesions"])
        big = _big_lesion_id(case)
        # 1. untick the big lesion, 2. draw a lesion, 3. erase the small one
        save_review(db, **kw, lesions=case["lesions"], changes={big: "removed"}, reason="fracture")
        drawn = pixels_at((slice(600, 603), slice(110, 113)))
        drew = draw_lesion(db, **kw, view="POST", drawn=drawn)
        erased = edit_mask(db, **kw, view="ANT", action="erase", pixels=pixels_at(SMALL))
        assert erased.burden.hotspots == 1  # only the drawn POST lesion is left
        assert last_change(db, aid)["what"] == "erased part of a mark on ANT (4 pixels)"

        third = undo_change(db, **kw)
        assert third.what == "erased part of a mark on ANT (4 pixels)"
        assert mask_edits(db, aid) == [] and len(mask_edits(db, aid, include_undone=True)) == 1
        assert third.burden.scan_bstbi == pytest.approx(drew.burden.scan_bstbi)

        second = undo_change(db, **kw)
        assert second.what == drew.what == "drew POST lesion 1"
        drawn_row = next(les for les in _stored(db, case)["lesions"] if les["drawn"] is not None)
        assert drawn_row["status"] == "removed"

        first = undo_change(db, **kw)
        assert first.what == "excluded ANT lesion 1 (fracture)"
        stored = _stored(db, case)
        assert next(les for les in stored["lesions"] if les["id"] == big)["status"] == "model"
        # Back to the model's own figures, exactly, and stored so.
        assert first.burden.per_image == model.per_image
        assert stored["analysis"]["bstbi"] == model.scan_bstbi
        assert stored["analysis"]["hotspots"] == model.hotspots == 2

        assert last_change(db, aid) is None
        with pytest.raises(ValueError, match="no change left to undo"):
            undo_change(db, **kw)
        undos = _undo_rows(db)
        history = lesion_history(db, [big])[big]
    assert [u["after"]["what"] for u in undos] == [third.what, second.what, first.what]
    assert [u["entity"] for u in undos] == ["mask_edit", "lesion", "lesion"]
    assert undos[2]["before"] == {"status": "removed"}
    assert undos[2]["after"]["status"] == "model" and undos[0]["account"] == "dr.lee"
    # The lesion's history shows the undo as a change back, with its words as the reason.
    assert [(h["before"], h["after"], h["reason"]) for h in history] == [
        ("model", "removed", "fracture"),
        ("removed", "model", "undo: excluded ANT lesion 1 (fracture)"),
    ]


def test_undoing_a_tick_again_removes_the_lesion_again(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        big = _big_lesion_id(case)
        kw: dict[str, Any] = {"images": case["images"], "masks": case["masks"]}
        save_review(
            db,
            analysis=case["analysis"],
            **kw,
            lesions=case["lesions"],
            changes={big: "removed"},
            reason="degenerative joint",
            account="dr.lee",
        )
        lesions = _stored(db, case)["lesions"]
        save_review(
            db,
            analysis=case["analysis"],
            **kw,
            lesions=lesions,
            changes={big: "model"},
            reason="",
            account="dr.lee",
        )
        what = undo_last_change(db, int(case["analysis"]["id"]), "dr.kim")
        # undo_last_change alone stores no burden: the workflow's undo_change does
        stored = _stored(db, case)
    assert what == "included ANT lesion 1 again"
    assert next(les for les in stored["lesions"] if les["id"] == big)["status"] == "removed"
    after = burden(case["images"], case["masks"], stored["lesions"])
    assert after.hotspots == 1


def test_an_undo_is_not_itself_undone_and_other_analyses_are_untouched(db_file: Path) -> None:
    with open_db(db_file) as db:
        one = small_analysis(db, tag="one")
        two = small_analysis(db, tag="two")
        for case in (one, two):
            edit_mask(
                db,
                analysis=case["analysis"],
                images=case["images"],
                masks=case["masks"],
                view="ANT",
                action="bladder",
                pixels=pixels_at(BIG),
                account="dr.lee",
            )
        undo_last_change(db, int(one["analysis"]["id"]), "dr.lee")
        assert last_change(db, int(one["analysis"]["id"])) is None
        with pytest.raises(ValueError, match="no change left"):
            undo_last_change(db, int(one["analysis"]["id"]), "dr.lee")
        assert len(mask_edits(db, int(two["analysis"]["id"]))) == 1
        with pytest.raises(ValueError, match="does not exist"):
            undo_last_change(db, 999, "dr.lee")


def test_a_viewer_may_not_undo(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        edit_mask(
            db,
            analysis=case["analysis"],
            images=case["images"],
            masks=case["masks"],
            view="ANT",
            action="erase_bladder",
            pixels=pixels_at(BLADDER),
            account="dr.lee",
        )
        create_account(db, username="boss", password="long enough 1", role="admin")
        create_account(db, username="kim", password="long enough 1", role="viewer")
        with pytest.raises(AccessDenied, match="may not review lesions"):
            undo_last_change(db, int(case["analysis"]["id"]), "kim")
        assert len(mask_edits(db, int(case["analysis"]["id"]))) == 1
        assert undo_last_change(db, int(case["analysis"]["id"]), "boss") == (
            "erased bladder on ANT (100 pixels)"
        )
        assert np.array_equal(
            study_with_masks(db, case["study_id"])["masks"]["ANT"], case["masks"]["ANT"]
        )
