"""What the review page shows: the review state, its table and its picture.

Saving a change is :func:`workflow.review_changes.save_review`.

A *review state* is the lesions' statuses in the store: a model lesion is kept
(``"model"``) or excluded (``"removed"``), a drawn one kept (``"added"``) or excluded.
The burden shown and stored after review is always recomputed from the model's own
masks and that state (:func:`core.burden.lesion_review.recompute_burden`), so ticking every lesion
again gives back the model's figures exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from core.burden.lesion_review import included, is_drawn
from core.config import LABEL_METASTASIS
from core.imaging.overlay import overlay_rgb

#: Ring colour of excluded lesions: grey, so they read as "not counted".
EXCLUDED_RGB: tuple[int, int, int] = (90, 90, 90)
#: Lesion numbers: included lesions in dark red, excluded ones in grey.
NUMBER_RGB: dict[bool, tuple[int, int, int]] = {True: (150, 0, 0), False: (110, 110, 110)}


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
        ValueError: If ``scale`` < 1, or a shape differs
            (see :func:`core.imaging.overlay.overlay_rgb`).
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
