"""Accounts: who may sign in, with which role (see :mod:`core.auth` for what roles may do).

Only argon2id hashes are stored, never a password. Usernames compare without case.
Every change is audited (``audit_log``; the hash is never written there).

Who changes accounts (``by``): a signed-in account, which must be an admin once the
store has accounts (a user may also change their own password); or None, meaning the
server's command line (``python -m core user ...``), trusted because whoever can run it
can already write the database file. The first account must be an admin, and the last
enabled admin cannot be removed, disabled or demoted while other accounts exist, so
that someone can always manage the others.
"""

from __future__ import annotations

import re

from sqlite_utils import Database

from core.auth import (
    ROLES,
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_nothing,
    verify_password,
)
from db.access import (
    ACCOUNT_COLUMNS,
    Account,
    account_count,
    account_from_row,
    get_account,
    require_role,
)
from db.store import audit, insert_row, write_transaction

#: The audit log's account for changes made at the server's command line.
CONSOLE = "console"
_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def check_username(username: str) -> str:
    """Return ``username`` stripped, or refuse it.

    Raises:
        ValueError: If it is empty, longer than 64 characters, or holds anything but
            letters, digits and ``. _ @ -``.
    """
    name = username.strip() if isinstance(username, str) else ""
    if not _USERNAME.fullmatch(name):
        raise ValueError(
            f"username must be 1-64 letters, digits or . _ @ - characters, got {username!r}"
        )
    return name


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")


def _enabled_admins(db: Database) -> int:
    return int(
        db.execute(
            "SELECT count(*) FROM accounts WHERE role = 'admin' AND disabled = 0"
        ).fetchone()[0]
    )


def _guard_last_admin(db: Database, found: Account, what: str) -> None:
    """Refuse to take away the last enabled admin while other accounts remain."""
    if found.role != "admin" or found.disabled or _enabled_admins(db) > 1:
        return
    if account_count(db) > 1:
        raise ValueError(
            f"{found.username!r} is the last enabled admin; {what} it would leave nobody "
            "to manage the other accounts (make another admin first)"
        )


def _existing(db: Database, username: str) -> Account:
    found = get_account(db, username)
    if found is None:
        raise ValueError(f"there is no account named {username!r}")
    return found


def create_account(
    db: Database, *, username: str, password: str, role: str, by: str | None = None
) -> Account:
    """Create an account.

    Args:
        db: An open store.
        username: 1-64 letters, digits or ``. _ @ -``; unique without case.
        password: At least :data:`core.auth.MIN_PASSWORD_LENGTH` characters.
        role: One of :data:`core.auth.ROLES`; the first account must be ``"admin"``.
        by: The signed-in admin creating it, or None for the server's command line.

    Returns:
        The new account.

    Raises:
        ValueError: If an argument is unfit, the name is taken, or the first account
            would not be an admin.
        core.auth.AccessDenied: If ``by`` may not manage accounts.
    """
    name = check_username(username)
    _check_role(role)
    password_hash = hash_password(password)  # slow on purpose: outside the transaction
    with write_transaction(db):
        if by is not None:
            require_role(db, by, "accounts")
        if get_account(db, name) is not None:
            raise ValueError(f"an account named {name!r} already exists")
        if role != "admin" and account_count(db) == 0:
            raise ValueError(
                "the first account must be an admin, so that someone can manage the others"
            )
        account_id = insert_row(
            db, "accounts", {"username": name, "role": role, "password_hash": password_hash}
        )
        audit(db, account=by or CONSOLE, action="create_account", entity="account",
              entity_id=account_id, before=None,
              after={"username": name, "role": role})  # fmt: skip
        created = get_account(db, name)
    assert created is not None
    return created


def remove_account(db: Database, username: str, *, by: str | None = None) -> None:
    """Delete an account; the audit log keeps its name on what it did.

    Raises:
        ValueError: If there is no such account, or it is the last enabled admin while
            other accounts exist.
        core.auth.AccessDenied: If ``by`` may not manage accounts.
    """
    with write_transaction(db):
        if by is not None:
            require_role(db, by, "accounts")
        found = _existing(db, username)
        _guard_last_admin(db, found, "removing")
        db.execute("DELETE FROM accounts WHERE username = ?", [found.username])
        audit(db, account=by or CONSOLE, action="remove_account", entity="account",
              entity_id=None, before={"username": found.username, "role": found.role},
              after=None)  # fmt: skip


