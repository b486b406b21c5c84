"""Jobs in the store: one active job at a time, admins only, every change audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.auth import AccessDenied
from db import jobs
from db.accounts import create_account
from db.connection import open_db

PASSWORD = "correct horse battery"


def _audit(db_file: Path) -> list[tuple[str, str, int]]:
    with open_db(db_file) as db:
        rows = db.execute(
            "SELECT action, account, entity_id FROM audit_log WHERE entity = 'job' ORDER BY id"
        ).fetchall()
    return [tuple(r) for r in rows]


def test_a_job_goes_from_queued_to_finished_and_each_step_is_audited(tmp_path: Path) -> None:
    db_file = tmp_path / "s.sqlite"
    with open_db(db_file) as db:
        job_id = jobs.create_job(db, kind="fine-tune", args={"time_budget_s": 60.0},
                                 out_root=tmp_path / "jobs", account="demo")  # fmt: skip
        found = jobs.job(db, job_id)
        assert (found.state, found.pid, found.started_by) == ("queued", None, "demo")
        assert found.out_dir == str(tmp_path / "jobs" / str(job_id))
        assert found.args == {"time_budget_s": 60.0} and found.active
        assert jobs.active_job(db) == found
        jobs.mark_running(db, job_id, 4242)
        jobs.set_message(db, job_id, "training")
        running = jobs.job(db, job_id)
        assert (running.state, running.pid, running.message) == ("running", 4242, "training")
        assert running.started_at is not None
        jobs.mark_running(db, job_id, 4343)  # a relaunch keeps the first start time
        assert jobs.job(db, job_id).started_at == running.started_at
        jobs.finish(db, job_id, {"candidate": "v2"})
        done = jobs.job(db, job_id)
        assert (done.state, done.result, done.message) == ("finished", {"candidate": "v2"}, "")
        assert done.finished_at is not None and not done.active
        assert jobs.active_job(db) is None
        with pytest.raises(ValueError, match="is finished; it cannot be failed"):
            jobs.fail(db, job_id, "late")
    assert _audit(db_file) == [
        ("create_job", "demo", job_id),
        ("run_job", "demo", job_id),
        ("run_job", "demo", job_id),
        ("finish_job", "demo", job_id),
    ]


def test_a_second_active_job_is_refused_by_name(tmp_path: Path) -> None:
    with open_db(tmp_path / "s.sqlite") as db:
        first = jobs.create_job(db, kind="fine-tune", args={}, out_root=tmp_path, account=None)
        with pytest.raises(ValueError, match=rf"job {first} \(fine-tune, started by cli .*one job"):
            jobs.create_job(db, kind="reanalyse", args={}, out_root=tmp_path, account=None)
        jobs.fail(db, first, "out of memory")
        failed = jobs.job(db, first)
        assert (failed.state, failed.message) == ("failed", "out of memory")
        second = jobs.create_job(db, kind="reanalyse", args={}, out_root=tmp_path, account=None)
        assert [j.id for j in jobs.list_jobs(db)] == [second, first]
        assert [j.id for j in jobs.list_jobs(db, kind="fine-tune")] == [first]


def test_only_an_admin_may_start_a_job(tmp_path: Path) -> None:
    with open_db(tmp_path / "s.sqlite") as db:
        create_account(db, username="lee", password=PASSWORD, role="admin")
        create_account(db, username="dr.kim", password=PASSWORD, role="clinician", by="lee")
        with pytest.raises(AccessDenied, match="may not fine-tune, promote or roll back"):
            jobs.create_job(db, kind="fine-tune", args={}, out_root=tmp_path, account="dr.kim")
        with pytest.raises(AccessDenied, match="Sign in first"):
            jobs.create_job(db, kind="fine-tune", args={}, out_root=tmp_path, account=None)
        assert jobs.list_jobs(db) == []
        job_id = jobs.create_job(db, kind="fine-tune", args={}, out_root=tmp_path, account="lee")
        assert jobs.job(db, job_id).started_by == "lee"


def test_a_relaunch_claim_is_won_once(tmp_path: Path) -> None:
    with open_db(tmp_path / "s.sqlite") as db:
        job_id = jobs.create_job(db, kind="fine-tune", args={}, out_root=tmp_path, account=None,
                                 pid=11)  # fmt: skip
        jobs.mark_running(db, job_id, 12)
        assert not jobs.claim_relaunch(db, job_id, dead_pid=11, claimer_pid=99)
        assert jobs.claim_relaunch(db, job_id, dead_pid=12, claimer_pid=99)
        assert not jobs.claim_relaunch(db, job_id, dead_pid=12, claimer_pid=98)
        assert jobs.job(db, job_id).pid == 99
        assert jobs.relaunch_count(db, job_id) == 1
        row = db.execute(
            "SELECT before_json, after_json FROM audit_log WHERE action = 'relaunch_job'"
        ).fetchone()
        assert (json.loads(row[0]), json.loads(row[1])) == ({"pid": 12}, {"pid": 99})


def test_bad_arguments_are_refused_early(tmp_path: Path) -> None:
    with open_db(tmp_path / "s.sqlite") as db:
        with pytest.raises(ValueError, match="kind must be one of"):
            jobs.create_job(db, kind="train", args={}, out_root=tmp_path, account=None)
        with pytest.raises(ValueError, match="args must be JSON"):
            jobs.create_job(db, kind="fine-tune", args={"x": object()}, out_root=tmp_path,
                            account=None)  # fmt: skip
        with pytest.raises(ValueError, match="job_id: there is no job 7"):
            jobs.job(db, 7)
        job_id = jobs.create_job(db, kind="fine-tune", args={}, out_root=tmp_path, account=None)
        with pytest.raises(ValueError, match="pid must be >= 1"):
            jobs.mark_running(db, job_id, 0)
        with pytest.raises(ValueError, match="message must say why"):
            jobs.fail(db, job_id, "  ")
        with pytest.raises(ValueError, match="limit must be >= 1"):
            jobs.list_jobs(db, limit=0)
