"""The centre's dataset: ``dataset export --reviewed OUT`` (:mod:`workflow.centre_dataset`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import db_path
from db.connection import open_db
from workflow.centre_dataset import SPLIT_FILE, SPLITS, export_reviewed


def run_dataset(args: argparse.Namespace) -> int:
    """Export the reviewed studies and say what was written, left out and split how."""
    path = Path(args.db) if args.db else db_path()
    if not path.is_file():
        print(f"error: {path}: no such store", file=sys.stderr)
        return 2
    with open_db(path) as db:
        try:
            summary = export_reviewed(db, args.reviewed, split_seed=args.split_seed)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(
        f"{summary.out}: {summary.cases} reviewed scans of {summary.patients} patients "
        f"({summary.with_metastasis} with metastasis, {summary.without_metastasis} without)"
    )
    split = ", ".join(
        f"{name} {summary.split_scans[name]} scans / {summary.split_patients[name]} patients"
        for name in SPLITS
    )
    print(f"{SPLIT_FILE} (seed {args.split_seed}): {split}")
    for line in summary.skipped:
        print(f"left out: {line}")
    for line in summary.notes:
        print(f"note: {line}")
    return 0
