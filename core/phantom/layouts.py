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

The next five reproduce real exports the reader has misread (:data:`CLASSIC_LAYOUTS`
are the six above):

* ``"screen-4x3"`` — a workstation screen of one of the real sizes
  :data:`SCREEN_4X3_SIZES` (width x height, exact). No UI grey: the picture's
  background is the panels' own (0 hot-bright, 255 hot-dark). A header 18 to 40 px
  tall (a ``"header"`` panel, the full width) holds one or two lines of synthetic
  patient text: always a name (``"DOE^JANE"`` or ``"JANE DOE"``), an ID, a date and
  with probability 0.4 a hospital; directly on the background (probability 0.5) or on
  a header bar (hot-bright 40..100, hot-dark 155..215). Below it, after a margin
  (0 to 20 px in all, top and bottom), two whole-body panels at the left (0 to 20 px
  from the edge, order seeded, 0 to 12 px apart; ANT | POST, the usual order, when
  neither a view label nor a marker names them) fill the height: ``s`` is the panel
  height over the window's rows (not drawn from :data:`SCALE_RANGE`). The window is
  full or (probability 0.4) slightly cropped (0 to 20 rows at the top, 0 to 40 at
  the bottom, 0 to 20 columns each side). View labels with probability 0.7, the
  ``"R"`` marker with probability 0.3, a 1 to 2 px grey border line around every
  panel with probability 0.4. With probability 0.25 the whole-body panels are wider
  than the body needs (height / width drawn in :data:`WIDE_RATIO_RANGE`, narrower
  where the screen needs room for the spots; full columns): ``pad`` records the
  background columns left and right of the view. To the right, 2 to 6 spot panels
  (``kind == "spot"``) in a grid of 1 to 3 columns by 1 or 2 rows, all of one size,
  square-ish zooms of the skull, chest, pelvis or knees (labels ``"SKULL ANT"``,
  ``"SKULL POST"``, ``"CHEST"``, ``"PELVIS"``, ``"KNEES"``) or, with probability 0.35,
  taller whole-body-like views (``"RLA"``, ``"LLA"``, ``"PELVIS"``, ``"SKULL ANT"``);
  every spot is less than :data:`SPOT_MAX_SHARE` of the whole-body height. Header
  lines and spot labels are all in ``texts_outside``.
* ``"pair-banded"`` — a full-window ANT | POST pair (scale, 0 to 3 px border, 0 to 12
  px gap, 0 to 10 px margin, labels with probability 0.5, as ``"pair-bordered"``),
  where the ANT panel, the POST panel or both have a flat band along one side (left,
  right or bottom), 3 to 25 px wide, right outside the panel's border (or box),
  spanning that whole side: hot-dark 0..40 (it reads as very hot), hot-bright
  150..255. Each band's box is in its panel's ``bands``.
* ``"pair-head-top"`` — an ANT | POST pair (as ``"pair"``: no gap, no margin) whose window
  starts 0 to :data:`HEAD_TOP_MAX_SHAVE` rows below the skull's top row (the first
  body row of :func:`_body`'s mask, the lower of the two views'), so the head touches
  or is shaved by the panel's top edge; it ends at the grid's foot or 0 to 60 rows
  below the feet; full columns. Each panel holds a view label, an ``"R"`` marker or
  both, at the top corners (the marker on the patient's right, the label in the other
  corner), with probability 0.6 slid along the row towards the head until 0 to 6 px
  from where the clearance rule stops it.
* ``"single-markers"`` — ONE full-window view per picture (``render_layout(...,
  view="ANT")``, the default, or ``view="POST"``; the same seed gives both files of one
  export): the picture is exactly the panel, ``ph x pw``. An ``"R"`` marker on the
  patient's right (the viewer's left in ANT, right in POST) and an ``"L"`` on the
  other side, each box within rows :data:`MARKER_ROW_RANGE` of the panel (shrunk or
  moved closer to the edge when the arm is in the way, left out only when nothing is
  clear there), and with probability 0.5 a view label at a top corner.
