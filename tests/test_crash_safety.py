"""Crash safety: a process storing studies is SIGKILLed in the middle of writing.

Each round starts ``tests.trust_workers store-loop`` on the same store and kills it
with a real SIGKILL: round 0 while it sits inside a transaction (study and views
written, analysis not yet), the next rounds at varying moments of a tight store loop.
After every kill: ``PRAGMA integrity_check`` is ok, no partial study exists (each study
has both views and its analysis, each analysis its masks and lesions, each patient its
study), every study the worker reported committed is there with identical counts, and
the next round keeps writing to the same store.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

from db.connection import open_db
from db.queries import study_views
from tests.trust_workers import sha_for

REPO = Path(__file__).resolve().parent.parent
#: (studies committed before the kill, extra delay in seconds) for the rounds after round 0.
ROUNDS = [(2, 0.0), (3, 0.013), (2, 0.031)]
FAULTS = 1 + len(ROUNDS)
#: Queries counting partial writes; each must find none.
PARTIAL = {
    "a study without both views": "SELECT count(*) FROM studies s WHERE "
    "(SELECT count(*) FROM views v WHERE v.study_id = s.id) <> 2",
    "a study without its analysis": "SELECT count(*) FROM studies s WHERE NOT EXISTS "
    "(SELECT 1 FROM analyses a WHERE a.study_id = s.id)",
    "an analysis without both masks": "SELECT count(*) FROM analyses a WHERE "
    "(SELECT count(*) FROM masks m WHERE m.analysis_id = a.id) <> 2",
    "an analysis without its 4 lesions": "SELECT count(*) FROM analyses a WHERE "
    "(SELECT count(*) FROM lesions l WHERE l.analysis_id = a.id) <> 4",
    "a patient without a study": "SELECT count(*) FROM patients p WHERE NOT EXISTS "
    "(SELECT 1 FROM studies s WHERE s.patient_id = p.id)",
}


def _start(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.trust_workers", "store-loop", str(db), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill(proc: subprocess.Popen[str]) -> list[str]:
    """SIGKILL the worker and return the lines it printed (all printed before the kill)."""
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out.splitlines()


def _committed(lines: list[str]) -> list[tuple[int, int, str, int]]:
    return [
        (int(p[1]), int(p[2]), p[3], int(p[4]))
        for p in (line.split() for line in lines)
        if p and p[0] == "COMMITTED"
    ]


def _check(db: Path, committed: list[tuple[int, int, str, int]]) -> int:
    """Assert the store is whole after a kill; return the number of studies."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

        for what, sql in PARTIAL.items():
            assert conn.execute(sql).fetchone()[0] == 0, what
        studies = int(conn.execute("SELECT count(*) FROM studies").fetchone()[0])
    finally:
        conn.close()
    with open_db(db) as store:
        for sid, aid, sha, crc in committed:
            row = store.execute(
                "SELECT s.id, a.id FROM studies s JOIN analyses a ON a.study_id = s.id "
                "WHERE s.source_sha256 = ?",
                [sha],
            ).fetchone()
            assert tuple(row) == (sid, aid), f"committed study {sid} lost or changed"
            views = study_views(store, sid)
            assert zlib.crc32(b"".join(views[v].tobytes() for v in ("ANT", "POST"))) == crc
    return studies


def _read_until(proc: subprocess.Popen[str], prefix: str, times: int) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    while sum(line.startswith(prefix) for line in lines) < times:
        line = proc.stdout.readline()
        if not line:
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"worker ended early: {err[-2000:]}")
        lines.append(line.strip())
    return lines


def test_sigkill_while_storing_leaves_a_whole_store(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite"
    with open_db(db):
        pass  # schema made before the first worker, so no kill lands mid-migration
    committed: list[tuple[int, int, str, int]] = []
    start = time.perf_counter()

    # round 0: killed inside a transaction, after the study and its views were written
    proc = _start(db, "0", "10", "3")
    lines = _read_until(proc, "MID", 1)
    mid_study = int(lines[-1].split()[1])
    lines += _kill(proc)
    committed += _committed(lines)
    assert len(committed) == 3
    assert _check(db, committed) == 3
    with open_db(db) as store:
        gone = store.execute(
            "SELECT count(*) FROM studies WHERE id = ? OR source_sha256 = ?",
            [mid_study, sha_for("s3")],
        ).fetchone()[0]
    assert gone == 0, "the study of the killed transaction was left behind"

    # later rounds: killed at some moment of a tight loop of storing
    for round_no, (before, delay) in enumerate(ROUNDS, start=1):
        proc = _start(db, str(round_no * 1000), "1000")
        lines = _read_until(proc, "COMMITTED", before)
        time.sleep(delay)
        lines += _kill(proc)
        new = _committed(lines)
        assert len(new) >= before
        committed += new
        assert _check(db, committed) >= len(committed)
    elapsed = time.perf_counter() - start
    print(f"crash safety: {FAULTS} SIGKILLs survived, {len(committed)} committed studies "
          f"intact, {elapsed:.1f} s")  # fmt: skip
