"""Operator commands: ``user add|remove|passwd|list|disable|enable``, ``backup``, ``restore``.

Same shape as :mod:`cli` (an ``_add_<name>``/``_cmd_<name>`` pair per command);
:data:`ADMIN_SUBCOMMANDS` is appended to :data:`cli.SUBCOMMANDS`. These run at the
server, as whoever can already read and write the store's file, so they need no sign-in
(:mod:`db.accounts` records them as ``console`` in the audit log).

Create the first admin with ``python -m core user add NAME --role admin`` (the password
is asked twice without echo; ``--password-stdin`` reads it from standard input instead,
for scripts).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from core.auth import ROLES

_Subparsers = Any  # argparse's _SubParsersAction is private; typed loosely on purpose


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, help="SQLite file (default: $BONESCAN_DB or data/)")


def _store(args: argparse.Namespace) -> Path:
    from core.config import db_path

    return Path(args.db) if args.db else db_path()


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input, or asked twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ; nothing changed")
    return first


def _add_user(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "user",
        help="manage accounts: add, remove, passwd, list, disable, enable",
        description="Manage the accounts that may sign in to the dashboard. The first "
        "account must be an admin: python -m core user add NAME --role admin",
    )
    actions = p.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("name", help="username: letters, digits or . _ @ -")
    add.add_argument("--role", required=True, choices=ROLES, help="what the account may do")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = actions.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    passwd = actions.add_parser("passwd", help="set an account's password")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    listing = actions.add_parser("list", help="list the accounts")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    for name, words in (("disable", "stop an account signing in"), ("enable", "allow it again")):
        toggle = actions.add_parser(name, help=words)
        toggle.add_argument("name")
    for action in actions.choices.values():
        _db_arg(action)
    p.set_defaults(func=_cmd_user)


def _cmd_user(args: argparse.Namespace) -> int:
    from core.auth import AccessDenied
    from db import access, accounts
    from db.connection import open_db

    path = _store(args)
    try:
        with open_db(path) as db:
            if args.user_action == "list":
                found = access.list_accounts(db)
                if args.json:
                    print(json.dumps([a.__dict__ for a in found]))
                elif not found:
                    print(f"{path}: no accounts (demo mode while all patients are synthetic)")
                for a in [] if args.json else found:
                    state = " (disabled)" if a.disabled else ""
                    print(f"{a.username:24s} {a.role:10s} created {a.created_at}{state}")
                return 0
            if args.user_action == "add":
                made = accounts.create_account(
                    db, username=args.name, password=_read_password(args), role=args.role
                )
                print(f"{path}: account {made.username!r} created ({made.role})")
            elif args.user_action == "remove":
                accounts.remove_account(db, args.name)
                print(f"{path}: account {args.name!r} removed")
            elif args.user_action == "passwd":
                if access.get_account(db, args.name) is None:
                    raise ValueError(f"there is no account named {args.name!r}")
                accounts.set_password(db, args.name, _read_password(args))
                print(f"{path}: password of {args.name!r} changed")
            else:
                accounts.set_disabled(db, args.name, args.user_action == "disable")
                print(f"{path}: account {args.name!r} {args.user_action}d")
    except (ValueError, AccessDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_backup(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "backup",
        help="copy the store consistently while the dashboard runs",
        description="Copy the SQLite store with SQLite's online backup API (a consistent "
        "copy even while the dashboard writes), check it and print its row counts.",
    )
    p.add_argument("dest", type=Path, help="the copy's file, or a folder to put it in")
    p.add_argument("--force", action="store_true", help="overwrite DEST if it exists")
    _db_arg(p)
    p.set_defaults(func=_cmd_backup)


def _print_report(verb: str, report: Any) -> None:
    rows = ", ".join(f"{t} {n}" for t, n in report.rows.items())
    print(f"{verb} {report.path} ({report.size_bytes / 1e6:.1f} MB; integrity ok): {rows}")
    if report.kept is not None:
        print(f"the store as it was before is kept at {report.kept}")


def _cmd_backup(args: argparse.Namespace) -> int:
    from db.backup import BackupError, backup

    try:
        report = backup(_store(args), args.dest, overwrite=args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_report("backed up to", report)
    return 0


def _add_restore(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "restore",
        help="replace the store with a backup (stop the dashboard first)",
        description="Check the backup (integrity_check), keep the current store as "
        "<store>.before-restore-<time>.sqlite, and copy the backup over the store. Stop "
        "the dashboard first.",
    )
    p.add_argument("src", type=Path, help="a backup made by 'backup'")
    _db_arg(p)
    p.set_defaults(func=_cmd_restore)


def _cmd_restore(args: argparse.Namespace) -> int:
    from db.backup import BackupError, restore

    try:
        report = restore(args.src, _store(args))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_report("restored", report)
    return 0


#: The commands of this module, appended to :data:`cli.SUBCOMMANDS`.
ADMIN_SUBCOMMANDS = [_add_user, _add_backup, _add_restore]
