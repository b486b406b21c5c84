"""What the review page needs beyond core and db: its table, its picture, saving a change.

A *review state* is the lesions' statuses in the store: a model lesion is kept
(``"model"``) or excluded (``"removed"``), a drawn one kept (``"added"``) or excluded.
The burden shown and stored after review is always recomputed from the model's own
masks and that state (:func:`core.review.recompute_burden`), so ticking every lesion
again gives back the model's figures exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from sqlite_utils import Database

from core.config import LABEL_METASTASIS
from core.display import stored_display_images
from core.overlay import overlay_rgb
from core.review import BurdenResult, lesion_components, recompute_burden
from db.store import set_lesion_status, update_analysis_burden

#: Why a physician excludes a lesion (the paper's false positives, and a catch-all).
REASONS: tuple[str, ...] = ("fracture", "degenerative joint", "injection site", "other")
#: The reason written to the audit log when a lesion is included again.
RESTORE_REASON = "restored on review"
#: Ring colour of excluded lesions: grey, so they read as "not counted".
EXCLUDED_RGB: tuple[int, int, int] = (90, 90, 90)
#: Lesion numbers: included lesions in dark red, excluded ones in grey.
NUMBER_RGB: dict[bool, tuple[int, int, int]] = {True: (150, 0, 0), False: (110, 110, 110)}


@dataclass(frozen=True)
class StudyImages:
    """What a stored study's review is computed from (all derived from the store).

    Attributes:
        displays: ``{(view, level): uint8 image}`` (:func:`core.display.display_images`).
        components: ``{view: int32 labels}`` of the model masks
            (:func:`core.review.lesion_components`, the numbering the lesions carry).
        spacing_mm: (row, column) pixel spacing used for lesion areas.
    """

    displays: dict[tuple[str, int], np.ndarray]
    components: dict[str, np.ndarray]
    spacing_mm: tuple[float, float]


def study_images(study: Mapping[str, Any], views: Mapping[str, np.ndarray],
                 masks: Mapping[str, np.ndarray]) -> StudyImages:  # fmt: skip
    """Rebuild a stored study's display images and lesion numbering.

    Args:
        study: The studies row (:func:`db.queries.study_with_masks`' ``"study"``).
        views: ``{view: float32 counts}`` of the study.
        masks: ``{view: uint8 label mask}`` of its analysis (the model's output).

    Returns:
        The :class:`StudyImages`; the spacing is the study's, or the pipeline's default
        when the file gave none (as the analysis used).

    Raises:
        ValueError: If ``views`` is empty.
    """
    if not views:
        raise ValueError("views must hold at least one view")
    from core.pipeline import DEFAULT_PIXEL_SPACING_MM

    row_mm, col_mm = study.get("pixel_spacing_row_mm"), study.get("pixel_spacing_col_mm")
    spacing = (
        (float(row_mm), float(col_mm))
        if row_mm is not None and col_mm is not None
        else DEFAULT_PIXEL_SPACING_MM
    )
    return StudyImages(
        displays=stored_display_images(views, bool(study.get("display_grey_level_1"))),
        components={view: lesion_components(mask)[0] for view, mask in masks.items()},
        spacing_mm=spacing,
    )


def is_drawn(lesion: Mapping[str, Any]) -> bool:
    """Whether a lesion was drawn by a physician (not a component of the model's mask)."""
    return lesion.get("drawn") is not None


def included(lesion: Mapping[str, Any]) -> bool:
    """Whether a lesion counts in the burden (its status is not ``"removed"``)."""
    return bool(lesion["status"] != "removed")


def status_for(lesion: Mapping[str, Any], include: bool) -> str:
    """The status that includes or excludes a lesion: ``model``/``added`` or ``removed``."""
    if not include:
        return "removed"
    return "added" if is_drawn(lesion) else "model"


def burden(
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    lesions: Sequence[Mapping[str, Any]],
    *,
    statuses: Mapping[int, str] | None = None,
) -> BurdenResult:
    """Recompute the burden for a review state.

    Args:
        images: From :func:`study_images`.
        masks: The model's masks.
        lesions: The analysis' lesions (dicts of :func:`db.queries.study_with_masks`).
        statuses: ``{lesion id: status}`` overriding the lesions' own (e.g. the
            state about to be saved); None uses the stored statuses. ``{}`` with every
            lesion overridden to its kept status gives the model's own figures.

    Returns:
        :func:`core.review.recompute_burden` of that state.
    """
    statuses = statuses or {}
    removed: set[tuple[str, int]] = set()
    added: dict[str, np.ndarray] = {}
    for lesion in lesions:
        status = statuses.get(int(lesion["id"]), lesion["status"])
        if is_drawn(lesion):
            if status == "added":
                view = lesion["view"]
                previous = added.get(view)
                drawn = np.asarray(lesion["drawn"], dtype=bool)
                added[view] = drawn if previous is None else previous | drawn
        elif status == "removed":
            removed.add((lesion["view"], int(lesion["component"])))
    return recompute_burden(
        images.displays,
        masks,
        images.components,
        removed,
        added or None,
        pixel_spacing_mm=images.spacing_mm,
    )


def model_burden(
    images: StudyImages, masks: Mapping[str, np.ndarray], lesions: Sequence[Mapping[str, Any]]
) -> BurdenResult:
    """The model's own burden: every model lesion kept, no drawn lesion."""
    return burden(
        images,
        masks,
        lesions,
        statuses={int(les["id"]): "removed" if is_drawn(les) else "model" for les in lesions},
    )


def lesion_history(db: Database, lesion_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Return each lesion's audit rows, oldest first.

    Note: a read of the audit log; it belongs in :mod:`db.queries` (no such query
    exists yet) and is kept to one ``rows_where`` here until it moves there.

    Args:
        db: An open store.
        lesion_ids: The lesions.

    Returns:
        ``{lesion id: [{"at", "account", "action", "before", "after", "reason"}]}``,
        every id present (an empty list when never changed); ``before``/``after`` are
        the statuses, ``reason`` the one recorded with the change ("" when none).
    """
    out: dict[int, list[dict[str, Any]]] = {int(i): [] for i in lesion_ids}
    if not out:
        return out
    marks = ", ".join("?" for _ in out)
    for row in db["audit_log"].rows_where(
        f"entity = 'lesion' AND entity_id IN ({marks})", list(out), order_by="id"
    ):
        before = json.loads(row["before_json"]) if row["before_json"] else {}
        after = json.loads(row["after_json"]) if row["after_json"] else {}
        out[int(row["entity_id"])].append(
            {
                "at": row["at"],
                "account": row["account"],
                "action": row["action"],
                "before": before.get("status"),
                "after": after.get("status"),
                "reason": after.get("reason") or "",
            }
        )
    return out


def lesion_table(
    lesions: Sequence[Mapping[str, Any]], history: Mapping[int, Sequence[Mapping[str, Any]]]
) -> pd.DataFrame:
    """The lesions as the review table, indexed by lesion id.

    Columns: ``include`` (bool), ``view``, ``number``, ``region``, ``area_cm2``,
    ``uptake_ratio``, ``status``, ``reason`` (the reason of the last exclusion of an
    excluded lesion, else "").
    """
    rows = []
    for lesion in lesions:
        changes = history.get(int(lesion["id"]), [])
        reason = changes[-1]["reason"] if changes and not included(lesion) else ""
        region = lesion.get("skeletal_region")
        rows.append(
            {
                "include": included(lesion),
                "view": lesion["view"],
                "number": int(lesion["component"]),
                "region": region.replace("_", " ") if region else "",
                "area_cm2": lesion.get("area_cm2"),
                "uptake_ratio": lesion.get("uptake_ratio"),
                "status": lesion["status"],
                "reason": reason,
            }
        )
    index = pd.Index([int(les["id"]) for les in lesions], name="lesion_id")
    columns = ["include", "view", "number", "region", "area_cm2", "uptake_ratio", "status",
               "reason"]  # fmt: skip
    return pd.DataFrame(rows, index=index, columns=columns)


def changed_statuses(
    lesions: Sequence[Mapping[str, Any]], include: Mapping[int, bool]
) -> dict[int, str]:
    """The new status of each lesion whose ``include`` tick differs from the store's.

    Args:
        lesions: The analysis' lesions as stored.
        include: ``{lesion id: ticked}`` as the table returned it.

    Returns:
        ``{lesion id: new status}`` for the changed lesions only.
    """
    out: dict[int, str] = {}
    for lesion in lesions:
        lesion_id = int(lesion["id"])
        if lesion_id in include and bool(include[lesion_id]) != included(lesion):
            out[lesion_id] = status_for(lesion, bool(include[lesion_id]))
    return out


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


def body_rows(
    displays: Mapping[tuple[str, int], np.ndarray], *, level: int = 1, margin: int = 8
) -> tuple[int, int]:
    """The rows that hold the body in any view, so that pictures can leave out blank field.

    Args:
        displays: ``{(view, level): uint8 image}``, 0 = hottest, 255 = no counts.
        level: The grey level looked at.
        margin: Rows kept above and below the body.

    Returns:
        ``(start, stop)`` rows, the whole height when no view of ``level`` shows counts.

    Raises:
        ValueError: If ``margin`` is negative or no display of ``level`` is given.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    images = [np.asarray(img) for (_, lvl), img in displays.items() if lvl == level]
    if not images:
        raise ValueError(f"displays hold no image of grey level {level}")
    # Faint scatter reaches the edges of the field; only clearly grey pixels count as body.
    occupied = np.logical_or.reduce([(img < 230).any(axis=1) for img in images])
    rows = np.flatnonzero(occupied)
    height = images[0].shape[0]
    if rows.size == 0:
        return 0, height
    return max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)


@dataclass(frozen=True)
class LesionMark:
    """A lesion's number drawn on the picture.

    Attributes:
        number: The number shown (the lesion's component number in its view).
        row: Centroid row in display pixels.
        col: Centroid column in display pixels.
        included: Whether it counts (drawn red) or is excluded (drawn grey).
    """

    number: int
    row: float
    col: float
    included: bool


def lesion_region(lesion: Mapping[str, Any], components: np.ndarray) -> np.ndarray:
    """A lesion's pixels: its drawing, or its component of the model's mask."""
    if is_drawn(lesion):
        return np.asarray(lesion["drawn"], dtype=bool)
    return np.asarray(components == int(lesion["component"]))


def lesion_mark(lesion: Mapping[str, Any], region: np.ndarray) -> LesionMark:
    """The number mark of a lesion, at its stored centroid or its region's."""
    row, col = lesion.get("centroid_row"), lesion.get("centroid_col")
    if row is None or col is None:
        rows, cols = np.nonzero(region)
        row, col = (float(rows.mean()), float(cols.mean())) if rows.size else (0.0, 0.0)
    return LesionMark(int(lesion["component"]), float(row), float(col), included(lesion))


def review_picture(
    display: np.ndarray,
    reviewed_mask: np.ndarray,
    excluded: np.ndarray | None,
    marks: Sequence[LesionMark],
    *,
    highlight: np.ndarray | None = None,
    opacity: float = 0.45,
    scale: int = 2,
) -> np.ndarray:
    """Draw one view for review: kept lesions red, excluded ones ringed grey, numbers.

    Args:
        display: uint8 display image (grey level 1), 0 = hottest.
        reviewed_mask: The label mask after review (excluded lesions are background,
            kept ones metastasis, bladder green).
        excluded: Boolean pixels of the excluded lesions (ringed grey, not filled), or None.
        marks: The numbers to write beside the lesions.
        highlight: Boolean pixels of the selected lesion (thick yellow ring), or None.
        opacity: Fill opacity of the overlay, in [0, 1].
        scale: Whole-number enlargement (>= 1) so that the numbers stay readable.

    Returns:
        uint8 RGB array of shape ``(rows * scale, cols * scale, 3)``.

    Raises:
        ValueError: If ``scale`` < 1, or a shape differs (see :func:`core.overlay.overlay_rgb`).
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    rgb = overlay_rgb(display, reviewed_mask, opacity, highlight=highlight)
    if excluded is not None:
        ex = np.asarray(excluded, dtype=bool)
        if ex.shape != rgb.shape[:2]:
            raise ValueError(f"excluded shape {ex.shape} differs from display {rgb.shape[:2]}")
        # A ring just outside the lesion: its own pixels are dark (hot), where grey would vanish.
        ring = ndimage.binary_dilation(ex, iterations=2) & ~ex
        ring &= reviewed_mask != LABEL_METASTASIS
        rgb[ring] = EXCLUDED_RGB
    image = Image.fromarray(rgb).resize(
        (rgb.shape[1] * scale, rgb.shape[0] * scale), Image.Resampling.NEAREST
    )
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13 * scale)
    for mark in marks:
        # Beside the lesion, not on it: the number must not hide what it names.
        x, y = (mark.col + 6) * scale, mark.row * scale
        draw.text(
            (x, y),
            str(mark.number),
            fill=NUMBER_RGB[mark.included],
            font=font,
            anchor="lm",
            stroke_width=max(1, scale),
            stroke_fill=(255, 255, 255),
        )
    return np.asarray(image)
