"""The model versions the store knows, and which one is in use.

Tables (migration 0008, :mod:`db.schema`): ``model_versions`` holds every model folder
registered (the shipped one, each candidate) with its card summary and the sha256 that
names its weights; ``model_activations`` holds each promotion and rollback. The model in
use (:func:`active_version`) is the version of the newest activation, or, while nothing
was ever promoted, the shipped folder registered last. A switch is one ``INSERT`` into
``model_activations``, so every process reading the store sees the old model or the new
one, never a mixture.

Rollback (:func:`rollback`) goes back to the version that was in use before the current
one: the activations are replayed as a stack (a promotion pushes, a rollback pops), so
rolling back twice after two promotions returns to where the store started.

Access: promoting, rolling back and registering a candidate need the ``models`` action
(admins, :mod:`core.auth`) in a store with accounts. Registering the shipped folder needs
no role: every process does it by itself when it first meets a shipped folder (account
:data:`SYSTEM_ACCOUNT`), so that every analysis names a registered version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlite_utils import Database

from db.access import require_role
from db.store import audit, insert_row, write_transaction

#: The two kinds of model folder.
KINDS: tuple[str, str] = ("shipped", "candidate")
#: The account named when a process registers the shipped folder by itself.
SYSTEM_ACCOUNT = "system"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COLUMNS = "id, version, path, kind, parent, weights_sha256, card_json, created_by, created_at"


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def get_model(db: Database, version: str) -> dict[str, Any] | None:
    """Return one registered version as :func:`list_models` gives it, or None if unknown."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM model_versions WHERE version = ?", [version]
    ).fetchone()
    if row is None:
        return None
    return _model_row(row, active_version(db))


def _model_row(row: tuple[Any, ...], active: str | None) -> dict[str, Any]:
    keys = ("id", "version", "path", "kind", "parent", "weights_sha256", "card",
            "created_by", "created_at")  # fmt: skip
    out = dict(zip(keys, row, strict=True))
    out["card"] = json.loads(out["card"])
    out["active"] = out["version"] == active
    return out


def register_model(
    db: Database,
    *,
    version: str,
    path: str,
    kind: str,
    parent: str | None,
    weights_sha256: str,
    card: Mapping[str, Any],
    account: str,
) -> int:
    """Register a model folder under its version, and audit it.

    Args:
        db: An open store.
        version: The version the folder's analyses record
            (:func:`core.analysis.model_identity`); unique in the store.
        path: The model folder (absolute, as every process of the store reads it).
        kind: ``"shipped"`` or ``"candidate"``.
        parent: The registered version it was fine-tuned from, or None.
        weights_sha256: The combined weights hash of :func:`core.analysis.model_identity`.
        card: JSON-ready summary (parent, training data, steps, figures, hashes).
        account: Who registers; a candidate needs the ``models`` action, the shipped
            folder none (any name, e.g. :data:`SYSTEM_ACCOUNT`).

    Returns:
        The new row's id; for a shipped folder registered before with the same weights
        (two processes starting at once), the existing row's id, and nothing is written.

    Raises:
        ValueError: If an argument is empty or malformed, ``kind`` is unknown, ``parent``
            is not registered, or ``version`` is registered already (for a shipped
            folder: with other weights).
        core.auth.AccessDenied: If a candidate is registered by an account that may not
            manage models in this store.
    """
    _check_text("version", version)
    _check_text("path", path)
    _check_text("account", account)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(weights_sha256, str) or not _SHA256.match(weights_sha256):
        raise ValueError(f"weights_sha256 must be 64 lower-case hex digits, got {weights_sha256!r}")
    if parent is not None:
        _check_text("parent", parent)
    try:
        card_json = json.dumps(dict(card), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"card must be JSON-serialisable: {exc}") from exc
    with write_transaction(db):
        if kind == "candidate":
            require_role(db, account, "models")
        # Asked inside the write transaction: another process may have registered it.
        found = db.execute(
            "SELECT id, weights_sha256 FROM model_versions WHERE version = ?", [version]
        ).fetchone()
        if found is not None:
            if kind == "shipped" and found[1] == weights_sha256:
                return int(found[0])
            raise ValueError(f"version {version!r} is registered already; choose another name")
        if parent is not None and _version_id(db, parent) is None:
            raise ValueError(f"parent {parent!r} is not a registered version")
        model_id = insert_row(db, "model_versions", {
            "version": version, "path": path, "kind": kind, "parent": parent,
            "weights_sha256": weights_sha256, "card_json": card_json, "created_by": account,
        })  # fmt: skip
        audit(db, account=account, action="register_model", entity="model_version",
              entity_id=model_id, before=None,
              after={"version": version, "kind": kind, "parent": parent, "path": path,
                     "weights_sha256": weights_sha256})  # fmt: skip
    return model_id