* ``"pair-white-clipped"`` — always hot-dark: the paper's white display clipped far
  below the 99.9th percentile. A full-window ANT | POST pair (labels with probability
  0.5) whose display level per view is a share (:data:`CLIP_BLADDER_SHARE`) of the
  bladder's smoothed peak (the hottest point near the mid-line at 0.485 of the body
  height), lowered with probability 0.3 to that share of an arm hot spot (an injection
  site's place) when one reaches :data:`ARM_SPOT_SHARE` of the bladder; so the
  bladder saturates as a large flat 0 area. With probability 0.3 values past the top
  wrap around (8-bit overflow) instead of clipping. ``clip`` and ``wrap`` are in each
  panel's truth.

:func:`cut_panels` cuts each whole-body panel of any picture out as a single-view
file, its box grown by 0 to :data:`CUT_MARGIN_MAX` px on each side (border lines,
labels and bands kept), with its truth in the cut's coordinates.

Geometry contract (a reader undoes exactly this). A whole-body panel
(``PanelTruth.kind == "whole_body"``) shows canonical rows ``window[0]:window[1]`` and
columns ``window[2]:window[3]`` of its view, scaled uniformly by one factor ``s`` to
exactly its ``box``: ``box[1] - box[0] == floor(s * (window[1] - window[0]) + 0.5)``
and ``box[3] - box[2] == floor(s * (window[3] - window[2]) + 0.5)``, drawn as
``core.reading.readers.resize_bilinear(counts[window], (ph, pw))`` mapped to 8 bits. ``box``
is the image area only, inside any border line, half-open, in picture pixels. Where a
panel is wider than its window (``pad != (0, 0)``, only ``"screen-4x3"``), the
formulas hold for :attr:`PanelTruth.image_box`, ``box`` less ``pad[0]`` columns on
the left and ``pad[1]`` on the right, which are background. All whole-body panels of
one picture share ``s`` (drawn from :data:`SCALE_RANGE`, lowered only where the
screen is too small; ``"screen-4x3"`` sets it to fill the height) and the pixel
mapping:

* ``"hot-bright"`` (about 70 % of pictures; background 0):
  ``pixel = floor(r * top / peak + 0.5)``, ``r`` the resized counts, ``peak`` the
  maximum of both canonical views together, ``top`` seeded in :data:`TOP_RANGE`.
* ``"hot-dark"`` (about 30 %; background 255): the paper's grey level 1 of each view
  (:func:`core.imaging.display.grey_level_1`), applied to the resized counts with the
  canonical view's own 99.9th percentile ``p``:
  ``pixel = 255 - floor(255 * clip(r / p, 0, 1) + 0.5)``. For ``s = 1`` and the full
  window this is ``grey_level_1(counts)`` exactly.
* ``"pair-white-clipped"`` (hot-dark, background 255): with the panel's ``clip``,
  ``value = floor(255.0 * r / (clip * p) + 0.5)`` (float64, in that order), then
  ``pixel = 255 - min(value, 255)``, or with ``wrap`` ``pixel = (255 - value) mod 256``.

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
no text outside a whole-body panel overlaps one. Bands (``PanelTruth.bands``) are
filled flat with one value each and overlap no panel box either.

All randomness comes from ``numpy.random.default_rng(seed)``: the same views, layout
and seed give a byte-identical picture.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    "screen-4x3",
    "pair-banded",
    "pair-head-top",
    "single-markers",
    "pair-white-clipped",
)
#: The first six layouts (two whole-body views each), which the reader is tested on.
CLASSIC_LAYOUTS: tuple[str, ...] = LAYOUTS[:6]
#: Layouts that draw one view per picture (:func:`render_layout`'s ``view``).
SINGLE_VIEW_LAYOUTS: tuple[str, ...] = ("single-markers",)
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
_BLADDER, _CHEST = 0.485, 0.3
#: ``"screen-4x3"`` picture sizes (width, height) of real workstation screens.
SCREEN_4X3_SIZES: tuple[tuple[int, int], ...] = (
    (1232, 906),
    (1132, 860),
    (1021, 934),
    (1021, 994),
    (1280, 968),
    (1124, 852),
)
#: Panel height / width of the ``"screen-4x3"`` whole-body panels wider than the body.
WIDE_RATIO_RANGE = (1.6, 2.2)
#: Smallest spot-view width, px, and the spot height's bound as a share of the
#: whole-body panels' height (``"screen-4x3"``: spots are always less).
SPOT_MIN = 100
SPOT_MAX_SHARE = 0.55
#: Regions the ``"screen-4x3"`` spot views show.
SPOT_REGIONS_4X3: tuple[str, ...] = ("skull", "chest", "pelvis", "knees")
_SPOT_4X3_CENTRES: dict[str, float] = {
    "skull": _SKULL,
    "chest": _CHEST,
    "pelvis": _PELVIS,
    "knees": _KNEES,
}
#: Rows between the lines of a two-line header.
HEADER_LINE_GAP = 2
#: ``"pair-banded"``: band sides, width range (px) and pixel ranges (hot-dark, hot-bright).
BAND_SIDES: tuple[str, ...] = ("left", "right", "bottom")
BAND_WIDTH_RANGE = (3, 25)
BAND_DARK_RANGE = (0, 40)
BAND_LIGHT_RANGE = (150, 255)
#: ``"pair-head-top"``: the window starts at most this many rows below the skull top.
HEAD_TOP_MAX_SHAVE = 6
#: ``"single-markers"``: the R and L markers lie within these rows (share of the panel).
MARKER_ROW_RANGE = (0.4, 0.6)
#: ``"pair-white-clipped"``: the clip level as a share of the bladder's smoothed peak;
#: an arm hot spot (more than :data:`ARM_OFFSET` body heights from the mid-line at
#: elbow height) at least :data:`ARM_SPOT_SHARE` of the bladder's peak saturates too.
CLIP_BLADDER_SHARE = (0.5, 0.8)
ARM_OFFSET = 0.075
ARM_SPOT_SHARE = 0.5
#: :func:`cut_panels` grows a panel's box by up to this many px on each side.
CUT_MARGIN_MAX = 12

