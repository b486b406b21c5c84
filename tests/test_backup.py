"""Backups: a consistent online copy while another process writes, and restoring it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli import main
from db.backup import BackupError, backup, integrity, restore, row_counts
from db.connection import open_db
from tests.trust_workers import dump_tables, store_one

REPO = Path(__file__).resolve().parent.parent


def _seeded(path: Path, studies: int = 6) -> Path:
    with open_db(path) as db:
        for i in range(studies):
            store_one(db, i, f"seed{i}", None)
    return path


def test_backup_while_a_writer_inserts_is_consistent(tmp_path: Path) -> None:
    store = _seeded(tmp_path / "live.sqlite")
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.trust_workers", "writer", str(store), str(stop)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "STARTED"
        copies = []
        for i in range(3):
            copies.append(backup(store, tmp_path / f"copy{i}.sqlite"))
            time.sleep(0.05)
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err[-2000:]
    written = int(out.split()[-1])
    assert written > 0
    patients = []
    for report in copies:
        assert integrity(report.path) == "ok"
        rows = report.rows
        # the writer adds a patient and its treatment in one transaction: a consistent
        # copy holds both or neither of every pair
        assert rows["patients"] - 6 == rows["treatments"], rows
        assert rows["studies"] == 6 and rows["views"] == 12 and rows["masks"] == 12
        patients.append(rows["patients"])
        with sqlite3.connect(report.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert patients == sorted(patients)
    assert row_counts(store)["treatments"] == written


def test_restore_brings_back_the_copy_exactly(tmp_path: Path) -> None:
    store = _seeded(tmp_path / "live.sqlite")
    report = backup(store, tmp_path)  # a folder: a dated file inside it
    assert report.path.parent == tmp_path and report.path.name.startswith("bonescan-")
    saved = dump_tables(store)
    with open_db(store) as db:  # later changes, lost by the restore
        store_one(db, 99, "after-backup", None)
        db.execute("DELETE FROM studies WHERE id = 1")
    assert dump_tables(store) != saved
    restored = restore(report.path, store)
    assert dump_tables(store) == saved
    assert restored.rows == report.rows
    assert integrity(store) == "ok"
    assert restored.kept is not None and row_counts(restored.kept)["studies"] == 6
    with open_db(store) as db:  # the restored store is usable
        store_one(db, 100, "after-restore", None)
        assert db.execute("SELECT count(*) FROM studies").fetchone()[0] == 7


def test_restore_refuses_a_damaged_backup_and_keeps_the_store(tmp_path: Path) -> None:
    store = _seeded(tmp_path / "live.sqlite", studies=3)
    copy = backup(store, tmp_path / "copy.sqlite").path
    data = bytearray(copy.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096  # a page of garbage
    copy.write_bytes(bytes(data))
    before = dump_tables(store)
    with pytest.raises(BackupError, match=r"integrity|not a SQLite"):
        restore(copy, store)
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n" * 100)
    with pytest.raises(BackupError, match="not a SQLite database"):
        restore(text, store)
    assert dump_tables(store) == before
    assert not list(tmp_path.glob("*before-restore*"))


def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    store = _seeded(tmp_path / "live.sqlite", studies=1)
    backup(store, tmp_path / "copy.sqlite")
    with pytest.raises(BackupError, match="already exists"):
        backup(store, tmp_path / "copy.sqlite")
    assert backup(store, tmp_path / "copy.sqlite", overwrite=True).rows["studies"] == 1
    with pytest.raises(BackupError, match="no store"):
        backup(tmp_path / "missing.sqlite", tmp_path / "x.sqlite")
    assert not list(tmp_path.glob(".*partial*"))


def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _seeded(tmp_path / "live.sqlite", studies=2)
    assert main(["backup", str(tmp_path / "b.sqlite"), "--db", str(store)]) == 0
    assert "integrity ok" in capsys.readouterr().out
    assert main(["backup", str(tmp_path / "b.sqlite"), "--db", str(store)]) == 2
    assert "already exists" in capsys.readouterr().err
    saved = dump_tables(store)
    with open_db(store) as db:
        store_one(db, 7, "later", None)
    assert main(["restore", str(tmp_path / "b.sqlite"), "--db", str(store)]) == 0
    assert "kept at" in capsys.readouterr().out
    assert dump_tables(store) == saved
    assert main(["restore", str(tmp_path / "nothing.sqlite"), "--db", str(store)]) == 2
