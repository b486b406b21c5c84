"""A physician's annotations of an analysis: mask edits, undo, and the reviewed mark.

Writes follow :mod:`db.store`: each public write is one logical event in one transaction
(:func:`db.store.write_transaction`), checks its account with
:func:`db.access.require_role` (``"review"``) inside it, and writes an audit row. The
model's own masks (table ``masks``) are never changed: a mask edit is a row of
``mask_edits`` beside them, applied by
:func:`core.burden.lesion_review.reviewed_masks`.

**Undo.** The audit log is the history of an analysis' review. A *change* is an audit
row of :data:`CHANGE_ACTIONS` on one of its lesions (a drawn lesion, a status change) or
mask edits; an undo writes an audit row of action :data:`UNDO_ACTION` naming the row it
undid (``after.undid``) and saying in words what it undid (``after.what``). The newest
change not yet undone is the one :func:`undo_last_change` undoes, so undoing again and
again walks back through the history, newest first. An undo is not itself a change: it
is never undone (make the change again instead).

Reads here decode the pixels (:func:`db.store.decode_mask`), as :mod:`db.queries` does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlite_utils import Database

from core.burden.lesion_review import MASK_EDIT_ACTIONS
from core.config import VIEWS
from db.access import require_role
from db.queries import bsi_regions, mask_edits, quality_cautions, skeleton_maps
from db.store import (
    BSTBI_COLUMNS,
    audit,
    decode_mask,
    encode_mask,
    insert_row,
    schema_table,
    write_transaction,
)

#: Audit actions that are a physician's change of an analysis' review (undoable).
CHANGE_ACTIONS: tuple[str, str, str] = ("add_lesion", "set_lesion_status", "add_mask_edit")
#: The audit action of an undo.
UNDO_ACTION = "undo"
#: A mask edit in words, as the undo message and the page say it.
EDIT_WORDS: dict[str, str] = {
    "erase": "erased part of a mark",
    "bladder": "marked bladder",
    "erase_bladder": "erased bladder",
}


def _check_account(account: str) -> None:
    if not isinstance(account, str) or not account.strip():
        raise ValueError("account must not be empty")


def _now() -> str:
    # the schema's own format (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')): UTC, milliseconds
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _pixels(pixels: np.ndarray) -> np.ndarray:
    p = np.asarray(pixels)
    if p.ndim != 2 or not (p.dtype == np.bool_ or np.issubdtype(p.dtype, np.integer)):
        raise ValueError(f"pixels must be a 2-D bool or 0/1 array, got {p.dtype} {p.shape}")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("pixels must hold only 0 and 1")
    if not p.any():
        raise ValueError("pixels must have at least one pixel set")
    return p.astype(np.uint8)


def _mask_shape(db: Database, analysis_id: int, view: str) -> tuple[int, int]:
    row = db.execute(
        "SELECT rows, cols FROM masks WHERE analysis_id = ? AND view = ?", [analysis_id, view]
    ).fetchone()
    if row is None:
        raise ValueError(f"analysis_id {analysis_id} has no {view!r} mask (or does not exist)")
    return int(row[0]), int(row[1])


def _require_analysis(db: Database, analysis_id: int) -> None:
    if db.execute("SELECT 1 FROM analyses WHERE id = ?", [analysis_id]).fetchone() is None:
        raise ValueError(f"analysis_id {analysis_id} does not exist")


# --- mask edits ---------------------------------------------------------------------


def add_mask_edit(
    db: Database,
    *,
    analysis_id: int,
    view: str,
    action: str,
    pixels: np.ndarray,
    account: str,
) -> int:
    """Store a physician's edit of one view's mask, audited; return its id.

    The model's mask is not changed; the edit is applied after the lesions by
    :func:`core.burden.lesion_review.reviewed_masks`. The caller then recomputes the
    burden and stores it (:func:`db.store.update_analysis_burden`), in the same
    transaction (:mod:`workflow.review_changes`).

    Args:
        db: An open store.
        analysis_id: The analysis (must exist and have a mask of ``view``).
        view: ``"ANT"`` or ``"POST"``.
        action: One of :data:`core.burden.lesion_review.MASK_EDIT_ACTIONS`.
        pixels: bool or 0/1 2-D array of the view's mask shape, at least one pixel set.
        account: Who edits.

    Returns:
        The new mask edit's id.

    Raises:
        ValueError: If ``view`` or ``action`` is unknown, ``pixels`` is not a 0/1 array
            of the mask's shape with a pixel set, the analysis has no mask of ``view``,
            or ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if action not in MASK_EDIT_ACTIONS:
        raise ValueError(f"action must be one of {MASK_EDIT_ACTIONS}, got {action!r}")
    p = _pixels(pixels)
    with write_transaction(db):
        require_role(db, account, "review")
        shape = _mask_shape(db, analysis_id, view)
        if p.shape != shape:
            raise ValueError(f"pixels must have shape {shape}, got {p.shape}")
        edit_id = insert_row(db, "mask_edits", {
            "analysis_id": analysis_id, "view": view, "action": action,
            "pixels_zlib": encode_mask(p), "account": account, "at": _now(),
        })  # fmt: skip
        audit(
            db,
            account=account,
            action="add_mask_edit",
            entity="mask_edit",
            entity_id=edit_id,
            before=None,
            after={"analysis_id": analysis_id, "view": view, "action": action,
                   "pixels": int(np.count_nonzero(p))},
        )  # fmt: skip
    return edit_id


