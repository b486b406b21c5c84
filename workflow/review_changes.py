"""Saving a physician's review: each change and the burden recomputed, in one event.

One function per event: unticking or ticking lesions (:func:`save_review`), drawing a
missed lesion (:func:`draw_lesion`), editing a mask (:func:`edit_mask`), undoing the
last change (:func:`undo_change`) and marking the study reviewed
(:func:`mark_study_reviewed`). Each stores its change and the burden recomputed from
the stored review state (lesion statuses, drawn lesions, mask edits) in one
transaction, audited, so the analysis' figures never disagree with its review. An
unreliable analysis (quality not ``"ok"``) keeps its empty burden: only the change is
stored. The Bone Scan Index is recomputed with the burden, on the skeleton maps stored
with the analysis (whatever maps the caller's :class:`StudyImages` carries), so undoing
every change gives back the model's index exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlite_utils import Database

from core.anatomy.placement import component_regions
from core.burden.indices import lesion_uptake_ratio
from core.burden.lesion_review import (
    RESTORE_REASON,
    BurdenResult,
    StudyImages,
    burden,
    lesion_components,
    lesion_state,
    reviewed_masks,
)
from core.config import LABEL_BLADDER
from core.imaging.regions import body_box, skeletal_region
from db.annotations import (
    EDIT_WORDS,
    add_mask_edit,
    analysis_review,
    mark_reviewed,
    undo_last_change,
)
from db.queries import skeleton_maps, study_views
from db.store import (
    LesionRecord,
    add_drawn_lesion,
    set_lesion_status,
    update_analysis_burden,
    write_transaction,
)


@dataclass(frozen=True)
class ReviewEvent:
    """What one saved review event did.

    Attributes:
        what: The change in words (e.g. ``"drew ANT lesion 4"``).
        burden: The burden after it, computed from the stored review state.
        stored: Whether that burden was stored (False for an unreliable analysis).
        lesion_id: The lesion drawn, for an event that drew one; else None.
    """

    what: str
    burden: BurdenResult
    stored: bool
    lesion_id: int | None = None


def _store_burden(
    db: Database,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    account: str,
) -> tuple[BurdenResult, bool]:
    """Recompute the burden from the review state as stored now, and store it if reliable.

    Called inside the event's transaction, after its change, so it reads the change. The
    BSI is computed on the analysis' stored skeleton maps: a caller whose images carry
    none (or other ones) cannot erase or skew the stored index.
    """
    analysis_id = int(analysis["id"])
    state = analysis_review(db, analysis_id)
    images = replace(
        images, skeletons=state["skeletons"], bsi_withheld=analysis.get("bsi_withheld")
    )
    result = burden(images, masks, state["lesions"], edits=state["edits"])
    reliable = analysis["quality"] == "ok"
    if reliable:
        update_analysis_burden(
            db,
            analysis_id,
            result.per_image,
            result.scan_bstbi,
            result.hotspots,
            result.lesion_area_cm2,
            account,
            bsi=result.bsi,
            bsi_regions=result.bsi_regions,
            bsi_involvement=result.bsi_involvement,
        )
    return result, reliable


def save_review(
    db: Database,
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    lesions: Sequence[Mapping[str, Any]],
    changes: Mapping[int, str],
    reason: str,
    account: str,
) -> BurdenResult:
    """Store status changes and the recomputed burden together, audited.

    Each lesion change and the burden update get their own audit row (who, when,
    before, after), in one transaction. The burden counts the analysis' mask edits as
    well. An unreliable analysis (quality not ``"ok"``) keeps its empty burden: only the
    statuses are stored.

    Args:
        db: An open store.
        analysis: The analysis row (:func:`db.queries.study_with_masks`' ``"analysis"``).
        images: From :func:`study_images`.
        masks: The model's masks.
        lesions: The lesions as stored before the change.
        changes: ``{lesion id: new status}`` (:func:`changed_statuses`).
        reason: Why lesions are excluded (one of :data:`REASONS`); restores record
            :data:`RESTORE_REASON`.
        account: Who reviews.

    Returns:
        The burden after the change.

    Raises:
        ValueError: If ``changes`` names a lesion not in ``lesions``, or the store
            refuses a change.
    """
    known = {int(les["id"]) for les in lesions}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"changes: lesions {unknown} are not lesions of this analysis")
    with write_transaction(db):
        for lesion_id, status in changes.items():
            why = reason if status == "removed" else RESTORE_REASON
            set_lesion_status(db, lesion_id, status, account, why)
        result, _ = _store_burden(db, analysis, images, masks, account)
    return result


def _drawn_figures(
    counts: np.ndarray | None,
    view: str,
    drawn: np.ndarray,
    bladder: np.ndarray | None,
    spacing_mm: tuple[float, float],
    skeleton: np.ndarray | None = None,
) -> LesionRecord:
    """A drawn lesion's figures as the analysis gives a model lesion's.

    Area, uptake and region; the region from the view's stored skeleton map when the
    lesion lies on or beside a bone of it (:func:`core.anatomy.placement.component_regions`,
    as :mod:`core.analysis` places a model lesion), else from body proportions.
    """
    rows, cols = np.nonzero(drawn)
    row, col = float(rows.mean()), float(cols.mean())
    uptake: float | None = None
    region: str | None = None
    side: str | None = None
    source: str | None = None
    if counts is not None and counts.shape == drawn.shape:
        ratio = lesion_uptake_ratio(counts, drawn, bladder)
        uptake = ratio if math.isfinite(ratio) else None
        region, source = skeletal_region(view, row, col, body_box(counts)), "proportions"
    if skeleton is not None and skeleton.shape == drawn.shape:
        (bone,) = component_regions(skeleton, drawn.astype(np.int32), 1)
        if bone is not None:
            region, side, source = bone.name, bone.side, "skeleton"
    return LesionRecord(
        view=view,
        component=1,  # the store numbers it
        area_px=int(rows.size),
        area_cm2=rows.size * spacing_mm[0] * spacing_mm[1] / 100.0,
        uptake_ratio=uptake,
        skeletal_region=region,
        centroid_row=row,
        centroid_col=col,
        side=side,
        region_source=source,
    )


def draw_lesion(
    db: Database,
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    view: str,
    drawn: np.ndarray,
    account: str,
    reason: str = "missed by the model",
) -> ReviewEvent:
    """Store a lesion the physician drew and the recomputed burden, in one transaction.

    Args:
        db: An open store.
        analysis: The analysis row (needs ``id`` and ``quality``).
        images: From :func:`core.burden.lesion_review.study_images`.
        masks: The model's masks.
        view: ``"ANT"`` or ``"POST"``.
        drawn: bool 2-D array of the view's mask shape, at least one pixel set.
        account: Who drew it.
        reason: Why, for the audit log.

    Returns:
        The :class:`ReviewEvent` (the new lesion in words, the burden after it).

    Raises:
        ValueError: As :func:`db.store.add_drawn_lesion`.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    d = np.asarray(drawn, dtype=bool)
    figures = None
    if d.any() and view in masks and "study_id" in analysis:
        counts = study_views(db, int(analysis["study_id"])).get(view)
        bladder = np.asarray(masks[view]) == LABEL_BLADDER
        skeleton = skeleton_maps(db, int(analysis["id"])).get(view)
        figures = _drawn_figures(counts, view, d, bladder, images.spacing_mm, skeleton)
    with write_transaction(db):
        lesion_id = add_drawn_lesion(
            db,
            analysis_id=int(analysis["id"]),
            view=view,
            drawn=d,
            lesion=figures,
            account=account,
            reason=reason,
        )
        (component,) = db.execute(
            "SELECT component FROM lesions WHERE id = ?", [lesion_id]
        ).fetchone()
        result, stored = _store_burden(db, analysis, images, masks, account)
    return ReviewEvent(f"drew {view} lesion {component}", result, stored, lesion_id)


def edit_mask(
    db: Database,
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    view: str,
    action: str,
    pixels: np.ndarray,
    account: str,
) -> ReviewEvent:
    """Store a mask edit (erase, bladder, erase bladder) and the recomputed burden together.

    Args:
        db: An open store.
        analysis: The analysis row (needs ``id`` and ``quality``).
        images: From :func:`core.burden.lesion_review.study_images`.
        masks: The model's masks.
        view: ``"ANT"`` or ``"POST"``.
        action: One of :data:`core.burden.lesion_review.MASK_EDIT_ACTIONS`.
        pixels: bool 2-D array of the view's mask shape, at least one pixel set.
        account: Who edits.

    Returns:
        The :class:`ReviewEvent`.

    Raises:
        ValueError: As :func:`db.annotations.add_mask_edit`.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    with write_transaction(db):
        add_mask_edit(
            db,
            analysis_id=int(analysis["id"]),
            view=view,
            action=action,
            pixels=np.asarray(pixels, dtype=bool),
            account=account,
        )
        result, stored = _store_burden(db, analysis, images, masks, account)
    words = f"{EDIT_WORDS[action]} on {view} ({int(np.count_nonzero(pixels))} pixels)"
    return ReviewEvent(words, result, stored)


def undo_change(
    db: Database,
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    account: str,
) -> ReviewEvent:
    """Undo the analysis' newest change not yet undone and store the recomputed burden.

    Args:
        db: An open store.
        analysis: The analysis row (needs ``id`` and ``quality``).
        images: From :func:`core.burden.lesion_review.study_images`.
        masks: The model's masks.
        account: Who undoes.

    Returns:
        The :class:`ReviewEvent`; ``what`` says what was undone.

    Raises:
        ValueError: If nothing is left to undo (:func:`db.annotations.undo_last_change`).
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    with write_transaction(db):
        what = undo_last_change(db, int(analysis["id"]), account)
        result, stored = _store_burden(db, analysis, images, masks, account)
    return ReviewEvent(what, result, stored)


def mark_study_reviewed(
    db: Database,
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    metastasis: bool,
    account: str,
) -> ReviewEvent:
    """Mark the analysis reviewed with the physician's scan label, storing the burden.

    The burden stored with the mark is the one of the review state marked (it already
    is, after every other event; storing it again makes the mark's figures certain).

    Args:
        db: An open store.
        analysis: The analysis row (needs ``id`` and ``quality``).
        images: From :func:`core.burden.lesion_review.study_images`.
        masks: The model's masks.
        metastasis: The physician's scan label.
        account: Who marks it.

    Returns:
        The :class:`ReviewEvent`.

    Raises:
        ValueError: As :func:`db.annotations.mark_reviewed`.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    with write_transaction(db):
        mark_reviewed(db, int(analysis["id"]), metastasis=metastasis, account=account)
        result, stored = _store_burden(db, analysis, images, masks, account)
    label = "metastasis" if metastasis else "no metastasis"
    return ReviewEvent(f"marked reviewed ({label})", result, stored)


def reviewed_masks_of(db: Database, analysis_id: int) -> dict[str, np.ndarray]:
    """Return the physician's masks of a stored analysis (model masks after its review).

    Args:
        db: An open store.
        analysis_id: The analysis.

    Returns:
        ``{view: uint8 label mask}``: removed lesions background, drawn lesions
        metastasis, then the mask edits not undone
        (:func:`core.burden.lesion_review.reviewed_masks`); empty for an analysis
        without masks.

    Raises:
        ValueError: If the analysis does not exist.
    """
    state = analysis_review(db, analysis_id)
    masks = state["masks"]
    if not masks:
        return {}
    components = {view: lesion_components(mask)[0] for view, mask in masks.items()}
    removed, added = lesion_state(state["lesions"])
    return reviewed_masks(masks, components, removed, added or None, state["edits"])
