"""Jobs outlive the page: a started job runs in its own process; a dead one is launched
again once (by whichever page finds it first); a runner holding the lock is never doubled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import main
from db import jobs as job_store
from db.connection import open_db
from workflow import jobs


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_env: Path, db_file: Path) -> Path:
    """A store, a data folder and the untrained models as the shipped ones."""
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(tmp_path / "data"))
    return db_file


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _job(db_file: Path, pid: int | None) -> job_store.Job:
    with open_db(db_file) as db:
        job_id = job_store.create_job(db, kind="fine-tune", args={}, account=None,
                                      out_root=db_file.parent / "jobs", pid=pid)  # fmt: skip
        return job_store.job(db, job_id)


class FakeLauncher:
    """Stands in for launching ``python -m core jobs run``: a ``sleep`` per launch."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def __call__(self, db_path: Path, job: job_store.Job) -> int:
        Path(job.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(job.out_dir) / jobs.LAUNCH_NAME).write_text("{}")
        self.processes.append(subprocess.Popen(["sleep", "60"]))
        return self.processes[-1].pid

    def kill_last(self) -> None:
        self.processes[-1].kill()
        self.processes[-1].wait()

    def close(self) -> None:
        for p in self.processes:
            p.kill()
            p.wait()


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLauncher]:
    fake = FakeLauncher()
    monkeypatch.setattr(jobs, "_spawn", fake)
    yield fake
    fake.close()


def test_a_dead_job_is_launched_again_once(env: Path, launcher: FakeLauncher) -> None:
    found = _job(env, pid=_dead_pid())
    assert not jobs.job_alive(found)
    assert jobs.recover_jobs(env) == [found.id]
    with open_db(env) as db:
        running = job_store.job(db, found.id)
    assert (running.state, running.pid) == ("running", launcher.processes[0].pid)
    # a second page finds it alive (launched moments ago) and leaves it
    assert jobs.job_alive(running)
    assert jobs.recover_jobs(env) == []
    assert len(launcher.processes) == 1
    # its process dies (a reboot): the next page run launches it again
    launcher.kill_last()
    assert jobs.recover_jobs(env) == [found.id]
    with open_db(env) as db:
        assert job_store.relaunch_count(db, found.id) == 2
        assert job_store.job(db, found.id).pid == launcher.processes[1].pid


def test_a_pid_without_the_lock_counts_only_just_after_its_launch(
    env: Path, launcher: FakeLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _job(env, pid=os.getpid())  # alive, but not a runner holding the job's lock
    assert jobs.job_alive(found)
    monkeypatch.setattr(jobs, "LAUNCH_GRACE_S", 0.0)
    assert not jobs.job_alive(found)
    assert jobs.recover_jobs(env) == [found.id]


def test_a_job_that_keeps_dying_is_marked_failed(
    env: Path, launcher: FakeLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "MAX_RELAUNCHES", 2)
    found = _job(env, pid=_dead_pid())
    for _ in range(2):
        assert jobs.recover_jobs(env) == [found.id]
        launcher.kill_last()
    assert jobs.recover_jobs(env) == []
    with open_db(env) as db:
        failed = job_store.job(db, found.id)
    assert failed.state == "failed"
    assert failed.message.startswith("its process stopped 3 times without finishing; see ")
    assert failed.message.endswith("job.log")


def test_a_runner_holding_the_lock_is_alive_and_never_doubled(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "LOCK_WAIT_S", 0.2)
    found = _job(env, pid=_dead_pid())
    with jobs._runner_lock(Path(found.out_dir)) as held:
        assert held
        assert jobs.job_alive(found)  # whatever its recorded pid
        assert jobs.recover_jobs(env) == []
        assert jobs.run_job(env, found.id) is None  # a second runner steps aside
    assert not jobs.job_alive(found)


def test_a_started_job_runs_in_its_own_process_and_finishes(env: Path) -> None:
    # a re-analysis of an empty store: the real runner, start to end, in seconds
    with open_db(env) as db:
        job_id = jobs.start_reanalyse(db, account=None)
        started = job_store.job(db, job_id)
        assert started.state == "running" and started.pid != os.getpid()
        with pytest.raises(ValueError, match=rf"job {job_id} \(reanalyse, started by cli"):
            jobs.start_fine_tune(db, time_budget_s=60.0, account=None)
    assert Path(started.out_dir).parent == jobs.jobs_root()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with open_db(env) as db:
            ended = job_store.job(db, job_id)
        if not ended.active:
            break
        time.sleep(1)
    log = (Path(started.out_dir) / jobs.LOG_NAME).read_text()
    assert ended.state == "finished", log
    assert ended.result["studies"] == 0
    assert f"job {job_id}: finished" in log


def test_jobs_list_and_run_at_the_command_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _job(env, pid=None)
    with open_db(env) as db:
        job_store.finish(db, done.id, {"candidate": "centre-1"})
        failed_id = job_store.create_job(
            db, kind="reanalyse", args={}, account=None, out_root=env.parent / "jobs"
        )
        job_store.fail(db, failed_id, "no model")
    assert main(["jobs", "list", "--db", str(env)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == [str(failed_id), "reanalyse", "failed"]
    assert lines[0].endswith("by cli  no model")
    assert lines[1].split()[:3] == [str(done.id), "fine-tune", "finished"]
    assert lines[1].endswith("candidate centre-1")
    # a job that is over is not run again; its state is the exit status
    assert main(["jobs", "run", str(done.id), "--db", str(env)]) == 0
    assert main(["jobs", "run", str(failed_id), "--db", str(env)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"job {done.id}: finished",
        f"job {failed_id}: failed: no model",
    ]
    assert main(["jobs", "run", "99", "--db", str(env)]) == 1
    assert "job 99: job_id: there is no job 99" in capsys.readouterr().err
