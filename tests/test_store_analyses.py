from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from core.burden.lesion_review import lesion_components, recompute_burden
from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.queries import study_with_masks
from db.store import (
    AnalysisRecord,
    LesionRecord,
    add_drawn_lesion,
    add_patient,
    set_lesion_status,
    store_analysis,
    store_study,
    update_analysis_burden,
)


def _study(db: Database, tag: str = "a") -> int:
    pid = add_patient(db, pseudonym=f"P-{tag}", sex="M", birth_year=1955)
    scan = Scan(
        views={v: np.zeros((ROWS, COLS), np.float32) for v in ("ANT", "POST")},
        meta=ScanMeta(source_format="dicom", study_date=dt.date(2024, 1, 2)),
    )
    sha = hashlib.sha256(tag.encode()).hexdigest()
    return store_study(
        db, patient_id=pid, scan=scan, source_name=f"{tag}.dcm", source_sha256=sha
    ).study_id


def _masks() -> dict[str, np.ndarray]:
    ant = np.zeros((6, 4), np.uint8)
    ant[0, 0] = ant[5, 3] = 1
    ant[3, 1] = 2
    post = np.zeros((6, 4), np.uint8)
    post[2, 2] = 1
    return {"ANT": ant, "POST": post}


def _displays() -> dict[tuple[str, int], np.ndarray]:
    img = np.full((6, 4), 200, np.uint8)
    img[0, 0] = 0
    return {(v, lvl): img for v in ("ANT", "POST") for lvl in (1, 2)}


def _lesions(masks: dict[str, np.ndarray]) -> list[LesionRecord]:
    out = []
    for view, mask in masks.items():
        for s in lesion_components(mask)[1]:
            out.append(LesionRecord(view, s.component, s.area_px, s.area_px * 0.06, 2.5,
                                    "spine", s.centroid_row, s.centroid_col))  # fmt: skip
    return out


def _record(**kw: object) -> AnalysisRecord:
    base: dict[str, object] = dict(
        model_version="unet-1", weights_sha256="ab" * 32, device="cpu", quality="ok",
        timings_s={"segment": 0.25}, metastasis_probability=0.8, bladder_probability=0.9,
        bstbi_images={("ANT", 1): 0.2, ("ANT", 2): 0.3, ("POST", 1): 0.1, ("POST", 2): 0.0},
        bstbi=0.15, hotspots=3, lesion_area_cm2=0.18,
    )  # fmt: skip
    base.update(kw)
    return AnalysisRecord(**base)  # type: ignore[arg-type]


def _count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _audit(db: Database) -> list[tuple[str, str, int, object, object]]:
    rows = db.execute(
        "SELECT action, entity, entity_id, before_json, after_json FROM audit_log ORDER BY id"
    ).fetchall()
    return [
        (a, e, i, None if b is None else json.loads(b), None if c is None else json.loads(c))
        for a, e, i, b, c in rows
    ]


def test_an_analysis_is_stored_and_read_back(db_file: Path) -> None:
    masks = _masks()
    with open_db(db_file) as db:
        sid = _study(db)
        aid = store_analysis(db, study_id=sid, analysis=_record(), masks=masks,
                             lesions=_lesions(masks), account="dr.x")  # fmt: skip
        got = study_with_masks(db, sid)
        audit = _audit(db)
    assert got["study"]["id"] == sid and set(got["views"]) == {"ANT", "POST"}
    a = got["analysis"]
    assert a["id"] == aid and a["quality"] == "ok" and a["timings_s"] == {"segment": 0.25}
    assert a["bstbi_images"] == _record().bstbi_images and a["bstbi_ant_2"] == 0.3
    for view in masks:
        assert np.array_equal(got["masks"][view], masks[view])
        assert got["masks"][view].dtype == np.uint8
    assert [(x["view"], x["component"], x["area_px"], x["status"]) for x in got["lesions"]] == [
        ("ANT", 1, 1, "model"), ("ANT", 2, 1, "model"), ("POST", 1, 1, "model")
    ]  # fmt: skip
    assert got["lesions"][1]["centroid_row"] == 5.0 and got["lesions"][0]["drawn"] is None
    assert audit == [("store_analysis", "analysis", aid, None, {
        "study_id": sid, "model_version": "unet-1", "quality": "ok", "quality_cautions": [],
        "bstbi": 0.15, "bsi": None, "hotspots": 3, "lesions": 3})]  # fmt: skip


