"""Model version commands: ``models list``, ``models promote VERSION``, ``models rollback``.

The versions live in the store (:mod:`db.model_registry`); each command first registers
the shipped folder when the store does not know it yet
(:func:`workflow.model_versions.ensure_shipped`), so that it is listed and can be rolled
back to. A promotion or rollback is one row in the store: every process using the store
(the dashboard, the listener, ``analyze`` without ``--model``) switches at its next
analysis; ``analyze-stored --reanalyse`` then brings the cohort to the new version.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.auth import AccessDenied
from core.config import db_path
from core.networks.models import ModelFileError
from db.connection import open_db
from db.model_registry import get_model, list_models, rollback
from workflow.model_versions import ensure_shipped, figures_line, promote_version


def version_line(model: dict[str, Any]) -> str:
    """One line of ``models list``: marker, version, kind, parent, created, figures.

    Args:
        model: A row of :func:`db.model_registry.list_models`.

    Returns:
        ``"* VERSION  kind  parent PARENT  created DATE  FIGURES"``; ``*`` marks the
        version in use, two spaces the others.
    """
    marker = "*" if model["active"] else " "
    created = str(model["created_at"])[:16].replace("T", " ")
    return (
        f"{marker} {model['version']}  {model['kind']}  parent {model['parent'] or '-'}  "
        f"created {created}  {figures_line(model['card'])}"
    )


def _shipped_or_note(db: Any) -> None:
    # Listing and rolling back work without a usable shipped folder; say why it is absent.
    try:
        ensure_shipped(db)
    except ModelFileError as exc:
        print(f"note: the shipped folder is not registered ({exc})", file=sys.stderr)


def run_models(args: argparse.Namespace) -> int:
    """Run ``models list``, ``models promote VERSION`` or ``models rollback``.

    Returns:
        0 on success; 2 for an unknown version, nothing to roll back to, an account that
        may not manage models, or an unusable model folder.
    """
    with open_db(args.db or db_path()) as db:
        _shipped_or_note(db)
        if args.models_action == "list":
            models = list_models(db)
            if not models:
                print("no model version registered")
            for model in models:
                print(version_line(model))
            return 0
        try:
            if args.models_action == "promote":
                if get_model(db, args.version) is None:
                    known = ", ".join(m["version"] for m in list_models(db)) or "none"
                    print(
                        f"error: unknown version {args.version!r}; registered: {known}",
                        file=sys.stderr,
                    )
                    return 2
                promote_version(db, args.version, args.account)
                print(f"promoted {args.version}: in use from the next analysis")
            else:
                now = rollback(db, args.account)
                print(f"rolled back to {now}: in use from the next analysis")
        except (ValueError, AccessDenied) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0