# --- the history of a review, and undo ------------------------------------------------


def _history(db: Database, analysis_id: int) -> list[dict[str, Any]]:
    """Every audit row on the analysis' lesions and mask edits, oldest first."""
    cur = db.execute(
        """
        SELECT l.id, l.at, l.account, l.action, l.entity, l.entity_id, l.before_json,
               l.after_json
        FROM audit_log l
        WHERE (l.entity = 'lesion'
               AND l.entity_id IN (SELECT id FROM lesions WHERE analysis_id = :a))
           OR (l.entity = 'mask_edit'
               AND l.entity_id IN (SELECT id FROM mask_edits WHERE analysis_id = :a))
        ORDER BY l.id
        """,
        {"a": analysis_id},
    )
    out = []
    for audit_id, at, who, action, entity, entity_id, before, after in cur.fetchall():
        out.append({
            "audit_id": int(audit_id), "at": at, "account": who, "action": action,
            "entity": entity, "entity_id": int(entity_id),
            "before": json.loads(before) if before else {},
            "after": json.loads(after) if after else {},
        })  # fmt: skip
    return out


def _pending(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    undone = {int(h["after"]["undid"]) for h in history if h["action"] == UNDO_ACTION}
    return [h for h in history if h["action"] in CHANGE_ACTIONS and h["audit_id"] not in undone]


def _lesion_name(db: Database, lesion_id: int) -> str:
    row = db.execute("SELECT view, component FROM lesions WHERE id = ?", [lesion_id]).fetchone()
    return f"{row[0]} lesion {row[1]}" if row else f"lesion {lesion_id}"


def _describe(db: Database, change: dict[str, Any]) -> str:
    """One change in words, e.g. ``"excluded ANT lesion 3 (fracture)"``."""
    after = change["after"]
    if change["action"] == "add_lesion":
        return f"drew {_lesion_name(db, change['entity_id'])}"
    if change["action"] == "set_lesion_status":
        name = _lesion_name(db, change["entity_id"])
        if after.get("status") == "removed":
            reason = after.get("reason") or ""
            return f"excluded {name}" + (f" ({reason})" if reason else "")
        return f"included {name} again"
    pixels = after.get("pixels")
    return f"{EDIT_WORDS.get(after.get('action', ''), 'edited')} on {after.get('view')}" + (
        f" ({pixels} pixels)" if pixels is not None else ""
    )


def last_change(db: Database, analysis_id: int) -> dict[str, Any] | None:
    """Return the change :func:`undo_last_change` would undo now, or None.

    Args:
        db: An open store.
        analysis_id: The analysis.

    Returns:
        ``{"audit_id", "action", "what" (in words), "account", "at"}`` of the newest
        physician change of the analysis not yet undone; None when there is none.
    """
    pending = _pending(_history(db, analysis_id))
    if not pending:
        return None
    newest = pending[-1]
    return {
        "audit_id": newest["audit_id"],
        "action": newest["action"],
        "what": _describe(db, newest),
        "account": newest["account"],
        "at": newest["at"],
    }


def undo_last_change(db: Database, analysis_id: int, account: str) -> str:
    """Undo the newest physician change of an analysis not yet undone, audited.

    A drawn lesion is set ``"removed"``; a lesion status change is set back to the
    status before it; a mask edit is marked undone (its row stays). The undo's audit
    row (action :data:`UNDO_ACTION`, on the same lesion or mask edit) names the audit
    row it undid and says what it undid in words; for a lesion it also holds the status
    before and after, as a status change does, so the lesion's history shows it. The
    caller then recomputes the burden and stores it, in the same transaction.

    Args:
        db: An open store.
        analysis_id: The analysis.
        account: Who undoes.

    Returns:
        What was undone, in words (e.g. ``"excluded ANT lesion 3 (fracture)"``).

    Raises:
        ValueError: If the analysis does not exist, it has no change left to undo, or
            ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    with write_transaction(db):
        require_role(db, account, "review")
        _require_analysis(db, analysis_id)
        pending = _pending(_history(db, analysis_id))
        if not pending:
            raise ValueError(f"analysis_id {analysis_id} has no change left to undo")
        change = pending[-1]
        what = _describe(db, change)
        entity_id = change["entity_id"]
        if change["entity"] == "mask_edit":
            schema_table(db, "mask_edits").update(entity_id, {"undone": 1})
            before: dict[str, Any] = {"undone": False}
            after: dict[str, Any] = {"undone": True}
        else:
            (current,) = db.execute(
                "SELECT status FROM lesions WHERE id = ?", [entity_id]
            ).fetchone()
            restored = "removed" if change["action"] == "add_lesion" else change["before"]["status"]
            schema_table(db, "lesions").update(entity_id, {"status": restored})
            before = {"status": current}
            after = {"status": restored, "reason": f"undo: {what}"}
        audit(
            db,
            account=account,
            action=UNDO_ACTION,
            entity=change["entity"],
            entity_id=entity_id,
            before=before,
            after={**after, "undid": change["audit_id"], "what": what},
        )
    return what


# --- the reviewed mark --------------------------------------------------------------

_MARK_COLUMNS = ("reviewed_by", "reviewed_at", "reviewed_metastasis")


def _mark_row(db: Database, analysis_id: int) -> dict[str, Any]:
    row = db.execute(
        f"SELECT {', '.join(_MARK_COLUMNS)} FROM analyses WHERE id = ?", [analysis_id]
    ).fetchone()
    if row is None:
        raise ValueError(f"analysis_id {analysis_id} does not exist")
    return dict(zip(_MARK_COLUMNS, row, strict=True))


def mark_reviewed(db: Database, analysis_id: int, *, metastasis: bool, account: str) -> None:
    """Mark an analysis reviewed, with the physician's scan label, audited.

    Marking it again replaces the mark (who, when and the label); the audit row keeps
    the mark before.

    Args:
        db: An open store.
        analysis_id: The analysis.
        metastasis: The physician's scan label: True for bone metastasis.
        account: Who marks it (kept as ``reviewed_by``).

    Raises:
        ValueError: If the analysis does not exist, ``metastasis`` is not a bool, or
            ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    if not isinstance(metastasis, bool | np.bool_):
        raise ValueError(f"metastasis must be True or False, got {metastasis!r}")
    with write_transaction(db):
        require_role(db, account, "review")
        before = _mark_row(db, analysis_id)
        after = {
            "reviewed_by": account,
            "reviewed_at": _now(),
            "reviewed_metastasis": int(bool(metastasis)),
        }
        schema_table(db, "analyses").update(analysis_id, after)
        audit(db, account=account, action="mark_reviewed", entity="analysis",
              entity_id=analysis_id, before=before, after=after)  # fmt: skip


def unmark_reviewed(db: Database, analysis_id: int, account: str) -> None:
    """Take an analysis' reviewed mark away, audited; an unmarked analysis is left as it is.

    Args:
        db: An open store.
        analysis_id: The analysis.
        account: Who unmarks it.

    Raises:
        ValueError: If the analysis does not exist or ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    with write_transaction(db):
        require_role(db, account, "review")
        before = _mark_row(db, analysis_id)
        if before["reviewed_at"] is None:
            return
        after = dict.fromkeys(_MARK_COLUMNS)
        schema_table(db, "analyses").update(analysis_id, after)
        audit(db, account=account, action="unmark_reviewed", entity="analysis",
              entity_id=analysis_id, before=before, after=after)  # fmt: skip


def review_mark(db: Database, analysis_id: int) -> dict[str, Any] | None:
    """Return an analysis' reviewed mark, or None when it is not marked.

    Args:
        db: An open store.
        analysis_id: The analysis.

    Returns:
        ``{"by": account, "at": UTC time text, "metastasis": bool}``, or None.

    Raises:
        ValueError: If the analysis does not exist.
    """
    row = _mark_row(db, analysis_id)
    if row["reviewed_at"] is None:
        return None
    return {
        "by": row["reviewed_by"],
        "at": row["reviewed_at"],
        "metastasis": bool(row["reviewed_metastasis"]),
    }


# --- what an analysis' review is computed from ---------------------------------------


def analysis_review(db: Database, analysis_id: int) -> dict[str, Any]:
    """Return one analysis with what its review is computed from.

    :func:`db.queries.study_with_masks` gives a study's *latest* analysis; this gives
    any analysis by id (e.g. the one marked reviewed), in the same shapes.

    Args:
        db: An open store.
        analysis_id: The analysis.

    Returns:
        ``{"study": dict of the studies row, "analysis": dict (as
        :func:`db.queries.study_with_masks` gives it), "masks": {view: uint8 label
        mask}, "skeletons": {view: uint8 skeleton label map}
        (:func:`db.queries.skeleton_maps`), "lesions": [dicts with ``drawn``], "edits":
        mask edits not undone (:func:`mask_edits`)}``; no views (read them with
        :func:`db.queries.study_views`).

    Raises:
        ValueError: If the analysis does not exist.
    """
    cur = db.execute("SELECT * FROM analyses WHERE id = ?", [analysis_id])
    row = cur.fetchone()
    if row is None:
        raise ValueError(f"analysis_id {analysis_id} does not exist")
    analysis = dict(zip([c[0] for c in cur.description], row, strict=True))
    analysis["timings_s"] = json.loads(analysis.pop("timings_json"))
    analysis["quality_cautions"] = quality_cautions(analysis.pop("quality_cautions_json"))
    analysis["bstbi_images"] = {
        key: analysis[col] for key, col in BSTBI_COLUMNS.items() if analysis[col] is not None
    }
    analysis["bsi_regions"] = bsi_regions(analysis["bsi_regions"])
    cur = db.execute("SELECT * FROM studies WHERE id = ?", [analysis["study_id"]])
    study = dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))
    masks = {
        view: decode_mask(blob, rows, cols)
        for view, rows, cols, blob in db.execute(
            "SELECT view, rows, cols, labels_zlib FROM masks WHERE analysis_id = ? ORDER BY view",
            [analysis_id],
        ).fetchall()
    }
    cur = db.execute(
        "SELECT * FROM lesions WHERE analysis_id = ? ORDER BY view, component", [analysis_id]
    )
    names = [c[0] for c in cur.description]
    lesions = []
    for lesion_row in cur.fetchall():
        lesion = dict(zip(names, lesion_row, strict=True))
        blob = lesion.pop("drawn_zlib")
        mask = masks.get(lesion["view"])
        lesion["drawn"] = (
            None if blob is None or mask is None else decode_mask(blob, *mask.shape).astype(bool)
        )
        lesions.append(lesion)
    return {
        "study": study,
        "analysis": analysis,
        "masks": masks,
        "skeletons": skeleton_maps(db, analysis_id),
        "lesions": lesions,
        "edits": mask_edits(db, analysis_id),
    }


def reviewed_analyses(db: Database) -> list[dict[str, Any]]:
    """Return each study's newest analysis marked reviewed, with its patient and study.

    Args:
        db: An open store.

    Returns:
        Dicts ordered by study id with keys ``analysis_id, study_id, patient_id,
        pseudonym, sex, birth_year, primary_tumour, synthetic (bool), study_date,
        quality, reviewed_by, reviewed_at, reviewed_metastasis (bool)``. Never the
        patient's name or external id.
    """
    rows = db.execute(
        """
        SELECT a.id, s.id, p.id, p.pseudonym, p.sex, p.birth_year, p.primary_tumour,
               p.synthetic, s.study_date, a.quality, a.reviewed_by, a.reviewed_at,
               a.reviewed_metastasis
        FROM analyses a JOIN studies s ON s.id = a.study_id JOIN patients p ON p.id = s.patient_id
        WHERE a.id = (SELECT max(a2.id) FROM analyses a2
                      WHERE a2.study_id = s.id AND a2.reviewed_at IS NOT NULL)
        ORDER BY s.id
        """
    ).fetchall()
    keys = ("analysis_id", "study_id", "patient_id", "pseudonym", "sex", "birth_year",
            "primary_tumour", "synthetic", "study_date", "quality", "reviewed_by",
            "reviewed_at", "reviewed_metastasis")  # fmt: skip
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for row in out:
        row["synthetic"] = bool(row["synthetic"])
        row["reviewed_metastasis"] = bool(row["reviewed_metastasis"])
    return out
