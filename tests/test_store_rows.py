"""Rows written through sqlite-utils stay inside the event's transaction and the schema.

:func:`db.store.insert_row` and :func:`db.store.insert_rows` commit nothing by
themselves (a failure later in the event leaves nothing), never create a table or a
column, and write values with the SQLite types of the schema (BLOB, JSON text, NULL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.store import (
    AnalysisRecord,
    LesionRecord,
    add_drawn_lesion,
    add_patient,
    insert_row,
    insert_rows,
    store_analysis,
    store_study,
    write_transaction,
)

_PATIENT = {"pseudonym": "P-1", "synthetic": 0}


def _columns(db_file: Path, table: str) -> list[str]:
    conn = sqlite3.connect(db_file)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def _count_elsewhere(db_file: Path, table: str) -> int:
    """Count rows through a second connection: what other processes would see."""
    conn = sqlite3.connect(db_file)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_inserts_commit_only_with_the_event(db_file: Path) -> None:
    with open_db(db_file) as db:
        with write_transaction(db):
            pid = insert_row(db, "patients", _PATIENT)
            insert_rows(db, "treatments", [
                {"patient_id": pid, "agent": "zoledronic acid", "start_date": "2024-01-01"},
                {"patient_id": pid, "agent": "denosumab", "start_date": "2024-02-01"},
            ])  # fmt: skip
            assert db.conn.in_transaction
            assert _count_elsewhere(db_file, "patients") == 0
            assert _count_elsewhere(db_file, "treatments") == 0
        assert not db.conn.in_transaction
    assert _count_elsewhere(db_file, "patients") == 1
    assert _count_elsewhere(db_file, "treatments") == 2


def test_a_failure_later_in_the_event_leaves_nothing(db_file: Path) -> None:
    with open_db(db_file) as db:
        with pytest.raises(RuntimeError, match="after the inserts"), write_transaction(db):
            pid = insert_row(db, "patients", _PATIENT)
            insert_rows(db, "treatments", [
                {"patient_id": pid, "agent": "zoledronic acid", "start_date": "2024-01-01"}
            ])  # fmt: skip
            raise RuntimeError("after the inserts")
        assert not db.conn.in_transaction
    assert _count_elsewhere(db_file, "patients") == 0
    assert _count_elsewhere(db_file, "treatments") == 0


def test_the_returned_id_is_the_new_rows(db_file: Path) -> None:
    with open_db(db_file) as db, write_transaction(db):
        first = insert_row(db, "patients", _PATIENT)
        second = insert_row(db, "patients", {**_PATIENT, "pseudonym": "P-2"})
        got = db.execute("SELECT id, pseudonym FROM patients ORDER BY id").fetchall()
    assert second == first + 1
    assert [tuple(r) for r in got] == [(first, "P-1"), (second, "P-2")]


def test_outside_a_transaction_nothing_is_written(db_file: Path) -> None:
    with open_db(db_file) as db:
        with pytest.raises(ValueError, match="db must have a transaction open"):
            insert_row(db, "patients", _PATIENT)
        with pytest.raises(ValueError, match="db must have a transaction open"):
            insert_rows(db, "patients", [_PATIENT])
    assert _count_elsewhere(db_file, "patients") == 0


def test_a_missing_table_is_an_error_not_created(db_file: Path) -> None:
    with open_db(db_file) as db:
        missing = pytest.raises(sqlite3.OperationalError, match="no such table: patient")
        with missing, write_transaction(db):
            insert_row(db, "patient", _PATIENT)
        missing = pytest.raises(sqlite3.OperationalError, match="no such table: lesion")
        with missing, write_transaction(db):
            insert_rows(db, "lesion", [{"view": "ANT"}])
        assert "patient" not in db.table_names() and "lesion" not in db.table_names()


def test_an_unknown_column_is_an_error_not_added(db_file: Path) -> None:
    with open_db(db_file) as db:
        before = _columns(db_file, "patients")
        with pytest.raises(sqlite3.OperationalError, match="colour"), write_transaction(db):
            insert_row(db, "patients", {**_PATIENT, "colour": "blue"})
        with pytest.raises(sqlite3.OperationalError, match="colour"), write_transaction(db):
            insert_rows(db, "patients", [_PATIENT, {"pseudonym": "P-2", "colour": "red"}])
    assert _columns(db_file, "patients") == before
    assert _count_elsewhere(db_file, "patients") == 0


def test_no_rows_write_nothing(db_file: Path) -> None:
    with open_db(db_file) as db, write_transaction(db):
        insert_rows(db, "lesions", [])
    assert _count_elsewhere(db_file, "lesions") == 0


def test_values_keep_the_schemas_sqlite_types(db_file: Path) -> None:
    scan = Scan(
        views={v: np.ones((ROWS, COLS), np.float32) for v in ("ANT", "POST")},
        meta=ScanMeta(source_format="dicom", study_date=dt.date(2024, 1, 2)),
    )
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[10, 10] = 1
    record = AnalysisRecord(model_version="m", device="cpu", quality="ok",
                            timings_s={"segment": 0.5, "read": 0.1})  # fmt: skip
    drawn = np.zeros((ROWS, COLS), bool)
    drawn[20, 20] = True
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P-1", synthetic=True)
        sid = store_study(db, patient_id=pid, scan=scan, source_name="a.dcm",
                          source_sha256=hashlib.sha256(b"a").hexdigest()).study_id  # fmt: skip
        aid = store_analysis(db, study_id=sid, analysis=record, masks={"ANT": mask},
                             lesions=[LesionRecord("ANT", 1, 1)], account="t")  # fmt: skip
        add_drawn_lesion(db, analysis_id=aid, view="ANT", drawn=drawn, account="t")
        types = {
            "patient": db.execute(
                "SELECT typeof(synthetic), typeof(name), typeof(created_at) FROM patients"
            ).fetchone(),
            "study": db.execute(
                "SELECT typeof(study_date), typeof(injection_delay_h), "
                "typeof(display_grey_level_1) FROM studies"
            ).fetchone(),
            "views": db.execute("SELECT DISTINCT typeof(counts_zlib) FROM views").fetchall(),
            "analysis": db.execute(
                "SELECT typeof(timings_json), typeof(weights_sha256), typeof(bstbi_ant_1), "
                "typeof(metastasis_threshold) FROM analyses"
            ).fetchone(),
            "mask": db.execute("SELECT typeof(labels_zlib) FROM masks").fetchone(),
            "lesions": db.execute(
                "SELECT status, typeof(drawn_zlib), typeof(area_cm2) FROM lesions ORDER BY id"
            ).fetchall(),
            "audit": db.execute(
                "SELECT DISTINCT typeof(before_json), typeof(after_json) FROM audit_log"
            ).fetchall(),
        }
        timings = db.execute("SELECT timings_json FROM analyses").fetchone()[0]
    assert {k: [tuple(r) for r in v] if isinstance(v, list) else tuple(v)
            for k, v in types.items()} == {
        "patient": ("integer", "null", "text"),
        "study": ("text", "null", "integer"),
        "views": [("blob",)],
        "analysis": ("text", "null", "null", "real"),
        "mask": ("blob",),
        "lesions": [("model", "null", "null"), ("added", "blob", "null")],
        "audit": [("null", "text")],
    }  # fmt: skip
    # JSON written as sorted text, as the audit rows are
    assert timings == json.dumps({"read": 0.1, "segment": 0.5}, sort_keys=True)