def test_a_view_missing_leaves_its_bstbi_null(db_file: Path) -> None:
    with open_db(db_file) as db:
        sid = _study(db)
        rec = _record(bstbi_images={("ANT", 1): 0.2, ("ANT", 2): 0.4}, bstbi=0.3)
        store_analysis(db, study_id=sid, analysis=rec, masks={"ANT": _masks()["ANT"]},
                       lesions=[], account="pipeline")  # fmt: skip
        row = db.execute("SELECT bstbi_ant_1, bstbi_post_1, bstbi_post_2 FROM analyses").fetchone()
        assert study_with_masks(db, sid)["analysis"]["bstbi_images"] == rec.bstbi_images
    assert row == (0.2, None, None)


@pytest.mark.parametrize(
    "trigger",
    [
        # the second lesion fails: analysis, masks and the first lesion are already written
        "CREATE TRIGGER boom BEFORE INSERT ON lesions WHEN NEW.component = 2 "
        "BEGIN SELECT RAISE(ABORT, 'forced failure'); END",
        # the audit row, last of all, fails
        "CREATE TRIGGER boom BEFORE INSERT ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'forced failure'); END",
    ],
)
def test_a_failure_while_storing_leaves_nothing(db_file: Path, trigger: str) -> None:
    masks = _masks()
    with open_db(db_file) as db:
        sid = _study(db)
        db.execute(trigger)
        with pytest.raises(sqlite3.IntegrityError, match="forced failure"):
            store_analysis(db, study_id=sid, analysis=_record(), masks=masks,
                           lesions=_lesions(masks), account="dr.x")  # fmt: skip
        counts = {t: _count(db, t) for t in ("analyses", "masks", "lesions", "audit_log")}
        assert study_with_masks(db, sid)["analysis"] is None
    assert counts == {"analyses": 0, "masks": 0, "lesions": 0, "audit_log": 0}


def test_store_analysis_refuses_bad_input_before_writing(db_file: Path) -> None:
    masks = _masks()
    with open_db(db_file) as db:
        sid = _study(db)
        with pytest.raises(ValueError, match="study_id"):
            store_analysis(db, study_id=999, analysis=_record(), masks=masks, lesions=[],
                           account="x")  # fmt: skip
        with pytest.raises(ValueError, match="uint8"):
            store_analysis(db, study_id=sid, analysis=_record(),
                           masks={"ANT": masks["ANT"].astype(np.int32)}, lesions=[],
                           account="x")  # fmt: skip
        with pytest.raises(ValueError, match="metastasis_probability"):
            store_analysis(db, study_id=sid, analysis=_record(metastasis_probability=1.5),
                           masks=masks, lesions=[], account="x")  # fmt: skip
        with pytest.raises(ValueError, match="has no mask"):
            store_analysis(db, study_id=sid, analysis=_record(), masks={"ANT": masks["ANT"]},
                           lesions=_lesions(masks), account="x")  # fmt: skip
        with pytest.raises(ValueError, match="account"):
            store_analysis(db, study_id=sid, analysis=_record(), masks=masks, lesions=[],
                           account=" ")  # fmt: skip
        assert _count(db, "analyses") == 0


def _review_burden(db: Database, sid: int) -> float:
    """Recompute the stored analysis' burden from its lesions' statuses and store it."""
    got = study_with_masks(db, sid)
    comps = {v: lesion_components(m)[0] for v, m in got["masks"].items()}
    removed = {(x["view"], x["component"]) for x in got["lesions"]
               if x["status"] == "removed" and x["drawn"] is None}  # fmt: skip
    added: dict[str, np.ndarray] = {}
    for x in got["lesions"]:
        if x["status"] == "added":
            added[x["view"]] = added.get(x["view"], np.zeros_like(x["drawn"])) | x["drawn"]
    out = recompute_burden(_displays(), got["masks"], comps, removed, added,
                           pixel_spacing_mm=(2.0, 3.0))  # fmt: skip
    update_analysis_burden(db, got["analysis"]["id"], out.per_image, out.scan_bstbi,
                           out.hotspots, out.lesion_area_cm2, "dr.x")  # fmt: skip
    return out.scan_bstbi


