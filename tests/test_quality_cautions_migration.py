"""A store made before migration 0007 gets ``analyses.quality_cautions_json`` as '[]'.

The store is migrated to just before 0007, whatever migrations come after it: 0007 is
checked alone, then with every later one (as opening the store applies them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import Store, open_db
from db.queries import patient_time_series, study_with_masks
from db.schema import migrations
from db.store import add_patient, store_study

MIGRATION = "0007_analyses_quality_cautions"


def _older_store(path: Path) -> tuple[int, int]:
    """Write a store migrated up to before 0007 with one analysed study; (patient, study)."""
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
            source_sha256=hashlib.sha256(b"older").hexdigest(),
            study_date=dt.date(2020, 5, 6),
        ).study_id
        # an analysis as the code of that time wrote it: no cautions column yet
        conn.execute(
            "INSERT INTO analyses (study_id, model_version, device, quality, bstbi) "
            "VALUES (?, 'm', 'cpu', 'ok', 0.1)",
            [sid],
        )
    finally:
        conn.close()
    return pid, sid


def test_migration_0007_alone_gives_older_analyses_no_cautions(db_file: Path) -> None:
    db_file.parent.mkdir(parents=True, exist_ok=True)
    _older_store(db_file)
    conn = sqlite3.connect(db_file, isolation_level=None)
    try:
        db = Store(conn)
        # stop before whatever follows 0007 (nothing, when it is the last)
        later = [m.name for m in migrations.pending(db)][1:]
        migrations.apply(db, stop_before=later)
        assert [m.name for m in migrations.applied(db)][-1] == MIGRATION
        assert [m.name for m in migrations.pending(db)] == later
        (stored,) = conn.execute("SELECT quality_cautions_json FROM analyses").fetchone()
    finally:
        conn.close()
    assert stored == "[]"


def test_an_older_store_gets_the_column_with_no_cautions(db_file: Path) -> None:
    db_file.parent.mkdir(parents=True, exist_ok=True)
    pid, sid = _older_store(db_file)
    with open_db(db_file) as db:  # opening migrates
        assert migrations.pending(db) == []
        (stored,) = db.execute("SELECT quality_cautions_json FROM analyses").fetchone()
        (row,) = patient_time_series(db, pid)
        analysis = study_with_masks(db, sid)["analysis"]
    assert stored == "[]"
    assert row["quality"] == "ok" and row["quality_cautions"] == []
    assert analysis["quality_cautions"] == []


def test_a_study_never_analysed_has_no_cautions(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="new")
        store_study(
            db,
            patient_id=pid,
            scan=Scan(views={"ANT": np.zeros((ROWS, COLS), np.float32)}),
            source_name="new.dcm",
            source_sha256=hashlib.sha256(b"new").hexdigest(),
        )
        (row,) = patient_time_series(db, pid)
    assert row["analysis_id"] is None and row["quality_cautions"] == []
