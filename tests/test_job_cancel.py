"""An admin cancels a job: it ends failed, its runner stops, nobody relaunches it."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from cli import main
from core.auth import AccessDenied
from db import jobs as job_store
from db.accounts import create_account
from db.connection import open_db
from workflow import jobs

PASSWORD = "correct horse battery"


def _queued(db_file: Path) -> int:
    with open_db(db_file) as db:
        return job_store.create_job(db, kind="fine-tune", args={}, account="demo",
                                    out_root=db_file.parent / "jobs")  # fmt: skip


def _audit(db_file: Path) -> list[tuple[str, str]]:
    with open_db(db_file) as db:
        rows = db.execute(
            "SELECT action, account FROM audit_log WHERE entity = 'job' ORDER BY id"
        ).fetchall()
    return [tuple(r) for r in rows]


def test_a_queued_job_is_cancelled_and_never_relaunched(tmp_path: Path) -> None:
    db_file = tmp_path / "s.sqlite"
    job_id = _queued(db_file)
    with open_db(db_file) as db:
        assert jobs.cancel_job(db, job_id, "lee") is False  # no runner to stop
        ended = job_store.job(db, job_id)
        assert job_store.active_job(db) is None
    assert (ended.state, ended.message) == ("failed", "cancelled by lee")
    assert ended.finished_at
    assert _audit(db_file)[-1] == ("cancel_job", "lee")
    assert jobs.recover_jobs(db_file) == []
    # the one-job rule is free again
    assert _queued(db_file) != job_id


def test_a_running_job_has_its_process_group_stopped(tmp_path: Path) -> None:
    db_file = tmp_path / "s.sqlite"
    job_id = _queued(db_file)
    with open_db(db_file) as db:
        found = job_store.job(db, job_id)
    out = Path(found.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / jobs.LAUNCH_NAME).write_text("{}")  # launched just now: a live pid is its runner
    # a runner is started in a session of its own (as jobs._spawn does), with a child
    runner = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        with open_db(db_file) as db:
            job_store.mark_running(db, job_id, runner.pid)
            assert jobs.cancel_job(db, job_id, "lee") is True
            assert job_store.job(db, job_id).state == "failed"
        assert runner.wait(timeout=10) == -signal.SIGTERM
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_a_job_that_is_over_cannot_be_cancelled(tmp_path: Path) -> None:
    db_file = tmp_path / "s.sqlite"
    job_id = _queued(db_file)
    with open_db(db_file) as db:
        job_store.finish(db, job_id, {"candidate": "x"})
        with pytest.raises(ValueError, match=f"job {job_id} is finished; it cannot be cancelled"):
            jobs.cancel_job(db, job_id, "lee")
        with pytest.raises(ValueError, match="job_id"):
            jobs.cancel_job(db, 9999, "lee")
        assert job_store.job(db, job_id).state == "finished"


def test_only_an_admin_may_cancel(tmp_path: Path) -> None:
    db_file = tmp_path / "s.sqlite"
    with open_db(db_file) as db:
        create_account(db, username="lee", password=PASSWORD, role="admin")
        create_account(db, username="dr.kim", password=PASSWORD, role="clinician", by="lee")
        job_id = job_store.create_job(db, kind="fine-tune", args={}, account="lee",
                                      out_root=tmp_path / "jobs")  # fmt: skip
        with pytest.raises(AccessDenied):
            jobs.cancel_job(db, job_id, "dr.kim")
        assert job_store.job(db, job_id).state == "queued"
        with pytest.raises(ValueError, match="account"):
            jobs.cancel_job(db, job_id, " ")
        assert jobs.cancel_job(db, job_id, "lee") is False
        assert job_store.job(db, job_id).message == "cancelled by lee"


def test_the_command_line_cancels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_file = tmp_path / "s.sqlite"
    job_id = _queued(db_file)
    assert main(["jobs", "cancel", str(job_id), "--db", str(db_file), "--account", "lee"]) == 0
    assert f"job {job_id}: cancelled by lee" in capsys.readouterr().out
    assert main(["jobs", "cancel", str(job_id), "--db", str(db_file)]) == 2
    assert "cannot be cancelled" in capsys.readouterr().err
