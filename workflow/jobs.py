"""Background jobs: start one, run it in its own process, find it again after a restart.

A job (:mod:`db.jobs`) runs in a detached process, ``python -m core jobs run ID``, so
that it outlives the page that started it: :func:`start_fine_tune` and
:func:`start_reanalyse` queue the job and launch that process (its own session, output
to ``<data>/jobs/<id>/job.log``, the store, data folder and models of this process in
its environment). Only one job is queued or running at a time (:mod:`db.jobs` refuses
a second).

**Is it alive?** A runner holds an exclusive ``flock`` on ``<job>/job.lock`` for its
whole life (:func:`run_job`), so the lock says a runner is alive whatever its pid, and
two runners of one job cannot both work (the second returns at once). The few seconds
between launching a process and its taking the lock are covered by the recorded pid,
trusted for :data:`LAUNCH_GRACE_S` after the launch.

**Recovery.** :func:`recover_jobs` (the Model lab page calls it on every run) finds
the active job without a live runner (the server restarted, the machine rebooted, the
process was killed) and launches it again; the fine-tune carries on from its last
finished step and its training checkpoint (:mod:`workflow.fine_tune`). Of several
pages finding it dead at once, one wins :func:`db.jobs.claim_relaunch`. A job that died
:data:`MAX_RELAUNCHES` times without finishing is marked failed instead of looping.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from core.config import REPO_ROOT, data_dir
from core.networks.trainer import PROGRESS_NAME, write_progress
from db import jobs as job_store
from db.connection import open_db
from workflow.fine_tune import CANDIDATE_DIR, check_overrides, run_fine_tune_job
from workflow.model_versions import active_model_dir, reanalyse_cohort

#: Files of a job's folder: the runner's lock, its output, the last launch.
LOCK_NAME, LOG_NAME, LAUNCH_NAME = "job.lock", "job.log", "launch.json"
#: Seconds after a launch during which a live pid counts as a runner that has not yet
#: taken its lock (Python, torch and MONAI load first; slow on a busy CPU).
LAUNCH_GRACE_S = 180.0
#: Relaunches of one job before it is marked failed (a runner that dies at start would
#: otherwise be launched again on every page run).
MAX_RELAUNCHES = 5
#: Seconds a starting runner waits for the lock, in case a liveness check holds it briefly.
LOCK_WAIT_S = 5.0
#: Seconds a cancel waits for a runner this process started to end (reaping it).
CANCEL_WAIT_S = 10.0
#: Environment variables a runner inherits explicitly (the store, data and models in use).
ENV_KEPT: tuple[str, ...] = ("BONESCAN_DB", "BONESCAN_DATA_DIR", "BONESCAN_MODELS")

# Launched runners of this process, so that their exit is seen (and reaped) by poll().
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def jobs_root() -> Path:
    """Return the folder that holds every job's folder (``<data>/jobs``, absolute).

    Absolute because the store records each job's folder and the runner starts in the
    repository, whatever folder the dashboard was started from.
    """
    return (data_dir() / "jobs").resolve()


def store_file(db: Database) -> Path:
    """Return the SQLite file of an open store (what a runner process opens).

    Raises:
        ValueError: If ``db`` is an in-memory store (no process could open it).
    """
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file)
    raise ValueError("db must be a store in a file, not in memory: a job runs in its own process")


# --- liveness -----------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not a runner
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _lock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _launched_at(job: job_store.Job) -> float:
    created = dt.datetime.fromisoformat(job.created_at.replace("Z", "+00:00")).timestamp()
    try:
        return max(created, (Path(job.out_dir) / LAUNCH_NAME).stat().st_mtime)
    except OSError:
        return created


def job_alive(job: job_store.Job) -> bool:
    """Say whether a runner is working on the job (or was launched moments ago).

    Args:
        job: A job as read from the store.

    Returns:
        False for a job that is over; True while a runner holds the job's lock, or its
        recorded pid lives within :data:`LAUNCH_GRACE_S` of the last launch.
    """
    if not job.active:
        return False
    if _lock_held(Path(job.out_dir) / LOCK_NAME):
        return True
    recent = time.time() - _launched_at(job) < LAUNCH_GRACE_S
    return job.pid is not None and recent and _pid_alive(job.pid)


# --- launching ----------------------------------------------------------------------


def _spawn(db_path: Path, job: job_store.Job) -> int:
    """Launch ``python -m core jobs run ID`` detached; return its pid."""
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["BONESCAN_DB"] = str(Path(db_path).resolve())
    env["BONESCAN_DATA_DIR"] = str(data_dir().resolve())
    env["PYTHONUNBUFFERED"] = "1"  # job.log shows each line as it is written
    launch = {"at": time.time(), "by_pid": os.getpid(), "argv0": sys.executable}
    (out / LAUNCH_NAME).write_text(json.dumps(launch) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "core", "jobs", "run", str(job.id), "--db", env["BONESCAN_DB"]]
    with (out / LOG_NAME).open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the server's process group and its Ctrl-C
        )
    _CHILDREN[process.pid] = process
    return process.pid


def _launch(db: Database, job_id: int) -> None:
    """Launch the runner of a job this process has claimed; fail the job if it cannot."""
    found = job_store.job(db, job_id)
    try:
        pid = _spawn(store_file(db), found)
    except OSError as exc:
        job_store.fail(db, job_id, f"the job's process could not start: {exc}")
        raise ValueError(f"The job's process could not start: {exc}") from None
    with contextlib.suppress(ValueError):  # a runner that already ended needs no pid
        job_store.mark_running(db, job_id, pid)


def start_fine_tune(
    db: Database,
    *,
    time_budget_s: float,
    account: str | None,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """Queue a fine-tune of the active model on the reviewed scans and launch it.

    Args:
        db: An open store (in a file).
        time_budget_s: Seconds the training loop may take, over all its sessions (> 0).
        account: Who starts it (an admin, in a store with accounts).
        overrides: Training settings to change (:data:`workflow.fine_tune.OVERRIDABLE`),
            for a tiny run (tests, the command line); None for the measured defaults.

    Returns:
        The job's id.

    Raises:
        ValueError: If the budget is not a number > 0, an override is unknown, a job
            is already queued or running, or the process cannot start.
        core.auth.AccessDenied: If ``account`` may not fine-tune models.
    """
    if not (isinstance(time_budget_s, int | float) and math.isfinite(time_budget_s)):
        raise ValueError(f"time_budget_s must be a finite number > 0, got {time_budget_s!r}")
    if time_budget_s <= 0:
        raise ValueError(f"time_budget_s must be > 0, got {time_budget_s!r}")
    changes = check_overrides(overrides or {})
    store_file(db)
    version, folder = active_model_dir(db)
    args = {
        "time_budget_s": float(time_budget_s),
        "parent": version,
        "init_from": str(Path(folder).resolve()),
        "overrides": changes,
    }
    job_id = job_store.create_job(
        db, kind="fine-tune", args=args, out_root=jobs_root(), account=account, pid=os.getpid()
    )
    _launch(db, job_id)
    return job_id


def start_reanalyse(db: Database, *, account: str | None) -> int:
    """Queue a re-analysis of the stored cohort with the active model and launch it.

    Returns:
        The job's id.

    Raises:
        ValueError: If a job is already queued or running, or the process cannot start.
        core.auth.AccessDenied: If ``account`` may not manage models.
    """
    store_file(db)
    version, _ = active_model_dir(db)
    job_id = job_store.create_job(
        db, kind="reanalyse", args={"model": version}, out_root=jobs_root(), account=account,
        pid=os.getpid(),
    )  # fmt: skip
    _launch(db, job_id)
    return job_id


def recover_jobs(db_path: Path | str) -> list[int]:
    """Launch again the active job whose runner died; return the ids relaunched.

    Cheap when nothing is wrong (one query and a lock probe): the Model lab page calls
    it on every run, so a job survives a page reload and a server restart.

    Args:
        db_path: The store's SQLite file.

    Returns:
        ``[job id]`` when a dead job was launched again, else ``[]`` (none active, its
        runner alive, another process relaunching it, or failed after
        :data:`MAX_RELAUNCHES`).
    """
    with open_db(db_path) as db:
        found = job_store.active_job(db)
        if found is None or job_alive(found):
            return []
        relaunches = job_store.relaunch_count(db, found.id)
        if relaunches >= MAX_RELAUNCHES:
            job_store.fail(
                db,
                found.id,
                f"its process stopped {relaunches + 1} times without finishing; "
                f"see {Path(found.out_dir) / LOG_NAME}",
            )
            return []
        if not job_store.claim_relaunch(db, found.id, dead_pid=found.pid, claimer_pid=os.getpid()):
            return []
        _launch(db, found.id)
    return [found.id]


# --- running ------------------------------------------------------------------------


@contextlib.contextmanager
def _runner_lock(out: Path) -> Iterator[bool]:
    """Hold the job's lock for the block; yields False when another runner has it."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.2)
        yield True
    finally:
        os.close(fd)