def set_password(db: Database, username: str, password: str, *, by: str | None = None) -> None:
    """Replace an account's password (an admin may set anyone's, a user their own).

    Raises:
        ValueError: If there is no such account or the password is unfit.
        core.auth.AccessDenied: If ``by`` is neither an admin nor the account itself.
    """
    password_hash = hash_password(password)
    with write_transaction(db):
        found = _existing(db, username)
        if by is not None and by.strip().lower() != found.username.lower():
            require_role(db, by, "accounts")
        elif by is not None:
            require_role(db, by, "browse")  # oneself: any enabled account
        db.execute(
            "UPDATE accounts SET password_hash = ? WHERE username = ?",
            [password_hash, found.username],
        )
        audit(db, account=by or CONSOLE, action="set_password", entity="account",
              entity_id=None, before=None, after={"username": found.username})  # fmt: skip


def set_disabled(db: Database, username: str, disabled: bool, *, by: str | None = None) -> None:
    """Disable an account (it can no longer sign in or write) or enable it again.

    Raises:
        ValueError: If there is no such account, or disabling the last enabled admin
            while other accounts exist.
        core.auth.AccessDenied: If ``by`` may not manage accounts.
    """
    with write_transaction(db):
        if by is not None:
            require_role(db, by, "accounts")
        found = _existing(db, username)
        if found.disabled == disabled:
            return
        if disabled:
            _guard_last_admin(db, found, "disabling")
        db.execute(
            "UPDATE accounts SET disabled = ? WHERE username = ?", [int(disabled), found.username]
        )
        audit(db, account=by or CONSOLE, action="set_disabled", entity="account",
              entity_id=None, before={"username": found.username, "disabled": found.disabled},
              after={"username": found.username, "disabled": disabled})  # fmt: skip


def set_role(db: Database, username: str, role: str, *, by: str | None = None) -> None:
    """Change an account's role.

    Raises:
        ValueError: If there is no such account, ``role`` is unknown, or it would demote
            the last enabled admin while other accounts exist.
        core.auth.AccessDenied: If ``by`` may not manage accounts.
    """
    _check_role(role)
    with write_transaction(db):
        if by is not None:
            require_role(db, by, "accounts")
        found = _existing(db, username)
        if found.role == role:
            return
        _guard_last_admin(db, found, "demoting")
        db.execute("UPDATE accounts SET role = ? WHERE username = ?", [role, found.username])
        audit(db, account=by or CONSOLE, action="set_role", entity="account", entity_id=None,
              before={"username": found.username, "role": found.role},
              after={"username": found.username, "role": role})  # fmt: skip


def authenticate(db: Database, username: str, password: str) -> Account | None:
    """Check a sign-in.

    Takes about as long for an unknown username as for a wrong password. A hash made
    with older argon2 parameters is replaced by one with today's after a success.

    Args:
        db: An open store.
        username: As typed (any case).
        password: As typed.

    Returns:
        The account when the username exists, is enabled and the password matches;
        else None (the caller says only "wrong username or password").
    """
    name = username.strip() if isinstance(username, str) else ""
    row = None
    if _USERNAME.fullmatch(name):
        row = db.execute(
            f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE username = ?", [name]
        ).fetchone()
    if row is None:
        verify_nothing(password)
        return None
    found, stored = account_from_row(row[:4]), str(row[4])
    if not verify_password(stored, password) or found.disabled:
        return None
    if needs_rehash(stored):
        try:
            check_password_rules(password)
        except ValueError:
            return found  # an old, now too short password: keep its hash, ask for a change
        new_hash = hash_password(password)
        with write_transaction(db):
            db.execute(
                "UPDATE accounts SET password_hash = ? WHERE username = ? AND password_hash = ?",
                [new_hash, found.username, stored],
            )
    return found
