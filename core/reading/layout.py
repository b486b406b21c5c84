"""Find the whole-body views in an exported picture: the layout finder.

Workstations export bone scans as pictures in many layouts: one view per file, the
two views side by side (anterior | posterior, the commonest), the paper's four-panel
composite, or a whole screen with spot views (RLA, LLA, pelvis) and a header line
holding the patient's name and the date. :func:`find_layout` looks at the picture's
pixels, finds every panel, tells whole-body views from spot views and text, and names
anterior and posterior. It works on *heat* (hot = high, the panels' background 0):
the reader converts the picture's polarity first (:func:`to_heat`).

How, step by step (sizes scale with the picture's height ``H``):

1. **Chrome.** Panel borders and a workstation's flat UI background are long runs of
   one value: a pixel lies on chrome when a run of :data:`RUN_FRACTION` x ``H`` pixels
   through it, along its row or its column, stays within :data:`FLAT_TOLERANCE` of one
   level above the panels' background, and that run's part is at least
   :data:`CHROME_MIN_EXTENT` of the picture's height or width long. A bone scan never
   holds such a run (counts are noisy; a saturated bladder is short).
2. **Viewports.** The parts of the picture that are not chrome, nearly rectangular
   (:data:`VIEWPORT_MIN_FILL`) and at least :data:`VIEWPORT_MIN_SIDE` of ``H`` on their
   short side, are the viewports; a picture without chrome is one viewport.
3. **Objects.** In each viewport the heat, smoothed (sigma :data:`OBJECT_SIGMA` x
   ``H``), above :data:`OBJECT_LEVEL` of its 99.5th percentile, falls into connected
   objects. An object small, short (under :data:`TEXT_MAX_HEIGHT` of the viewport's
   height, under :data:`TEXT_MAX_AREA` of the largest object) and drawn in one flat
   colour near the picture's top (:data:`TEXT_MIN_LEVEL`, :data:`TEXT_MAX_SPREAD`) is
   **text**. The other objects of a viewport are joined into bodies (a head, trunk and
   legs stacked; an arm apart beside them). One narrow for its height (width at most
   :data:`BODY_MAX_WIDTH` of it) and at least :data:`BODY_MIN_HEIGHT` of the tallest
   such one is a **whole-body view**; anything else is a **spot view**, except that in
   a picture without borders a part as tall as the tallest but too wide for one body
   is refused as two bodies touching.
4. **Panels.** A viewport holding one body is that body's panel. A viewport holding
   several bodies side by side (a pair without borders) is cut between them: at the
   equal division when it falls between the bodies (exports paste equal panels), else
   in the middle of the gap.
5. **Names.** Text inside a whole-body panel names it: a label of 3 or 8 glyphs reads
   "ANT"/"ANTERIOR", one of 4 or 9 glyphs "POST"/"POSTERIOR" (dots and other specks
   are not glyphs); a single glyph is an "R" or "L" side marker, told apart by its
   shape (an "R" has a bowl in its upper right quarter, an "L" is empty there), and
   the side it sits on gives the view: the patient's right is on the viewer's left in
   an anterior view. Labels that contradict each other, or two panels named alike,
   are refused. Without labels, two panels are read left to right as anterior and
   posterior, and the notes say so.

It refuses (:class:`LayoutError`, naming the panels it found and why it is unsure)
rather than guess: no whole-body view, more than two that are not the paper's
composite, a body wider than a body can be (two bodies touching), or contradicting
labels. It never reads two bodies as one view.

:func:`panel_view` then crops a panel, sets its text and chrome to the background
(burned-in labels never reach the networks nor BSTBI's S_R, and nothing outside the
panel, such as the header's name and date, is kept), pads it to the view's 1 : 4
aspect with background; the reader resizes it to the canonical 1024 x 256 grid.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from core.config import COLS, ROWS

#: A panel's box: (row0, row1, col0, col1), half-open, in picture pixels.
Box = tuple[int, int, int, int]

#: Length of a chrome run, as a fraction of the picture's height.
RUN_FRACTION = 0.04
#: Largest spread of values along a chrome run (JPEG ringing included): this many
#: grey levels, or this fraction of the run's top, whichever is larger.
FLAT_TOLERANCE = 6.0
FLAT_RELATIVE = 0.1
#: Chrome runs lie at least this far above the panels' background (heat units).
CHROME_MIN_LEVEL = 12.0
#: Smallest extent of a chrome part, fraction of the picture's height or width.
CHROME_MIN_EXTENT = 0.25
#: A chrome line is at most this many pixels thick, or this share of its length (a
#: strip of UI between two panels) ...
LINE_MAX_THICKNESS = 6
STRIP_MAX_SHARE = 0.05
#: ... and a frame fills at most this share of its bounding box.
LINE_FILL = 0.25
#: Gaps in a frame's lines (broken corners) up to twice this many pixels are closed.
CORNER_GAP = 8
#: A viewport's side looks this many pixels inward for a border line ...
EDGE_SEARCH = 16
#: ... and the chrome ring around a trimmed viewport is this many pixels wide.
EDGE_LINES = 4
#: ... each with this share of its pixels near its median.
EDGE_LINE_SHARE = 0.6
#: A body touches a panel's side when its outer rows (columns) ...
EDGE_ROWS_PX = 3
#: ... hold more than this fraction of the panel's maximum.
EDGE_SIGNAL = 0.03
#: Smallest short side of a viewport, fraction of the picture's height.
VIEWPORT_MIN_SIDE = 0.05
#: Smallest share of its bounding box a viewport fills (a viewport is a rectangle).
VIEWPORT_MIN_FILL = 0.85
#: Smoothing for objects, fraction of the picture's height.
OBJECT_SIGMA = 0.004
#: Object pixels: smoothed heat at least this fraction of the viewport's 99.5th percentile.
OBJECT_LEVEL = 0.08
#: Smallest object, fraction of the picture's area (specks are ignored).
OBJECT_MIN_AREA = 2e-5
#: Pixels around text's ink set to the background with it: PNG ...
TEXT_MARGIN = 2
#: ... and lossy pictures (JPEG rings around sharp edges).
TEXT_MARGIN_LOSSY = 5
#: Faint remains of text (blur, JPEG) are cleared within this many pixels beyond the
#: margin, above this fraction of the picture's top, when they do not reach further.
GHOST_REACH = 8
GHOST_LEVEL = 0.04
#: Text: at most this fraction of the picture's height tall ...
TEXT_MAX_HEIGHT = 0.06
#: ... on the background: the ring around it under this fraction of the top ...
TEXT_RING_LEVEL = 0.12
#: ... its glyphs joined across this fraction of the picture's height, or this
#: fraction of their median height (letter spacing), whichever is larger.
WORD_GAP = 0.35
TEXT_JOIN = 0.006
#: Text's ink: heat at least this fraction of the picture's top.
TEXT_MIN_LEVEL = 0.7
#: A glyph: at least this fraction of the picture's height tall, and this many pixels
#: (smaller flat blobs are saturated specks: a hand's hot spot in the paper's display)
GLYPH_MIN_HEIGHT = 0.006
GLYPH_MIN_PIXELS_TALL = 8
#: ... at least this many pixels ...
GLYPH_MIN_PX = 12
#: ... and flat: this share of its pixels within ``GLYPH_FLAT`` of the top.
GLYPH_FLAT_SHARE = 0.3
GLYPH_FLAT = 0.15
#: A part narrower than this fraction of its height is thin (an arm, a leg).
THIN_PART = 0.12
#: A thin part this close (fraction of the picture's height) beside a body joins it.
ARM_GAP = 0.06
#: A whole-body view: at least this fraction of the tallest object's height.
BODY_MIN_HEIGHT = 0.6
#: ... or of this fraction when its own bordered panel cuts it at both ends.
BODY_CUT_MIN_HEIGHT = 0.9
#: A part too wide for one body is cut at a column in its middle this share of its
#: width ...
SPLIT_SPAN = 0.6
#: ... crossed by at most this fraction of its height (two bodies' touching hands).
SPLIT_MAX_OCCUPANCY = 0.15
#: Several bodies in one panel are cut at the equal division when it lies within this
#: share of a panel's width of the middle of their gap.
EQUAL_SNAP = 0.15
#: A bordered panel of whole-body views is at least this tall for each view's width.
MIN_PANEL_ASPECT = 1.5
#: A single body is at most this wide for its height (arms out); wider is two bodies.
BODY_MAX_WIDTH = 0.40
#: A part too wide for one body is two bodies touching only when it is at least this
#: fraction of the tallest part's height (a spot view beside whole bodies is shorter).
TOUCHING_MIN_HEIGHT = 0.9
#: A whole-body panel wider than this many times a 1 : 4 view of its height is narrowed
#: to its body (see :func:`_fit_to_body`).
#: Words on one row closer than this many times their height are one line of text.
LINE_GAP = 3.0
#: Words stacked at most this many times the shorter one's height apart are one block.
BLOCK_GAP = 0.5
#: A line of text (never a label) holds at least this many words: a header's name, ID
#: and date.
LINE_MIN_WORDS = 3
#: A body's ends (head; feet or shins) are its first and last this share of rows ...
END_SHARE = 0.03
#: ... and at most this fraction of its widest row (a spot view cut straight: about 1).
END_MAX_WIDTH = 0.7
#: Whole-body views of one export: heights within this fraction of the taller ...
ALIKE_HEIGHT = 0.06
#: ... and first rows within this fraction of it.
ALIKE_TOP = 0.03
#: A viewport under this share of the picture is a bordered panel (one too wide for its
#: bodies is a spot view); a larger one is a screen without panel borders.
PANEL_MAX_SHARE = 0.5
#: Parts at least this fraction of a whole body's height beside the bodies (spot
#: views) bound the columns the whole-body panels share; specks and labels do not.
SPOT_MIN_HEIGHT = 0.15
#: A part at least this many times as wide as tall ...
STRIP_ASPECT = 6.0
#: ... and this many times as wide as another is a strip, never stacked onto it.
STRIP_WIDER = 1.25
#: A part at most this fraction of the picture's height thick (after smoothing) ...
BORDER_PART_THICKNESS = 0.012
#: ... and at least this fraction of the picture's height (or the viewport's width)
#: long is a border line, not a body part.
BORDER_PART_LENGTH = 0.5
#: A part that long filling at most this share of its box is panel borders joined into
#: a frame (a body fills a third of its box or more).
FRAME_MAX_FILL = 0.15
#: A border line in a lossy picture is brighter, by this fraction of the picture's top,
#: than the pixels this far away on both sides ...
RIDGE_LEVEL = 0.2
RIDGE_OFFSET = 4
#: ... along its length, gaps of up to this many pixels closed, and at least this
#: fraction of the picture's shorter side long (a spot panel's top border).
RIDGE_GAP = 3
RIDGE_MIN_LENGTH = 0.2
#: A view keeps what lies within this fraction of its panel's height of its body.
VIEW_MARGIN = 0.015
WIDE_PANEL = 1.4
#: Columns kept on each side of a body wider than a 1 : 4 view, fraction of the height.
BODY_MARGIN = 0.02
#: A glyph: at least this fraction of the largest glyph's pixels in its label.
GLYPH_MIN_SHARE = 0.25
#: The words a view label or side marker can hold, and what each says.
VIEW_WORDS = {
    "ANT": "ANT",
    "ANT.": "ANT",
    "ANTERIOR": "ANT",
    "POST": "POST",
    "POST.": "POST",
    "POSTERIOR": "POST",
    "R": "R",
    "L": "L",
}
#: Letters of the view words, for labels too small to match a drawn word.
LABEL_GLYPHS = {3: "ANT", 8: "ANT", 4: "POST", 9: "POST"}
#: A label is read when its best word's pixels agree at least this much ...
LABEL_MIN_SCORE = 0.8
#: ... and beat the best word saying anything else by this much.
LABEL_MARGIN = 0.04
#: Words whose width / height differs from the label's by more than this factor are
#: not tried.
LABEL_MAX_ASPECT_RATIO = 1.35
#: The canonical view's aspect (width / height).
VIEW_ASPECT = COLS / ROWS


#: How a refusal of bodies touching side by side begins (readers refuse it at once).
TOUCHING_BODIES = "a part of the picture"


class LayoutError(ValueError):
    """The picture's layout cannot be read with confidence; the message says why.

    Attributes:
        bodies: How many whole-body views were found (0 when none was).
    """

    def __init__(self, message: str, bodies: int = 0) -> None:
        super().__init__(message)
        self.bodies = bodies


@dataclass(frozen=True)
class Label:
    """Burned-in text inside a panel.

    Attributes:
        box: Its box in picture pixels (half-open).
        glyphs: How many glyphs it holds (specks not counted).
        says: ``"ANT"``, ``"POST"``, ``"R"``, ``"L"``, or None when unread.
    """

    box: Box
    glyphs: int
    says: str | None


@dataclass(frozen=True)
class Panel:
    """One panel of the picture.

    Attributes:
        box: The panel's box in picture pixels (half-open).
        kind: ``"whole_body"``, ``"spot"`` or ``"text"``.
        body: The box of what it shows (its object), picture pixels.
        labels: Text found inside it (whole-body panels only).
    """

    box: Box
    kind: str
    body: Box
    labels: tuple[Label, ...] = ()

    def describe(self) -> str:
        """Say where the panel is and what it holds, for notes and refusals."""
        r0, r1, c0, c1 = self.box
        what = {"whole_body": "whole-body view", "spot": "spot view", "text": "text"}[self.kind]
        return f"{what} at columns {c0}-{c1 - 1}, rows {r0}-{r1 - 1} ({c1 - c0} x {r1 - r0})"


@dataclass(frozen=True)
class Layout:
    """What a picture holds.

    Attributes:
        kind: ``"single"`` (one whole-body view), ``"pair"`` (two), ``"composite"``
            (four whole-body panels of equal width: the paper's export).
        panels: Every panel found, whole-body views first, left to right.
        views: ``{"ANT": panel, "POST": panel}`` for pairs; ``{}`` for a single view
            without a label and for composites (the reader names those).
        chrome: bool (H, W): borders and UI background found.
        text: bool (H, W): burned-in text and its compression halo, set to the
            background in every view read.
        notes: What was found and assumed, in words.
    """

    kind: str
    panels: tuple[Panel, ...]
    views: dict[str, Panel]
    chrome: np.ndarray
    text: np.ndarray
    notes: tuple[str, ...]

    @property
    def whole_body(self) -> tuple[Panel, ...]:
        """The whole-body panels, left to right."""
        return tuple(p for p in self.panels if p.kind == "whole_body")


def to_heat(pixels: np.ndarray, hot_dark: bool, bit_depth: int) -> np.ndarray:
    """Turn a picture's stored values into heat: hot = high, a black background 0.

    Args:
        pixels: 2-D integer picture as stored.
        hot_dark: True for a white-background picture (the paper's display).
        bit_depth: Bits per sample (8 or 16).

    Returns:
        float32 array of the same shape; ``top - pixels`` for hot-dark pictures
        (``top`` 255 for 8-bit, else the smallest ``2**k - 1`` at or above the maximum).
    """
    a = np.asarray(pixels)
    if not hot_dark:
        return a.astype(np.float32)
    hi = int(a.max())
    top = 255 if bit_depth == 8 else (1 << max(8, hi.bit_length())) - 1
    return (top - a.astype(np.float32)).astype(np.float32)


def _flat_runs(heat: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Pixels on a run of ``length`` along ``axis`` whose values spread <= the tolerance."""
    hi = ndimage.maximum_filter1d(heat, length, axis=axis, mode="nearest")
    lo = ndimage.minimum_filter1d(heat, length, axis=axis, mode="nearest")
    # lossy compression rings along a bright line by about a tenth of its level
    flat_centre = (hi - lo) <= np.maximum(FLAT_TOLERANCE, FLAT_RELATIVE * hi)
    # every pixel of a flat window is on the run, not only its centre
    return ndimage.maximum_filter1d(flat_centre.astype(np.uint8), length, axis=axis) > 0


def find_chrome(heat: np.ndarray) -> np.ndarray:
    """Return the chrome (borders, UI background) of a picture as a bool mask (step 1).

    A flat part is chrome when it is long (:data:`CHROME_MIN_EXTENT`) and either thin
    (a line at most :data:`LINE_MAX_THICKNESS` or :data:`STRIP_MAX_SHARE` of its length
    thick, a frame filling at most
    :data:`LINE_FILL` of its bounding box) or touches the picture's edge (a UI
    background, a header bar).
    A flat block inside the picture, such as a drawn test body, is neither.
    """
    h, w = heat.shape
    length = max(9, round(RUN_FRACTION * h)) | 1
    raised = heat >= CHROME_MIN_LEVEL
    flat = (_flat_runs(heat, length, 1) | _flat_runs(heat, length, 0)) & raised
    labels, n = ndimage.label(flat, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return flat
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = np.zeros(n + 1, dtype=bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        bh, bw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if max(bh / h, bw / w) < CHROME_MIN_EXTENT:
            continue
        thin = (
            min(bh, bw) <= max(LINE_MAX_THICKNESS, STRIP_MAX_SHARE * max(bh, bw))
            or sizes[i] <= LINE_FILL * bh * bw
        )
        at_edge = sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == h or sl[1].stop == w
        keep[i] = thin or at_edge
    return keep[labels]


def find_ridge_lines(heat: np.ndarray) -> np.ndarray:
    """Return thin border lines that compression left unflat, as a bool mask.

    JPEG rings around a 1 to 2 px border line, so the line is no flat run and
    :func:`find_chrome` misses it. It is still a ridge: brighter by
    :data:`RIDGE_LEVEL` of the picture's top than both pixels :data:`RIDGE_OFFSET`
    away across it, straight and at least :data:`RIDGE_MIN_LENGTH` of the picture's
    shorter side long (gaps of a few pixels closed). No part of a body is that long,
    thin and straight.

    Args:
        heat: float 2-D picture, hot = high, background about 0.

    Returns:
        bool (H, W): the lines, grown by :data:`TEXT_MARGIN_LOSSY` pixels across.
    """
    h, w = heat.shape
    top = float(heat.max())
    out = np.zeros(heat.shape, dtype=bool)
    if top <= 0:
        return out
    k = RIDGE_OFFSET
    size = RIDGE_MIN_LENGTH * min(h, w)
    for axis in (1, 0):  # 1: vertical lines, compared left and right
        a = np.moveaxis(heat, axis, 1)
        pad = np.pad(a, ((0, 0), (k, k)), mode="edge")
        around = np.maximum(pad[:, : -2 * k], pad[:, 2 * k :])
        ridge = (a - around) >= RIDGE_LEVEL * top
        along = np.ones((2 * RIDGE_GAP + 1, 1), dtype=bool)
        ridge = ndimage.binary_closing(ridge, structure=along)
        labels, n = ndimage.label(ridge, structure=np.ones((3, 3), dtype=bool))
        keep = np.zeros(n + 1, dtype=bool)
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            long, thick = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            keep[i] = long >= size and thick <= LINE_MAX_THICKNESS
        lines = keep[labels]
        if lines.any():
            lines = ndimage.binary_dilation(
                lines, structure=np.ones((1, 2 * TEXT_MARGIN_LOSSY + 1), dtype=bool)
            )
        out |= np.moveaxis(lines, 1, axis)
    return out


def _viewports(chrome: np.ndarray) -> list[Box]:
    """The rectangles chrome encloses (step 2).

    The chrome is first grown by :data:`CORNER_GAP` pixels, so that a frame whose
    corners lossy compression broke still closes; each enclosed part's box is then grown
    back by as much, which gives the area inside the lines.
    """
    h, w = chrome.shape
    if not chrome.any():
        return [(0, h, 0, w)]
    closed = ndimage.binary_dilation(
        chrome, structure=np.ones((3, 3), dtype=bool), iterations=CORNER_GAP
    )
    labels, _ = ndimage.label(~closed)
    boxes: list[Box] = []
    min_side = VIEWPORT_MIN_SIDE * h
    g = CORNER_GAP
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        r0, r1, c0, c1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        if min(r1 - r0, c1 - c0) < min_side:
            continue
        fill = float((labels[sl] == i).mean())
        if fill >= VIEWPORT_MIN_FILL:
            boxes.append((max(r0 - g, 0), min(r1 + g, h), max(c0 - g, 0), min(c1 + g, w)))
    return boxes


def _is_line(values: np.ndarray) -> bool:
    """A border line: raised above the background and nearly one value along it."""
    level = float(np.median(values))
    if level < CHROME_MIN_LEVEL:
        return False
    near = np.abs(values - level) <= max(FLAT_TOLERANCE * 2, 0.2 * level)
    return float(near.mean()) >= EDGE_LINE_SHARE


def _trim_lines(heat: np.ndarray, box: Box) -> Box:
    """Step a box's sides inward past border lines that compression left unflat.

    From each side, up to :data:`EDGE_SEARCH` rows (columns) in: when a border line
    (:func:`_is_line`: raised, :data:`EDGE_LINE_SHARE` of it near its median) comes
    after nothing but background (an outer margin, or the gap between two panels), the
    side moves past it and the lines right after it. JPEG rings along a thin line and
    can break a frame's corners, so the run test of :func:`find_chrome` can miss it.
    """
    r0, r1, c0, c1 = box

    def line(axis: int, i: int) -> np.ndarray:
        return heat[i, c0:c1] if axis == 0 else heat[r0:r1, i]

    def inward(axis: int, start: int, step: int, stop: int) -> int:
        i = start
        for _ in range(EDGE_SEARCH):
            if (i - stop) * step >= 0:
                return start
            values = line(axis, i)
            if _is_line(values):
                while (stop - i) * step > 2 and _is_line(line(axis, i)):
                    i += step
                return i
            if float((values > CHROME_MIN_LEVEL).mean()) > 0.1:
                return start  # content before any line: no border on this side
            i += step
        return start

    r0 = inward(0, r0, 1, r1)
    r1 = inward(0, r1 - 1, -1, r0) + 1 if r1 - r0 > 2 else r1
    c0 = inward(1, c0, 1, c1)
    c1 = inward(1, c1 - 1, -1, c0) + 1 if c1 - c0 > 2 else c1
    return (r0, r1, c0, c1)


@dataclass(frozen=True)
class _Object:
    box: Box
    area: int

    @property
    def height(self) -> int:
        return self.box[1] - self.box[0]

    @property
    def width(self) -> int:
        return self.box[3] - self.box[2]


def _glyph_mask(heat: np.ndarray, chrome: np.ndarray, top: float, picture_h: int) -> np.ndarray:
    """Pixels of glyph-like ink: connected ink of a glyph's size, drawn flat at the top.

    Ink is heat at least :data:`TEXT_MIN_LEVEL` of the picture's top. A connected part
    of it is a glyph when at least :data:`GLYPH_MIN_HEIGHT` of the picture's height
    (and :data:`GLYPH_MIN_PIXELS_TALL`) tall, :data:`GLYPH_MIN_PX` pixels or more, and
    drawn flat: at least :data:`GLYPH_FLAT_SHARE` of its pixels within
    :data:`GLYPH_FLAT` of the top. Noise spikes are too small, and a hot spot of counts
    is not flat at the picture's top.
    """
    ink = (heat >= TEXT_MIN_LEVEL * top) & ~chrome
    labels, n = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return ink
    keep = np.zeros(n + 1, dtype=bool)
    min_height = max(GLYPH_MIN_PIXELS_TALL, round(GLYPH_MIN_HEIGHT * picture_h))
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or sl[0].stop - sl[0].start < min_height:
            continue
        values = heat[sl][labels[sl] == i]
        if values.size < GLYPH_MIN_PX:
            continue
        keep[i] = float((values >= (1.0 - GLYPH_FLAT) * top).mean()) >= GLYPH_FLAT_SHARE
    return keep[labels]


def find_text(heat: np.ndarray, chrome: np.ndarray) -> tuple[list[Box], np.ndarray]:
    """Find burned-in text (words, markers) in a picture: their boxes and their ink.

    Glyphs (:func:`_glyph_mask`) seed the words. Small text falls apart into specks
    (a thin "O", the dot of "ANT."), so all ink on the glyphs' rows is joined along the
    row across the letter spacing (:data:`WORD_GAP` of the glyphs' median height, at
    least :data:`TEXT_JOIN` of the picture's height); only along the row, so that a
    marker just under a label stays a word of its own. A joined part holding a glyph is
    text when short (:data:`TEXT_MAX_HEIGHT` of the picture's height) and on the
    background (:func:`_on_background`), which a saturated spot inside a body never is.
    Found at the pixel level, text is told apart even where smoothing would join it to
    a head or an arm.

    Returns:
        (the words' boxes, bool (H, W) mask of the words' ink).
    """
    h = heat.shape[0]
    text = np.zeros(heat.shape, dtype=bool)
    top = float(heat.max())
    if top <= 0:
        return [], text
    glyphs = _glyph_mask(heat, chrome, top, h)
    if not glyphs.any():
        return [], text
    ink = (heat >= TEXT_MIN_LEVEL * top) & ~chrome
    glyph_parts, _ = ndimage.label(glyphs, structure=np.ones((3, 3), dtype=bool))
    heights = [sl[0].stop - sl[0].start for sl in ndimage.find_objects(glyph_parts) if sl]
    join = max(2, round(TEXT_JOIN * h), round(WORD_GAP * float(np.median(heights))))
    on_glyph_rows = ndimage.binary_dilation(glyphs.any(axis=1), iterations=2)
    aligned = ink & on_glyph_rows[:, None]
    along_row = np.ones((1, 2 * join + 1), dtype=bool)
    words, _ = ndimage.label(ndimage.binary_dilation(aligned, structure=along_row))
    out: list[Box] = []
    for i, sl in enumerate(ndimage.find_objects(words), start=1):
        if sl is None:
            continue
        region = words[sl] == i
        if not (glyphs[sl] & region).any():
            continue
        mine = aligned[sl] & region
        rows, cols = np.nonzero(mine)
        box = (
            sl[0].start + int(rows.min()),
            sl[0].start + int(rows.max()) + 1,
            sl[1].start + int(cols.min()),
            sl[1].start + int(cols.max()) + 1,
        )
        if box[1] - box[0] > TEXT_MAX_HEIGHT * h:
            continue
        word = np.zeros(heat.shape, dtype=bool)
        word[sl] = mine
        if _on_background(heat, word, sl, top):
            out.append(box)
            text |= word
    return out, text


def _text_ghosts(heat: np.ndarray, texts: list[Box], text: np.ndarray, margin: int) -> np.ndarray:
    """Faint remains of text around its cleared ink: blurred strokes and compression.

    Around each word (its box grown by ``margin`` plus :data:`GHOST_REACH` pixels),
    what stands above :data:`GHOST_LEVEL` of the picture's top and lies wholly inside
    that region is the word's; what reaches the region's edge (a head under a label)
    is not.
    """
    out = np.zeros(heat.shape, dtype=bool)
    top = float(heat.max())
    h, w = heat.shape
    reach = margin + GHOST_REACH
    for r0, r1, c0, c1 in texts:
        a0, a1 = max(r0 - reach, 0), min(r1 + reach, h)
        b0, b1 = max(c0 - reach, 0), min(c1 + reach, w)
        faint = (heat[a0:a1, b0:b1] > GHOST_LEVEL * top) & ~text[a0:a1, b0:b1]
        parts, n = ndimage.label(faint, structure=np.ones((3, 3), dtype=bool))
        if n == 0:
            continue
        # only the region's sides inside the picture lead on; the picture's edge ends it
        sides = [
            side
            for side, inner in (
                (parts[0], a0 > 0),
                (parts[-1], a1 < h),
                (parts[:, 0], b0 > 0),
                (parts[:, -1], b1 < w),
            )
            if inner
        ]
        edge = np.unique(np.concatenate(sides)) if sides else np.zeros(0, dtype=int)
        inside = np.ones(n + 1, dtype=bool)
        inside[edge] = False
        inside[0] = False
        out[a0:a1, b0:b1] |= inside[parts]
    return out


def _words_in(ink: np.ndarray, box: Box, picture_h: int) -> list[Box]:
    """The words of text ink inside one panel, joined only within it.

    Two panels side by side without a border can hold a marker and a label a few
    pixels apart across their boundary; joined within each panel, they stay apart.
    """
    r0, r1, c0, c1 = box
    part = ink[r0:r1, c0:c1]
    if not part.any():
        return []
    join = max(2, round(TEXT_JOIN * picture_h))
    words, _ = ndimage.label(
        ndimage.binary_dilation(part, structure=np.ones((1, 2 * join + 1), dtype=bool))
    )
    out = []
    for i, sl in enumerate(ndimage.find_objects(words), start=1):
        if sl is None:
            continue
        rows, cols = np.nonzero((words[sl] == i) & part[sl])
        out.append(
            (
                r0 + sl[0].start + int(rows.min()),
                r0 + sl[0].start + int(rows.max()) + 1,
                c0 + sl[1].start + int(cols.min()),
                c0 + sl[1].start + int(cols.max()) + 1,
            )
        )
    return out


def _on_background(heat: np.ndarray, blob: np.ndarray, sl: tuple[slice, slice], top: float) -> bool:
    """True when a blob sits on the background: text, not a saturated spot in a body.

    The ring 2-4 pixels around it must be near the background (median under
    :data:`TEXT_RING_LEVEL` of the top), which a hot spot inside a body never is.
    """
    r0, r1 = max(sl[0].start - 5, 0), sl[0].stop + 5
    c0, c1 = max(sl[1].start - 5, 0), sl[1].stop + 5
    m = blob[r0:r1, c0:c1]
    ring = ndimage.binary_dilation(m, iterations=4) & ~ndimage.binary_dilation(m, iterations=1)
    if not ring.any():
        return False
    return float(np.median(heat[r0:r1, c0:c1][ring])) <= TEXT_RING_LEVEL * top


def _objects(heat: np.ndarray, vp: Box, picture_h: int, picture_area: int) -> list[_Object]:
    r0, r1, c0, c1 = vp
    part = heat[r0:r1, c0:c1]
    smooth = ndimage.gaussian_filter(part, max(1.0, OBJECT_SIGMA * picture_h))
    ref = float(np.percentile(smooth, 99.5))
    if ref <= 0:
        return []
    mask = smooth >= OBJECT_LEVEL * ref
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or sizes[i] < OBJECT_MIN_AREA * picture_area:
            continue
        rows, cols = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        thick = max(BORDER_PART_THICKNESS * picture_h, 2.0)
        if (cols <= thick and rows >= BORDER_PART_LENGTH * picture_h) or (
            rows <= thick and cols >= BORDER_PART_LENGTH * part.shape[1]
        ):
            # a panel's border line that compression left unflat (not found as chrome)
            continue
        if rows >= BORDER_PART_LENGTH * picture_h and sizes[i] < FRAME_MAX_FILL * rows * cols:
            # panel borders joined into a frame or a grid: lines around empty space
            continue
        for (a0, a1, b0, b1), area in _split_touching(labels[sl] == i):
            box = (
                a0 + sl[0].start + r0,
                a1 + sl[0].start + r0,
                b0 + sl[1].start + c0,
                b1 + sl[1].start + c0,
            )
            out.append(_Object(box, area))
    return out


def _split_touching(part: np.ndarray) -> list[tuple[Box, int]]:
    """Cut a part too wide for one body where few of its rows cross a column.

    Two bodies whose outstretched hands touch are one connected part, but only the
    hands cross the columns between them: a column in the middle :data:`SPLIT_SPAN`
    of the part crossed by at most :data:`SPLIT_MAX_OCCUPANCY` of its height is a cut.
    A body's own columns (trunk, legs, head) are crossed by far more rows.

    Returns:
        The boxes (relative to ``part``) and pixel counts of the pieces.
    """
    rows, cols = part.shape
    whole = [((0, rows, 0, cols), int(part.sum()))]
    if cols <= BODY_MAX_WIDTH * rows:
        return whole
    occupancy = part.sum(axis=0)
    lo = round((1 - SPLIT_SPAN) / 2 * cols)
    hi = round((1 + SPLIT_SPAN) / 2 * cols)
    cut = lo + int(np.argmin(occupancy[lo:hi]))
    if occupancy[cut] > SPLIT_MAX_OCCUPANCY * rows:
        return whole
    pieces: list[tuple[Box, int]] = []
    for c0, c1 in ((0, cut), (cut + 1, cols)):
        side = part[:, c0:c1]
        r, c = np.nonzero(side)
        if r.size == 0:
            continue
        sub = side[r.min() : r.max() + 1, c.min() : c.max() + 1]
        for (a0, a1, b0, b1), area in _split_touching(sub):
            pieces.append(
                ((a0 + r.min(), a1 + r.min(), b0 + c.min() + c0, b1 + c.min() + c0), area)
            )
    return pieces


def _keep_words_whole(boxes: list[Box], bodies: list[_Object], words: list[Box]) -> list[Box]:
    """Move each boundary between panels side by side off the words it would cut.

    A label near its panel's edge may reach past the middle of the gap between two
    bodies; cut through, its pieces would be read as other words. The boundary moves to
    the word's nearer edge, so the word stays whole in the panel holding most of it,
    as long as it stays in the gap between the two bodies (a header line over both is
    cut, and cleared as text all the same).
    """
    out = list(boxes)
    for k in range(len(out) - 1):
        x = out[k][3]
        gap = (bodies[k].box[3], bodies[k + 1].box[2])
        for w in words:
            if w[2] < x < w[3] and w[0] < out[k][1] and out[k][0] < w[1]:
                moved = w[3] if x - w[2] >= w[3] - x else w[2]
                if gap[0] <= moved <= gap[1]:
                    x = moved
        out[k] = (*out[k][:3], x)
        out[k + 1] = (out[k + 1][0], out[k + 1][1], x, out[k + 1][3])
    return out


def _strip_over(a: _Object, b: _Object) -> bool:
    """Whether ``a`` is a thin strip far wider than ``b``, never a part of its body.

    Such a strip is what compression left of a header bar or a border line.
    """
    return a.width >= STRIP_ASPECT * a.height and a.width >= STRIP_WIDER * b.width


def _merge(a: _Object, b: _Object) -> _Object:
    return _Object(_union([a.box, b.box]), a.area + b.area)


def _group_parts(objs: list[_Object], picture_h: int) -> list[_Object]:
    """Join the parts of each body into one object.

    First stacked parts (head, trunk, legs), then thin parts (an arm, a leg) close
    beside a wider one. Stacked: their column ranges overlap by half the narrower one;
    two bodies side by side never overlap so. An arm apart from the trunk is thin
    (width under :data:`THIN_PART` of its height) and within :data:`ARM_GAP` of the
    picture's height.
    """
    groups = list(objs)
    changed = True
    while changed:
        changed = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                overlap = min(a.box[3], b.box[3]) - max(a.box[2], b.box[2])
                if overlap >= 0.5 * min(a.width, b.width) and not (
                    _strip_over(a, b) or _strip_over(b, a)
                ):
                    groups[i] = _merge(a, b)
                    del groups[j]
                    changed = True
                    break
            if changed:
                break
    wide = [g for g in groups if g.width >= THIN_PART * g.height]
    thin = [g for g in groups if g.width < THIN_PART * g.height]
    for t in thin:
        near = [
            (max(g.box[2] - t.box[3], t.box[2] - g.box[3]), k)
            for k, g in enumerate(wide)
            if min(g.box[1], t.box[1]) - max(g.box[0], t.box[0]) > 0
        ]
        gap, k = min(near, default=(None, -1))
        if gap is not None and gap <= ARM_GAP * picture_h:
            wide[k] = _merge(wide[k], t)
        else:
            wide.append(t)
    return wide


def _read_label(heat: np.ndarray, box: Box, by_count: bool = True) -> Label:
    """Read what a label says by matching it against the view words (module notes, 5).

    The label's ink (at least half its maximum), cropped to its extent, is compared
    with each word of :data:`VIEW_WORDS` drawn in a plain sans-serif font, regular and
    bold, at the label's height: the word's picture is resized to the label's extent
    and the share of pixels that agree is its score. The best word is read when its
    score is at least :data:`LABEL_MIN_SCORE` and beats the best word naming anything
    else by :data:`LABEL_MARGIN`; words whose width for their height is far from the
    label's (:data:`LABEL_MAX_ASPECT_RATIO`) are not tried. When no word matches, the
    count of separate glyphs reads it (:data:`LABEL_GLYPHS`) unless ``by_count`` is
    False (a word beside another on its row, which may be a header's); else it stays
    unread.
    """
    r0, r1, c0, c1 = box
    part = heat[r0:r1, c0:c1]
    ink = part >= 0.5 * float(part.max())
    labels, n = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return Label(box, 0, None)
    sizes = np.bincount(labels.ravel())[1:]
    glyphs = int((sizes >= GLYPH_MIN_SHARE * sizes.max()).sum())
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = crop.shape
    if height < GLYPH_MIN_PIXELS_TALL:
        return Label(box, glyphs, None)  # a speck or a piece of a word: nothing to read
    aspect = width / height
    best: dict[str, float] = {}
    for _word, says, template in _word_templates(int(height)):
        t_aspect = template.shape[1] / template.shape[0]
        if max(aspect, t_aspect) / min(aspect, t_aspect) > LABEL_MAX_ASPECT_RATIO:
            continue
        resized = np.asarray(
            Image.fromarray(template.astype(np.uint8) * 255).resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        score = float(((resized >= 128) == crop).mean())
        best[says] = max(best.get(says, 0.0), score)
    if not best:
        return Label(box, glyphs, None)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    says, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if score >= LABEL_MIN_SCORE and score - runner_up >= LABEL_MARGIN:
        return Label(box, glyphs, says)
    # Small text matches no drawn word well, but its separate glyphs still count the
    # letters: 3 or 8 (ANT, ANTERIOR), 4 or 9 (POST, POSTERIOR); a final dot is a speck.
    return Label(box, glyphs, LABEL_GLYPHS.get(glyphs) if by_count else None)


@functools.lru_cache(maxsize=64)
def _word_templates(height: int) -> tuple[tuple[str, str, np.ndarray], ...]:
    """The view words drawn at ``height`` pixels of ink, regular and bold (bool arrays)."""
    out = []
    for word, says in VIEW_WORDS.items():
        for stroke in (0, 1):
            size = max(6, round(height / 0.75))
            font = ImageFont.load_default(size=size)
            im = Image.new("L", (size * (len(word) + 2), size * 2), 0)
            ImageDraw.Draw(im).text(
                (size // 2, size // 2),
                word,
                fill=255,
                font=font,
                stroke_width=stroke,
                stroke_fill=255,
            )
            a = np.asarray(im) >= 128
            rows, cols = np.nonzero(a)
            if rows.size:
                out.append(
                    (word, says, a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
                )
    return tuple(out)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _ends_narrow(heat: np.ndarray, box: Box, picture_h: int) -> bool:
    """Whether a tall part ends narrow at both ends, as a body does (head, feet or shins).

    Spot views stacked in a column of a screen join into one tall part, but each is
    cut straight by its own panel: its first or last rows are as wide as the part, and
    where two meet across their gap both sides are wide.
    The ends are the first and last :data:`END_SHARE` of the part's rows; narrow is at
    most :data:`END_MAX_WIDTH` of its widest row (pixels counted, not the extent, so
    two feet apart are narrow).
    """
    r0, r1, c0, c1 = box
    part = ndimage.gaussian_filter(heat[r0:r1, c0:c1], max(1.0, OBJECT_SIGMA * picture_h))
    ref = float(np.percentile(part, 99.5))
    if ref <= 0:
        return False
    widths = (part >= OBJECT_LEVEL * ref).sum(axis=1).astype(np.float64)
    widest = float(widths.max())
    k = max(2, round(END_SHARE * (r1 - r0)))
    if widths[:k].mean() > END_MAX_WIDTH * widest or widths[-k:].mean() > END_MAX_WIDTH * widest:
        return False
    # Empty rows inside: a body's parts (a head over a faint neck) meet narrow; spot
    # views stacked in a column meet across their gap with straight, wide cuts.
    empty = np.flatnonzero(widths == 0)
    for start, stop in _runs(empty):
        above = widths[max(start - k, 0) : start]
        below = widths[stop : stop + k]
        if above.size and below.size and min(above.mean(), below.mean()) > END_MAX_WIDTH * widest:
            return False
    return True


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs of sorted indices, as half-open (start, stop) pairs."""
    if indices.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) > 1)
    starts = np.concatenate(([indices[0]], indices[breaks + 1]))
    stops = np.concatenate((indices[breaks], [indices[-1]])) + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _alike_bodies(bodies: list[_Object], notes: list[str]) -> list[_Object]:
    """Keep, of three or more whole bodies found, those of one size.

    The views of one export show one patient at one scale: their bodies are of the same
    height (within :data:`ALIKE_HEIGHT`) and start at the same row (within
    :data:`ALIKE_TOP` of the height). Spot views, or several stacked in a column, can
    pass for a body by their shape; they are not of its size, and whole bodies are the
    tallest things an export shows, in twos. The tallest group of two alike bodies or
    more is kept (or the tallest body, when none is alike another); the others are
    spot views. Two bodies or fewer are kept as they are.
    """
    if len(bodies) < 3:
        return bodies

    def alike(a: _Object, b: _Object) -> bool:
        tall = max(a.height, b.height)
        return (
            abs(a.height - b.height) <= ALIKE_HEIGHT * tall
            and abs(a.box[0] - b.box[0]) <= ALIKE_TOP * tall
        )

    groups = [[q for q in bodies if alike(o, q)] for o in bodies]
    kept = max(groups, key=lambda g: (len(g) >= 2, max(q.height for q in g)))
    for o in bodies:
        if o not in kept:
            r0, r1, c0, c1 = o.box
            notes.append(
                f"a part at columns {c0}-{c1 - 1}, rows {r0}-{r1 - 1} is not of the whole-body "
                "views' size: taken as a spot view"
            )
    return kept


def _gap(a: Box, b: Box) -> float:
    """Distance between two boxes, pixels (0 when they overlap)."""
    rows = max(0, a[0] - b[1], b[0] - a[1])
    cols = max(0, a[2] - b[3], b[2] - a[3])
    return math.hypot(rows, cols)


def _text_lines(words: list[Box], min_words: int) -> list[Box]:
    """The lines of several words: a header's name, ID and date, a status line.

    Words on the same rows (overlapping by half the shorter one's height) whose gap is
    at most :data:`LINE_GAP` times their height are one line, and lines stacked within
    :data:`BLOCK_GAP` of a word's height, their columns overlapping, one block (a
    header's lines). A view label and a marker, or the labels of two panels side by
    side, make at most two words.

    Args:
        words: Word boxes.
        min_words: The fewest words a line returned holds.

    Returns:
        The box of each line holding ``min_words`` words or more.
    """
    groups: list[list[Box]] = [[w] for w in sorted(words, key=lambda w: w[2])]
    changed = True
    while changed:
        changed = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = _union(groups[i]), _union(groups[j])
                height = min(a[1] - a[0], b[1] - b[0])
                rows = min(a[1], b[1]) - max(a[0], b[0])
                gap = max(a[2], b[2]) - min(a[3], b[3])
                # a header's lines stack: a word just under another (columns
                # overlapping) is of the same block of text
                stacked = (
                    min(a[3], b[3]) > max(a[2], b[2])
                    and max(a[0], b[0]) - min(a[1], b[1]) <= BLOCK_GAP * height
                )
                if (
                    rows >= 0.5 * height and gap <= LINE_GAP * max(a[1] - a[0], b[1] - b[0])
                ) or stacked:
                    groups[i] += groups.pop(j)
                    changed = True
                    break
            if changed:
                break
    return [_union(g) for g in groups if len(g) >= min_words]


def _below_lines(box: Box, body: Box, lines: list[Box]) -> Box:
    """Start a panel below the lines of text above its body (a header is never kept)."""
    r0, r1, c0, c1 = box
    for line in lines:
        if line[1] <= body[0] and line[2] < c1 and c0 < line[3]:
            r0 = max(r0, min(line[1] + TEXT_MARGIN_LOSSY, body[0]))
    return (r0, r1, c0, c1)


def _fit_to_body(box: Box, body: Box) -> Box:
    """Narrow a panel wider than a whole-body view to the columns around its body.

    A screen without panel borders puts spot views beside the whole-body views; the
    column share of the last body then runs on over them. Padding such a panel to
    1 : 4 would shrink the body into the middle of the view, so a panel more than
    :data:`WIDE_PANEL` times as wide as a 1 : 4 view of its height (or as its body
    plus :data:`BODY_MARGIN` of its height on each side, when the arms reach further)
    keeps only that many columns, centred on its body.

    Args:
        box: The panel (row0, row1, col0, col1), picture pixels, half-open.
        body: The box of its body, inside ``box``.

    Returns:
        ``box`` itself, or the narrowed box (same rows, columns inside ``box``'s).
    """
    r0, r1, c0, c1 = box
    margin = round(BODY_MARGIN * (r1 - r0))
    width = max(round((r1 - r0) * VIEW_ASPECT), body[3] - body[2] + 2 * margin)
    if c1 - c0 <= WIDE_PANEL * width:
        return box  # a view's width, or a crop tight to the body
    left = round((body[2] + body[3]) / 2 - width / 2)
    left = min(max(left, c0), c1 - width)
    return (r0, r1, left, left + width)


def _split_columns(vp: Box, bodies: list[_Object], equal: bool = True) -> list[Box]:
    """Cut a viewport holding several bodies side by side into one panel per body.

    Args:
        vp: The viewport, or the part of it the bodies' panels share.
        bodies: The bodies in it.
        equal: Whether the panels fill ``vp`` (an export of panels alone), so that its
            equal division may be their boundary; beside spot views it is not, and the
            middle of the gap between two bodies is.
    """
    r0, r1, c0, c1 = vp
    bodies = sorted(bodies, key=lambda o: o.box[2])
    n = len(bodies)
    width = c1 - c0
    division = [c0 + round(k * width / n) for k in range(n + 1)]
    cuts = [c0]
    for k in range(1, n):
        left_end, right_start = bodies[k - 1].box[3], bodies[k].box[2]
        middle = (left_end + right_start) // 2
        # Exports paste panels of equal width: the equal division wins when it lies
        # between the two bodies, near the middle of their gap, or at least between
        # their centres (an outstretched hand may cross it).
        near = abs(division[k] - middle) <= EQUAL_SNAP * width / n
        centres = (
            (bodies[k - 1].box[2] + left_end) / 2
            < division[k]
            < (bodies[k].box[2] + bodies[k].box[3]) / 2
        )
        if not equal:
            cuts.append(middle)
        elif left_end <= division[k] <= right_start or near or centres:
            cuts.append(division[k])
        else:
            cuts.append(middle)
    cuts.append(c1)
    return [(r0, r1, cuts[k], cuts[k + 1]) for k in range(n)]


def find_layout(heat: np.ndarray, lossy: bool = False) -> Layout:
    """Find the panels of a picture and name its whole-body views.

    Args:
        heat: float 2-D picture, hot = high, panels' background about 0 (see
            :func:`to_heat`), at least 64 pixels on each side.
        lossy: The picture was stored lossily (JPEG): a wider halo around text is
            cleared.

    Returns:
        The :class:`Layout`.

    Raises:
        ValueError: If ``heat`` is not a 2-D array of finite values.
        LayoutError: If no whole-body view is found, or the picture cannot be read
            with confidence (see the module notes); the message names the panels.
    """
    a = np.asarray(heat, dtype=np.float32)
    if a.ndim != 2 or min(a.shape, default=0) < 1 or not np.isfinite(a).all():
        raise ValueError(f"heat must be a finite 2-D array, got shape {a.shape}")
    if not lossy:
        return _find_layout(a, lossy, ridges=False)
    # Border lines a lossy picture left unflat are looked for only when the picture
    # cannot be read as two views without them (they cost time, and a line closing
    # only some panels can hide the others).
    try:
        first = _find_layout(a, lossy, ridges=False)
    except LayoutError as exc:
        first, error = None, exc
    if first is not None and (first.kind == "pair" or a.shape[1] <= a.shape[0]):
        return first  # (a picture of one view has no panel borders to look for)
    try:
        second = _find_layout(a, lossy, ridges=True)
    except LayoutError:
        second = None
    if second is not None and second.kind == "pair":
        return second
    if first is None:
        raise error
    return first


def _find_layout(a: np.ndarray, lossy: bool, ridges: bool) -> Layout:
    """:func:`find_layout` on a checked picture, with or without ridge lines as chrome."""
    h, w = a.shape
    chrome = find_chrome(a)
    if ridges:
        chrome |= find_ridge_lines(a)
    clean = np.where(chrome, 0.0, a).astype(np.float32)
    texts, ink = find_text(clean, chrome)
    # What is cleared of text: its ink and what lossy compression rings around it, but
    # not the bounding box, which may reach over a head just under a label.
    margin = TEXT_MARGIN_LOSSY if lossy else TEXT_MARGIN
    text = ndimage.binary_dilation(ink, iterations=margin) if ink.any() else ink
    text |= _text_ghosts(clean, texts, text, margin)
    # bodies are found with the text set to the background, so a label beside a head
    # never joins it
    lines = _text_lines(texts, LINE_MIN_WORDS)
    pairs = _text_lines(texts, 2)
    # A line of several words (the header's name, ID and date) is cleared whole, its
    # box and a margin: what compression left between and around its letters never
    # joins a body, nor stays in a view.
    for r0, r1, c0, c1 in lines:
        text[max(r0 - margin, 0) : r1 + margin, max(c0 - margin, 0) : c1 + margin] = True
    bare = clean.copy()
    bare[text] = 0.0
    viewports = [_trim_lines(a, vp) for vp in _viewports(chrome)]
    for r0, r1, c0, c1 in viewports:
        # what the trim stepped over is chrome too (set aside in the views)
        inner = np.zeros(chrome.shape, dtype=bool)
        inner[r0:r1, c0:c1] = True
        ring = ~inner
        ring[: max(r0 - EDGE_LINES, 0)] = False
        ring[r1 + EDGE_LINES :] = False
        ring[:, : max(c0 - EDGE_LINES, 0)] = False
        ring[:, c1 + EDGE_LINES :] = False
        chrome |= ring
    bare[chrome] = 0.0
    # each viewport's parts, joined into bodies once
    found: list[tuple[Box, list[_Object]]] = [
        (vp, _group_parts(_objects(bare, vp, h, h * w), h)) for vp in viewports
    ]
    grouped = [g for _, groups in found for g in groups]
    if not grouped:
        raise LayoutError("no body was found in the picture: it holds only background.")
    tallest = max(g.height for g in grouped)
    # the scale of a whole body: the tallest part narrow enough to be one
    tallest_body = max(
        (g.height for g in grouped if g.width <= BODY_MAX_WIDTH * g.height), default=0
    )
    panels: list[Panel] = []
    notes: list[str] = []
    candidates: list[list[_Object]] = []
    touching_parts: list[_Object] = []
    for vp, rest in found:
        # A body: narrow for its height, and tall among the picture's bodies.
        # A part cut by both ends of its own bordered panel is a spot view (the legs of
        # a knee view) unless it is as tall as the tallest body.
        edge = CORNER_GAP + 2
        cut_both = [
            o
            for o in rest
            if chrome.any() and o.box[0] <= vp[0] + edge and o.box[1] >= vp[1] - edge
        ]
        bodies = [
            o
            for o in rest
            if o.width <= BODY_MAX_WIDTH * o.height
            and o.height
            >= (BODY_CUT_MIN_HEIGHT if o in cut_both else BODY_MIN_HEIGHT) * tallest_body
        ]
        # A bordered panel holding whole bodies is tall for their number; a square-ish
        # one (a spot view of the knees or the pelvis) holds none.
        # (Not a whole screen without panel borders, where a header bar is the only
        # chrome: its viewport is most of the picture, spot views beside the bodies.)
        vp_h, vp_w = vp[1] - vp[0], vp[3] - vp[2]
        if (
            chrome.any()
            and bodies
            and vp_h < MIN_PANEL_ASPECT * vp_w / len(bodies)
            and vp_h * vp_w < PANEL_MAX_SHARE * h * w
        ):
            bodies = []
        # In a picture without panel borders, a part as tall as the tallest but too wide
        # for one body is two bodies touching (in a bordered screen, a spot view).
        touching = [
            o
            for o in rest
            if not chrome.any()
            and BODY_MAX_WIDTH * o.height < o.width <= o.height
            and o.height >= TOUCHING_MIN_HEIGHT * tallest
        ]
        touching_parts += touching
        candidates.append(bodies)
    # Beside two whole bodies found apart, such a part is spot views stacked in a
    # column of a screen; without them, it may be the two bodies, and is refused.
    if touching_parts and sum(len(b) for b in candidates) < 2:
        o = touching_parts[0]
        raise LayoutError(
            f"{TOUCHING_BODIES} {o.width} pixels wide and {o.height} tall looks like "
            "more than one body side by side without a gap; it cannot be read as one view.",
            bodies=2,
        )
    # In a screen, spot views can pass for bodies by their outline: a body ends narrow
    # (see _ends_narrow). Asked only there, or among three candidates or more: drawn
    # test bodies, plain blocks, stay bodies in a picture of one or two views.
    found_bodies = [o for bodies in candidates for o in bodies]
    if w > h or len(found_bodies) > 2:
        shaped = [o for o in found_bodies if _ends_narrow(bare, o.box, h)]
        candidates = [[o for o in bodies if o in shaped] for bodies in candidates]
    # The views of one export show one patient at one scale (see _alike_bodies).
    kept = _alike_bodies([o for bodies in candidates for o in bodies], notes)
    for (vp, rest), found_bodies in zip(found, candidates, strict=True):
        words = [
            t for t in texts if vp[0] <= t[0] and t[1] <= vp[1] and vp[2] <= t[2] and t[3] <= vp[3]
        ]
        bodies = [o for o in found_bodies if o in kept]
        spots = [o for o in rest if o not in bodies]
        if bodies:
            # Spot views beside the bodies (a screen without panel borders) bound the
            # columns the bodies' panels share.
            first = min(o.box[2] for o in bodies)
            last = max(o.box[3] for o in bodies)
            big_spots = [o for o in spots if o.height >= SPOT_MIN_HEIGHT * tallest_body]
            # (a spot view's faint edge reaches a little past its part's box)
            reach = round(BODY_MARGIN * tallest_body)
            span = (
                vp[0],
                vp[1],
                max([vp[2]] + [o.box[3] + reach for o in big_spots if o.box[3] <= first]),
                min([vp[3]] + [o.box[2] - reach for o in big_spots if o.box[2] >= last]),
            )
            alone = span[2:] == vp[2:]  # the bodies' panels fill the viewport
            boxes = [span] if len(bodies) == 1 else _split_columns(span, bodies, equal=alone)
            if not alone:
                # (Panels pasted edge to edge are cut at their equal division, exactly;
                # a label and a marker may touch across it and are read apart.)
                boxes = _keep_words_whole(boxes, sorted(bodies, key=lambda o: o.box[2]), texts)
            boxes = [_trim_lines(a, b) for b in boxes]
            for box, body in zip(boxes, sorted(bodies, key=lambda o: o.box[2]), strict=True):
                # labels are read in the whole column share: a label in the corner of a
                # panel wider than its body lies outside the narrowed crop. A line of
                # several words (a header with the name, ID and date) is never a label.
                # Nor is a word nearer another part (a spot view's name beside it).
                neighbours = [o.box for o in rest if o is not body]
                inside = [
                    b
                    for b in _words_in(ink, box, h)
                    if not any(_overlap(b, n) for n in lines)
                    and all(_gap(b, body.box) <= _gap(b, o) for o in neighbours)
                ]
                # Two words close on a row are a view word and its neighbour's, or two
                # words of a header: only a word drawn like a view word names a view.
                labels = tuple(
                    _read_label(clean, b, by_count=not any(_overlap(b, n) for n in pairs))
                    for b in inside
                )
                fitted = _below_lines(_fit_to_body(box, body.box), body.box, lines)
                panels.append(Panel(fitted, "whole_body", body.box, labels))
            if spots:
                notes.append(f"{len(spots)} small part(s) beside the whole-body view(s) ignored")
        else:
            for o in spots:
                panels.append(Panel(vp, "spot", o.box))
            if words and not spots:
                panels.append(Panel(vp, "text", _union(words)))
    wb = sorted((p for p in panels if p.kind == "whole_body"), key=lambda p: p.box[2])
    others = [p for p in panels if p.kind != "whole_body"]
    ordered = tuple(wb + others)
    if not wb:
        raise LayoutError(
            "no whole-body view was found; the picture holds "
            + "; ".join(p.describe() for p in ordered)
            + "."
        )
    for p in others:
        notes.append(f"{p.describe()} set aside")
    try:
        if len(wb) == 1:
            views = _name_single(wb[0], notes)
            return Layout("single", ordered, views, chrome, text, tuple(notes))
        if len(wb) == 2:
            views = _name_pair(wb[0], wb[1], notes)
            return Layout("pair", ordered, views, chrome, text, tuple(notes))
    except LayoutError as exc:
        raise LayoutError(str(exc), bodies=len(wb)) from None
    if len(wb) == 4 and not chrome.any():
        return Layout("composite", ordered, {}, chrome, text, tuple(notes))
    raise LayoutError(
        f"{len(wb)} whole-body views were found ("
        + "; ".join(p.describe() for p in wb)
        + "); it cannot tell which two are the anterior and the posterior view.",
        bodies=len(wb),
    )


def _union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _panel_says(panel: Panel) -> tuple[str | None, str]:
    """What a panel's labels say it is, and how that was read (or why it is unsure)."""
    said: dict[str, str] = {}
    for lab in panel.labels:
        if lab.says in ("ANT", "POST"):
            said.setdefault(lab.says, "burned-in label")
        elif lab.says in ("R", "L"):
            # the side of the body, not of the panel: a panel may be wider than its body
            centre = (panel.body[2] + panel.body[3]) / 2
            left = (lab.box[2] + lab.box[3]) / 2 < centre
            view = "ANT" if (lab.says == "R") == left else "POST"
            side = "left" if left else "right"
            said.setdefault(view, f"'{lab.says}' marker on the {side}")
    if len(said) > 1:
        raise LayoutError(
            f"the labels of the {panel.describe()} contradict each other ("
            + ", ".join(f"{how} says {v}" for v, how in said.items())
            + ")."
        )
    if not said:
        return None, ""
    view, how = next(iter(said.items()))
    return view, how


def _name_single(panel: Panel, notes: list[str]) -> dict[str, Panel]:
    view, how = _panel_says(panel)
    if view is None:
        return {}
    notes.append(f"view {view} read from its burned-in text ({how})")
    return {view: panel}


def _name_pair(left: Panel, right: Panel, notes: list[str]) -> dict[str, Panel]:
    a, how_a = _panel_says(left)
    b, how_b = _panel_says(right)
    if a is not None and a == b:
        raise LayoutError(
            f"both whole-body views are labelled {a} ({left.describe()}: {how_a}; "
            f"{right.describe()}: {how_b}); it cannot tell which is which."
        )
    if a is None and b is None:
        notes.append(
            "two whole-body views side by side, no view label found: read left to right as "
            "anterior (ANT) and posterior (POST), the usual export order; check the overlay"
        )
        return {"ANT": left, "POST": right}
    if a is None:
        a = "ANT" if b == "POST" else "POST"
    if b is None:
        b = "ANT" if a == "POST" else "POST"
    read = "; ".join(
        f"{v} on the {side} from its {how}"
        for v, side, how in ((a, "left", how_a), (b, "right", how_b))
        if how
    )
    notes.append(f"two whole-body views side by side: {read}")
    return {a: left, b: right}


def _split_pad(total: int, first_touches: bool, last_touches: bool) -> tuple[int, int]:
    """Share padding between two sides, keeping a body that touches one side there."""
    if first_touches and not last_touches:
        return 0, total
    if last_touches and not first_touches:
        return total, 0
    return total // 2, total - total // 2


def _touches(edge: np.ndarray, top: float) -> bool:
    return bool(top > 0 and float(edge.max()) > EDGE_SIGNAL * top)


def pad_to_view(part: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Pad a panel with background (0) to the view's 1 : 4 aspect.

    The padding is centred, except that a body touching one side of the panel (a
    crop tight to the head or the feet) stays at that side: padding it away would
    leave a straight cut inside the field, which reads as a body cut off. Touching:
    the outer :data:`EDGE_ROWS_PX` rows (columns) hold more than :data:`EDGE_SIGNAL`
    of the panel's maximum.

    Args:
        part: float 2-D panel, background 0.

    Returns:
        (padded array, (top, bottom, left, right) pixels added).
    """
    h, w = part.shape
    top = float(part.max()) if part.size else 0.0
    k = EDGE_ROWS_PX
    if w / h > VIEW_ASPECT:
        total = round(w / VIEW_ASPECT) - h
        above, below = _split_pad(total, _touches(part[:k], top), _touches(part[-k:], top))
        pads = (above, below, 0, 0)
    else:
        total = round(h * VIEW_ASPECT) - w
        left, right = _split_pad(total, _touches(part[:, :k], top), _touches(part[:, -k:], top))
        pads = (0, 0, left, right)
    out = np.pad(part, ((pads[0], pads[1]), (pads[2], pads[3])), constant_values=0.0)
    return out.astype(np.float32, copy=False), pads


def picture_to_view(
    box: Box, pads: tuple[int, int, int, int], row: float, col: float
) -> tuple[float, float]:
    """Map a point of a panel's picture to the canonical view read from it.

    The inverse of what :func:`panel_view` and the reader's resize do: crop to ``box``,
    pad to 1 : 4 (:func:`pad_to_view`), resize to 1024 x 256. Pixel centres map to
    pixel centres.

    Args:
        box: The panel's box (row0, row1, col0, col1) in the picture.
        pads: The padding :func:`pad_to_view` added to the panel (top, bottom, left,
            right).
        row: Picture row (pixel centre at ``r + 0.5`` for pixel ``r``).
        col: Picture column (likewise).

    Returns:
        (row, column) on the canonical 1024 x 256 grid, same convention.
    """
    r0, r1, c0, c1 = box
    h, w = r1 - r0, c1 - c0
    if h <= 0 or w <= 0:
        raise ValueError(f"box must have a positive size, got {box}")
    ph, pw = h + pads[0] + pads[1], w + pads[2] + pads[3]
    return (row - r0 + pads[0]) * ROWS / ph, (col - c0 + pads[2]) * COLS / pw


def panel_view(heat: np.ndarray, layout: Layout, panel: Panel) -> np.ndarray:
    """Return one panel cropped, its text and chrome cleared, padded to the view's aspect.

    Args:
        heat: The picture's heat (as given to :func:`find_layout`).
        layout: Its layout.
        panel: One of ``layout.panels``.

    Returns:
        float32 2-D heat of width / height 1 : 4 (within a pixel), hot = high; the
        reader resizes it to the canonical 1024 x 256 grid.
    """
    r0, r1, c0, c1 = panel.box
    part = np.array(heat[r0:r1, c0:c1], dtype=np.float32)
    part[layout.chrome[r0:r1, c0:c1] | layout.text[r0:r1, c0:c1]] = 0.0
    # What lies well away from the body (a header bar's or a border's remains, the edge
    # of a spot view beside it) is not part of the view.
    margin = max(round(VIEW_MARGIN * (r1 - r0)), 2)
    b0, b1, d0, d1 = panel.body
    keep = np.zeros(part.shape, dtype=bool)
    keep[
        max(b0 - margin - r0, 0) : max(b1 + margin - r0, 0),
        max(d0 - margin - c0, 0) : max(d1 + margin - c0, 0),
    ] = True
    part[~keep] = 0.0
    return pad_to_view(part)[0]
