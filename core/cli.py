"""The command line: ``python -m core COMMAND ...``.

Each command is a pair of functions: ``_add_<name>(subparsers)`` declares its
arguments and ``_cmd_<name>(args) -> int`` runs it. Heavy imports (torch, pydicom)
happen inside the command so that ``--help`` stays instant. To add a command,
write the pair and append the ``_add_`` function to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_Subparsers = Any  # argparse's _SubParsersAction is private; typed loosely on purpose


def _add_info(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "info",
        help="read a scan (DICOM, PNG/JPEG export, or an ANT/POST pair) and describe it",
        description="Read a scan with the product's reader and print what it found.",
    )
    p.add_argument("file", type=Path, help="DICOM file or exported image (anterior, or both views)")
    p.add_argument("--posterior", type=Path, help="posterior view, when FILE is the anterior")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from core.readers import read_scan
    from core.scan import ScanReadError

    try:
        scan = read_scan(args.file, posterior=args.posterior)
    except ScanReadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = scan.meta
    out: dict[str, Any] = {
        "files": list(meta.source_files),
        "format": meta.source_format,
        "views": {
            name: {
                "shape": list(arr.shape),
                "total_counts": round(float(arr.sum()), 1),
                "max_counts": round(float(arr.max()), 2),
            }
            for name, arr in scan.views.items()
        },
        "polarity": meta.polarity,
        "pixel_spacing_mm": list(meta.pixel_spacing_mm) if meta.pixel_spacing_mm else None,
        "sex": meta.sex,
        "age": meta.age,
        "study_date": meta.study_date.isoformat() if meta.study_date else None,
        "manufacturer": meta.manufacturer,
        "notes": list(meta.notes),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:17s} {value}")
    return 0


def _add_init_db(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "init-db",
        help="create or migrate the SQLite store",
        description="Create the SQLite file if missing and apply pending schema migrations.",
    )
    p.add_argument("--db", type=Path, help="SQLite file (default: $BONESCAN_DB or data/)")
    p.set_defaults(func=_cmd_init_db)


def _cmd_init_db(args: argparse.Namespace) -> int:
    from core.config import db_path
    from db.connection import open_db

    path = args.db or db_path()
    with open_db(path) as db:
        tables = sorted(t for t in db.table_names() if not t.startswith("_"))
    print(f"{path}: schema up to date; tables: {', '.join(tables)}")
    return 0


#: Every command's ``_add_`` function, in the order ``--help`` lists them.
SUBCOMMANDS: list[Callable[[_Subparsers], None]] = [_add_info, _add_init_db]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Bone-scan tumour-burden tools (Liu et al. 2021): read, generate, "
        "train, evaluate and analyse whole-body bone scans.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status: 0 on success, 2 on bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)
