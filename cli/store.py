"""Store commands: ``init-db``, ``user``, ``backup``, ``restore``.

``user`` adds, removes, lists, disables and enables accounts and sets passwords. These
commands run at the server, as whoever can already read and write the store's file, so
they need no sign-in (:mod:`db.accounts` records them as ``console`` in the audit log).
Create the first admin with ``python -m core user add NAME --role admin`` (the password
is asked twice without echo; ``--password-stdin`` reads it from standard input instead,
for scripts).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from core.auth import AccessDenied
from core.config import db_path
from db import access, accounts
from db.backup import BackupError, BackupReport, backup, restore
from db.connection import open_db


def _db_file(args: argparse.Namespace) -> Path:
    """The store the command names with ``--db``, else the configured one."""
    return Path(args.db) if args.db else db_path()


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input, or asked twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ; nothing changed")
    return first


def run_init_db(args: argparse.Namespace) -> int:
    """Create or migrate the store and name its tables."""
    path = _db_file(args)
    with open_db(path) as db:
        tables = sorted(t for t in db.table_names() if not t.startswith("_"))
    print(f"{path}: schema up to date; tables: {', '.join(tables)}")
    return 0


def _user_list(db: Database, path: Path, args: argparse.Namespace) -> None:
    found = access.list_accounts(db)
    if args.json:
        print(json.dumps([a.__dict__ for a in found]))
        return
    if not found:
        print(f"{path}: no accounts (demo mode while all patients are synthetic)")
    for a in found:
        state = " (disabled)" if a.disabled else ""
        print(f"{a.username:24s} {a.role:10s} created {a.created_at}{state}")


def _user_add(db: Database, path: Path, args: argparse.Namespace) -> None:
    made = accounts.create_account(
        db, username=args.name, password=_read_password(args), role=args.role
    )
    print(f"{path}: account {made.username!r} created ({made.role})")


def _user_remove(db: Database, path: Path, args: argparse.Namespace) -> None:
    accounts.remove_account(db, args.name)
    print(f"{path}: account {args.name!r} removed")


def _user_passwd(db: Database, path: Path, args: argparse.Namespace) -> None:
    # checked before the prompt, so that a mistyped name does not ask for a password
    if access.get_account(db, args.name) is None:
        raise ValueError(f"there is no account named {args.name!r}")
    accounts.set_password(db, args.name, _read_password(args))
    print(f"{path}: password of {args.name!r} changed")


def _user_toggle(db: Database, path: Path, args: argparse.Namespace) -> None:
    accounts.set_disabled(db, args.name, args.user_action == "disable")
    print(f"{path}: account {args.name!r} {args.user_action}d")


#: What each ``user`` action does, given the open store, its path and the arguments.
_USER_ACTIONS: dict[str, Callable[[Database, Path, argparse.Namespace], None]] = {
    "list": _user_list,
    "add": _user_add,
    "remove": _user_remove,
    "passwd": _user_passwd,
    "disable": _user_toggle,
    "enable": _user_toggle,
}


def run_user(args: argparse.Namespace) -> int:
    """Run one ``user`` action; a refused change is an error (exit 2), not a traceback."""
    path = _db_file(args)
    try:
        with open_db(path) as db:
            _USER_ACTIONS[args.user_action](db, path, args)
    except (ValueError, AccessDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_report(verb: str, report: BackupReport) -> None:
    rows = ", ".join(f"{t} {n}" for t, n in report.rows.items())
    print(f"{verb} {report.path} ({report.size_bytes / 1e6:.1f} MB; integrity ok): {rows}")
    if report.kept is not None:
        print(f"the store as it was before is kept at {report.kept}")


def run_backup(args: argparse.Namespace) -> int:
    """Copy the store with SQLite's online backup and print the copy's row counts."""
    try:
        report = backup(_db_file(args), args.dest, overwrite=args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_report("backed up to", report)
    return 0


def run_restore(args: argparse.Namespace) -> int:
    """Replace the store with a checked backup, keeping the store it replaces."""
    try:
        report = restore(args.src, _db_file(args))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_report("restored", report)
    return 0
