"""Migration 0009: the Bone Scan Index columns and ``skeleton_maps`` on an older store.

The store is migrated to just before 0009, whatever migrations come after it: 0009 is
checked alone, then with every later one (as opening the store applies them). Rows
written before it stay valid, with NULLs where the new figures would be.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import Store, open_db
from db.queries import cohort_summary, patient_time_series, skeleton_maps, study_with_masks
from db.schema import migrations
from db.store import add_patient, encode_mask, store_study

MIGRATION = "0009_bone_scan_index"


def _older_store(path: Path) -> tuple[int, int, int]:
    """Write a store migrated up to before 0009 with one analysed study.

    Returns:
        ``(patient id, study id, analysis id)``.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        db = Store(conn)
        migrations.apply(db, stop_before=MIGRATION)
        assert [m.name for m in migrations.pending(db)][:1] == [MIGRATION]
        pid = add_patient(db, pseudonym="older")
        scan = Scan(
            views={"ANT": np.zeros((ROWS, COLS), np.float32)},
            meta=ScanMeta(source_format="dicom"),
        )
        sid = store_study(
            db,
            patient_id=pid,
            scan=scan,
            source_name="older.dcm",
            source_sha256=hashlib.sha256(b"older 0009").hexdigest(),
            study_date=dt.date(2021, 2, 3),
        ).study_id
        # an analysis, a mask and a lesion as the code of that time wrote them
        cur = conn.execute(
            "INSERT INTO analyses (study_id, model_version, device, quality, bstbi) "
            "VALUES (?, 'm', 'cpu', 'ok', 0.1)",
            [sid],
        )
        aid = int(cur.lastrowid or 0)
        conn.execute(
            "INSERT INTO masks (analysis_id, view, rows, cols, labels_zlib) "
            "VALUES (?, 'ANT', ?, ?, ?)",
            [aid, ROWS, COLS, encode_mask(np.zeros((ROWS, COLS), np.uint8))],
        )
        conn.execute(
            "INSERT INTO lesions (analysis_id, view, component, area_px, skeletal_region) "
            "VALUES (?, 'ANT', 1, 5, 'spine')",
            [aid],
        )
    finally:
        conn.close()
    return pid, sid, aid


def test_migration_0009_alone_adds_the_columns_and_the_table(db_file: Path) -> None:
    db_file.parent.mkdir(parents=True, exist_ok=True)
    _older_store(db_file)
    conn = sqlite3.connect(db_file, isolation_level=None)
    try:
        db = Store(conn)
        later = [m.name for m in migrations.pending(db)][1:]
        migrations.apply(db, stop_before=later)
        assert [m.name for m in migrations.applied(db)][-1] == MIGRATION
        analyses = {r[1] for r in conn.execute("PRAGMA table_info(analyses)")}
        lesions = {r[1] for r in conn.execute("PRAGMA table_info(lesions)")}
        maps = {r[1] for r in conn.execute("PRAGMA table_info(skeleton_maps)")}
        row = conn.execute(
            "SELECT bsi, raw_bsi, bsi_regions, anatomy_sha256 FROM analyses"
        ).fetchone()
        lesion = conn.execute("SELECT side, region_source FROM lesions").fetchone()
        (strict,) = conn.execute(
            "SELECT strict FROM pragma_table_list WHERE name = 'skeleton_maps'"
        ).fetchone()
    finally:
        conn.close()
    assert {"bsi", "raw_bsi", "bsi_regions", "anatomy_sha256"} <= analyses
    assert {"side", "region_source"} <= lesions
    assert maps == {"id", "analysis_id", "view", "labels_zlib"}
    assert strict == 1
    assert row == (None, None, None, None) and lesion == (None, None)


def test_an_older_store_reads_back_with_no_bsi(db_file: Path) -> None:
    db_file.parent.mkdir(parents=True, exist_ok=True)
    pid, sid, aid = _older_store(db_file)
    with open_db(db_file) as db:  # opening migrates
        assert migrations.pending(db) == []
        data = study_with_masks(db, sid)
        (row,) = patient_time_series(db, pid)
        (cohort,) = cohort_summary(db)
        maps = skeleton_maps(db, aid)
    analysis = data["analysis"]
    assert analysis["bsi"] is None and analysis["raw_bsi"] is None
    assert analysis["bsi_regions"] == {} and analysis["anatomy_sha256"] is None
    assert data["skeletons"] == {} and maps == {}
    (lesion,) = data["lesions"]
    assert lesion["side"] is None and lesion["region_source"] is None
    assert lesion["skeletal_region"] == "spine"
    assert row["bstbi"] == 0.1 and row["bsi"] is None
    assert cohort["latest_bstbi"] == 0.1 and cohort["bsi"] is None


def _analysis(db: Database) -> int:
    pid = add_patient(db, pseudonym="p")
    sid = store_study(
        db,
        patient_id=pid,
        scan=Scan(views={"ANT": np.zeros((ROWS, COLS), np.float32)}),
        source_name="a.dcm",
        source_sha256=hashlib.sha256(b"a").hexdigest(),
    ).study_id
    cur = db.execute(
        "INSERT INTO analyses (study_id, model_version, device, quality) "
        "VALUES (?, 'm', 'cpu', 'ok')",
        [sid],
    )
    return int(cur.lastrowid or 0)


@pytest.mark.parametrize(
    ("sql", "values"),
    [
        ("UPDATE analyses SET bsi = ?", [100.5]),
        ("UPDATE analyses SET raw_bsi = ?", [-0.1]),
        ("UPDATE analyses SET bsi_regions = ?", ["[1, 2]"]),
        ("UPDATE analyses SET bsi_regions = ?", ["not json"]),
        ("UPDATE analyses SET bsi = ?", ["a lot"]),
    ],
)
def test_the_schema_refuses_a_bad_bsi(db_file: Path, sql: str, values: list[object]) -> None:
    with open_db(db_file) as db:
        _analysis(db)
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(sql, values)


def test_the_schema_refuses_a_bad_side_or_source_and_a_second_map(db_file: Path) -> None:
    blob = encode_mask(np.zeros((4, 4), np.uint8))
    with open_db(db_file) as db:
        aid = _analysis(db)
        insert = (
            "INSERT INTO lesions (analysis_id, view, component, area_px, side, region_source) "
            "VALUES (?, 'ANT', ?, 1, ?, ?)"
        )
        db.execute(insert, [aid, 1, "left", "skeleton"])
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(insert, [aid, 2, "up", "skeleton"])
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(insert, [aid, 3, "mid", "guess"])
        maps = "INSERT INTO skeleton_maps (analysis_id, view, labels_zlib) VALUES (?, ?, ?)"
        db.execute(maps, [aid, "ANT", blob])
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(maps, [aid, "ANT", blob])  # one map per view
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(maps, [aid, "LAT", blob])
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(maps, [aid + 1, "POST", blob])  # no such analysis
        db.execute(
            "UPDATE analyses SET bsi = 1.5, bsi_regions = ? WHERE id = ?",
            [json.dumps({"sternum": {"involvement": 0.5, "percent": 1.5}}), aid],
        )
        db.execute("DELETE FROM analyses WHERE id = ?", [aid])
        (left,) = db.execute("SELECT count(*) FROM skeleton_maps").fetchone()
    assert left == 0  # the maps go with their analysis
