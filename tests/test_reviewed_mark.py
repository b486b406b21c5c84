"""The reviewed mark: who marked a study reviewed, when, and the physician's scan label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.auth import AccessDenied
from db.accounts import create_account
from db.annotations import mark_reviewed, review_mark, reviewed_analyses, unmark_reviewed
from db.connection import open_db
from db.queries import study_with_masks
from db.store import AnalysisRecord, store_analysis
from tests.test_mask_edits import SMALL, pixels_at, small_analysis
from workflow.review_changes import edit_mask, mark_study_reviewed


def test_marking_and_unmarking_is_stored_and_audited(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        aid = int(case["analysis"]["id"])
        assert review_mark(db, aid) is None
        mark_reviewed(db, aid, metastasis=True, account="dr.lee")
        first = review_mark(db, aid)
        mark_reviewed(db, aid, metastasis=False, account="dr.kim")  # a second opinion replaces it
        second = review_mark(db, aid)
        unmark_reviewed(db, aid, "dr.kim")
        unmark_reviewed(db, aid, "dr.kim")  # already unmarked: nothing to do, nothing audited
        gone = review_mark(db, aid)
        audit = db.execute(
            "SELECT account, action, before_json, after_json FROM audit_log "
            "WHERE entity = 'analysis' AND action LIKE '%reviewed' ORDER BY id"
        ).fetchall()
    assert first is not None and second is not None and gone is None
    assert (first["by"], first["metastasis"]) == ("dr.lee", True)
    assert first["at"].endswith("Z") and len(first["at"]) == len("2024-01-02T03:04:05.678Z")
    assert (second["by"], second["metastasis"]) == ("dr.kim", False)
    assert [(who, action) for who, action, _, _ in audit] == [
        ("dr.lee", "mark_reviewed"),
        ("dr.kim", "mark_reviewed"),
        ("dr.kim", "unmark_reviewed"),
    ]
    assert json.loads(audit[1][2])["reviewed_by"] == "dr.lee"
    assert json.loads(audit[2][3]) == {
        "reviewed_at": None,
        "reviewed_by": None,
        "reviewed_metastasis": None,
    }


def test_the_store_refuses_a_viewer_an_unknown_analysis_and_a_non_label(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        aid = int(case["analysis"]["id"])
        with pytest.raises(ValueError, match="does not exist"):
            mark_reviewed(db, aid + 5, metastasis=True, account="dr.lee")
        with pytest.raises(ValueError, match="does not exist"):
            review_mark(db, aid + 5)
        with pytest.raises(ValueError, match="metastasis must be True or False"):
            mark_reviewed(db, aid, metastasis="yes", account="dr.lee")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="account"):
            mark_reviewed(db, aid, metastasis=True, account="")
        create_account(db, username="boss", password="long enough 1", role="admin")
        create_account(db, username="kim", password="long enough 1", role="viewer")
        with pytest.raises(AccessDenied, match="may not review lesions"):
            mark_reviewed(db, aid, metastasis=True, account="kim")
        mark_reviewed(db, aid, metastasis=True, account="boss")
        with pytest.raises(AccessDenied):
            unmark_reviewed(db, aid, "kim")
        assert review_mark(db, aid) is not None


def test_marking_reviewed_stores_the_burden_of_the_review_marked(db_file: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        kw = {"analysis": case["analysis"], "images": case["images"], "masks": case["masks"]}
        edit = edit_mask(
            db, **kw, view="ANT", action="erase", pixels=pixels_at(SMALL), account="dr.lee"
        )
        event = mark_study_reviewed(db, **kw, metastasis=True, account="dr.lee")
        stored = study_with_masks(db, case["study_id"])["analysis"]
    assert event.what == "marked reviewed (metastasis)" and event.stored
    assert event.burden.scan_bstbi == edit.burden.scan_bstbi == stored["bstbi"]
    assert stored["reviewed_by"] == "dr.lee" and stored["reviewed_metastasis"] == 1


def test_the_newest_reviewed_analysis_of_each_study_is_the_one_listed(db_file: Path) -> None:
    with open_db(db_file) as db:
        one = small_analysis(db, tag="one")
        two = small_analysis(db, tag="two")
        first = int(one["analysis"]["id"])
        mark_reviewed(db, first, metastasis=True, account="dr.lee")
        # a newer analysis of the same study, not reviewed: the reviewed one stays listed
        newer = store_analysis(
            db,
            study_id=one["study_id"],
            masks=one["masks"],
            lesions=[],
            account="test",
            analysis=AnalysisRecord(model_version="test-2", device="cpu", quality="ok"),
        )
        listed = reviewed_analyses(db)
        mark_reviewed(db, newer, metastasis=False, account="dr.lee")
        relisted = reviewed_analyses(db)
    assert [r["analysis_id"] for r in listed] == [first]
    row = listed[0]
    assert row["study_id"] == one["study_id"] and row["pseudonym"] == "P-one"
    assert row["reviewed_metastasis"] is True and row["birth_year"] == 1950
    assert "name" not in row and "external_id" not in row
    assert [(r["analysis_id"], r["reviewed_metastasis"]) for r in relisted] == [(newer, False)]
    assert two["study_id"] not in [r["study_id"] for r in relisted]
