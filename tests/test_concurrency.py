"""Concurrency: 4 processes x 25 studies store and review at once, as 4 sessions would.

Load held: PROCESSES = 4 worker processes, each storing STUDIES = 25 studies (patient,
study with 2 views, analysis with 2 masks and 4 lesions, in one transaction) and
reviewing each right after (one lesion removed, new burden figures stored), all at the
same time on one store, signed in as a clinician (the store has accounts, so every
write also checks the role). No write may be lost and no worker may fail with
"database is locked".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from db.accounts import create_account
from db.connection import open_db
from tests.trust_workers import CLINICIAN

REPO = Path(__file__).resolve().parent.parent
PROCESSES = 4
STUDIES = 25


def test_concurrent_writers_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cheap hashing for the two accounts: this test is about writes, not passwords
    monkeypatch.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192))
    db = tmp_path / "busy.sqlite"
    with open_db(db) as store:
        create_account(store, username="admin", password="admin-password", role="admin")
        create_account(store, username=CLINICIAN, password="clinician-password",
                       role="clinician")  # fmt: skip
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.trust_workers",
                "review-loop",
                str(db),
                str(w),
                str(STUDIES),
                CLINICIAN,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    elapsed = time.perf_counter() - start
    for proc, (_, err) in zip(procs, results, strict=True):
        assert "locked" not in err.lower(), err[-2000:]
        assert proc.returncode == 0, err[-2000:]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert [s["stored"] for s in summaries] == [STUDIES] * PROCESSES
    assert [s["reviewed"] for s in summaries] == [STUDIES] * PROCESSES

    total = PROCESSES * STUDIES
    with open_db(db) as store:

        def count(sql: str) -> int:
            return int(store.execute(sql).fetchone()[0])

        assert store.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert count("SELECT count(*) FROM patients") == total
        assert count("SELECT count(*) FROM studies") == total
        assert count("SELECT count(*) FROM views") == 2 * total
        assert count("SELECT count(*) FROM analyses") == total
        assert count("SELECT count(*) FROM masks") == 2 * total
        assert count("SELECT count(*) FROM lesions WHERE status = 'removed'") == total
        # every review landed on its own analysis, with the worker's figure
        for summary in summaries:
            for aid, bstbi in summary["analyses"]:
                got = store.execute("SELECT bstbi FROM analyses WHERE id = ?", [aid]).fetchone()
                assert got[0] == bstbi
        actions = dict(
            store.execute("SELECT action, count(*) FROM audit_log GROUP BY action").fetchall()
        )
        accounts = {r[0] for r in store.execute("SELECT DISTINCT account FROM audit_log")}
    assert actions == {
        "create_account": 2,
        "add_patient": total,
        "store_study": total,
        "store_analysis": total,
        "set_lesion_status": total,
        "update_burden": total,
    }
    assert accounts == {"console", CLINICIAN}
    print(f"concurrency: {PROCESSES} processes x {STUDIES} studies stored and reviewed "
          f"in {elapsed:.1f} s, nothing lost")  # fmt: skip