def test_removing_and_restoring_a_lesion_is_audited_and_recomputed(db_file: Path) -> None:
    masks = _masks()
    with open_db(db_file) as db:
        sid = _study(db)
        aid = store_analysis(db, study_id=sid, analysis=_record(), masks=masks,
                             lesions=_lesions(masks), account="pipeline")  # fmt: skip
        original = _review_burden(db, sid)
        (lid,) = db.execute(
            "SELECT id FROM lesions WHERE view = 'ANT' AND component = 1"
        ).fetchone()
        set_lesion_status(db, lid, "removed", "dr.x", "fracture")
        lowered = _review_burden(db, sid)
        stored = study_with_masks(db, sid)
        set_lesion_status(db, lid, "removed", "dr.x", "again")  # unchanged: no audit row
        set_lesion_status(db, lid, "model", "dr.y", "not a fracture")
        restored = _review_burden(db, sid)
        audit = _audit(db)
    assert lowered < original and restored == original
    # The stored model mask is untouched; the stored burden is the recomputed one.
    assert np.array_equal(stored["masks"]["ANT"], masks["ANT"])
    assert stored["analysis"]["bstbi"] == lowered and stored["analysis"]["hotspots"] == 2
    statuses = [a for a in audit if a[0] == "set_lesion_status"]
    assert statuses == [
        ("set_lesion_status", "lesion", lid, {"status": "model"},
         {"status": "removed", "reason": "fracture"}),
        ("set_lesion_status", "lesion", lid, {"status": "removed"},
         {"status": "model", "reason": "not a fracture"}),
    ]  # fmt: skip
    burdens = [a for a in audit if a[0] == "update_burden"]
    assert len(burdens) == 3 and all(a[2] == aid for a in burdens)
    assert burdens[1][3]["bstbi"] == original and burdens[1][4]["bstbi"] == lowered
    assert burdens[1][4]["hotspots"] == 2 and burdens[1][3]["hotspots"] == 3


def test_a_drawn_lesion_is_added_and_can_be_removed(db_file: Path) -> None:
    masks = _masks()
    drawn = np.zeros((6, 4), bool)
    drawn[2, 1] = drawn[2, 2] = True
    with open_db(db_file) as db:
        sid = _study(db)
        aid = store_analysis(db, study_id=sid, analysis=_record(), masks=masks,
                             lesions=_lesions(masks), account="pipeline")  # fmt: skip
        before = _review_burden(db, sid)
        lid = add_drawn_lesion(db, analysis_id=aid, view="ANT", drawn=drawn, account="dr.x",
                               reason="missed rib lesion")  # fmt: skip
        with_added = _review_burden(db, sid)
        lesion = next(x for x in study_with_masks(db, sid)["lesions"] if x["id"] == lid)
        with pytest.raises(ValueError, match="not allowed"):
            set_lesion_status(db, lid, "model", "dr.x", "")
        set_lesion_status(db, lid, "removed", "dr.x", "")
        assert _review_burden(db, sid) == before
        with pytest.raises(ValueError, match="shape"):
            add_drawn_lesion(db, analysis_id=aid, view="ANT", drawn=np.ones((2, 2), bool),
                             account="dr.x")  # fmt: skip
    assert with_added > before
    assert (lesion["component"], lesion["area_px"], lesion["status"]) == (3, 2, "added")
    assert np.array_equal(lesion["drawn"], drawn)


def test_set_lesion_status_refuses(db_file: Path) -> None:
    masks = _masks()
    with open_db(db_file) as db:
        sid = _study(db)
        store_analysis(db, study_id=sid, analysis=_record(), masks=masks,
                       lesions=_lesions(masks), account="pipeline")  # fmt: skip
        (lid,) = db.execute("SELECT min(id) FROM lesions").fetchone()
        with pytest.raises(ValueError, match="status must be one of"):
            set_lesion_status(db, lid, "deleted", "dr.x", "")
        with pytest.raises(ValueError, match="not allowed"):
            set_lesion_status(db, lid, "added", "dr.x", "")
        with pytest.raises(ValueError, match="does not exist"):
            set_lesion_status(db, 12345, "removed", "dr.x", "")
        with pytest.raises(ValueError, match="does not exist"):
            update_analysis_burden(db, 12345, {}, 0.0, 0, 0.0, "dr.x")
        with pytest.raises(ValueError, match="key"):
            update_analysis_burden(db, 1, {("LAT", 1): 0.1}, 0.1, 0, 0.0, "dr.x")
        assert [a[0] for a in _audit(db)] == ["store_analysis"]


def test_deleting_a_study_removes_its_analyses_but_keeps_the_audit(db_file: Path) -> None:
    masks = _masks()
    with open_db(db_file) as db:
        sid = _study(db)
        store_analysis(db, study_id=sid, analysis=_record(), masks=masks,
                       lesions=_lesions(masks), account="pipeline")  # fmt: skip
        with db.atomic():
            db.execute("DELETE FROM studies WHERE id = ?", [sid])
        counts = {t: _count(db, t) for t in ("analyses", "masks", "lesions", "audit_log")}
    assert counts == {"analyses": 0, "masks": 0, "lesions": 0, "audit_log": 1}
