from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from db.connection import open_db
from db.queries import store_summary
from db.schema import migrations


def test_fresh_store_is_migrated_with_wal_and_foreign_keys(db_file: Path) -> None:
    with open_db(db_file) as db:
        assert {"patients", "studies", "views"} <= set(db.table_names())
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert migrations.pending(db) == []
        assert store_summary(db).patients == 0


def test_reopening_applies_nothing_twice(db_file: Path) -> None:
    for _ in range(2):
        with open_db(db_file) as db:
            applied = [m.name for m in migrations.applied(db)]
    assert len(applied) == len(set(applied)) == len(migrations._migrations)


def test_foreign_keys_refuse_a_study_of_no_patient(db_file: Path) -> None:
    with open_db(db_file) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO studies (patient_id, source_name, source_sha256, source_format) "
            "VALUES (999, 'x.dcm', 'abc', 'dicom')"
        )


def test_strict_tables_refuse_wrong_types(db_file: Path) -> None:
    with open_db(db_file) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO patients (pseudonym, birth_year) VALUES ('P1', 'nineteen')")


def test_a_failed_atomic_block_leaves_nothing(db_file: Path) -> None:
    with open_db(db_file) as db:
        with pytest.raises(RuntimeError), db.atomic():
            db.execute("INSERT INTO patients (pseudonym) VALUES ('P1')")
            raise RuntimeError("crash mid-event")
        assert store_summary(db).patients == 0


def test_concurrent_first_opens_migrate_once(db_file: Path) -> None:
    code = "import sys; from db.connection import open_db\nwith open_db(sys.argv[1]): pass"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db_file)]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with open_db(db_file) as db:
        assert len(migrations.applied(db)) == len(migrations._migrations)


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="path"), open_db(tmp_path):
        pass