_FIRST_NAMES = ("JANE", "JOHN", "ALEX", "MARY", "SAM", "ROBIN", "KIM", "LEE", "ANNA", "MAX")
_SURNAMES = ("DOE", "ROE", "POE", "SAMPLE", "TESTER", "MODEL")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
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
        pad: Whole-body panels only: ``(left, right)`` columns of background at the
            left and right of ``box`` that are not the view (a panel wider than its
            window's columns scaled, ``"screen-4x3"``); the geometry contract holds
            for the box less them. ``(0, 0)`` everywhere else.
        bands: Flat dark (hot-dark) or light (hot-bright) bands drawn along one side
            of this panel, outside ``box`` (``"pair-banded"``): their boxes, half-open,
            picture pixels.
        clip: Whole-body panels of ``"pair-white-clipped"`` only: the display clips
            (or wraps) at ``clip`` times the view's 99.9th percentile; None for the
            contract's usual mapping.
        wrap: With ``clip``: values past the top wrap around as 8-bit overflow does
            instead of clipping.
        border: Width of the border line drawn right around ``box``, px (0: none).
    """

    kind: str
    view: str | None
    box: Box
    window: Box | None
    labels: tuple[TextTruth, ...] = ()
    pad: tuple[int, int] = (0, 0)
    bands: tuple[Box, ...] = ()
    clip: float | None = None
    wrap: bool = False
    border: int = 0

    @property
    def image_box(self) -> Box:
        """The part of ``box`` that shows the window: ``box`` less ``pad``'s columns."""
        r0, r1, c0, c1 = self.box
        return (r0, r1, c0 + self.pad[0], c1 - self.pad[1])

    def truth(self) -> dict[str, Any]:
        """Return the panel as a JSON-able dict (lists for tuples)."""
        return {
            "kind": self.kind,
            "view": self.view,
            "box": list(self.box),
            "window": None if self.window is None else list(self.window),
            "labels": [{"text": t, "box": list(b)} for t, b in self.labels],
            "pad": list(self.pad),
            "bands": [list(b) for b in self.bands],
            "clip": self.clip,
            "wrap": self.wrap,
            "border": self.border,
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
        cut: For a picture cut out of another by :func:`cut_panels`: the cut's box
            ``(row0, row1, col0, col1)`` in the source picture; None otherwise.
    """

    image: np.ndarray = field(repr=False)
    layout: str
    polarity: str
    panels: tuple[PanelTruth, ...]
    texts_outside: tuple[TextTruth, ...] = ()
    cut: Box | None = None

    def truth(self) -> dict[str, Any]:
        """Return everything but the pixels as a JSON-able dict.

        Returns:
            ``{"layout", "polarity", "image_shape": [H, W], "panels": [...],
            "texts_outside": [{"text", "box"}, ...], "cut"}``; boxes and windows as
            lists, so ``json.loads(json.dumps(d)) == d``.
        """
        return {
            "layout": self.layout,
            "polarity": self.polarity,
            "image_shape": [int(self.image.shape[0]), int(self.image.shape[1])],
            "panels": [p.truth() for p in self.panels],
            "texts_outside": [{"text": t, "box": list(b)} for t, b in self.texts_outside],
            "cut": None if self.cut is None else list(self.cut),
        }


# --- pixel mapping ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    polarity: str
    top: int
    peak: float
    p999: dict[str, float]
    clip: dict[str, float] | None = None  # "pair-white-clipped": per view, hot-dark only
    wrap: bool = False

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
        if self.clip is not None:
            # The white display clipped low (the contract's pair-white-clipped formula).
            value = np.floor(255.0 * a / (self.clip[view] * p) + 0.5).astype(np.int64)
            if self.wrap:
                return np.mod(255 - value, 256).astype(np.uint8)
            return (255 - np.minimum(value, 255)).astype(np.uint8)
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
    pad: tuple[int, int] = (0, 0)
    bands: list[Box] = field(default_factory=list)
    clip: float | None = None
    wrap: bool = False
    border: int = 0

    def frozen(self) -> PanelTruth:
        return PanelTruth(
            self.kind,
            self.view,
            self.box,
            self.window,
            tuple(self.labels),
            self.pad,
            tuple(self.bands),
            self.clip,
            self.wrap,
            self.border,
        )


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
    view_label: bool = True,
) -> None:
    """Burn a view label (and the ``"R"`` marker) into a drawn whole-body panel."""
    assert panel.view is not None and panel.window is not None
    r0, r1, c0, c1 = panel.box
    occ = _Occupancy(_hot_mask(image[r0:r1, c0:c1], style))
    placed = _place_view_label(occ, VIEW_LABELS[panel.view][ts.form], ts) if view_label else None
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
        panels.append(_Panel("whole_body", view, box, window, border=border))
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
        wb.append(_Panel("whole_body", view, box, full, border=border))
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
        panel = _Panel("spot", None, box, None, border=border)
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


# --- layouts seen in real exports ------------------------------------------------------


def _band_value(rng: np.random.Generator, style: _Style) -> int:
    if style.polarity == "hot-dark":
        return int(rng.integers(BAND_DARK_RANGE[0], BAND_DARK_RANGE[1] + 1))
    return int(rng.integers(BAND_LIGHT_RANGE[0], BAND_LIGHT_RANGE[1] + 1))


def _wb_pixels(
    views: Mapping[str, np.ndarray],
    view: str,
    window: Box,
    size: tuple[int, int],
    pad: tuple[int, int],
    style: _Style,
) -> np.ndarray:
    """A whole-body panel: the window scaled to ``size``, background ``pad`` beside it."""
    pixels = _render(views, view, window, size, style)
    if pad == (0, 0):
        return pixels
    out = np.full((size[0], pad[0] + size[1] + pad[1]), style.background, dtype=np.uint8)
    out[:, pad[0] : pad[0] + size[1]] = pixels
    return out


def _patient_lines(rng: np.random.Generator) -> list[str]:
    """One or two header lines: a synthetic name (always), an ID, a date, a hospital."""
    first = _FIRST_NAMES[int(rng.integers(0, len(_FIRST_NAMES)))]
    last = _SURNAMES[int(rng.integers(0, len(_SURNAMES)))]
    name = f"{last}^{first}" if rng.random() < 0.5 else f"{first} {last}"
    pid = f"ID: {int(rng.integers(0, 10_000_000)):07d}"
    year, month, day = (
        int(rng.integers(2018, 2031)),
        int(rng.integers(1, 13)),
        int(rng.integers(1, 29)),
    )
    date = (
        f"{year}-{month:02d}-{day:02d}",
        f"{day:02d}.{month:02d}.{year}",
        f"{day:02d}-{_MONTHS[month - 1]}-{year}",
    )[int(rng.integers(0, 3))]
    hospital = _HOSPITALS[int(rng.integers(0, len(_HOSPITALS)))]
    with_hospital = bool(rng.random() < 0.4)
    two_lines = bool(rng.random() < 0.5)
    if two_lines:
        return [f"{name}   {pid}", f"{date}   {hospital}" if with_hospital else date]
    return ["   ".join([name, pid, date, *([hospital] if with_hospital else [])])]


def _fit_lines(
    lines: list[str], size: int, room: tuple[int, int], ts: _TextStyle
) -> list[np.ndarray] | None:
    """Inks of ``lines`` at the largest size <= ``size`` that fits ``room`` (h, w)."""
    for sz in range(size, MIN_LABEL_SIZE - 1, -1):
        covs = [_ink(line, sz, ts.bold, ts.antialias) for line in lines]
        tall = sum(c.shape[0] for c in covs) + HEADER_LINE_GAP * (len(covs) - 1)
        if tall <= room[0] and max(c.shape[1] for c in covs) <= room[1]:
            return covs
    return None


def _place_cov(occ: _Occupancy, cov: np.ndarray, ts: _TextStyle) -> tuple[np.ndarray, int, int]:
    """A spot label: a clear corner if any, else top-left over the picture."""
    ph, pw = occ.busy.shape
    ok = occ.clear_at(*cov.shape)
    h, w = cov.shape
    spot = _first_free(ok, _corners(ph, pw, h, w, ts)) if ok.size else None
    if spot is None:
        return cov, min(ts.dy, max(0, ph - cov.shape[0])), min(ts.dx, max(0, pw - cov.shape[1]))
    return cov, spot[0], spot[1]


def _screen_4x3(
    views: Mapping[str, np.ndarray], style: _Style, rng: np.random.Generator
) -> ExportedLayout:
    # Every draw first, in a fixed order, so the geometry below cannot shift them.
    ts = _draw_text_style(rng)
    width, height = SCREEN_4X3_SIZES[int(rng.integers(0, len(SCREEN_4X3_SIZES)))]
    bright = style.polarity == "hot-bright"
    header_h = int(rng.integers(18, 41))
    header_bar = bool(rng.random() < 0.5)
    bar = int(rng.integers(40, 101)) if bright else int(rng.integers(155, 216))
    lines = _patient_lines(rng)
    header_size = int(rng.integers(12, 23))
    header_x = int(rng.integers(4, 21))
    margin = int(rng.integers(0, 21))
    margin_top = int(rng.integers(0, margin + 1))
    margin_left = int(rng.integers(0, 21))
    margin_right = int(rng.integers(0, 21))
    border = int(rng.integers(1, 3)) if rng.random() < 0.4 else 0
    grey = int(rng.integers(80, 201))
    border_grey = grey if bright else 255 - grey
    order = ("ANT", "POST") if rng.random() < 0.5 else ("POST", "ANT")
    view_label = bool(rng.random() < 0.7)
    marker = bool(rng.random() < 0.3)
    if not (view_label or marker):
        # Without any text naming them, screens show the usual order; a reversed
        # unlabelled pair could not be read by anyone.
        order = ("ANT", "POST")
    cropped = bool(rng.random() < 0.4)
    crop = [int(x) for x in rng.integers(0, 21, size=4)]  # top, bottom, left, right
    wide = bool(rng.random() < 0.25)
    ratio = float(rng.uniform(*WIDE_RATIO_RANGE))
    pad_share = float(rng.uniform(0.3, 0.7))
    gap_wb = int(rng.integers(0, 13))
    gap_block = int(rng.integers(10, 41))
    gap_spot = int(rng.integers(4, 15))
    n_cols = int(rng.integers(1, 4))
    n_rows = int(rng.integers(1, 3))
    n_extra = int(rng.integers(0, 6))
    tall_grid = bool(rng.random() < 0.35)
    aspect = float(rng.uniform(1.4, 2.0) if tall_grid else rng.uniform(0.8, 1.25))
    regions = [SPOT_REGIONS_4X3[int(i)] for i in rng.integers(0, len(SPOT_REGIONS_4X3), size=6)]
    spot_views = [("ANT", "POST")[int(i)] for i in rng.integers(0, 2, size=6)]
    zooms = [float(z) for z in rng.uniform(1.2, 2.2, size=6)]
    tall_zooms = [float(z) for z in rng.uniform(0.55, 0.9, size=6)]
    lateral = [("RLA", "LLA")[int(i)] for i in rng.integers(0, 2, size=6)]

    image = np.full((height, width), style.background, dtype=np.uint8)
    head = _Panel("header", None, (0, header_h, 0, width), None)
    if header_bar:
        image[:header_h] = bar
    room = (header_h - 2, width - 2 * header_x)
    covs = _fit_lines(lines, header_size, room, ts)
    if covs is None:
        lines = ["   ".join(lines)]
        covs = _fit_lines(lines, header_size, room, ts)
    if covs is None:  # pragma: no cover - the smallest font fits every header drawn
        raise ValueError("the header text does not fit")
    tall = sum(c.shape[0] for c in covs) + HEADER_LINE_GAP * (len(covs) - 1)
    row = (header_h - tall) // 2
    outside: list[TextTruth] = []
    for line, cov in zip(lines, covs, strict=True):
        line_truth = (line, _stamp(image, cov, row, header_x, style.hot))
        head.labels.append(line_truth)
        outside.append(line_truth)
        row += cov.shape[0] + HEADER_LINE_GAP

    window: Box = (0, ROWS, 0, COLS)
    if cropped:
        window = (
            crop[0],
            ROWS - 2 * crop[1],
            0 if wide else crop[2],
            COLS - (0 if wide else crop[3]),
        )
    top = header_h + margin_top + border
    ph = height - top - border - (margin - margin_top)
    scale = ph / (window[1] - window[0])
    pw_img = _round(scale * (window[3] - window[2]))
    # The spots need at least one column of SPOT_MIN px to the right of the pair.
    fixed = margin_left + margin_right + gap_wb + 4 * border + gap_block + 2 * border
    pw_max = (width - fixed - SPOT_MIN) // 2
    pw = max(pw_img, min(_round(ph / ratio), pw_max)) if wide else pw_img
    if pw > pw_max:  # pragma: no cover - every listed screen holds the full-height pair
        raise ValueError("the screen is too narrow for the whole-body panels")
    pad_total = pw - pw_img
    pad = (_round(pad_total * pad_share), pad_total - _round(pad_total * pad_share))

    bodies = {v: _body(views[v]) for v in ("ANT", "POST")}
    wb: list[_Panel] = []
    for i, view in enumerate(order):
        col = margin_left + border + i * (pw + 2 * border + gap_wb)
        pixels = _wb_pixels(views, view, window, (ph, pw_img), pad, style)
        box = _put(image, pixels, top, col)
        if border:
            _frame(image, box, border, border_grey)
        wb.append(_Panel("whole_body", view, box, window, pad=pad, border=border))
    for p in wb:
        assert p.view is not None
        _label_whole_body(image, p, bodies[p.view], style, ts, marker=marker, view_label=view_label)

    spot_x = wb[-1].box[3] + border + gap_block
    room_w = width - margin_right - spot_x
    while n_cols > 1 and (room_w - (n_cols - 1) * gap_spot) // n_cols - 2 * border < SPOT_MIN:
        n_cols -= 1
    if n_cols * n_rows < 2:
        n_rows = 2
    n_spots = min(n_cols * n_rows, max(2, (n_rows - 1) * n_cols + 1) + n_extra)
    cell_w = (room_w - (n_cols - 1) * gap_spot) // n_cols - 2 * border
    cell_h = (ph + 2 * border - (n_rows - 1) * gap_spot) // n_rows - 2 * border
    max_h = min(cell_h, math.ceil(SPOT_MAX_SHARE * ph) - 1)
    spot_w, spot_h = cell_w, min(max_h, _round(cell_w * aspect))
    spot_w = min(cell_w, _round(spot_h / aspect))
    spots: list[_Panel] = []
    for k in range(n_spots):
        region, view = regions[k], spot_views[k]
        zoom = tall_zooms[k] if tall_grid else zooms[k]
        zoom = max(zoom * scale, spot_h / ROWS, spot_w / COLS)
        rows, cols = min(ROWS, _round(spot_h / zoom)), min(COLS, _round(spot_w / zoom))
        r0, r1, c0, c1 = _region_window(bodies[view], _SPOT_4X3_CENTRES[region], rows, cols)
        pixels = style.pixels(resize_bilinear(views[view][r0:r1, c0:c1], (spot_h, spot_w)), view)
        row = top + (k // n_cols) * (spot_h + 2 * border + gap_spot)
        col = spot_x + border + (k % n_cols) * (spot_w + 2 * border + gap_spot)
        box = _put(image, pixels, row, col)
        if border:
            _frame(image, box, border, border_grey)
        panel = _Panel("spot", None, box, None, border=border)
        text = _spot_label_4x3(region, view, tall_grid, lateral[k])
        occ = _Occupancy(_hot_mask(pixels, style))
        cov = _fit_ink(text, ts.size, spot_w - 2 * ts.dx, ts)
        outside.append((text, _burn(image, panel, occ, text, _place_cov(occ, cov, ts), style)))
        spots.append(panel)

    ordered = sorted([*wb, *spots], key=lambda p: (p.box[2], p.box[0]))
    return ExportedLayout(
        image,
        "screen-4x3",
        style.polarity,
        tuple(p.frozen() for p in [head, *ordered]),
        tuple(outside),
    )


def _region_window(body: _Body, fraction: float, rows: int, cols: int) -> Box:
    cy = body.row(fraction)
    cx = body.centre_col(cy)
    r0 = min(max(0, _round(cy - rows / 2)), ROWS - rows)
    c0 = min(max(0, _round(cx - cols / 2)), COLS - cols)
    return (r0, r0 + rows, c0, c0 + cols)


def _spot_label_4x3(region: str, view: str, tall: bool, lateral: str) -> str:
    if region == "skull":
        return f"SKULL {view}"
    if region == "pelvis":
        return "PELVIS"
    if tall:
        return lateral
    return "CHEST" if region == "chest" else "KNEES"


def _pair_banded(
    views: Mapping[str, np.ndarray], style: _Style, rng: np.random.Generator
) -> ExportedLayout:
    ts = _draw_text_style(rng)
    scale = float(rng.uniform(*SCALE_RANGE))
    labelled = bool(rng.random() < 0.5)
    border = int(rng.integers(0, 4))
    gap = int(rng.integers(0, 13))
    margin = int(rng.integers(0, 11))
    grey = int(rng.integers(80, 201))
    border_grey = grey if style.polarity == "hot-bright" else 255 - grey
    which = int(rng.integers(0, 3))  # 0: ANT, 1: POST, 2: both
    sides = [BAND_SIDES[int(i)] for i in rng.integers(0, len(BAND_SIDES), size=2)]
    widths = [int(w) for w in rng.integers(BAND_WIDTH_RANGE[0], BAND_WIDTH_RANGE[1] + 1, size=2)]
    values = [_band_value(rng, style), _band_value(rng, style)]
    banded = [which in (0, 2), which in (1, 2)]

    ph, pw = _round(scale * ROWS), _round(scale * COLS)

    def extra(i: int, side: str) -> int:
        return widths[i] if banded[i] and sides[i] == side else 0

    bottom = max(extra(0, "bottom"), extra(1, "bottom"))
    height = 2 * margin + 2 * border + ph + bottom
    width = 2 * margin + 4 * border + 2 * pw + gap
    width += sum(extra(i, "left") + extra(i, "right") for i in (0, 1))
    image = np.full((height, width), style.background, dtype=np.uint8)
    bodies = {v: _body(views[v]) for v in ("ANT", "POST")}
    full: Box = (0, ROWS, 0, COLS)
    panels: list[_Panel] = []
    x = margin
    for i, view in enumerate(("ANT", "POST")):
        x += extra(i, "left") + border
        box = _put(image, _render(views, view, full, (ph, pw), style), margin + border, x)
        if border:
            _frame(image, box, border, border_grey)
        panel = _Panel("whole_body", view, box, full, border=border)
        if banded[i]:
            r0, r1, c0, c1 = _grow(box, border)
            w = widths[i]
            band = {
                "left": (r0, r1, c0 - w, c0),
                "right": (r0, r1, c1, c1 + w),
                "bottom": (r1, r1 + w, c0, c1),
            }[sides[i]]
            image[band[0] : band[1], band[2] : band[3]] = values[i]
            panel.bands.append(band)
        panels.append(panel)
        x += pw + border + extra(i, "right") + gap
    if labelled:
        for p in panels:
            assert p.view is not None
            _label_whole_body(image, p, bodies[p.view], style, ts, marker=ts.marker)
    return ExportedLayout(image, "pair-banded", style.polarity, tuple(p.frozen() for p in panels))


def _hug(occ: _Occupancy, placed: tuple[np.ndarray, int, int], gap: int) -> tuple[int, int]:
    """Move a placed label along its row towards the panel's middle while it stays clear."""
    cov, r, c = placed
    ok = occ.clear_at(*cov.shape)
    mid = (ok.shape[1] - 1) / 2
    step = 1 if c < mid else -1
    while 0 <= c + step < ok.shape[1] and ok[r, c + step] and (c + step - mid) * step <= 0:
        c += step
    # back off ``gap`` px from the nearest blocked place, never past where it started
    back = min(gap, abs(c - placed[2]))
    return r, c - step * back


def _pair_head_top(
    views: Mapping[str, np.ndarray], style: _Style, rng: np.random.Generator
) -> ExportedLayout:
    ts = _draw_text_style(rng)
    scale = float(rng.uniform(*SCALE_RANGE))
    shave = int(rng.integers(0, HEAD_TOP_MAX_SHAVE + 1))
    what = int(rng.integers(0, 3))  # 0: view label, 1: "R", 2: both
    hug = bool(rng.random() < 0.6)
    hug_gap = int(rng.integers(0, 7))
    full_bottom = bool(rng.random() < 0.5)
    below = int(rng.integers(0, 61))
    bodies = {v: _body(views[v]) for v in ("ANT", "POST")}
    skull = max(bodies["ANT"].extent[0], bodies["POST"].extent[0])
    r0 = min(skull + shave, ROWS - 1)
    r1 = ROWS if full_bottom else min(ROWS, max(b.extent[1] for b in bodies.values()) + below)
    window: Box = (r0, max(r1, r0 + 1), 0, COLS)
    ph = _round(scale * (window[1] - window[0]))
    pw = _round(scale * (window[3] - window[2]))
    image = np.full((ph, 2 * pw), style.background, dtype=np.uint8)
    panels: list[_Panel] = []
    for i, view in enumerate(("ANT", "POST")):
        box = _put(image, _render(views, view, window, (ph, pw), style), 0, i * pw)
        panels.append(_Panel("whole_body", view, box, window))
    for p in panels:
        assert p.view is not None
        # the marker on the patient's right, the view label in the other top corner
        right_side = "left" if p.view == "ANT" else "right"
        corner = ts.corner if what == 0 else ("right" if right_side == "left" else "left")
        pts = replace(ts, corner=corner, marker_at_top=True)
        b0, b1, c0, c1 = p.box
        occ = _Occupancy(_hot_mask(image[b0:b1, c0:c1], style))
        text = VIEW_LABELS[p.view][ts.form]
        placed = _place_view_label(occ, text, pts) if what in (0, 2) else None
        if placed is not None:
            spot = _hug(occ, placed, hug_gap) if hug else placed[1:]
            _burn(image, p, occ, text, (placed[0], *spot), style)
        if what in (1, 2):
            shoulder = (bodies[p.view].row(_SHOULDER) - window[0]) * scale
            marked = _place_marker(occ, p.view, shoulder, pts)
            if marked is not None:
                spot = _hug(occ, marked, hug_gap) if hug else marked[1:]
                _burn(image, p, occ, "R", (marked[0], *spot), style)
    return ExportedLayout(image, "pair-head-top", style.polarity, tuple(p.frozen() for p in panels))


def _single_markers(
    views: Mapping[str, np.ndarray], style: _Style, rng: np.random.Generator, view: str
) -> ExportedLayout:
    ts = _draw_text_style(rng)
    scale = float(rng.uniform(*SCALE_RANGE))
    labelled = bool(rng.random() < 0.5)
    targets = [float(t) for t in rng.uniform(*MARKER_ROW_RANGE, size=2)]
    if rng.random() < 0.7:  # the usual: R and L at one height
        targets[1] = targets[0]
    full: Box = (0, ROWS, 0, COLS)
    ph, pw = _round(scale * ROWS), _round(scale * COLS)
    image = _render(views, view, full, (ph, pw), style).copy()
    panel = _Panel("whole_body", view, (0, ph, 0, pw), full)
    occ = _Occupancy(_hot_mask(image, style))
    if labelled:
        placed = _place_top_label(occ, VIEW_LABELS[view][ts.form], ts)
        if placed is not None:
            _burn(image, panel, occ, VIEW_LABELS[view][ts.form], placed, style)
    # Patient's right: the viewer's left in an anterior view, the right in a posterior one.
    r_left = view == "ANT"
    for text, left, target in (("R", r_left, targets[0]), ("L", not r_left, targets[1])):
        spot = _place_side_marker(occ, text, ts, left=left, target=target)
        if spot is not None:
            _burn(image, panel, occ, text, spot, style)
    return ExportedLayout(image, "single-markers", style.polarity, (panel.frozen(),))


def _place_top_label(
    occ: _Occupancy, text: str, ts: _TextStyle
) -> tuple[np.ndarray, int, int] | None:
    """A view label at a top corner, shrunk down to :data:`MIN_LABEL_SIZE` to fit."""
    ph, pw = occ.busy.shape
    for size in range(ts.size, MIN_LABEL_SIZE - 1, -2):
        cov = _ink(text, size, ts.bold, ts.antialias)
        h, w = cov.shape
        ok = occ.clear_at(h, w)
        if ok.size:
            spot = _first_free(ok, _corners(ph, pw, h, w, ts)[:2])
            if spot is not None:
                return cov, spot[0], spot[1]
    return None


def _place_side_marker(
    occ: _Occupancy, text: str, ts: _TextStyle, *, left: bool, target: float
) -> tuple[np.ndarray, int, int] | None:
    """A side marker at mid-height: its box within rows 0.4-0.6 of the panel."""
    ph, pw = occ.busy.shape
    for size in range(ts.size, MIN_LABEL_SIZE - 1, -2):
        cov = _ink(text, size, ts.bold, ts.antialias)
        h, w = cov.shape
        ok = occ.clear_at(h, w)
        if not ok.size:
            continue
        lo = math.ceil(MARKER_ROW_RANGE[0] * ph)
        hi = math.floor(MARKER_ROW_RANGE[1] * ph) - h
        want = _round(target * ph - h / 2)
        rows = sorted(range(lo, hi + 1), key=lambda r: (abs(r - want), r))
        dxs = range(ts.dx, 0, -1)  # nearer the edge when the arm is in the way
        cols = [dx if left else pw - dx - w for dx in dxs]
        spot = _first_free(ok, ((r, c) for c in cols for r in rows))
        if spot is not None:
            return cov, spot[0], spot[1]
    return None


def _bladder_level(counts: np.ndarray, body: _Body) -> float:
    """The bladder's smoothed peak: the hottest point near the mid-line at the pelvis."""
    smooth = ndimage.gaussian_filter(np.asarray(counts, np.float64), BODY_SMOOTH_SIGMA)
    h = body.extent[1] - body.extent[0]
    cy = body.row(_BLADDER)
    cx = body.centre_col(cy)
    r0, r1 = max(0, int(cy - 0.03 * h)), min(ROWS, int(cy + 0.03 * h) + 1)
    c0, c1 = max(0, int(cx - 25)), min(COLS, int(cx + 26))
    return float(smooth[r0:r1, c0:c1].max()) if r1 > r0 and c1 > c0 else float(smooth.max())


def _arm_spot_level(counts: np.ndarray, body: _Body) -> float:
    """The hottest smoothed point in an arm at elbow height (an injection site's place)."""
    smooth = ndimage.gaussian_filter(np.asarray(counts, np.float64), BODY_SMOOTH_SIGMA)
    h = body.extent[1] - body.extent[0]
    r0, r1 = int(body.row(0.25)), int(body.row(0.5))
    cx = body.centre_col(body.row(0.375))
    lateral = np.abs(np.arange(COLS) - cx) > ARM_OFFSET * h
    if r1 <= r0 or not lateral.any():
        return 0.0
    return float(smooth[r0:r1][:, lateral].max())


def _pair_white_clipped(
    views: Mapping[str, np.ndarray], style: _Style, rng: np.random.Generator
) -> ExportedLayout:
    ts = _draw_text_style(rng)
    scale = float(rng.uniform(*SCALE_RANGE))
    labelled = bool(rng.random() < 0.5)
    share = float(rng.uniform(*CLIP_BLADDER_SHARE))
    with_arm = bool(rng.random() < 0.3)
    wrap = bool(rng.random() < 0.3)
    bodies = {v: _body(views[v]) for v in ("ANT", "POST")}
    clip: dict[str, float] = {}
    for v in ("ANT", "POST"):
        p999 = style.p999[v]
        bladder = _bladder_level(views[v], bodies[v])
        level = share * bladder
        arm = _arm_spot_level(views[v], bodies[v]) if with_arm else 0.0
        if arm >= ARM_SPOT_SHARE * bladder:  # a hot spot in an arm: it saturates too
            level = min(level, share * arm)
        clip[v] = max(0.01, round(level / p999, 4)) if p999 > 0 else 1.0
    style = replace(style, polarity="hot-dark", clip=clip, wrap=wrap)
    full: Box = (0, ROWS, 0, COLS)
    ph, pw = _round(scale * ROWS), _round(scale * COLS)
    image = np.full((ph, 2 * pw), style.background, dtype=np.uint8)
    panels: list[_Panel] = []
    for i, view in enumerate(("ANT", "POST")):
        box = _put(image, _render(views, view, full, (ph, pw), style), 0, i * pw)
        panels.append(_Panel("whole_body", view, box, full, clip=clip[view], wrap=wrap))
    if labelled:
        for p in panels:
            assert p.view is not None
            _label_whole_body(image, p, bodies[p.view], style, ts, marker=ts.marker)
    return ExportedLayout(
        image, "pair-white-clipped", style.polarity, tuple(p.frozen() for p in panels)
    )


def cut_panels(exported: ExportedLayout, seed: int) -> dict[str, ExportedLayout]:
    """Cut each whole-body panel out of a picture as a single-view file, as people do.

    Each whole-body panel's box is grown by 0 to :data:`CUT_MARGIN_MAX` px on each
    side (drawn per side from ``numpy.random.default_rng(seed)``), clipped to the
    picture and stopped at any other panel's box and border line, so the cut keeps the
    panel's border line, its burned-in labels, its bands and the background around
    it, never a piece of another panel or its border.

    Args:
        exported: A picture from :func:`render_layout` (any layout).
        seed: Integer >= 0 for the margins.

    Returns:
        ``{view: cut}`` for each whole-body panel: ``cut.image`` the cut pixels,
        ``cut.panels`` the one panel in cut coordinates (box, labels and bands
        shifted; bands of any panel reaching into the cut clipped to it),
        ``cut.texts_outside`` the texts outside the panel reaching into the cut
        (clipped to it), ``cut.cut`` the cut's box in the source picture; layout and
        polarity those of the source.

    Raises:
        ValueError: If ``seed`` is not an integer >= 0.
    """
    _check_seed(seed)
    rng = np.random.default_rng(int(seed))
    height, width = exported.image.shape
    out: dict[str, ExportedLayout] = {}
    for panel in exported.panels:
        if panel.kind != "whole_body" or panel.view is None:
            continue
        top, bottom, left, right = (int(m) for m in rng.integers(0, CUT_MARGIN_MAX + 1, size=4))
        r0, r1, c0, c1 = panel.box
        cut = [
            max(0, r0 - top),
            min(height, r1 + bottom),
            max(0, c0 - left),
            min(width, c1 + right),
        ]
        for other in exported.panels:
            o = _grow(other.box, other.border)
            if other is panel or not _overlap((cut[0], cut[1], cut[2], cut[3]), o):
                continue
            if o[2] >= c1:
                cut[3] = min(cut[3], o[2])
            elif o[3] <= c0:
                cut[2] = max(cut[2], o[3])
            elif o[0] >= r1:
                cut[1] = min(cut[1], o[0])
            else:
                cut[0] = max(cut[0], o[1])
        box: Box = (cut[0], cut[1], cut[2], cut[3])

        def shift(b: Box, box: Box = box) -> Box:
            return (b[0] - box[0], b[1] - box[0], b[2] - box[2], b[3] - box[2])

        def clipped(b: Box, box: Box = box) -> Box:
            return shift(
                (max(b[0], box[0]), min(b[1], box[1]), max(b[2], box[2]), min(b[3], box[3]))
            )

        bands = [clipped(b) for p in exported.panels for b in p.bands if _overlap(b, box)]
        texts = [*exported.texts_outside]
        texts += [t for p in exported.panels if p is not panel for t in p.labels]
        outside = tuple(dict.fromkeys((t, clipped(b)) for t, b in texts if _overlap(b, box)))
        moved = replace(
            panel,
            box=shift(panel.box),
            labels=tuple((t, shift(b)) for t, b in panel.labels),
            bands=tuple(bands),
        )
        pixels = exported.image[box[0] : box[1], box[2] : box[3]].copy()
        out[panel.view] = ExportedLayout(
            pixels, exported.layout, exported.polarity, (moved,), outside, cut=box
        )
    return out


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


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def render_layout(
    views: Mapping[str, np.ndarray], layout: str, seed: int, *, view: str | None = None
) -> ExportedLayout:
    """Draw a case's views as a workstation export in one layout, with its truth.

    Args:
        views: ``"ANT"`` and ``"POST"`` canonical views, real (1024, 256) counts >= 0,
            hot = high (other keys are ignored).
        layout: One of :data:`LAYOUTS` (see the module docstring).
        seed: Integer >= 0; every random choice is drawn from
            ``numpy.random.default_rng(seed)``.
        view: For a single-view layout (:data:`SINGLE_VIEW_LAYOUTS`), the view the
            picture shows: ``"ANT"`` (the default) or ``"POST"``; the same seed gives
            both files of one export (same polarity, scale and text style). Must be
            None for the other layouts.

    Returns:
        The picture and its truth; the same arguments give the same bytes.

    Raises:
        ValueError: If ``layout`` is unknown, ``seed`` is not an integer >= 0,
            ``view`` is given for a two-view layout or is not ANT or POST, or
            ``views`` lacks ANT or POST or holds a view of the wrong shape or with
            negative or non-finite counts.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    _check_seed(seed)
    if layout in SINGLE_VIEW_LAYOUTS:
        view = "ANT" if view is None else view
        if view not in ("ANT", "POST"):
            raise ValueError(f"view must be 'ANT' or 'POST', got {view!r}")
    elif view is not None:
        raise ValueError(f"view is only for the single-view layouts {SINGLE_VIEW_LAYOUTS}")
    _check_views(views)
    rng = np.random.default_rng(int(seed))
    style = _draw_style(rng, views)
    if layout == "screen":
        return _screen(views, style, rng)
    if layout == "screen-4x3":
        return _screen_4x3(views, style, rng)
    if layout == "pair-banded":
        return _pair_banded(views, style, rng)
    if layout == "pair-head-top":
        return _pair_head_top(views, style, rng)
    if layout == "single-markers":
        assert view is not None
        return _single_markers(views, style, rng, view)
    if layout == "pair-white-clipped":
        return _pair_white_clipped(views, style, rng)
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
