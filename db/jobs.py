"""Background jobs in the store: one fine-tune or re-analysis at a time, and its state.

A job is a row of ``jobs`` (migration 0008): its kind, its arguments, the folder it works
in, the pid of the process running it, who started it, and how it ended. States::

    queued --mark_running--> running --finish--> finished
       |                        |
       +---------fail-----------+-----fail-----> failed

At most one job is queued or running (the partial unique index ``jobs_one_active``);
:func:`create_job` refuses a second with a sentence naming the first. Creating a job
needs the "models" action (admins); the later changes of state are the job's own runner
reporting on it, so they check no role (the admin's right was checked when the job was
made, and a job must still be able to say it failed if the account was disabled since),
but each is audited under the job's ``started_by``.

:func:`claim_relaunch` is a compare-and-set on the pid: of several processes that find
the same dead job, one wins the right to start it again.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from db.access import require_role
from db.store import audit, insert_row, write_transaction

#: Kinds of job.
JOB_KINDS: tuple[str, str] = ("fine-tune", "reanalyse")
#: States of a job, in the order a job goes through them.
JOB_STATES: tuple[str, ...] = ("queued", "running", "finished", "failed")
#: States of a job that is not over (at most one job is in one of them).
ACTIVE_STATES: tuple[str, str] = ("queued", "running")
#: Longest message kept (a failure's text can be a whole traceback).
MAX_MESSAGE = 2000

_COLUMNS = (
    "id, kind, state, args_json, out_dir, pid, started_by, created_at, started_at, "
    "finished_at, message, result_json"
)


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``.

    Attributes:
        id: The job's id.
        kind: ``"fine-tune"`` or ``"reanalyse"``.
        state: One of :data:`JOB_STATES`.
        args: What the job was asked to do (parsed ``args_json``).
        out_dir: The folder it works in.
        pid: The process running it (or the one that claimed it), or None.
        started_by: The account that made it.
        created_at: ISO-8601 UTC time it was made.
        started_at: When a runner first took it, or None.
        finished_at: When it finished or failed, or None.
        message: Its stage while it runs; why it failed, when it failed.
        result: What it produced (parsed ``result_json``; empty until it finishes).
    """

    id: int
    kind: str
    state: str
    args: dict[str, Any]
    out_dir: str
    pid: int | None
    started_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    message: str
    result: dict[str, Any]

    @property
    def active(self) -> bool:
        """True while the job is queued or running."""
        return self.state in ACTIVE_STATES