def run_reanalyse_job(db_path: Path | str, job_id: int) -> dict[str, Any]:
    """Re-analyse the stored cohort with the active model, as job ``job_id``.

    Progress goes to ``<job>/progress.json`` (``step`` of ``total`` studies).

    Returns:
        The job's result: ``{"studies": n}``.

    Raises:
        ValueError: If the job is not an active ``reanalyse`` job.
        Exception: Whatever the re-analysis raised (the job is then marked failed).
    """
    with open_db(db_path) as db:
        job = job_store.job(db, job_id)
    if job.kind != "reanalyse" or not job.active:
        raise ValueError(f"job_id: job {job_id} is a {job.state} {job.kind} job")
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        write_progress(out, {
            "state": "running", "step": done, "total": total, "elapsed_s": round(elapsed, 1),
            "eta_s": round(elapsed / done * (total - done), 1) if done else None,
        })  # fmt: skip

    try:
        with open_db(db_path) as db:
            job_store.set_message(db, job_id, "re-analysing the stored studies")
        # as whoever started it: in a store with accounts the analyses need an uploader
        studies = reanalyse_cohort(db_path, progress=progress, account=job.started_by)
        result = {"studies": int(studies), "model": job.args.get("model")}
        with open_db(db_path) as db:
            job_store.finish(db, job_id, result)
    except Exception as exc:
        with open_db(db_path) as db:
            if job_store.job(db, job_id).active:
                job_store.fail(db, job_id, f"re-analysing: {exc}")
        raise
    return result


