"""Phantom views exported as the pictures real workstations write, with exact layout truth.

Workstations rarely export a bone scan as two clean 1024 x 256 views. They write one
picture: the two whole-body views side by side, at some zoom, sometimes cropped to
the body, with burned-in labels, borders, or a whole screen of user interface around
them. :func:`render_layout` draws a phantom case's canonical views
(``core.phantom.generate.generate_case(...).views``) in one of :data:`LAYOUTS`, and
records where everything went (:class:`ExportedLayout`, :class:`PanelTruth`) so that
a layout finder can be tested against the truth.

Layouts (``H x W`` picture; ``s`` the seeded scale, ``ph x pw`` a panel's size):

* ``"pair"`` — ANT | POST side by side, equal panels, full window
  ``(0, 1024, 0, 256)``, no gap, no border, no text. The picture is exactly the two
  panels: ``H = ph``, ``W = 2 * pw``.
* ``"pair-labelled"`` — as ``"pair"``, with burned-in labels: each panel one view
  label (``"ANT"``, ``"ANT."`` or ``"ANTERIOR"``; ``"POST"``, ``"POST."`` or
  ``"POSTERIOR"``; the same form in both panels) 4 to 10 px from the edges at a
  top corner (or elsewhere when the body is in the way, see below), and
  with probability 0.5 an ``"R"`` marker on the patient's right (near the panel's left
  edge in ANT, its right edge in POST) at shoulder height or near the top.
* ``"pair-reversed"`` — POST | ANT (posterior on the left), always with view labels
  so that a reader can tell the views apart only from them.
* ``"pair-bordered"`` — each panel inside a 1 to 3 px border line (seeded grey
  80..200, ``255 -`` that in hot-dark), 0 to 12 px of background between the two
  bordered panels and an outer margin of 0 to 10 px; labels with probability 0.5.
* ``"pair-tight"`` — both windows cropped to the body: the body is where the
  Gaussian-smoothed counts (sigma :data:`BODY_SMOOTH_SIGMA`) exceed
  :data:`BODY_FRACTION` of their :data:`BODY_PERCENTILE` th percentile; the window is
  the union of the two views' body extents plus 0 to 6 px of rows and 4 to 20 px of
  columns on each side, clipped to the grid; the same window for both views; labels
  with probability 0.5.
* ``"screen"`` — a workstation screen, about 1640 x 1035 (width x height, each
  +-10 %): flat UI grey (hot-bright 30..90, hot-dark 165..225; never the panels'
  background), a header bar 28 to 40 px tall with one line of synthetic patient text,
  two full-window whole-body panels (order seeded, view labels always, ``"R"`` with
  probability 0.5, optional 1 to 2 px border), and 2 or 3 square-ish spot panels
  (about 250 to 330 px) left or right of them, each a 1.3x to 2x zoom of the skull,
  pelvis or knees of one view with a ``"RLA"``, ``"LLA"`` or ``"PELVIS"`` label
  (at a corner clear of the body if one is, else top-left over it), in one row, one
  column or two columns; and, where they fit clear of every panel, a status line and
  a column of labelled tool buttons in the free UI area.

Geometry contract (a reader undoes exactly this). A whole-body panel
(``PanelTruth.kind == "whole_body"``) shows canonical rows ``window[0]:window[1]`` and
columns ``window[2]:window[3]`` of its view, scaled uniformly by one factor ``s`` to
exactly its ``box``: ``box[1] - box[0] == floor(s * (window[1] - window[0]) + 0.5)``
and ``box[3] - box[2] == floor(s * (window[3] - window[2]) + 0.5)``, drawn as
``core.reading.readers.resize_bilinear(counts[window], (ph, pw))`` mapped to 8 bits. ``box``
is the image area only, inside any border line, half-open, in picture pixels. All
whole-body panels of one picture share ``s`` (drawn from :data:`SCALE_RANGE`, lowered
only where the screen is too small) and the pixel mapping:

* ``"hot-bright"`` (about 70 % of pictures; background 0):
  ``pixel = floor(r * top / peak + 0.5)``, ``r`` the resized counts, ``peak`` the
  maximum of both canonical views together, ``top`` seeded in :data:`TOP_RANGE`.
* ``"hot-dark"`` (about 30 %; background 255): the paper's grey level 1 of each view
  (:func:`core.imaging.display.grey_level_1`), applied to the resized counts with the
  canonical view's own 99.9th percentile ``p``:
  ``pixel = 255 - floor(255 * clip(r / p, 0, 1) + 0.5)``. For ``s = 1`` and the full
  window this is ``grey_level_1(counts)`` exactly.

Spot panels use the same mapping on their own zoomed region; their geometry is not
recorded (``window`` None). Text is drawn in the hot extreme (255 in hot-bright, 0 in
hot-dark), anti-aliased or not, blended by glyph coverage; every pixel a text
changed lies inside its recorded box, the tight box of its ink. Labels in a
whole-body panel never touch the body: their box, grown by :data:`LABEL_CLEARANCE`
px, holds no pixel whose hotness (the pixel in hot-bright, ``255 - pixel`` in
hot-dark) exceeds :data:`LABEL_CLEAR_FRACTION` of the panel's highest hotness, both
taken before any text is drawn, nor another label. A view label tries the preferred
top corner, the other top corner, then the bottom corners (same side first), then
the same at font sizes 2 px smaller down to :data:`MIN_LABEL_SIZE`, then the first
free place (top to bottom, left to right) at that size; it is left out only if no
place is free at all (never seen on phantom cases). The ``"R"`` marker keeps its
size and column, tries its preferred height (shoulder or top) and the other one,
then the nearest free height above shoulder level plus a tenth of the panel, and is
left out when none is free. So outside its label boxes, a whole-body panel's pixels
are exactly the contract's.

``texts_outside`` lists every text not inside a whole-body panel (header, status
line, tool buttons, spot labels); the header and spot labels are also in their
panel's ``labels``. Panel boxes never overlap one another, nor any border line, and
no text outside a whole-body panel overlaps one.

All randomness comes from ``numpy.random.default_rng(seed)``: the same views, layout
and seed give a byte-identical picture.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from core.config import COLS, ROWS
from core.imaging.display import GREY_LEVEL_1_PERCENTILE
from core.imaging.resize import resize_bilinear

Box = tuple[int, int, int, int]
TextTruth = tuple[str, Box]

#: The layouts :func:`render_layout` draws (see the module docstring).
LAYOUTS: tuple[str, ...] = (
    "pair",
    "pair-labelled",
    "pair-reversed",
    "pair-bordered",
    "pair-tight",
    "screen",
)
#: The two pixel polarities of a picture.
POLARITIES: tuple[str, str] = ("hot-bright", "hot-dark")
#: Share of pictures drawn in the paper's white-background display.
HOT_DARK_FRACTION = 0.3
#: Range of the whole-body scale factor (a full window is 563 to 1126 px tall).
SCALE_RANGE = (0.55, 1.1)
#: Range of the maximum pixel value of a hot-bright picture.
TOP_RANGE = (40, 255)
#: Range of the view-label font size, px.
LABEL_SIZE_RANGE = (14, 28)
#: Smallest font size a label is shrunk to when it does not fit at its size.
MIN_LABEL_SIZE = 10
#: Range of a label's distance from the panel edges, px.
LABEL_OFFSET_RANGE = (4, 10)
#: A label may not cover pixels hotter than this share of its panel's hottest pixel.
LABEL_CLEAR_FRACTION = 0.1
#: Pixels around a label's ink box that must be clear of the body too.
LABEL_CLEARANCE = 2
#: The view-label forms, one chosen per picture.
VIEW_LABELS: dict[str, tuple[str, str, str]] = {
    "ANT": ("ANT", "ANT.", "ANTERIOR"),
    "POST": ("POST", "POST.", "POSTERIOR"),
}
#: Labels of the spot panels of the ``"screen"`` layout.
SPOT_LABELS: tuple[str, str, str] = ("RLA", "LLA", "PELVIS")
#: Nominal screen size (height, width), px, varied by +-:data:`SCREEN_JITTER`.
SCREEN_SIZE = (1035, 1640)
#: Relative variation of the screen size.
SCREEN_JITTER = 0.1
#: Body detection for ``"pair-tight"``, the ``"R"`` marker and the spots: smoothing
#: sigma (px), and the share of the smoothed counts' percentile that is body.
BODY_SMOOTH_SIGMA = 2.0
BODY_FRACTION = 0.05
BODY_PERCENTILE = 99.5
#: Landmarks as fractions of the body height from the vertex (see core.phantom.anatomy).
_SHOULDER, _SKULL, _PELVIS, _KNEES = 0.19, 0.065, 0.48, 0.715
_SPOT_REGIONS: dict[str, float] = {"skull": _SKULL, "pelvis": _PELVIS, "knees": _KNEES}

_FIRST_NAMES = ("JANE", "JOHN", "ALEX", "MARY", "SAM", "ROBIN", "KIM", "LEE", "ANNA", "MAX")
_TOOLS = ("Zoom", "Pan", "Window", "Invert", "ROI", "Print", "Export", "Compare", "Reset", "Cine")
_HOSPITALS = (
    "Synthetic General Hospital",
    "Phantom Memorial Clinic",
    "Test Imaging Centre",
    "Example University Hospital",
)


@dataclass(frozen=True)
class PanelTruth:
    """One panel of an exported picture.

    Attributes:
        kind: ``"whole_body"``, ``"spot"`` or ``"header"``.
        view: ``"ANT"`` or ``"POST"`` for a whole-body panel, else None.
        box: ``(row0, row1, col0, col1)``, half-open, picture pixels: the panel's
            image area, inside any border line.
        window: Whole-body panels only: ``(row0, row1, col0, col1)``, half-open, on
            the canonical 1024 x 256 grid, the part of the view the panel shows.
        labels: Texts drawn inside this panel: ``(text, box)``, ``box`` the tight
            box of the text's ink in picture pixels.
    """

    kind: str
    view: str | None
    box: Box
    window: Box | None
    labels: tuple[TextTruth, ...] = ()

    def truth(self) -> dict[str, Any]:
        """Return the panel as a JSON-able dict (lists for tuples)."""
        return {
            "kind": self.kind,
            "view": self.view,
            "box": list(self.box),
            "window": None if self.window is None else list(self.window),
            "labels": [{"text": t, "box": list(b)} for t, b in self.labels],
        }


@dataclass(frozen=True, eq=False)
class ExportedLayout:
    """An exported picture and the truth of its layout.

    Equality is identity: the picture is an array, which has no single truth value.

    Attributes:
        image: uint8 (H, W) grey picture.
        layout: One of :data:`LAYOUTS`.
        polarity: ``"hot-bright"`` (black background) or ``"hot-dark"`` (white
            background, the paper's display).
        panels: The panels, left to right (the header first on a screen).
        texts_outside: Every text not inside a whole-body panel: ``(text, box)``.
    """

    image: np.ndarray = field(repr=False)
    layout: str
    polarity: str
    panels: tuple[PanelTruth, ...]
    texts_outside: tuple[TextTruth, ...] = ()

    def truth(self) -> dict[str, Any]:
        """Return everything but the pixels as a JSON-able dict.

        Returns:
            ``{"layout", "polarity", "image_shape": [H, W], "panels": [...],
            "texts_outside": [{"text", "box"}, ...]}``; boxes and windows as lists,
            so ``json.loads(json.dumps(d)) == d``.
        """
        return {
            "layout": self.layout,
            "polarity": self.polarity,
            "image_shape": [int(self.image.shape[0]), int(self.image.shape[1])],
            "panels": [p.truth() for p in self.panels],
            "texts_outside": [{"text": t, "box": list(b)} for t, b in self.texts_outside],
        }


# --- pixel mapping ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    polarity: str
    top: int
    peak: float
    p999: dict[str, float]

    @property
    def background(self) -> int:
        return 0 if self.polarity == "hot-bright" else 255

    @property
    def hot(self) -> int:
        return 255 if self.polarity == "hot-bright" else 0

    def pixels(self, r: np.ndarray, view: str) -> np.ndarray:
        """Map resized counts of ``view`` to 8 bits (the contract's formulas)."""
        a = np.asarray(r, dtype=np.float64)
        if self.polarity == "hot-bright":
            # Same expression as core.phantom.export.view_image, so that a single-view
            # peak gives its bytes exactly.
            scaled = np.floor(a * (self.top / self.peak if self.peak > 0 else 0.0) + 0.5)
            return np.clip(scaled, 0, 255).astype(np.uint8)
        p = self.p999[view]
        if p <= 0:
            return np.full(a.shape, 255, dtype=np.uint8)
        # The operations of core.imaging.display.grey_level_1, with the canonical view's
        # percentile instead of the window's, so a window or zoom keeps the display.
        a = np.clip(a / p, 0.0, 1.0) * 255.0
        return (255.0 - np.floor(a + 0.5)).astype(np.uint8)

    def hotness(self, pixels: np.ndarray) -> np.ndarray:
        a = pixels.astype(np.int16)
        return a if self.polarity == "hot-bright" else 255 - a


def _draw_style(rng: np.random.Generator, views: Mapping[str, np.ndarray]) -> _Style:
    polarity = "hot-dark" if rng.random() < HOT_DARK_FRACTION else "hot-bright"
    top = int(rng.integers(TOP_RANGE[0], TOP_RANGE[1] + 1))
    peak = max(float(np.max(views["ANT"])), float(np.max(views["POST"])))
    p999 = {
        v: float(np.percentile(views[v].astype(np.float64), GREY_LEVEL_1_PERCENTILE))
        for v in ("ANT", "POST")
    }
    return _Style(polarity, top, peak, p999)


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _render(
    views: Mapping[str, np.ndarray], view: str, window: Box, size: tuple[int, int], style: _Style
) -> np.ndarray:
    r0, r1, c0, c1 = window
    return style.pixels(resize_bilinear(views[view][r0:r1, c0:c1], size), view)


# --- body extents ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Body:
    mask: np.ndarray
    extent: Box  # half-open rows and columns of the body; the full grid when none

    def row(self, fraction: float) -> float:
        return self.extent[0] + fraction * (self.extent[1] - self.extent[0])

    def centre_col(self, row: float, half: int = 24) -> float:
        lo, hi = max(0, int(row) - half), min(ROWS, int(row) + half)
        cols = np.flatnonzero(self.mask[lo:hi].any(axis=0))
        if cols.size == 0:
            return (self.extent[2] + self.extent[3]) / 2
        return float(cols.mean())


def _body(counts: np.ndarray) -> _Body:
    smooth = ndimage.gaussian_filter(np.asarray(counts, np.float64), BODY_SMOOTH_SIGMA)
    level = float(np.percentile(smooth, BODY_PERCENTILE))
    mask = smooth > BODY_FRACTION * level if level > 0 else np.zeros(smooth.shape, bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return _Body(mask, (0, ROWS, 0, COLS))
    return _Body(mask, (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1))


# --- text ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=256)
def _ink(text: str, size: int, bold: bool, antialias: bool) -> np.ndarray:
    """Return the glyph coverage (0-255) of ``text``, cropped to its ink (read-only)."""
    font = _font(size)
    stroke = 1 if bold else 0
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    pad = 4  # textbbox can be off by a pixel at the stroke; the crop below is exact
    canvas = Image.new("L", (int(right - left) + 2 * pad, int(bottom - top) + 2 * pad), 0)
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "L" if antialias else "1"
    draw.text((pad - left, pad - top), text, fill=255, font=font, stroke_width=stroke)
    cov = np.asarray(canvas, dtype=np.uint8)
    rows, cols = np.flatnonzero(cov.any(axis=1)), np.flatnonzero(cov.any(axis=0))
    out = np.ascontiguousarray(cov[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    out.setflags(write=False)  # shared through the cache
    return out


def _stamp(image: np.ndarray, cov: np.ndarray, row: int, col: int, value: int) -> Box:
    h, w = cov.shape
    region = image[row : row + h, col : col + w].astype(np.int32)
    c = cov.astype(np.int32)
    image[row : row + h, col : col + w] = ((region * (255 - c) + value * c + 127) // 255).astype(
        np.uint8
    )
    return (row, row + h, col, col + w)


@dataclass(frozen=True)
class _TextStyle:
    size: int
    form: int
    corner: str  # "left" | "right": the preferred top corner of the view label
    bold: bool
    antialias: bool
    dy: int
    dx: int
    marker: bool
    marker_at_top: bool


def _draw_text_style(rng: np.random.Generator) -> _TextStyle:
    return _TextStyle(
        size=int(rng.integers(LABEL_SIZE_RANGE[0], LABEL_SIZE_RANGE[1] + 1)),
        form=int(rng.integers(0, 3)),
        corner="left" if rng.random() < 0.5 else "right",
        bold=bool(rng.random() < 0.5),
        antialias=bool(rng.random() < 0.6),
        dy=int(rng.integers(LABEL_OFFSET_RANGE[0], LABEL_OFFSET_RANGE[1] + 1)),
        dx=int(rng.integers(LABEL_OFFSET_RANGE[0], LABEL_OFFSET_RANGE[1] + 1)),
        marker=bool(rng.random() < 0.5),
        marker_at_top=bool(rng.random() < 0.5),
    )


class _Occupancy:
    """Where a label may go in one panel: not on the body, nor on another label."""

    def __init__(self, hot: np.ndarray) -> None:
        self.busy = hot.copy()

    def clear_at(self, h: int, w: int) -> np.ndarray:
        """Return ``ok[r, c]``: a label of ``h x w`` at ``(r, c)`` fits and is clear."""
        ph, pw = self.busy.shape
        if h > ph or w > pw:
            return np.zeros((0, 0), bool)
        p = LABEL_CLEARANCE
        padded = np.pad(self.busy, p).astype(np.int32)
        sat = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1), np.int32)
        sat[1:, 1:] = padded.cumsum(axis=0).cumsum(axis=1)
        hh, ww = h + 2 * p, w + 2 * p
        n_r, n_c = ph - h + 1, pw - w + 1
        sums = sat[hh : hh + n_r, ww : ww + n_c] - sat[:n_r, ww : ww + n_c]
        sums = sums - sat[hh : hh + n_r, :n_c] + sat[:n_r, :n_c]
        ok: np.ndarray = sums == 0
        return ok

    def take(self, box: Box) -> None:
        p = LABEL_CLEARANCE
        r0, r1, c0, c1 = box
        self.busy[max(0, r0 - p) : r1 + p, max(0, c0 - p) : c1 + p] = True


def _first_free(ok: np.ndarray, candidates: Iterable[tuple[int, int]]) -> tuple[int, int] | None:
    for r, c in candidates:
        if 0 <= r < ok.shape[0] and 0 <= c < ok.shape[1] and ok[r, c]:
            return r, c
    return None


def _corners(ph: int, pw: int, h: int, w: int, ts: _TextStyle) -> list[tuple[int, int]]:
    left, right = ts.dx, pw - ts.dx - w
    top, bottom = ts.dy, ph - ts.dy - h
    cols = (left, right) if ts.corner == "left" else (right, left)
    return [(top, cols[0]), (top, cols[1]), (bottom, cols[0]), (bottom, cols[1])]


def _place_view_label(
    occ: _Occupancy, text: str, ts: _TextStyle, *, corners_only: bool = False
) -> tuple[np.ndarray, int, int] | None:
    ph, pw = occ.busy.shape
    sizes = [ts.size] if corners_only else list(range(ts.size, MIN_LABEL_SIZE - 1, -2))
    for size in sizes:
        cov = _ink(text, size, ts.bold, ts.antialias)
        h, w = cov.shape
        ok = occ.clear_at(h, w)
        if ok.size:
            spot = _first_free(ok, _corners(ph, pw, h, w, ts))
            if spot is not None:
                return cov, spot[0], spot[1]
    if corners_only:
        return None
    # Nothing clear at a corner even at the smallest size: any clear place, top first.
    cov = _ink(text, sizes[-1], ts.bold, ts.antialias)
    ok = occ.clear_at(*cov.shape)
    hits = np.argwhere(ok) if ok.size else np.zeros((0, 2), int)
    if hits.size == 0:
        return None
    return cov, int(hits[0][0]), int(hits[0][1])


def _place_marker(
    occ: _Occupancy, view: str, shoulder_row: float, ts: _TextStyle
) -> tuple[np.ndarray, int, int] | None:
    ph, pw = occ.busy.shape
    cov = _ink("R", ts.size, ts.bold, ts.antialias)
    h, w = cov.shape
    ok = occ.clear_at(h, w)
    if not ok.size:
        return None
    # Patient's right: image left in an anterior view, image right in a posterior one.
    col = ts.dx if view == "ANT" else pw - ts.dx - w
    shoulder = _round(shoulder_row - h / 2)
    first, second = (ts.dy, shoulder) if ts.marker_at_top else (shoulder, ts.dy)
    lowest = min(ph - h, shoulder + ph // 10)
    rest = sorted(range(ts.dy, lowest + 1), key=lambda r: (abs(r - first), r))
    return _as_placed(
        cov, _first_free(ok, [(first, col), (second, col), *((r, col) for r in rest)])
    )


def _as_placed(cov: np.ndarray, spot: tuple[int, int] | None) -> tuple[np.ndarray, int, int] | None:
    return None if spot is None else (cov, spot[0], spot[1])


# --- assembling ------------------------------------------------------------------------


@dataclass
class _Panel:
    kind: str
    view: str | None
    box: Box
    window: Box | None
    labels: list[TextTruth] = field(default_factory=list)

    def frozen(self) -> PanelTruth:
        return PanelTruth(self.kind, self.view, self.box, self.window, tuple(self.labels))


def _put(image: np.ndarray, pixels: np.ndarray, row: int, col: int) -> Box:
    h, w = pixels.shape
    image[row : row + h, col : col + w] = pixels
    return (row, row + h, col, col + w)


def _frame(image: np.ndarray, box: Box, width: int, value: int) -> None:
    r0, r1, c0, c1 = box
    image[r0 - width : r0, c0 - width : c1 + width] = value
    image[r1 : r1 + width, c0 - width : c1 + width] = value
    image[r0:r1, c0 - width : c0] = value
    image[r0:r1, c1 : c1 + width] = value


def _label_whole_body(
    image: np.ndarray,
    panel: _Panel,
    body: _Body,
    style: _Style,
    ts: _TextStyle,
    *,
    marker: bool,
) -> None:
    """Burn a view label (and the ``"R"`` marker) into a drawn whole-body panel."""
    assert panel.view is not None and panel.window is not None
    r0, r1, c0, c1 = panel.box
    occ = _Occupancy(_hot_mask(image[r0:r1, c0:c1], style))
    placed = _place_view_label(occ, VIEW_LABELS[panel.view][ts.form], ts)
    if placed is not None:
        _burn(image, panel, occ, VIEW_LABELS[panel.view][ts.form], placed, style)
    if marker:
        w0, w1 = panel.window[0], panel.window[1]
        shoulder = (body.row(_SHOULDER) - w0) * (r1 - r0) / (w1 - w0)
        spot = _place_marker(occ, panel.view, shoulder, ts)
        if spot is not None:
            _burn(image, panel, occ, "R", spot, style)


def _hot_mask(pixels: np.ndarray, style: _Style) -> np.ndarray:
    hot = style.hotness(pixels)
    mask: np.ndarray = hot > LABEL_CLEAR_FRACTION * float(hot.max())
    return mask


def _burn(
    image: np.ndarray,
    panel: _Panel,
    occ: _Occupancy,
    text: str,
    placed: tuple[np.ndarray, int, int],
    style: _Style,
) -> Box:
    cov, r, c = placed
    occ.take((r, r + cov.shape[0], c, c + cov.shape[1]))
    box = _stamp(image, cov, panel.box[0] + r, panel.box[2] + c, style.hot)
    panel.labels.append((text, box))
    return box


def _pair(
    views: Mapping[str, np.ndarray], layout: str, style: _Style, rng: np.random.Generator
) -> ExportedLayout:
    ts = _draw_text_style(rng)
    scale = float(rng.uniform(*SCALE_RANGE))
    coin = bool(rng.random() < 0.5)
    labelled = layout in ("pair-labelled", "pair-reversed") or (
        coin and layout in ("pair-bordered", "pair-tight")
    )
    bodies = {v: _body(views[v]) for v in ("ANT", "POST")}
    window: Box = (0, ROWS, 0, COLS)
    if layout == "pair-tight":
        (a0, a1, a2, a3), (b0, b1, b2, b3) = bodies["ANT"].extent, bodies["POST"].extent
        top, bottom = (int(x) for x in rng.integers(0, 7, size=2))
        left, right = (int(x) for x in rng.integers(4, 21, size=2))
        window = (
            max(0, min(a0, b0) - top),
            min(ROWS, max(a1, b1) + bottom),
            max(0, min(a2, b2) - left),
            min(COLS, max(a3, b3) + right),
        )
    border, gap, margin, border_grey = 0, 0, 0, 0
    if layout == "pair-bordered":
        border = int(rng.integers(1, 4))
        gap = int(rng.integers(0, 13))
        margin = int(rng.integers(0, 11))
        grey = int(rng.integers(80, 201))
        border_grey = grey if style.polarity == "hot-bright" else 255 - grey
    ph = _round(scale * (window[1] - window[0]))
    pw = _round(scale * (window[3] - window[2]))
    height = 2 * margin + 2 * border + ph
    width = 2 * margin + 4 * border + 2 * pw + gap
    image = np.full((height, width), style.background, dtype=np.uint8)
    order = ("POST", "ANT") if layout == "pair-reversed" else ("ANT", "POST")
    panels: list[_Panel] = []
    for i, view in enumerate(order):
        row = margin + border
        col = margin + border + i * (pw + 2 * border + gap)
        box = _put(image, _render(views, view, window, (ph, pw), style), row, col)
        if border:
            _frame(image, box, border, border_grey)
        panels.append(_Panel("whole_body", view, box, window))
    if labelled:
        for p in panels:
            assert p.view is not None
            _label_whole_body(image, p, bodies[p.view], style, ts, marker=ts.marker)
    return ExportedLayout(image, layout, style.polarity, tuple(p.frozen() for p in panels))


def _header_text(rng: np.random.Generator) -> str:
    name = _FIRST_NAMES[int(rng.integers(0, len(_FIRST_NAMES)))]
    pid = int(rng.integers(0, 1_000_000))
    year, month, day = (
        int(rng.integers(2020, 2031)),
        int(rng.integers(1, 13)),
        int(rng.integers(1, 29)),
    )
    hospital = _HOSPITALS[int(rng.integers(0, len(_HOSPITALS)))]
    return f"PHANTOM^{name}  ID PH-{pid:06d}  {year}-{month:02d}-{day:02d}  {hospital}"


def _spot_window(body: _Body, region: str, rows: int, cols: int) -> Box:
    cy = body.row(_SPOT_REGIONS[region])
    cx = body.centre_col(cy)
    r0 = min(max(0, _round(cy - rows / 2)), ROWS - rows)
    c0 = min(max(0, _round(cx - cols / 2)), COLS - cols)
    return (r0, r0 + rows, c0, c0 + cols)


def _screen(
    views: Mapping[str, np.ndarray], style: _Style, rng: np.random.Generator
) -> ExportedLayout:
    # Every draw first, in a fixed order, so the geometry below cannot shift them.
    ts = _draw_text_style(rng)
    scale = float(rng.uniform(*SCALE_RANGE))
    height = _round(SCREEN_SIZE[0] * rng.uniform(1 - SCREEN_JITTER, 1 + SCREEN_JITTER))
    width = _round(SCREEN_SIZE[1] * rng.uniform(1 - SCREEN_JITTER, 1 + SCREEN_JITTER))
    bright = style.polarity == "hot-bright"
    ui = int(rng.integers(30, 91)) if bright else int(rng.integers(165, 226))
    shade = int(rng.integers(12, 31))
    bar = ui + shade if bright else ui - shade
    header_h = int(rng.integers(28, 41))
    margin = int(rng.integers(8, 25))
    gap_wb = int(rng.integers(4, 17))
    gap_block = int(rng.integers(12, 41))
    gap_spot = int(rng.integers(6, 17))
    border = int(rng.choice([0, 1, 2]))
    # Borders stay far from the UI grey (below 91 or above 164), so they read as lines.
    grey = int(rng.integers(120, 201))
    border_grey = grey if bright else 255 - grey
    wb_left = bool(rng.random() < 0.5)
    order = ("ANT", "POST") if rng.random() < 0.5 else ("POST", "ANT")
    n_spots = int(rng.integers(2, 4))
    spot_w = int(rng.integers(250, 331))
    spot_h = _round(spot_w * rng.uniform(0.9, 1.1))
    spot_cols = (1, 2, n_spots)[int(rng.integers(0, 3))]
    regions = [list(_SPOT_REGIONS)[int(i)] for i in rng.permutation(3)[:n_spots]]
    spot_views = [("ANT", "POST")[int(i)] for i in rng.integers(0, 2, size=n_spots)]
    zooms = [float(z) for z in rng.uniform(1.3, 2.0, size=n_spots)]
    lateral = [SPOT_LABELS[int(i)] for i in rng.integers(0, 2, size=n_spots)]
    header = _header_text(rng)
    header_size = int(rng.integers(14, max(15, min(24, header_h - 10)) + 1))
    status = f"Tc-99m MDP  {int(rng.integers(8, 21))} cm/min  Matrix {COLS}x{ROWS}"
    tool_w = int(rng.integers(110, 171))
    button_h = int(rng.integers(24, 35))
    tools = [_TOOLS[int(i)] for i in rng.permutation(len(_TOOLS))[: int(rng.integers(4, 9))]]

    image = np.full((height, width), ui, dtype=np.uint8)
    image[:header_h] = bar
    top = header_h + margin + border
    avail = height - top - margin - border
    scale = min(scale, avail / ROWS)
    ph, pw = _round(scale * ROWS), _round(scale * COLS)
    wb_width = 2 * (pw + 2 * border) + gap_wb
    spot_room = width - 2 * margin - wb_width - gap_block
    n_cols, spot_w, spot_h = _spot_grid(
        n_spots, (spot_w, spot_h), (spot_room, avail + 2 * border), gap_spot, border, spot_cols
    )
    spot_block = n_cols * (spot_w + 2 * border) + (n_cols - 1) * gap_spot
    wb_x = margin if wb_left else width - margin - wb_width
    spot_x = wb_x + wb_width + gap_block if wb_left else wb_x - gap_block - spot_block

    head = _Panel("header", None, (0, header_h, 0, width), None)
    hdr_cov = _fit_ink(header, header_size, width - 2 * margin, ts)
    hdr_row = max(0, (header_h - hdr_cov.shape[0]) // 2)
    head.labels.append((header, _stamp(image, hdr_cov, hdr_row, margin, style.hot)))
    outside: list[TextTruth] = [head.labels[0]]

    bodies = {v: _body(views[v]) for v in ("ANT", "POST")}
    full: Box = (0, ROWS, 0, COLS)
    wb: list[_Panel] = []
    for i, view in enumerate(order):
        col = wb_x + border + i * (pw + 2 * border + gap_wb)
        box = _put(image, _render(views, view, full, (ph, pw), style), top, col)
        if border:
            _frame(image, box, border, border_grey)
        wb.append(_Panel("whole_body", view, box, full))
    for p in wb:
        assert p.view is not None
        _label_whole_body(image, p, bodies[p.view], style, ts, marker=ts.marker)

    spots: list[_Panel] = []
    for k, (region, view, zoom) in enumerate(zip(regions, spot_views, zooms, strict=True)):
        rows = min(ROWS, _round(spot_h / zoom))
        cols = min(COLS, _round(spot_w / zoom))
        r0, r1, c0, c1 = _spot_window(bodies[view], region, rows, cols)
        pixels = style.pixels(resize_bilinear(views[view][r0:r1, c0:c1], (spot_h, spot_w)), view)
        row = top + (k // n_cols) * (spot_h + 2 * border + gap_spot)
        col = spot_x + border + (k % n_cols) * (spot_w + 2 * border + gap_spot)
        box = _put(image, pixels, row, col)
        if border:
            _frame(image, box, border, border_grey)
        panel = _Panel("spot", None, box, None)
        text = "PELVIS" if region == "pelvis" else lateral[k]
        occ = _Occupancy(_hot_mask(pixels, style))
        # A zoomed spot may be body in every corner; its label then goes top-left over
        # it, as workstations do (only whole-body labels promise to miss the body).
        cov = _ink(text, ts.size, ts.bold, ts.antialias)
        placed = _place_view_label(occ, text, ts, corners_only=True) or (cov, ts.dy, ts.dx)
        outside.append((text, _burn(image, panel, occ, text, placed, style)))
        spots.append(panel)

    # UI furniture in the free area: only where it stays clear of every panel.
    framed = [_grow(p.box, border + LABEL_CLEARANCE) for p in [*wb, *spots]]

    def clear(box: Box) -> bool:
        inside = box[0] >= header_h and box[1] <= height and box[2] >= 0 and box[3] <= width
        return inside and not any(_overlap(box, b) for b in framed)

    status_cov = _ink(status, max(MIN_LABEL_SIZE, ts.size - 4), False, ts.antialias)
    s_h, s_w = status_cov.shape
    s_row = height - margin - s_h
    s_col = spot_x if wb_left else spot_x + spot_block - s_w
    if clear((s_row, s_row + s_h, s_col, s_col + s_w)):
        outside.append((status, _stamp(image, status_cov, s_row, s_col, style.hot)))
    tool_x = width - margin - tool_w if wb_left else margin
    for j, tool in enumerate(tools):
        b_row = top + j * (button_h + 6)
        button = (b_row, b_row + button_h, tool_x, tool_x + tool_w)
        if not clear(_grow(button, LABEL_CLEARANCE)):
            break
        image[button[0] : button[1], button[2] : button[3]] = bar
        t_cov = _fit_ink(tool, min(16, button_h - 8), tool_w - 12, ts)
        t_row = b_row + (button_h - t_cov.shape[0]) // 2
        outside.append((tool, _stamp(image, t_cov, t_row, tool_x + 6, style.hot)))

    ordered = sorted([*wb, *spots], key=lambda p: (p.box[2], p.box[0]))
    return ExportedLayout(
        image,
        "screen",
        style.polarity,
        tuple(p.frozen() for p in [head, *ordered]),
        tuple(outside),
    )


def _spot_grid(
    n: int,
    size: tuple[int, int],
    room: tuple[int, int],
    gap: int,
    border: int,
    prefer: int,
) -> tuple[int, int, int]:
    """Return (columns, width, height) of the spot grid, shrinking spots until it fits."""
    w, h = size
    choices = [prefer, *(c for c in range(n, 0, -1) if c != prefer)]
    while True:
        for n_cols in choices:
            n_rows = -(-n // n_cols)
            fits_w = n_cols * (w + 2 * border) + (n_cols - 1) * gap <= room[0]
            fits_h = n_rows * (h + 2 * border) + (n_rows - 1) * gap <= room[1]
            if fits_w and fits_h:
                return n_cols, w, h
        if w <= 40 or h <= 40:  # pragma: no cover - the screen sizes leave far more room
            raise ValueError(f"the screen has no room for {n} spot views")
        w, h = w - 10, h - 10


def _fit_ink(text: str, size: int, max_width: int, ts: _TextStyle) -> np.ndarray:
    cov = _ink(text, size, ts.bold, ts.antialias)
    while cov.shape[1] > max_width and size > MIN_LABEL_SIZE:
        size -= 1
        cov = _ink(text, size, ts.bold, ts.antialias)
    return cov[:, :max_width]


def _grow(box: Box, by: int) -> Box:
    return (box[0] - by, box[1] + by, box[2] - by, box[3] + by)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


# --- public API ------------------------------------------------------------------------


def _check_views(views: Mapping[str, np.ndarray]) -> None:
    if not isinstance(views, Mapping):
        raise ValueError(f"views must be a mapping of view name to counts, got {type(views)}")
    for view in ("ANT", "POST"):
        if view not in views:
            raise ValueError(f"views must hold 'ANT' and 'POST', missing {view!r}")
        a = np.asarray(views[view])
        if a.shape != (ROWS, COLS) or not np.issubdtype(a.dtype, np.number):
            raise ValueError(
                f"views[{view!r}] must be real ({ROWS}, {COLS}) counts, got {a.dtype} {a.shape}"
            )
        if not np.isfinite(a).all() or float(a.min()) < 0:
            raise ValueError(f"views[{view!r}] must hold finite counts >= 0")


def render_layout(views: Mapping[str, np.ndarray], layout: str, seed: int) -> ExportedLayout:
    """Draw a case's views as a workstation export in one layout, with its truth.

    Args:
        views: ``"ANT"`` and ``"POST"`` canonical views, real (1024, 256) counts >= 0,
            hot = high (other keys are ignored).
        layout: One of :data:`LAYOUTS` (see the module docstring).
        seed: Integer >= 0; every random choice is drawn from
            ``numpy.random.default_rng(seed)``.

    Returns:
        The picture and its truth; the same arguments give the same bytes.

    Raises:
        ValueError: If ``layout`` is unknown, ``seed`` is not an integer >= 0, or
            ``views`` lacks ANT or POST or holds a view of the wrong shape or with
            negative or non-finite counts.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    _check_views(views)
    rng = np.random.default_rng(int(seed))
    style = _draw_style(rng, views)
    if layout == "screen":
        return _screen(views, style, rng)
    return _pair(views, layout, style, rng)


def save_layout(
    path: str | Path, exported: ExportedLayout, jpeg_quality: int | None = None
) -> Path:
    """Write an exported picture, and its truth as JSON beside it.

    Args:
        path: The picture's path. Its suffix must be ``.png`` for PNG, ``.jpg`` or
            ``.jpeg`` for JPEG, or absent (then added). Folders are created.
        exported: The picture and truth from :func:`render_layout`.
        jpeg_quality: None for PNG (lossless), else the JPEG quality, 60 to 95.

    Returns:
        The picture's path. The truth is at the same path with suffix ``.json``:
        :meth:`ExportedLayout.truth` plus ``"file"``: ``{"name", "format",
        "jpeg_quality"}``.

    Raises:
        ValueError: If ``jpeg_quality`` is outside 60..95 or not an integer, or the
            suffix of ``path`` does not match the format.
    """
    if jpeg_quality is not None and (
        isinstance(jpeg_quality, bool)
        or not isinstance(jpeg_quality, int | np.integer)
        or not 60 <= jpeg_quality <= 95
    ):
        raise ValueError(f"jpeg_quality must be None or an integer in 60..95, got {jpeg_quality!r}")
    fmt = "png" if jpeg_quality is None else "jpeg"
    out = Path(path)
    allowed = (".png",) if fmt == "png" else (".jpg", ".jpeg")
    if not out.suffix:
        out = out.with_suffix(allowed[0])
    elif out.suffix.lower() not in allowed:
        raise ValueError(
            f"path must end in {' or '.join(allowed)} for {fmt.upper()}, got {out.name!r}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(np.ascontiguousarray(exported.image, dtype=np.uint8))
    if fmt == "png":
        picture.save(out, format="PNG")
    else:
        picture.save(out, format="JPEG", quality=int(jpeg_quality or 0), optimize=False)
    truth = exported.truth()
    truth["file"] = {"name": out.name, "format": fmt, "jpeg_quality": jpeg_quality}
    out.with_suffix(".json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return out
