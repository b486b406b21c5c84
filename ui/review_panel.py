"""What the review page shows: the review state, its table, its picture, the drawing panel
and the reviewed mark.

Saving a change is one function of :mod:`workflow.review_changes` per event (a tick,
a drawn lesion, a mask edit, an undo, the reviewed mark).

A *review state* is the lesions' statuses in the store: a model lesion is kept
(``"model"``) or excluded (``"removed"``), a drawn one kept (``"added"``) or excluded;
then the mask edits not undone. The burden shown and stored after review is always
recomputed from the model's own masks and that state
(:func:`core.burden.lesion_review.recompute_burden`), so undoing every change gives back
the model's figures exactly.

The drawing panel is a ``streamlit-drawable-canvas`` component: the physician draws on
the view's review picture (grey level 1, the body's rows, :data:`CANVAS_SCALE` canvas
pixels per scan pixel) and :func:`canvas_mask` turns the drawing into a mask at the
view's own resolution. Outside a browser (Streamlit's AppTest) the component returns
its default, an empty drawing, and the panel offers nothing to save. The page imports the
component and hands it to :func:`annotation_panel`: the package registers its frontend
when imported, which needs a running Streamlit (``streamlit run`` or AppTest), and this
module must import without one (its pure functions are tested on their own).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from sqlite_utils import Database

from core.burden.lesion_review import (
    StudyImages,
    included,
    is_drawn,
    lesion_state,
    reviewed_masks,
)
from core.config import LABEL_METASTASIS, VIEWS
from core.imaging.overlay import overlay_rgb
from db.annotations import last_change, review_mark, unmark_reviewed
from ui.common import Keys
from workflow.review_changes import (
    ReviewEvent,
    draw_lesion,
    edit_mask,
    mark_study_reviewed,
    undo_change,
)

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


# --- the drawing panel ----------------------------------------------------------------

#: The drawing panel's tools: what each stores (a drawn lesion, or a mask edit's action).
TOOLS: dict[str, str] = {
    "Draw a missed lesion": "lesion",
    "Erase part of a mark": "erase",
    "Mark the bladder": "bladder",
    "Erase bladder": "erase_bladder",
}
#: Each tool's colour on the canvas, half opaque so that the scan shows through.
TOOL_COLOURS: dict[str, str] = {
    "lesion": "rgba(255, 140, 0, 0.5)",
    "erase": "rgba(0, 110, 255, 0.5)",
    "bladder": "rgba(0, 200, 90, 0.5)",
    "erase_bladder": "rgba(200, 0, 200, 0.5)",
}
#: Drawing modes offered, and the canvas mode of each.
DRAWING_MODES: dict[str, str] = {"Polygon": "polygon", "Brush": "freedraw"}
#: Canvas pixels per scan pixel (the review picture's enlargement).
CANVAS_SCALE = 2
#: The tallest the canvas is shown at once, screen pixels; it scrolls below.
CANVAS_MAX_HEIGHT = 820
#: A canvas pixel counts as drawn from this alpha (of 255): the tools draw half opaque,
#: and the faint anti-aliased rim of a stroke stays out.
DRAWN_ALPHA = 64
#: The physician's scan labels, and what each stores.
SCAN_LABELS: dict[str, bool] = {"Metastasis": True, "No metastasis": False}


class ReviewKeys:
    """Session-state keys of the drawing panel and the reviewed mark (prefixes of keys)."""

    #: The canvas (the analysis, view, tool and review state are appended, so that a
    #: saved change starts a fresh, empty canvas).
    CANVAS = "review_canvas"
    #: The drawing panel's view, tool, drawing mode and brush size.
    VIEW = "review_draw_view"
    TOOL = "review_draw_tool"
    MODE = "review_draw_mode"
    BRUSH = "review_draw_brush"
    #: The physician's scan label radio (the analysis and the time of its mark are
    #: appended, so that the radio shows the stored label after a change).
    LABEL = "review_scan_label"


def canvas_mask(
    image_data: np.ndarray | None, shape: tuple[int, int], rows: tuple[int, int]
) -> np.ndarray:
    """Turn the canvas drawing into a mask at the view's own resolution.

    The canvas shows rows ``rows[0]:rows[1]`` of the view, every column, enlarged by a
    whole number (:data:`CANVAS_SCALE`; a canvas rendered at another size is first
    brought to the nearest whole multiple). A canvas pixel is drawn where its alpha is
    at least :data:`DRAWN_ALPHA` (the background image is not part of the drawing); a
    scan pixel is set when at least half of its canvas pixels are drawn.

    Args:
        image_data: The canvas' RGBA image (rows, cols, 4), uint8, or None (nothing drawn).
        shape: (rows, cols) of the view's mask.
        rows: (start, stop) rows of the view the canvas shows.

    Returns:
        bool array of ``shape``; False outside ``rows`` and where nothing was drawn.

    Raises:
        ValueError: If ``rows`` does not lie inside ``shape`` or the image is not RGBA.
    """
    n_rows, n_cols = int(shape[0]), int(shape[1])
    start, stop = int(rows[0]), int(rows[1])
    if not 0 <= start < stop <= n_rows or n_cols < 1:
        raise ValueError(f"rows must lie inside 0..{n_rows} with start < stop, got {rows}")
    out = np.zeros((n_rows, n_cols), bool)
    if image_data is None:
        return out
    rgba = np.asarray(image_data)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.shape[0] == 0 or rgba.shape[1] == 0:
        raise ValueError(f"image_data must be RGBA (rows, cols, 4), got shape {rgba.shape}")
    drawn = (rgba[:, :, 3] >= DRAWN_ALPHA).astype(np.uint8) * 255
    height = stop - start
    scale = max(1, round(rgba.shape[1] / n_cols))
    if drawn.shape != (height * scale, n_cols * scale):
        drawn = np.asarray(
            Image.fromarray(drawn).resize(
                (n_cols * scale, height * scale), Image.Resampling.NEAREST
            )
        )
    blocks = drawn.reshape(height, scale, n_cols, scale) > 0
    out[start:stop] = blocks.sum(axis=(1, 3)) * 2 >= scale * scale
    return out


def drawn_objects(json_data: Mapping[str, Any] | None) -> int:
    """How many shapes the canvas holds (its Fabric.js JSON's ``objects``)."""
    if not json_data:
        return 0
    objects = json_data.get("objects")
    return len(objects) if isinstance(objects, list) else 0


def changed_pixels(
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    lesions: Sequence[Mapping[str, Any]],
    edits: Sequence[Mapping[str, Any]],
    *,
    view: str,
    tool: str,
    pixels: np.ndarray,
) -> int:
    """How many pixels of the reviewed mask a drawing would change if saved now.

    The answer comes from the same rule the store's burden uses
    (:func:`core.burden.lesion_review.reviewed_masks`), so it also says 0 where a drawn
    lesion would be wiped by an earlier erase (edits apply after drawn lesions).

    Args:
        images: The study's :class:`core.burden.lesion_review.StudyImages`.
        masks: The model's masks.
        lesions: The lesions as stored.
        edits: The mask edits not undone, oldest first.
        view: The view drawn on.
        tool: A value of :data:`TOOLS`.
        pixels: The drawing, bool of the view's shape.

    Returns:
        The number of pixels whose label would change (>= 0).

    Raises:
        ValueError: If ``tool`` is not a value of :data:`TOOLS`.
    """
    if tool not in TOOLS.values():
        raise ValueError(f"tool must be one of {sorted(TOOLS.values())}, got {tool!r}")
    removed, added = lesion_state(lesions)
    now = reviewed_masks(masks, images.components, removed, added or None, edits)
    if tool == "lesion":
        added = dict(added)
        added[view] = added[view] | pixels if view in added else np.asarray(pixels, bool)
        after = reviewed_masks(masks, images.components, removed, added, edits)
    else:
        edit = {"view": view, "action": tool, "pixels": pixels}
        after = reviewed_masks(masks, images.components, removed, added or None, [*edits, edit])
    return int(np.count_nonzero(after[view] != now[view]))


def review_state_tag(
    lesions: Sequence[Mapping[str, Any]], edits: Sequence[Mapping[str, Any]]
) -> str:
    """A short tag that changes with every saved change (statuses, drawn lesions, edits)."""
    text = ",".join(f"{les['id']}:{les['status']}" for les in lesions)
    text += ";" + ",".join(str(e["id"]) for e in edits)
    return f"{zlib.crc32(text.encode()):08x}"


def _bsi_text(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f} %"


def burden_step(
    bstbi_before: float,
    bstbi_after: float,
    bsi_before: float | None = None,
    bsi_after: float | None = None,
) -> str:
    """The figures before -> after a review change, BSTBI then BSI.

    E.g. ``"BSTBI 0.1000 -> 0.1250, BSI 1.20 % -> 1.45 %"``; the BSI only when the
    analysis has one (a skeleton map was read), so a scan without one reads as before.
    """
    text = f"BSTBI {bstbi_before:.4f} -> {bstbi_after:.4f}"
    if bsi_before is None and bsi_after is None:
        return text
    return f"{text}, BSI {_bsi_text(bsi_before)} -> {_bsi_text(bsi_after)}"


def event_notice(
    event: ReviewEvent, before: float, account: str, bsi_before: float | None = None
) -> str:
    """The sentence shown after a saved event: what, BSTBI (and BSI) before -> after, who."""
    return (
        f"{event.what[:1].upper()}{event.what[1:]}: "
        + burden_step(before, event.burden.scan_bstbi, bsi_before, event.burden.bsi)
        + ("" if event.stored else " (not reliable, not stored)")
        + f". Saved by {account}."
    )


def _saved(
    analysis_id: int,
    event: ReviewEvent,
    before: float,
    account: str,
    bsi_before: float | None = None,
) -> None:
    st.session_state[Keys.REVIEW_NOTICE] = {
        "analysis_id": analysis_id,
        "lesion_id": event.lesion_id,
        "text": event_notice(event, before, account, bsi_before),
    }
    st.rerun()


def annotation_panel(
    db: Database,
    canvas: Callable[..., Any],
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    lesions: Sequence[Mapping[str, Any]],
    edits: Sequence[Mapping[str, Any]],
    pictures: Mapping[str, np.ndarray],
    rows: tuple[int, int],
    state: str,
    bstbi_now: float,
    account: str,
    bsi_now: float | None = None,
) -> None:
    """Draw a missed lesion, erase part of a mark, mark or erase bladder; undo.

    Shown only to a session that may review. A save stores the change and the burden
    recomputed (:mod:`workflow.review_changes`), leaves a notice and reruns the page.

    Args:
        db: The open store.
        canvas: ``streamlit_drawable_canvas.st_canvas``.
        analysis: The analysis row.
        images: Its :class:`core.burden.lesion_review.StudyImages`.
        masks: The model's masks.
        lesions: The lesions as stored.
        edits: The mask edits not undone (:func:`db.annotations.mask_edits`).
        pictures: ``{view: RGB review picture}`` of the whole view at
            :data:`CANVAS_SCALE` (:func:`review_picture`), the canvas' background.
        rows: (start, stop) body rows shown (:func:`body_rows`).
        state: :func:`review_state_tag` of the stored review.
        bstbi_now: The reviewed BSTBI before the change, for the notice.
        account: Who is signed in.
        bsi_now: The reviewed BSI before the change (None without a skeleton map).
    """
    analysis_id = int(analysis["id"])
    views = [v for v in VIEWS if v in masks and v in pictures]
    if st.session_state.get(ReviewKeys.VIEW) not in views:
        # a study with one view only: the choice made on another study may not exist here
        st.session_state.pop(ReviewKeys.VIEW, None)
    controls, board = st.columns([2, 5])
    with controls:
        view = st.radio("View", views, horizontal=True, key=ReviewKeys.VIEW)
        tool_label = st.radio("Tool", list(TOOLS), key=ReviewKeys.TOOL)
        mode_label = st.radio("Drawing", list(DRAWING_MODES), horizontal=True, key=ReviewKeys.MODE)
        mode = DRAWING_MODES[mode_label]
        brush = st.slider(
            "Brush size (scan pixels)", 1, 20, 3, key=ReviewKeys.BRUSH, disabled=mode != "freedraw"
        )
        st.caption(
            "Polygon: click the corners, then click the first corner again to close it. "
            "Brush: paint with the mouse. Save stores the drawing; the canvas's own "
            "toolbar undoes strokes not saved yet."
        )
    tool = TOOLS[tool_label]
    picture = pictures[view]
    scale = max(1, picture.shape[1] // masks[view].shape[1])
    shown = picture[rows[0] * scale : rows[1] * scale]
    with board:
        result = canvas(
            fill_color=TOOL_COLOURS[tool],
            stroke_color=TOOL_COLOURS[tool],
            stroke_width=brush * scale if mode == "freedraw" else 1,
            background_image=Image.fromarray(shown),
            update_streamlit=True,
            height=shown.shape[0],
            width=shown.shape[1],
            drawing_mode=mode,
            max_display_height=min(CANVAS_MAX_HEIGHT, shown.shape[0]),
            return_image_data=True,
            key=f"{ReviewKeys.CANVAS}-{analysis_id}-{view}-{tool}-{state}",
        )
    image_data = result.image_data if result is not None else None
    pixels = canvas_mask(image_data, masks[view].shape, rows)
    with controls:
        n_pixels = int(np.count_nonzero(pixels))
        changes = (
            changed_pixels(images, masks, lesions, edits, view=view, tool=tool, pixels=pixels)
            if n_pixels
            else 0
        )
        if not n_pixels:
            st.caption(
                "Nothing drawn yet."
                if not drawn_objects(result.json_data if result is not None else None)
                else "The drawing covers no whole scan pixel yet."
            )
        elif changes:
            st.caption(f"Drawn: {n_pixels} scan pixels on {view}; {changes} would change.")
        else:
            st.caption(
                f"Drawn: {n_pixels} scan pixels on {view}, but saving would change none "
                "(nothing of that kind there, or an earlier erase covers it: mask edits "
                "apply after drawn lesions; undo that edit first)."
            )
        if st.button(
            f"Save: {tool_label.lower()}",
            icon=":material/save:",
            disabled=changes == 0,
            type="primary",
        ):
            if tool == "lesion":
                event = draw_lesion(db, analysis=analysis, images=images, masks=masks,
                                    view=view, drawn=pixels, account=account)  # fmt: skip
            else:
                event = edit_mask(db, analysis=analysis, images=images, masks=masks, view=view,
                                  action=tool, pixels=pixels, account=account)  # fmt: skip
            _saved(analysis_id, event, bstbi_now, account, bsi_now)
        change = last_change(db, analysis_id)
        if st.button(
            "Undo last change",
            icon=":material/undo:",
            disabled=change is None,
            help=f"Undoes: {change['what']} ({change['account']}, {change['at']})"
            if change
            else "Nothing to undo.",
        ):
            event = undo_change(db, analysis=analysis, images=images, masks=masks, account=account)
            event = ReviewEvent(f"undone: {event.what}", event.burden, event.stored)
            _saved(analysis_id, event, bstbi_now, account, bsi_now)
        if change is not None:
            st.caption(f"Last change: {change['what']}, by {change['account']}.")


def mark_words(mark: Mapping[str, Any] | None) -> str:
    """The reviewed mark in words, for the page."""
    if mark is None:
        return "Not marked reviewed yet."
    label = "metastasis" if mark["metastasis"] else "no metastasis"
    return (
        f"Marked reviewed by {mark['by']} on {str(mark['at'])[:16].replace('T', ' ')} UTC: {label}."
    )


def reviewed_mark_panel(
    db: Database,
    *,
    analysis: Mapping[str, Any],
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    may_review: bool,
    bstbi_now: float,
    account: str,
    bsi_now: float | None = None,
) -> None:
    """The reviewed mark: who marked the study reviewed and when, with the scan label.

    A session that may review chooses the physician's scan label and marks the study
    reviewed (or marks it again with another label), or takes the mark away; a viewer
    sees the mark only.
    """
    analysis_id = int(analysis["id"])
    mark = review_mark(db, analysis_id)
    st.markdown(mark_words(mark))
    if not may_review:
        return
    options = list(SCAN_LABELS)
    current = (
        None
        if mark is None
        else options.index("Metastasis" if mark["metastasis"] else "No metastasis")
    )
    label = st.radio(
        "Physician's scan label",
        options,
        index=current,
        horizontal=True,
        key=f"{ReviewKeys.LABEL}-{analysis_id}-{mark['at'] if mark else ''}",
    )
    left, right = st.columns(2)
    if left.button(
        "Mark this study reviewed" if mark is None else "Mark reviewed again with this label",
        icon=":material/verified:",
        disabled=label is None,
    ):
        event = mark_study_reviewed(
            db,
            analysis=analysis,
            images=images,
            masks=masks,
            metastasis=SCAN_LABELS[str(label)],
            account=account,
        )
        _saved(analysis_id, event, bstbi_now, account, bsi_now)
    if mark is not None and right.button("Unmark reviewed", icon=":material/remove_done:"):
        unmark_reviewed(db, analysis_id, account)
        st.session_state[Keys.REVIEW_NOTICE] = {
            "analysis_id": analysis_id,
            "lesion_id": None,
            "text": f"Reviewed mark taken away by {account}.",
        }
        st.rerun()