def run_job(db_path: Path | str, job_id: int) -> job_store.Job | None:
    """Run a job in this process, holding its lock (what ``python -m core jobs run`` does).

    Args:
        db_path: The store's SQLite file.
        job_id: The job.

    Returns:
        The job as it ended; the job unchanged when it was already over; None when
        another runner holds it.

    Raises:
        ValueError: If there is no such job.
        Exception: What the job raised (it is marked failed first).
    """
    with open_db(db_path) as db:
        found = job_store.job(db, job_id)
    if not found.active:
        return found
    with _runner_lock(Path(found.out_dir)) as held:
        if not held:
            return None
        with open_db(db_path) as db:
            if not job_store.job(db, job_id).active:  # ended while we waited for the lock
                return job_store.job(db, job_id)
            job_store.mark_running(db, job_id, os.getpid())
        if found.kind == "fine-tune":
            run_fine_tune_job(db_path, job_id)
        else:
            run_reanalyse_job(db_path, job_id)
    with open_db(db_path) as db:
        return job_store.job(db, job_id)


def cancel_job(db: Database, job_id: int, account: str) -> bool:
    """Cancel an active job and stop its runner; the active model stays as it is.

    The job is marked failed ("cancelled by ACCOUNT") first, in one audited
    transaction, so that no page relaunches it; then, if its runner is alive, the
    runner's process group (the runner and anything it started) gets SIGTERM. The
    trainer writes its checkpoints atomically and registers a candidate only at the
    end, so a stop at any moment leaves the store and the model in use unchanged.

    Args:
        db: An open store.
        job_id: The job.
        account: Who cancels it.

    Returns:
        True when a live runner was signalled; False when none was running (a queued
        job, or a runner that had died).

    Raises:
        ValueError: If the job does not exist or is already over, or ``account`` is empty.
    """
    before = job_store.job(db, job_id)
    # Decided before the cancel: job_alive asks the lock and the pid of an active job.
    alive = job_alive(before) and before.pid is not None
    found = job_store.cancel(db, job_id, account)
    if not alive or found.pid is None:
        return False
    # The runner was started in a session of its own: its pid is its group's id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(found.pid, signal.SIGTERM)
    child = _CHILDREN.pop(found.pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=CANCEL_WAIT_S)
    return True


# --- what the page shows ------------------------------------------------------------


def job_progress(job: job_store.Job) -> dict[str, Any] | None:
    """Return the job's last progress record (``progress.json``), or None before one.

    For a fine-tune it is the trainer's (``<job>/candidate/progress.json``: step, total,
    elapsed_s, eta_s, loss, validation_history, notes); for a re-analysis, studies done.
    """
    folder = Path(job.out_dir)
    path = (
        folder / CANDIDATE_DIR / PROGRESS_NAME
        if job.kind == "fine-tune"
        else folder / PROGRESS_NAME
    )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def job_log_tail(job: job_store.Job, lines: int = 20) -> str:
    """Return the last ``lines`` lines of the job's output (``job.log``), or ""."""
    try:
        text = (Path(job.out_dir) / LOG_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
