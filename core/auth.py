"""Who may do what: password hashing, roles, the demo-mode rule and idle sessions.

Roles (:data:`ROLES`) and what each may do (:data:`PERMISSIONS`):

========== ====================================================================
role       may
========== ====================================================================
viewer     browse patients, scans and figures
clinician  browse; upload and analyse scans; review lesions; record treatments
admin      everything a clinician may; manage accounts; fine-tune, promote and
           roll back models
========== ====================================================================

:func:`require_role` is the one check every write in :mod:`db.store` and
:mod:`db.accounts` makes. A store **with** accounts refuses a write unless it names an
enabled account whose role allows it; a store **without** accounts (the demo, or the
command line used for batch work before anyone has made an account) allows every write,
as before accounts existed.

Demo mode (:func:`is_demo_mode`): a store with no accounts and only synthetic patients
opens without a login, clearly labelled as a demo. Once any account or any real
(non-synthetic) patient exists, a login is required; with real patients and no account
yet, nobody can sign in until an admin is made at the server:
``python -m core user add NAME --role admin``.

Passwords are hashed with argon2id (``argon2-cffi``, RFC 9106 low-memory profile): the
encoded hash carries its own salt and parameters, and a hash made with weaker parameters
is upgraded at the next successful sign-in (:func:`needs_rehash`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Roles, from most to least trusted.
ROLES: tuple[str, str, str] = ("admin", "clinician", "viewer")
#: Actions that :func:`require_role` checks.
ACTIONS: tuple[str, ...] = ("browse", "upload", "review", "treatments", "accounts", "models")
#: What each role may do.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"browse"}),
    "clinician": frozenset({"browse", "upload", "review", "treatments"}),
    "admin": frozenset(ACTIONS),
}
#: Each action in words, for refusal messages ("... may not {words}").
ACTION_WORDS: Mapping[str, str] = {
    "browse": "browse patients and scans",
    "upload": "upload or analyse scans",
    "review": "review lesions",
    "treatments": "record treatments",
    "accounts": "manage accounts",
    "models": "fine-tune, promote or roll back models",
}
#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 8
#: Minutes without activity after which a session signs out, unless
#: ``$BONESCAN_IDLE_MINUTES`` says otherwise.
DEFAULT_IDLE_MINUTES = 30.0

_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory defaults
_dummy_hash: str | None = None


class AccessDenied(PermissionError):  # noqa: N818 (the name pages and tests use)
    """An account may not do what it asked; the message says who, what and why."""


def check_password_rules(password: str) -> None:
    """Refuse a password too short to keep an account safe.

    Raises:
        ValueError: If ``password`` is not a string of at least
            :data:`MIN_PASSWORD_LENGTH` characters, or is only white space.
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise ValueError("password must not be only white space")


def hash_password(password: str) -> str:
    """Hash a password with argon2id.

    Args:
        password: The password (see :func:`check_password_rules`).

    Returns:
        The encoded hash (``$argon2id$v=19$m=...``), salt and parameters included.

    Raises:
        ValueError: If the password breaks :func:`check_password_rules`.
    """
    check_password_rules(password)
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Say whether ``password`` matches ``password_hash`` (never raises on a mismatch).

    Args:
        password_hash: An encoded argon2 hash from :func:`hash_password`.
        password: The password given at sign-in.

    Returns:
        True when it matches; False when it does not or the hash is unreadable.
    """
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_nothing(password: str) -> None:
    """Spend the time of one verification, for a sign-in with an unknown username.

    Answering "no such user" faster than "wrong password" would tell a guesser which
    usernames exist.
    """
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _HASHER.hash("not a password of anyone")
    verify_password(_dummy_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Say whether a stored hash was made with other parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def allowed(role: str, action: str) -> bool:
    """Say whether ``role`` may do ``action`` (for showing or hiding page controls).

    Raises:
        ValueError: If ``role`` or ``action`` is unknown.
    """
    if role not in PERMISSIONS:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    return action in PERMISSIONS[role]


def roles_allowed(action: str) -> tuple[str, ...]:
    """Return the roles that may do ``action``, most trusted first."""
    return tuple(role for role in ROLES if allowed(role, action))


def idle_minutes() -> float:
    """Return the idle time before a session expires (``$BONESCAN_IDLE_MINUTES`` or 30).

    Raises:
        ValueError: If ``$BONESCAN_IDLE_MINUTES`` is set but not a number > 0.
    """
    text = os.environ.get("BONESCAN_IDLE_MINUTES", "").strip()
    if not text:
        return DEFAULT_IDLE_MINUTES
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"BONESCAN_IDLE_MINUTES must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"BONESCAN_IDLE_MINUTES must be a finite number > 0, got {text!r}")
    return value


def session_expired(last_seen: dt.datetime, now: dt.datetime, idle_minutes: float) -> bool:
    """Say whether a session idle since ``last_seen`` has expired at ``now``.

    A session expires once it has been idle for ``idle_minutes`` or longer. A clock that
    went backwards (``now`` before ``last_seen``) counts as no idle time.

    Args:
        last_seen: When the session last did something.
        now: The time now (same awareness of time zones as ``last_seen``).
        idle_minutes: The allowed idle time, minutes (> 0).

    Returns:
        True when the session must sign in again.

    Raises:
        ValueError: If ``idle_minutes`` is not a finite number > 0.
    """
    if not (idle_minutes > 0 and idle_minutes != float("inf")):
        raise ValueError(f"idle_minutes must be a finite number > 0, got {idle_minutes!r}")
    return now - last_seen >= dt.timedelta(minutes=idle_minutes)


def is_demo_mode(accounts: int, real_patients: int) -> bool:
    """The demo-mode rule: no accounts and no real (non-synthetic) patient.

    Args:
        accounts: Accounts in the store (enabled or not).
        real_patients: Patients not marked synthetic.

    Returns:
        True when the app may open without a login (labelled as a demo).

    Raises:
        ValueError: If a count is negative.
    """
    if accounts < 0 or real_patients < 0:
        raise ValueError(f"counts must be >= 0, got {accounts=}, {real_patients=}")
    return accounts == 0 and real_patients == 0
