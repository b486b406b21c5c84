"""Backups of the SQLite store: an online consistent copy, and restoring one.

**Backup** (:func:`backup`, ``python -m core backup DEST``) copies the store with
SQLite's online backup API in one step, while the dashboard keeps running: the copy is
the store as of one instant (a read snapshot; in WAL mode writers are not blocked and
nothing they commit meanwhile is half in the copy). The copy is written next to
``DEST`` under a temporary name, checked with ``PRAGMA integrity_check``, switched to a
self-contained single file (journal mode DELETE) and only then renamed to ``DEST``.

**Restore** (:func:`restore`, ``python -m core restore SRC``) first checks ``SRC``
(``integrity_check`` ok, and it is a bone-scan store), keeps the current store as
``<store>.before-restore-<time>.sqlite`` beside it, then copies ``SRC`` over the store
with the same backup API (which takes the store's write lock, so no write is
interleaved) and checks the result. Stop the dashboard before restoring: sessions that
are open keep showing what they had read.

This module holds the few SQL statements of operations on whole files (PRAGMAs and row
counts); the domain's SQL stays in :mod:`db`.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from db.connection import BUSY_TIMEOUT_MS

#: Tables whose row counts a backup reports (the store's data, not its bookkeeping).
TABLES: tuple[str, ...] = (
    "patients",
    "studies",
    "views",
    "treatments",
    "analyses",
    "masks",
    "lesions",
    "audit_log",
    "accounts",
)


class BackupError(RuntimeError):
    """A backup or restore could not be made safely; the message says why."""


@dataclass(frozen=True)
class BackupReport:
    """What a backup or restore wrote.

    Attributes:
        path: The file written (the copy, or the restored store).
        rows: Rows per table of :data:`TABLES` present in it.
        size_bytes: Its size.
        kept: On restore, where the store as it was before is kept; else None.
    """

    path: Path
    rows: dict[str, int]
    size_bytes: int
    kept: Path | None = None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def integrity(path: str | Path) -> str:
    """Return ``PRAGMA integrity_check`` of a SQLite file: ``"ok"`` or its complaints.

    Raises:
        BackupError: If ``path`` is not a file or not a SQLite database.
    """
    p = Path(path)
    if not p.is_file():
        raise BackupError(f"{p} is not a file")
    conn = _connect(p)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{p} is not a SQLite database ({exc})") from None
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows)


def row_counts(path: str | Path) -> dict[str, int]:
    """Return rows per table of :data:`TABLES` that exist in the SQLite file ``path``."""
    conn = _connect(Path(path))
    try:
        present = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        return {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            for t in TABLES
            if t in present
        }
    finally:
        conn.close()


def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def backup(store: str | Path, dest: str | Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the store to ``dest`` consistently while it may be in use.

    Args:
        store: The SQLite store (e.g. :func:`core.config.db_path`).
        dest: The copy's file; when an existing folder, a file
            ``bonescan-<YYYYmmdd-HHMMSS>.sqlite`` inside it.
        overwrite: Replace ``dest`` if it exists (else refuse).

    Returns:
        Where the copy is, its row counts and size.

    Raises:
        BackupError: If the store is missing, ``dest`` exists (without ``overwrite``)
            or the copy fails its integrity check (nothing is left at ``dest`` then).
    """
    src_path = Path(store)
    if not src_path.is_file():
        raise BackupError(f"there is no store at {src_path}")
    target = Path(dest)
    if target.is_dir():
        target = target / f"bonescan-{_stamp()}.sqlite"
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists; choose another name or overwrite it")
    if target.resolve() == src_path.resolve():
        raise BackupError("the backup must not be the store itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        src = _connect(src_path)
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            # pages=-1: one step, so the copy is one read snapshot of the store
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{src_path} could not be copied ({exc})") from None
        finally:
            dst.close()
            src.close()
        verdict = integrity(partial)
        if verdict != "ok":
            raise BackupError(f"the copy failed its integrity check: {verdict}")
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(target, row_counts(target), target.stat().st_size)


def _is_store(path: Path) -> bool:
    conn = _connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    return {"patients", "studies", "views"} <= names


def restore(backup_file: str | Path, store: str | Path) -> BackupReport:
    """Replace the store's content with a backup, after checking the backup.

    Args:
        backup_file: A copy made by :func:`backup`.
        store: The store to overwrite (created if missing).

    Returns:
        The restored store's row counts and size, and where the store as it was
        before is kept (None when there was none).

    Raises:
        BackupError: If the backup is missing, not a SQLite file, fails its integrity
            check or is not a bone-scan store (the store is then left untouched), or the
            restored store fails its integrity check (the copy kept before can be
            restored in turn).
    """
    src_path, dst_path = Path(backup_file), Path(store)
    verdict = integrity(src_path)
    if verdict != "ok":
        raise BackupError(f"{src_path} failed its integrity check ({verdict}); nothing restored")
    if not _is_store(src_path):
        raise BackupError(f"{src_path} is not a bone-scan store (no patients/studies tables)")
    if dst_path.exists() and src_path.resolve() == dst_path.resolve():
        raise BackupError("the backup and the store are the same file")
    kept = None
    if dst_path.is_file():
        kept = dst_path.with_name(f"{dst_path.stem}.before-restore-{_stamp()}.sqlite")
        backup(dst_path, kept, overwrite=True)
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    src = _connect(src_path)
    dst = _connect(dst_path)
    try:
        src.backup(dst, pages=-1)
    finally:
        dst.close()
        src.close()
    verdict = integrity(dst_path)
    if verdict != "ok":
        raise BackupError(
            f"the restored store failed its integrity check ({verdict}); the store as it "
            f"was is kept at {kept}"
        )
    return BackupReport(dst_path, row_counts(dst_path), dst_path.stat().st_size, kept)
