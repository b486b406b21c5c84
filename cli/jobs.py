"""Job commands: ``jobs list`` and ``jobs run`` (what the Model lab page launches).

``jobs run JOB_ID`` runs one queued or running job of the store in this process, holding
the job's lock (:func:`workflow.jobs.run_job`); the page launches it detached, and the
page's recovery launches it again when it died, so it is rarely typed by hand.
``jobs list`` prints the latest jobs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.auth import AccessDenied
from core.config import db_path
from db import jobs as job_store
from db.connection import open_db
from workflow.jobs import cancel_job, run_job


def _db_file(args: argparse.Namespace) -> Path:
    """The store the command names with ``--db``, else the configured one."""
    return Path(args.db) if args.db else db_path()


def _list(path: Path, as_json: bool) -> int:
    with open_db(path) as db:
        found = job_store.list_jobs(db)
    if as_json:
        print(json.dumps([j.__dict__ for j in found]))
        return 0
    if not found:
        print(f"{path}: no jobs")
    for j in found:
        when = j.created_at[:16].replace("T", " ")
        line = f"{j.id:4d}  {j.kind:10s} {j.state:9s} {when}  by {j.started_by}"
        if j.message:
            line += f"  {j.message}"
        if j.state == "finished" and j.result.get("candidate"):
            line += f"  candidate {j.result['candidate']}"
        print(line)
    return 0


def _run(path: Path, job_id: int) -> int:
    try:
        ended = run_job(path, job_id)
    except Exception as exc:  # the job is marked failed with the reason; say it here too
        print(f"error: job {job_id}: {exc}", file=sys.stderr)
        return 1
    if ended is None:
        print(f"job {job_id}: another process runs it; nothing done")
        return 0
    print(f"job {job_id}: {ended.state}{': ' + ended.message if ended.message else ''}")
    return 0 if ended.state == "finished" else 1


def _cancel(path: Path, job_id: int, account: str) -> int:
    try:
        with open_db(path) as db:
            stopped = cancel_job(db, job_id, account)
    except (ValueError, AccessDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    how = "its process was stopped" if stopped else "no process was running it"
    print(f"job {job_id}: cancelled by {account}; {how}; the model in use is unchanged")
    return 0


def run_jobs(args: argparse.Namespace) -> int:
    """List the jobs, run one, or cancel one."""
    path = _db_file(args)
    if args.jobs_action == "list":
        return _list(path, args.json)
    if args.jobs_action == "cancel":
        return _cancel(path, args.job_id, args.account)
    return _run(path, args.job_id)
