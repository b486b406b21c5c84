"""PACS commands: ``pacs pull``, ``pacs push`` (DICOMweb) and ``listen`` (Storage SCP)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import replace

from tqdm import tqdm

from core.auth import AccessDenied
from core.config import db_path
from core.config import model_dir as default_model_dir
from core.logs import setup_logging
from core.networks.models import ModelFileError, load_models
from db.connection import open_db
from workflow.model_versions import load_active
from workflow.pacs.dicomweb import PacsClient, PacsError, RemoteStudy
from workflow.pacs.listener import serve
from workflow.pacs.pull import pull_studies
from workflow.pacs.push import send_results
from workflow.pacs.settings import load_settings


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None


def _describe(study: RemoteStudy) -> str:
    # The patient's name stays off the terminal too: the user asked by ID or date.
    date = study.study_date.isoformat() if study.study_date else "no date"
    count = "?" if study.n_instances is None else str(study.n_instances)
    return (
        f"{date}  {count:>3} instances  {study.accession_number or '-':16s} "
        f"{study.description or '-'}  {study.study_instance_uid}"
    )


def _confirm(n: int) -> bool:
    try:
        answer = input(f"Import these {n} studies? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _run_pull(args: argparse.Namespace) -> int:
    try:
        client = PacsClient(load_settings())
        since, until = _date(args.since, "--since"), _date(args.until, "--until")
        studies = client.find_studies(patient_id=args.patient, since=since, until=until)
    except (ValueError, PacsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not studies:
        print(f"{client.url}: no NM study found")
        return 0
    for study in studies:
        print(_describe(study))
    if not args.yes and not _confirm(len(studies)):
        print("nothing imported")
        return 0
    model_dir = args.model or default_model_dir()
    try:
        if args.model is None:
            # the store's version in use, as every process of the store analyses with
            with open_db(args.db or db_path()) as db:
                _, models = load_active(db, device=args.device)
        else:
            models = load_models(model_dir, device=args.device)
    except ModelFileError as exc:
        print(f"error: no usable model in {model_dir} ({exc})", file=sys.stderr)
        return 2
    with (
        open_db(args.db or db_path()) as db,
        tqdm(total=len(studies), unit="study", desc="pulling", disable=args.quiet) as bar,
    ):

        def advance(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        outcomes = pull_studies(
            db,
            client,
            [s.study_instance_uid for s in studies],
            models=models,
            account=args.account,
            progress=advance,
        )
    for outcome in outcomes:
        where = "" if outcome.study_id is None else f" as study {outcome.study_id}"
        why = f": {outcome.reason}" if outcome.reason else ""
        print(f"{outcome.study_instance_uid}: {outcome.status}{where}{why}")
    return 2 if any(o.status == "failed" for o in outcomes) else 0


def _run_push(args: argparse.Namespace) -> int:
    try:
        client = PacsClient(load_settings())
        with open_db(args.db or db_path()) as db:
            sent = send_results(db, client, args.study, account=args.account)
    except (ValueError, PacsError, AccessDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"study {args.study}: sent {len(sent.sop_instance_uids)} instances to {client.url} "
        f"(study {sent.study_instance_uid})"
    )
    return 0


def run_pacs(args: argparse.Namespace) -> int:
    """Run ``pacs pull`` or ``pacs push``; 2 on bad input, an unreachable PACS or a failure."""
    if args.pacs_action == "pull":
        return _run_pull(args)
    return _run_push(args)


def run_listen(args: argparse.Namespace) -> int:
    """Run the Storage SCP until interrupted; 2 when it cannot start.

    ``--port`` and ``--ae-title`` override the settings' port and AE title.
    """
    setup_logging()  # the operator follows arrivals and quarantines in the log
    try:
        settings = load_settings()
        if args.port is not None:
            settings = replace(settings, listen_port=args.port)
        if args.ae_title is not None:
            settings = replace(settings, ae_title=args.ae_title)
        # without --model the listener follows the store's version in use, study by study
        serve(settings, db_path=args.db or db_path(), model_dir=args.model)
    except (ValueError, ModelFileError, AccessDenied, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