def _version_id(db: Database, version: str) -> int | None:
    row = db.execute("SELECT id FROM model_versions WHERE version = ?", [version]).fetchone()
    return None if row is None else int(row[0])


def _newest_shipped(db: Database) -> str | None:
    row = db.execute(
        "SELECT version FROM model_versions WHERE kind = 'shipped' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def _in_use_stack(db: Database) -> list[str]:
    """Replay the activations: the versions in use, oldest first, the current one last."""
    base = _newest_shipped(db)
    stack = [base] if base is not None else []
    for version, action in db.execute(
        "SELECT version, action FROM model_activations ORDER BY id"
    ).fetchall():
        if action == "promote":
            stack.append(str(version))
            continue
        if stack:
            stack.pop()
        # a rollback names where it went: trust the row if the replay disagrees
        if not stack or stack[-1] != version:
            stack.append(str(version))
    return stack


def active_version(db: Database) -> str | None:
    """Return the version in use: the newest activation's, else the newest shipped one.

    Returns:
        The version, or None while the store has neither an activation nor a shipped
        folder registered.
    """
    row = db.execute("SELECT version FROM model_activations ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0]) if row is not None else _newest_shipped(db)


def last_activation(db: Database) -> str | None:
    """Return the version of the newest activation, or None when nothing was promoted."""
    row = db.execute("SELECT version FROM model_activations ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def list_models(db: Database) -> list[dict[str, Any]]:
    """Return every registered version, oldest first.

    Returns:
        Dicts with keys ``id, version, path, kind, parent, weights_sha256, card`` (the
        card summary, parsed), ``created_by, created_at`` and ``active`` (True for the
        one version in use, :func:`active_version`).
    """
    active = active_version(db)
    rows = db.execute(f"SELECT {_COLUMNS} FROM model_versions ORDER BY id").fetchall()
    return [_model_row(row, active) for row in rows]


def _activate(db: Database, version: str, action: str, account: str) -> None:
    before = active_version(db)
    activation_id = insert_row(
        db, "model_activations", {"version": version, "action": action, "account": account}
    )
    audit(db, account=account, action=f"{action}_model", entity="model_activation",
          entity_id=activation_id, before={"version": before},
          after={"version": version})  # fmt: skip


def promote(db: Database, version: str, account: str) -> None:
    """Put a registered version in use, for every process of the store, and audit it.

    Args:
        db: An open store.
        version: A registered version, not the one in use.
        account: Who promotes (the ``models`` action in a store with accounts).

    Raises:
        ValueError: If ``version`` or ``account`` is empty, ``version`` is not
            registered, or it is in use already.
        core.auth.AccessDenied: If ``account`` may not manage models in this store.
    """
    _check_text("version", version)
    _check_text("account", account)
    with write_transaction(db):
        require_role(db, account, "models")
        if _version_id(db, version) is None:
            known = [r[0] for r in db.execute("SELECT version FROM model_versions ORDER BY id")]
            raise ValueError(
                f"version {version!r} is not registered; known: {', '.join(known) or 'none'}"
            )
        if active_version(db) == version:
            raise ValueError(f"version {version!r} is in use already")
        _activate(db, version, "promote", account)


def rollback(db: Database, account: str) -> str:
    """Go back to the version in use before the current one, and audit it.

    Args:
        db: An open store.
        account: Who rolls back (the ``models`` action in a store with accounts).

    Returns:
        The version now in use.

    Raises:
        ValueError: If ``account`` is empty, or no version was in use before the
            current one (nothing promoted, or every promotion rolled back).
        core.auth.AccessDenied: If ``account`` may not manage models in this store.
    """
    _check_text("account", account)
    with write_transaction(db):
        require_role(db, account, "models")
        stack = _in_use_stack(db)
        if len(stack) < 2:
            raise ValueError(
                "there is no earlier version to roll back to: "
                + (f"{stack[-1]!r} is the first in use" if stack else "nothing is registered")
            )
        target = stack[-2]
        _activate(db, target, "rollback", account)
    return target
