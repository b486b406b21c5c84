"""Synthetic data commands: ``generate`` (a phantom labelled dataset) and ``demo-cohort``."""

from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from core.config import db_path
from core.phantom.centres import centre_named
from core.phantom.demo_cohort import DEMO_PATIENTS, DEMO_SEED
from core.phantom.export import generate_dataset
from db.connection import open_db
from workflow.demo import reason_to_skip, seed_demo_cohort


def run_generate(args: argparse.Namespace) -> int:
    """Write a phantom labelled dataset and say how many scans it holds."""
    start = time.perf_counter()
    try:
        centre = centre_named(args.centre)
        path = generate_dataset(
            args.out,
            args.cases,
            args.seed,
            longitudinal=args.longitudinal,
            jobs=args.jobs,
            layouts=args.layouts,
            centre=centre,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    with path.open(encoding="utf-8") as handle:
        rows = sum(1 for _ in handle) - 1
    unit = "patients" if args.longitudinal else "cases"
    print(
        f"{path}: {rows} scans ({args.cases} {unit}, seed {args.seed}, centre {centre.name}) "
        f"in {seconds:.1f} s"
    )
    return 0


def run_demo_cohort(args: argparse.Namespace) -> int:
    """Store the demo cohort (:func:`workflow.demo.seed_demo_cohort`) with a progress bar."""
    path = args.db or db_path()
    n = args.patients or DEMO_PATIENTS
    with open_db(path) as db:
        reason = reason_to_skip(db) if args.if_empty else None
        if reason is not None:
            print(f"{path}: {reason}; demo cohort not added")
            return 0
        with tqdm(total=n, unit="patient", desc="demo cohort") as bar:

            def advance(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            try:
                summary = seed_demo_cohort(db, n, args.seed or DEMO_SEED, progress=advance)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    print(f"{path}: stored {summary.patients} synthetic patients with {summary.studies} studies")
    return 0
