"""Opening the SQLite store: one fresh connection per use, never shared across threads.

Every connection turns foreign keys on, uses WAL (readers never block the one
writer), waits up to :data:`BUSY_TIMEOUT_MS` for a lock instead of failing with
"database is locked", and brings the schema up to date.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from db.schema import migrations

#: How long a connection waits for another writer before giving up.
BUSY_TIMEOUT_MS = 30_000


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run a block as one transaction that takes the write lock when it begins.

    The one place ``BEGIN IMMEDIATE`` is written (see :class:`Store` for why): the
    block's statements are committed together, or rolled back on any error, including
    a failed ``COMMIT``.

    Args:
        conn: A connection in autocommit mode with no transaction open.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # an error such as RAISE(ROLLBACK) may already have ended the transaction
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Store(Database):
    """A ``sqlite_utils.Database`` whose ``atomic()`` takes the write lock when it begins.

    sqlite-utils' ``atomic()`` issues a deferred ``BEGIN``: a transaction that reads
    before it writes (a de-duplication check, a role check) then fails at once with
    "database is locked" in WAL mode when another process committed in between, and the
    busy timeout cannot help. ``BEGIN IMMEDIATE`` takes the lock first, waiting up to
    :data:`BUSY_TIMEOUT_MS`. Nested blocks stay savepoints, as in sqlite-utils.
    """

    @contextmanager
    def atomic(self) -> Iterator[Store]:
        """Run a block as one write transaction (a savepoint when one is open)."""
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        with immediate_transaction(self.conn):
            yield self


@contextmanager
def open_db(path: str | Path) -> Iterator[Database]:
    """Open (creating if missing) the store at ``path`` and close it afterwards.

    Args:
        path: The SQLite file; its folder is created if missing.

    Yields:
        A ``sqlite_utils.Database`` in autocommit mode: group the writes of one
        logical event in ``with db.atomic():``.

    Raises:
        ValueError: If ``path`` names a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a SQLite file, not a folder: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions, so nothing is ever left
    # half-committed outside an explicit db.atomic() block.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        db = Store(conn)
        _migrate(db)
        yield db
    finally:
        conn.close()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL, waiting out another process that is switching it too.

    Two processes opening a new store at once can get SQLITE_BUSY from the journal-mode
    change without SQLite's busy handler being called (it would risk a deadlock), so
    the busy timeout alone does not cover it: retry for up to that timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.2)


def _migrate(db: Database) -> None:
    if not migrations.pending(db):
        return
    # Two processes starting at once must not both apply a migration: take the
    # write lock first, then re-check what is pending inside it.
    with immediate_transaction(db.conn):
        migrations.apply(db)