def _job_from_row(row: tuple[Any, ...]) -> Job:
    return Job(
        id=int(row[0]),
        kind=str(row[1]),
        state=str(row[2]),
        args=json.loads(row[3]),
        out_dir=str(row[4]),
        pid=None if row[5] is None else int(row[5]),
        started_by=str(row[6]),
        created_at=str(row[7]),
        started_at=row[8],
        finished_at=row[9],
        message=str(row[10]),
        result=json.loads(row[11]),
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def active_job(db: Database) -> Job | None:
    """Return the job that is queued or running, or None."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY id LIMIT 1"
    ).fetchone()
    return None if row is None else _job_from_row(row)


def job(db: Database, job_id: int) -> Job:
    """Return the job ``job_id``.

    Raises:
        ValueError: If the store has no job ``job_id``.
    """
    row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", [int(job_id)]).fetchone()
    if row is None:
        raise ValueError(f"job_id: there is no job {job_id}")
    return _job_from_row(row)


def list_jobs(db: Database, *, kind: str | None = None, limit: int = 50) -> list[Job]:
    """Return the latest jobs, newest first.

    Args:
        db: An open store.
        kind: Only jobs of this kind (:data:`JOB_KINDS`), or every kind when None.
        limit: Most jobs returned (>= 1).

    Raises:
        ValueError: If ``kind`` is unknown or ``limit`` < 1.
    """
    if kind is not None and kind not in JOB_KINDS:
        raise ValueError(f"kind must be one of {JOB_KINDS} or None, got {kind!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [_job_from_row(r) for r in rows]


def _busy_sentence(found: Job) -> str:
    return (
        f"job {found.id} ({found.kind}, started by {found.started_by} at "
        f"{found.created_at[:16].replace('T', ' ')} UTC) is still {found.state}: one job runs "
        "at a time; wait for it to finish"
    )


def create_job(
    db: Database,
    *,
    kind: str,
    args: Mapping[str, Any],
    out_root: str | Path,
    account: str | None,
    pid: int | None = None,
) -> int:
    """Queue a job; its folder is ``out_root/<id>``.

    Args:
        db: An open store.
        kind: One of :data:`JOB_KINDS`.
        args: What the job is to do (JSON-serialisable).
        out_root: The folder that holds every job's folder (not created here).
        account: Who starts it; must be allowed "models" in a store with accounts
            (None or "" only in a store without accounts, recorded as "cli").
        pid: The process that will launch the runner (so that nobody else relaunches
            the job meanwhile), or None.

    Returns:
        The new job's id.

    Raises:
        ValueError: If ``kind`` is unknown, ``args`` is not JSON-serialisable, or a job
            is already queued or running (the message names it).
        core.auth.AccessDenied: If ``account`` may not fine-tune models in this store.
    """
    if kind not in JOB_KINDS:
        raise ValueError(f"kind must be one of {JOB_KINDS}, got {kind!r}")
    try:
        args_json = json.dumps(dict(args), sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"args must be JSON-serialisable: {exc}") from None
    who = account.strip() if account and account.strip() else "cli"
    with write_transaction(db):
        require_role(db, account, "models")
        found = active_job(db)
        if found is not None:
            raise ValueError(f"A job cannot start: {_busy_sentence(found)}.")
        try:
            job_id = insert_row(db, "jobs", {
                "kind": kind, "state": "queued", "args_json": args_json, "out_dir": "",
                "pid": pid, "started_by": who,
            })  # fmt: skip
        except sqlite3.IntegrityError:  # only if a writer bypassed BEGIN IMMEDIATE
            raise ValueError("A job cannot start: another job is queued or running.") from None
        out_dir = str(Path(out_root) / str(job_id))
        db.execute("UPDATE jobs SET out_dir = ? WHERE id = ?", [out_dir, job_id])
        after = {"kind": kind, "args": dict(args), "out_dir": out_dir}
        audit(db, account=who, action="create_job", entity="job", entity_id=job_id,
              before=None, after=after)  # fmt: skip
    return job_id


def _active_or_refuse(db: Database, job_id: int, what: str) -> Job:
    found = job(db, job_id)
    if not found.active:
        raise ValueError(f"job_id: job {job_id} is {found.state}; it cannot be {what}")
    return found


def mark_running(db: Database, job_id: int, pid: int) -> None:
    """Record that process ``pid`` runs the job (state running; first start time kept).

    Raises:
        ValueError: If the job does not exist, is over, or ``pid`` < 1.
    """
    if pid < 1:
        raise ValueError(f"pid must be >= 1, got {pid}")
    with write_transaction(db):
        found = _active_or_refuse(db, job_id, "marked running")
        db.execute(
            "UPDATE jobs SET state = 'running', pid = ?, started_at = coalesce(started_at, ?) "
            "WHERE id = ?",
            [pid, _now(), job_id],
        )
        audit(db, account=found.started_by, action="run_job", entity="job", entity_id=job_id,
              before={"state": found.state, "pid": found.pid},
              after={"state": "running", "pid": pid})  # fmt: skip


def claim_relaunch(db: Database, job_id: int, *, dead_pid: int | None, claimer_pid: int) -> bool:
    """Take the right to start a dead job again: its pid becomes ``claimer_pid``.

    A compare-and-set: it succeeds only while the job is active and its pid is still
    ``dead_pid``, so of several processes that found the job dead, one relaunches it.

    Args:
        db: An open store.
        job_id: The job.
        dead_pid: The pid the caller found dead (None when none was recorded).
        claimer_pid: The caller's own pid (alive while it launches the runner).

    Returns:
        True when this caller won the claim.

    Raises:
        ValueError: If the job does not exist.
    """
    with write_transaction(db):
        found = job(db, job_id)
        if not found.active or found.pid != dead_pid:
            return False
        db.execute("UPDATE jobs SET pid = ? WHERE id = ?", [claimer_pid, job_id])
        audit(db, account=found.started_by, action="relaunch_job", entity="job",
              entity_id=job_id, before={"pid": dead_pid},
              after={"pid": claimer_pid})  # fmt: skip
    return True


def relaunch_count(db: Database, job_id: int) -> int:
    """Return how many times the job was found dead and claimed for a relaunch."""
    return int(
        db.execute(
            "SELECT count(*) FROM audit_log WHERE entity = 'job' AND entity_id = ? "
            "AND action = 'relaunch_job'",
            [int(job_id)],
        ).fetchone()[0]
    )


def set_message(db: Database, job_id: int, message: str) -> None:
    """Set a running job's message (its stage, e.g. "training"), for the page to show.

    Not audited: a stage is a status line, not an event (the start and the end are).

    Raises:
        ValueError: If the job does not exist or is over.
    """
    with write_transaction(db):
        _active_or_refuse(db, job_id, "given a stage")
        db.execute("UPDATE jobs SET message = ? WHERE id = ?", [message[:MAX_MESSAGE], job_id])


def finish(db: Database, job_id: int, result: Mapping[str, Any]) -> None:
    """Mark the job finished with its result.

    Raises:
        ValueError: If the job does not exist or is over, or ``result`` is not
            JSON-serialisable.
    """
    try:
        result_json = json.dumps(dict(result), sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"result must be JSON-serialisable: {exc}") from None
    with write_transaction(db):
        found = _active_or_refuse(db, job_id, "finished")
        db.execute(
            "UPDATE jobs SET state = 'finished', finished_at = ?, message = '', "
            "result_json = ? WHERE id = ?",
            [_now(), result_json, job_id],
        )
        audit(db, account=found.started_by, action="finish_job", entity="job",
              entity_id=job_id, before={"state": found.state},
              after={"state": "finished"})  # fmt: skip


def fail(db: Database, job_id: int, message: str) -> None:
    """Mark the job failed, saying why.

    Raises:
        ValueError: If the job does not exist or is over, or ``message`` is empty.
    """
    if not message.strip():
        raise ValueError("message must say why the job failed")
    text = message.strip()[:MAX_MESSAGE]
    with write_transaction(db):
        found = _active_or_refuse(db, job_id, "failed")
        db.execute(
            "UPDATE jobs SET state = 'failed', finished_at = ?, message = ? WHERE id = ?",
            [_now(), text, job_id],
        )
        after = {"state": "failed", "message": text}
        audit(db, account=found.started_by, action="fail_job", entity="job", entity_id=job_id,
              before={"state": found.state}, after=after)  # fmt: skip


def cancel(db: Database, job_id: int, account: str) -> Job:
    """Mark an active job failed because ``account`` cancelled it, audited.

    The job's runner, if one is alive, is stopped by the caller
    (:func:`workflow.jobs.cancel_job`); a runner that outlives this finds its job over
    and changes nothing more. A cancelled job is never relaunched: only queued and
    running jobs are.

    Args:
        db: An open store.
        job_id: The job.
        account: Who cancels it; must be allowed "models" in a store with accounts
            (the one who may start a job may stop one).

    Returns:
        The job as it was before the cancel (its pid names the runner to stop).

    Raises:
        ValueError: If the job does not exist or is already over, or ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not manage models in this store.
    """
    if not account.strip():
        raise ValueError("account must name who cancels the job")
    text = f"cancelled by {account.strip()}"[:MAX_MESSAGE]
    with write_transaction(db):
        require_role(db, account.strip(), "models")
        found = _active_or_refuse(db, job_id, "cancelled")
        db.execute(
            "UPDATE jobs SET state = 'failed', finished_at = ?, message = ? WHERE id = ?",
            [_now(), text, job_id],
        )
        audit(db, account=account.strip(), action="cancel_job", entity="job",
              entity_id=job_id, before={"state": found.state, "pid": found.pid},
              after={"state": "failed", "message": text})  # fmt: skip
    return found
