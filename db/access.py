"""Who is asking: accounts as the store holds them, and the check every write makes.

:func:`require_role` applies the rules of :mod:`core.auth` to the accounts stored here;
the store's write functions (:mod:`db.store`) call it inside their transaction.
Changing accounts is :mod:`db.accounts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.auth import ACTION_WORDS, ACTIONS, AccessDenied, allowed, is_demo_mode, roles_allowed


@dataclass(frozen=True)
class Account:
    """An account, without its hash.

    Attributes:
        username: As created (matched without case).
        role: ``"admin"``, ``"clinician"`` or ``"viewer"``.
        disabled: True when it may not sign in or write.
        created_at: ISO-8601 UTC time of creation.
    """

    username: str
    role: str
    disabled: bool
    created_at: str


#: The columns :func:`account_from_row` reads, in order.
ACCOUNT_COLUMNS = "username, role, disabled, created_at"


def account_from_row(row: tuple[object, ...]) -> Account:
    """Build an :class:`Account` from a row of :data:`ACCOUNT_COLUMNS`."""
    return Account(str(row[0]), str(row[1]), bool(row[2]), str(row[3]))


def account_count(db: Database) -> int:
    """Return how many accounts the store holds (enabled or not)."""
    return int(db.execute("SELECT count(*) FROM accounts").fetchone()[0])


def real_patient_count(db: Database) -> int:
    """Return how many patients are not marked synthetic (real patient data)."""
    return int(db.execute("SELECT count(*) FROM patients WHERE synthetic = 0").fetchone()[0])


def get_account(db: Database, username: str) -> Account | None:
    """Return the account named ``username`` (any case), or None."""
    row = db.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?", [username.strip()]
    ).fetchone()
    return None if row is None else account_from_row(row)


def role_of(db: Database, username: str) -> str | None:
    """Return the role of an enabled account, or None if unknown or disabled."""
    found = get_account(db, username)
    return None if found is None or found.disabled else found.role


def list_accounts(db: Database) -> list[Account]:
    """Return every account, by username."""
    rows = db.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username").fetchall()
    return [account_from_row(r) for r in rows]


def require_role(db: Database, account: str | None, action: str) -> str | None:
    """Refuse ``action`` unless ``account`` may do it in this store.

    Args:
        db: An open store.
        account: The signed-in account's username, or None when nobody is signed in.
        action: One of :data:`ACTIONS`.

    Returns:
        The account's role; None when the store has no accounts (demo mode or
        command-line batch use), where every action is allowed.

    Raises:
        AccessDenied: If the store has accounts and ``account`` is None, unknown,
            disabled, or of a role that may not do ``action``.
        ValueError: If ``action`` is unknown.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    if account_count(db) == 0:
        return None
    words = ACTION_WORDS[action]
    who = " or ".join(f"{'an' if r[0] in 'aeiou' else 'a'} {r}" for r in roles_allowed(action))
    if account is None or not account.strip():
        raise AccessDenied(
            f"Sign in first: this store has accounts, so only {who}, signed in, may {words}."
        )
    found = get_account(db, account)
    if found is None:
        raise AccessDenied(f"There is no account named {account!r}; it may not {words}.")
    if found.disabled:
        raise AccessDenied(f"The account {found.username!r} is disabled; it may not {words}.")
    if not allowed(found.role, action):
        raise AccessDenied(
            f"The account {found.username!r} is a {found.role}, and a {found.role} may not "
            f"{words} (only {who} may)."
        )
    return found.role


def demo_mode(db: Database) -> bool:
    """Say whether the store is in demo mode (:func:`is_demo_mode`); else login is required."""
    return is_demo_mode(account_count(db), real_patient_count(db))
