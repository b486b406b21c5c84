"""Saving a physician's review: lesion statuses and the burden recomputed, in one event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlite_utils import Database

from core.burden.lesion_review import RESTORE_REASON, BurdenResult, StudyImages, burden
from db.store import set_lesion_status, update_analysis_burden


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
    before, after), in one transaction. An unreliable analysis (quality not ``"ok"``)
    keeps its empty burden: only the statuses are stored.

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
    result = burden(images, masks, lesions, statuses=changes)
    with db.atomic():
        for lesion_id, status in changes.items():
            why = reason if status == "removed" else RESTORE_REASON
            set_lesion_status(db, lesion_id, status, account, why)
        if analysis["quality"] == "ok":
            update_analysis_burden(
                db,
                int(analysis["id"]),
                result.per_image,
                result.scan_bstbi,
                result.hotspots,
                result.lesion_area_cm2,
                account,
            )
    return result
