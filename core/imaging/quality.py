"""The quality gate: is a scan a diagnostic whole-body bone scan at all?

:func:`assess` looks at every view of a :class:`~core.scan.Scan` with a few simple,
explainable image measures and returns a :class:`QualityVerdict`: ``ok`` or the first
problem found, as a short sentence a physician understands, with the numbers that led
to it. A scan that fails is still shown, but no burden is reported as reliable for it.

Checks, in order (the first that fires decides; both views are checked):

``no_body``
    The view is flat (uniform), or nothing stands above the background: fewer than
    :data:`MIN_SIGNAL_PIXELS` pixels of the smoothed view rise above it.
``too_few_counts``
    Only where pixel values are counts (DICOM and phantom scans, ``meta.bit_depth is
    None``): total counts in a view under :data:`MIN_TOTAL_COUNTS`. Exported 8/16-bit
    images are windowed, so their sum says nothing about counts; they rely on the
    structure checks below instead.
``noise_only``
    Smoothing (Gaussian, sigma :data:`SMOOTH_SIGMA_PX` px) keeps the structure of a real
    image and removes most of the variance of noise: ``structure = var(smoothed) /
    var(view)``. Pure noise keeps only a few percent (about ``1 / (4 pi sigma^2)`` for
    white noise; more for JPEG-correlated noise), a body far more. Fires under
    :data:`MIN_STRUCTURE`.
``not_whole_body``
    No body-like shape: the signal (smoothed view above :data:`MASK_FRACTION` of its
    99.5th percentile; its largest connected part and the sizeable parts beside it, see
    below) must be taller than wide
    (``height / width >= MIN_ASPECT``), reach :data:`MIN_HEIGHT_FRACTION` of the field
    height (a small child fills about a third), and be roughly left-right symmetric
    (correlation of the smoothed body with its mirror image about its centre of mass,
    ``>= MIN_SYMMETRY``). Only the largest connected part counts, so isolated hot spots
    in a noise field are not a body. A body that fills the field is judged by the next
    check instead.
``spot_view``
    The view shows only part of the body: the body reaches both the top and the bottom
    edge (within :data:`EDGE_ROWS` rows), or covers more than :data:`MAX_FILL_FRACTION`
    of the field, and it is not a whole body, i.e. not upright with a head at its top
    and feet at its bottom (a tall patient or a tight crop fills the field and is still
    a whole-body view).
``body_cut_off``
    Head or feet missing. Where the body reaches an edge of the field (within
    :data:`EDGE_ROWS` rows), what lies at the edge decides, from the body's width
    profile (mask widths per row, smoothed): a head is narrow (at most
    :data:`HEAD_MAX_WIDTH_RATIO` of the widest row), one run of body
    (:data:`HEAD_MAX_RUNS`), with the shoulders :data:`MIN_HEAD_SPAN` to
    :data:`MAX_HEAD_SPAN` of the body's height below the edge; feet are narrow (at most
    :data:`FEET_MAX_WIDTH_RATIO`) with the hips at least :data:`MIN_LEGS_SPAN` above
    it. A cut through the chest or the thighs is wide, or has the shoulders (hips) at the
    edge. Where the body ends inside the field, the end must not start abruptly: the row
    sums of its first (last) :data:`END_ROWS` rows must stay under
    :data:`MAX_END_LEVEL` of a typical body row, as a thin skull top and small feet do
    (rows blanked in the file start at full trunk width).
``saturated``
    A flat plateau at the ceiling (``2**bit_depth - 1`` for exports, the view's own
    maximum for counts) of at least :data:`MAX_PLATEAU_PX` connected pixels, or
    wrap-around: at least :data:`MAX_WRAP_PX` pixels near zero (<= :data:`WRAP_LOW` of
    the ceiling) inside a hot region (the 5 x 5 median around them >=
    :data:`WRAP_HOT` of the ceiling), which a blurred gamma-camera image never shows.
    Small hot spots at the ceiling (growth plates, an injection site) pass. So does a
    saturated **bladder** (one compact region on the mid-line well below the
    shoulders, :data:`BLADDER_MAX_SIDE`): a physician reads that scan, and BSTBI
    leaves the bladder out; the verdict carries a caution saying so.

Before the shape and saturation measures, what an export burns into the picture is
set aside: panel borders (lines within :data:`BORDER_PX` of an edge that are nearly
constant above the background) are set to the background, and separate parts of the
signal that are not body (labels such as "R", "ANT" in the corners: small, or off to
the side of the largest part) count neither as body, nor in the row profile, nor as
saturation.

**Low counts** (a caution, never a refusal). Where pixel values are counts, a view with
fewer total counts than :data:`core.burden.repeatability.LOW_COUNTS_PER_VIEW` passes
with a caution: below that level the repeatability of BSTBI, BSI and the hotspot count
worsens steeply (measured on phantom re-acquisitions, docs/benchmarks.md), so a change
between two studies smaller than the least significant change cannot be told from
noise.

All checks apply to every ``source_format``; only ``too_few_counts`` and the low-count
caution depend on it.
Thresholds were calibrated on generated phantom scans (all pass) and on real 8-bit
exports (noise-only acquisitions, a non-whole-body image and wrapped bladders fail; a
young child with open growth plates passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from core.burden.repeatability import LOW_COUNTS_PER_VIEW, least_significant_change
from core.config import COLS, ROWS, VIEWS
from core.imaging.boxes import bounding_box
from core.imaging.regions import BodyBox, skeletal_region
from core.scan import Scan

#: Gaussian smoothing used for every shape measure, pixels of the 1024 x 256 grid.
SMOOTH_SIGMA_PX = 4.0
#: Fewest pixels of the smoothed view above background for a body to be present.
MIN_SIGNAL_PIXELS = 500
#: Fewest total counts in one view of a count image (DICOM, phantom).
MIN_TOTAL_COUNTS = 200_000.0
#: Smallest share of a view's variance kept by smoothing (view clipped at its 99th
#: percentile) for it to be more than noise.
MIN_STRUCTURE = 0.3
#: Percentile at which a view is clipped before measuring structure, so that a few
#: compact hot spots do not pass for a body.
STRUCTURE_CLIP_PERCENTILE = 99.0
#: Noise whose unclipped structure is at least this multiple of the clipped one holds
#: compact hot spots: not a whole-body scan rather than only noise.
HOT_SPOT_STRUCTURE_RATIO = 2.0
#: Body mask: smoothed view above this fraction of its 99.5th percentile.
MASK_FRACTION = 0.08
#: Smallest body height / widest row width.
MIN_ASPECT = 1.6
#: Smallest body height as a fraction of the field height.
MIN_HEIGHT_FRACTION = 0.2
#: Smallest left-right mirror correlation of the smoothed body.
MIN_SYMMETRY = 0.5
#: Largest fraction of the field a whole-body view's body may cover.
MAX_FILL_FRACTION = 0.5
#: Rows at each end of the body whose mean row sum measures a straight cut.
END_ROWS = 3
#: A body end whose row sum is at least this fraction of a typical body row is cut off
#: (whole bodies: <= 0.15 on phantoms, <= 0.18 on real exports; cuts: >= 0.19).
MAX_END_LEVEL = 0.185
#: The typical body row: mean row sum of this many fullest rows.
TYPICAL_ROWS = 400
#: Rows at the top and bottom of the field where the body reaches the edge.
EDGE_ROWS = 3
#: Smallest connected part of the signal, pixels, counted as body (not a speck).
MIN_PART_PX = 200
#: Smallest part, as a fraction of the largest, counted as body (faint legs apart from
#: the trunk are; burned-in labels, a few hundred pixels, are not).
MIN_PART_FRACTION = 0.05
#: A part of the signal other than the largest, lying wholly within this many rows of
#: the top or bottom edge ...
LABEL_CORNER_ROWS = 100
#: ... and this many columns of the left or right edge, is a burned-in label ("R",
#: "ANT"), as is one whose centre column lies outside the largest part's columns.
LABEL_CORNER_COLS = 64
#: Lines (rows, columns) this close to each edge of the view are checked for a border.
BORDER_PX = 4
#: A border line lies within this fraction of its height above the background ...
BORDER_TOLERANCE = 0.25
#: ... over at least this fraction of its length (a head crossing it does not).
BORDER_LINE_FRACTION = 0.7
#: A border line's median differs, by at least this fraction of its height above the
#: background, from the median of the line this many pixels further in (a body filling
#: the field continues inwards; a border does not).
BORDER_CONTRAST = 0.5
#: See :data:`BORDER_CONTRAST`.
BORDER_INNER_PX = 8
#: Rows (Gaussian sigma) over which the body's row widths are smoothed.
WIDTH_SMOOTH_ROWS = 4.0
#: Rows at each end of the body over which its width there is averaged.
END_WIDTH_ROWS = 10
#: A row at least this fraction of the widest row is trunk (shoulders, hips, hands).
TRUNK_WIDTH_RATIO = 0.6
#: A head at the top is at most this fraction of the widest row (real exports and
#: phantoms: 0.25-0.45; a cut through the chest: 0.7-1).
HEAD_MAX_WIDTH_RATIO = 0.65
#: Head and neck: at least this fraction of the body's height from its top to the first
#: trunk row (whole bodies 0.13-0.2, a skull top cut 0.1; a cut at the neck about 0.03).
MIN_HEAD_SPAN = 0.07
#: ... and at most this fraction (a lumbar spine above the pelvis, in a spot view,
#: is longer; whole bodies at most 0.23, 0.3 for the legs cut at the knees).
MAX_HEAD_SPAN = 0.3
#: A head is one run of body across its rows (a cut trunk with the forearms beside it,
#: or the lumbar spine of a pelvis spot view between them, is three).
HEAD_MAX_RUNS = 1
#: Feet at the bottom are at most this fraction of the widest row (0.1-0.4; a cut
#: through the thighs with the hands beside them: 0.6-1).
FEET_MAX_WIDTH_RATIO = 0.5
#: Legs: at least this fraction of the body's height from its last trunk row (hips,
#: hands) to its bottom (whole bodies 0.35-0.5; a cut through the thighs under 0.2).
MIN_LEGS_SPAN = 0.25
#: Largest connected plateau at the ceiling, pixels, before the view is saturated.
MAX_PLATEAU_PX = 150
#: Plateau: values at or above this fraction of the ceiling (JPEG blurs flat tops).
PLATEAU_LEVEL = 0.98
#: Most wrapped-around pixels tolerated.
MAX_WRAP_PX = 30
#: Wrap-around: a pixel at or under this fraction of the ceiling ...
WRAP_LOW = 0.2
#: ... next to (3 x 3) a pixel at or above this fraction of the ceiling ...
WRAP_HOT = 0.8
#: ... inside a hot region: 7 x 7 mean at or above this fraction of the ceiling.
WRAP_REGION = 0.3

#: Plateaus at the ceiling of at least this many pixels are judged by where they lie
#: (smaller ones, clipped hot spots, pass anyway).
BLADDER_MIN_PLATEAU_PX = 50
#: A saturated bladder: one region at most this many pixels on each side ...
BLADDER_MAX_SIDE = 70
#: ... centred at most this many pixels from the body's mid-line ...
BLADDER_MAX_OFFSET = 30
#: ... and lower than the shoulders by at least this many head lengths. Such a scan
#: passes with a caution (BSTBI leaves the bladder out).
BLADDER_MIN_DROP = 1.2

#: Saturated or wrapped pixels outside a bladder, as a share of the body's pixels, above
#: which a view is refused: most of the hot skeleton is flat (a display clipped at its
#: 95th percentile: 0.16). Under it, each saturated site is named in a caution (an
#: injection site, a clipped hot joint, a display clipped low over pelvis and spine:
#: 0.06-0.10), so that a physician reads the rest of the scan knowing where it is blind.
MAX_SATURATED_SHARE = 0.15
#: Saturated sites named in the cautions of one view, largest first.
MAX_SATURATED_SITES = 3
#: Saturated parts closer than this many pixels are one site (wrapped rings and their
#: plateau, a hot joint's two clipped halves).
SITE_JOIN_PX = 6

#: A body that ends above the feet (at the field's edge or abruptly inside it) is a
#: whole-body scan that stops at the thighs or lower legs, passed with a caution, when
#: the legs there are narrow (:data:`FEET_MAX_WIDTH_RATIO`) and its head and neck are
#: at most this fraction of what is in the field: the vertex-to-shoulder span is about
#: 0.18 of a body's height, so the field then holds at least 0.6 of it, the whole pelvis
#: and the hips (phantom bodies cut at 0.6 / 0.55 / 0.5 of their height: 0.29-0.31 /
#: 0.32-0.34 / 0.35-0.37). A cut through the pelvis, or with the hands at the edge, is
#: still refused.
MAX_SHORT_HEAD_SPAN = 0.3

#: Rows at the top and bottom of the view searched for burned-in text touching or near
#: the body (a label beside the head, "ANT." above it).
TEXT_BAND_ROWS = 160
#: Most rows a burned-in word spans on the 1024-row grid (a head spans 60 or more).
TEXT_MAX_ROWS = 40
#: Text is drawn at the picture's hot extreme: its part's maximum is at least this
#: fraction of the view's maximum ...
TEXT_MIN_PEAK = 0.9
#: ... and it is flat: the 25th percentile of its strokes (pixels above half its
#: maximum) is at least this fraction of its maximum (a foot, a skull or a hot spot
#: rises and falls).
TEXT_FLATNESS = 0.8
#: Strokes fill at most this share of their word's box (a clipped spot fills it).
TEXT_MAX_FILL = 0.6
#: Gaussian sigma (pixels) of the fine mask that keeps a label apart from a head.
TEXT_SIGMA_PX = 1.0
#: Rows of the top of the body in which a part must continue downward to count as a
#: run of the body there (a head continues into the neck, a burned-in word does not).
TOP_RUN_DEPTH = 45

#: Edge bands: a band or line of constant value along a side of the view (a panel
#: border cut with a margin, a dark band along one side of a white display) starts
#: within this many pixels of the edge ...
BAND_SEARCH_PX = 16
#: ... and is at most this many pixels thick.
BAND_MAX_PX = 32
#: A band line stands above the background by at least this fraction of the view's
#: range (a border or band is drawn in a visible grey, not faint noise).
BAND_MIN_HEIGHT = 0.1

#: Codes a verdict can carry, in the order they are checked.
CODES: tuple[str, ...] = (
    "ok",
    "no_body",
    "too_few_counts",
    "noise_only",
    "not_whole_body",
    "spot_view",
    "body_cut_off",
    "saturated",
)

# Pixels touching by an edge or a corner are one part.
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class QualityVerdict:
    """Whether a scan is a diagnostic whole-body bone scan, and why not.

    Attributes:
        ok: True when every check passed.
        reason: ``"ok"`` or one short sentence a physician understands, naming the view.
        code: ``"ok"`` or one of :data:`CODES`.
        measures: The numbers behind the verdict, keyed ``"<VIEW>.<measure>"``
            (e.g. ``"ANT.structure"``); floats.
        cautions: Remarks on a scan that passed, one sentence each (a saturated
            bladder, a view with low counts); empty when there is nothing to say.
    """

    ok: bool
    reason: str
    code: str
    measures: dict[str, float] = field(default_factory=dict)
    cautions: tuple[str, ...] = ()


def _ceiling(a_max: float, bit_depth: int | None) -> float:
    # Exports clip or wrap at their format's top value; counts have no fixed ceiling.
    if bit_depth is not None:
        return float(2**bit_depth - 1)
    return a_max


def _largest_component_size(mask: np.ndarray) -> int:
    """Pixels of the largest 8-connected part of ``mask`` (0 when empty)."""
    box = bounding_box(mask)
    if box is None:
        return 0
    labels, n = ndimage.label(mask[box], structure=_EIGHT)
    if n == 0:
        return 0
    return int(np.bincount(labels.ravel())[1:].max())


def _symmetry(s: np.ndarray, body: np.ndarray) -> float:
    """Correlation of the smoothed body with its mirror about its centre of mass column."""
    cols = np.nonzero(body.any(axis=0))[0]
    sb = s * body
    weights = sb.sum(axis=0)
    centre = float((np.arange(s.shape[1]) * weights).sum() / max(weights.sum(), 1e-12))
    half = int(max(centre - cols[0], cols[-1] - centre)) + 1
    c = round(centre)
    rows = body.any(axis=1)
    # The 2 * half + 1 columns centred on column c, zeros beyond the field's sides (the
    # same values as slicing the body padded with zeros, without padding the whole view).
    win = np.zeros((int(rows.sum()), 2 * half + 1))
    lo, hi = max(c - half, 0), min(c + half + 1, s.shape[1])
    win[:, lo - (c - half) : hi - (c - half)] = sb[rows, lo:hi]
    x = win.ravel()
    y = win[:, ::-1].ravel()
    if x.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _wrap_mask(a: np.ndarray, ceiling: float) -> np.ndarray:
    """Wrapped-around pixels of an export: near zero, next to a hot pixel, in a hot region."""
    hot = a >= WRAP_HOT * ceiling
    box = bounding_box(hot, margin=1)
    if box is None:
        return np.zeros(a.shape, dtype=bool)
    # maximum_filter(a, size=3) >= t is "a 3 x 3 neighbour (inside the field) is >= t":
    # the reflected border repeats pixels of the window itself. Only pixels within one
    # of a hot pixel can have one, so the hot pixels' box with a margin of 1 suffices.
    hot_next = np.zeros(a.shape, dtype=bool)
    hot_next[box] = ndimage.binary_dilation(hot[box], structure=_EIGHT)
    candidates = hot_next & (a <= WRAP_LOW * ceiling)
    if not candidates.any():
        return candidates
    hot_region = ndimage.uniform_filter(a, size=7) >= WRAP_REGION * ceiling
    return candidates & hot_region


def _large_parts(mask: np.ndarray, min_px: int) -> np.ndarray:
    """The 8-connected parts of ``mask`` of at least ``min_px`` pixels."""
    box = bounding_box(mask)
    out = np.zeros(mask.shape, dtype=bool)
    if box is None:
        return out
    labels, n = ndimage.label(mask[box], structure=_EIGHT)
    keep = np.bincount(labels.ravel(), minlength=n + 1) >= min_px
    keep[0] = False
    out[box] = keep[labels]
    return out


def _in_bladder_place(saturated: np.ndarray, top: int, shoulders: int, centre: float) -> float:
    """1.0 when the saturated pixels form one compact region where a bladder lies.

    That is: within :data:`BLADDER_MAX_SIDE` pixels on each side, centred within
    :data:`BLADDER_MAX_OFFSET` pixels of the body's mid-line, and lower than the
    shoulders by at least :data:`BLADDER_MIN_DROP` head lengths (a bladder sits in the
    low pelvis; the body's own lower end is not used, because the legs are often too
    faint to be found beside a saturated bladder).
    """
    rows, cols = np.nonzero(saturated)
    if rows.size == 0:
        return 0.0
    compact = (rows.max() - rows.min() < BLADDER_MAX_SIDE) and (
        cols.max() - cols.min() < BLADDER_MAX_SIDE
    )
    centred = abs(float(cols.mean()) - centre) <= BLADDER_MAX_OFFSET
    low = float(rows.mean()) >= shoulders + BLADDER_MIN_DROP * max(shoulders - top, 1)
    return float(compact and centred and low)


def _saturated_sites(
    saturated: np.ndarray, top: int, height: int, shoulders: int, centre: float, body_px: int
) -> dict[str, float]:
    """Sort a view's saturated regions into a bladder and other sites.

    Parts within :data:`SITE_JOIN_PX` of each other are one site. A site where a bladder
    lies (:func:`_in_bladder_place`) is the bladder; every other site is measured, so
    that a caution can name where it is.

    Args:
        saturated: Saturated and wrapped pixels, bool (rows, columns), not empty.
        top: The body's first row.
        height: The body's height, rows.
        shoulders: The row of the shoulders.
        centre: The column of the body's mid-line.
        body_px: Pixels of the body.

    Returns:
        ``saturated_in_bladder`` (1 when a site is the bladder), ``saturated_share``
        (pixels of the other sites / ``body_px``), ``saturated_sites`` (how many other
        sites), and for the largest :data:`MAX_SATURATED_SITES` of them ``site{k}_px``,
        ``site{k}_row`` (rows below the body's top / its height) and ``site{k}_offset``
        (columns from the mid-line / the body's height; negative: the viewer's left).
        Sites under :data:`MAX_WRAP_PX` pixels count in the share but are not named.
    """
    box = bounding_box(saturated, margin=SITE_JOIN_PX)
    assert box is not None
    joined = ndimage.binary_dilation(
        saturated[box], structure=_EIGHT, iterations=max(SITE_JOIN_PX // 2, 1)
    )
    sites, n = ndimage.label(joined, structure=_EIGHT)
    sites = np.where(saturated[box], sites, 0)
    origin = (box[0].start, box[1].start)
    bladder = False
    others: list[tuple[int, float, float]] = []
    for index, sl in enumerate(ndimage.find_objects(sites, max_label=n), start=1):
        if sl is None:
            continue
        part = np.zeros(saturated.shape, dtype=bool)
        part[box][sl] = sites[sl] == index
        if _in_bladder_place(part, top, shoulders, centre):
            bladder = True
            continue
        rows, cols = np.nonzero(sites[sl] == index)
        others.append(
            (
                int(rows.size),
                float(rows.mean()) + sl[0].start + origin[0],
                float(cols.mean()) + sl[1].start + origin[1],
            )
        )
    others.sort(reverse=True)
    # Scattered wrapped pixels are counted in the share but named only as a site of
    # some size.
    named = [o for o in others if o[0] >= MAX_WRAP_PX]
    m = {
        "saturated_in_bladder": float(bladder),
        "saturated_share": sum(o[0] for o in others) / max(body_px, 1),
        "saturated_sites": float(len(named)),
    }
    for k, (px, row, col) in enumerate(named[:MAX_SATURATED_SITES]):
        m[f"site{k}_px"] = float(px)
        m[f"site{k}_row"] = (row - top) / max(height, 1)
        m[f"site{k}_offset"] = (col - centre) / max(height, 1)
    return m


def _clear_borders(a: np.ndarray, background: float) -> np.ndarray:
    """Return ``a`` with the panel-border lines along its edges set to ``background``.

    A border line is a row (column) within :data:`BORDER_PX` of an edge whose values lie
    within :data:`BORDER_TOLERANCE` of its median's height above the background over
    :data:`BORDER_LINE_FRACTION` of its length, while the line :data:`BORDER_INNER_PX`
    further in is near the background. A head or feet crossing the line, or a body
    filling the field, do not make it one.

    Args:
        a: One view, float64 (rows, columns).
        background: The view's background level.

    Returns:
        ``a`` itself when no line is a border, otherwise a copy with the borders cleared.
    """
    out = a
    for axis in (0, 1):
        size = a.shape[axis]
        for i in (*range(BORDER_PX), *range(size - BORDER_PX, size)):
            inner = i + BORDER_INNER_PX if i < BORDER_PX else i - BORDER_INNER_PX
            line = a[i] if axis == 0 else a[:, i]
            level = float(np.median(line))
            height = level - background
            if height <= 0:
                continue
            if np.mean(np.abs(line - level) <= BORDER_TOLERANCE * height) < BORDER_LINE_FRACTION:
                continue
            inner_line = a[inner] if axis == 0 else a[:, inner]
            if level - float(np.median(inner_line)) < BORDER_CONTRAST * height:
                continue
            if out is a:
                out = a.copy()
            if axis == 0:
                out[i] = background
            else:
                out[:, i] = background
    return out


def _band_level(line: np.ndarray, background: float, min_height: float) -> float | None:
    """The level of a flat line standing at least ``min_height`` above the background."""
    level = float(np.median(line))
    height = level - background
    if height < min_height:
        return None
    if np.mean(np.abs(line - level) <= BORDER_TOLERANCE * height) < BORDER_LINE_FRACTION:
        return None
    return level


def _clear_edge_bands(a: np.ndarray, background: float) -> np.ndarray:
    """Return ``a`` with bands of constant value along its sides set to ``background``.

    A band is one or more adjacent flat lines (as :func:`_clear_borders` judges a line)
    starting within :data:`BAND_SEARCH_PX` of an edge, at most :data:`BAND_MAX_PX`
    thick, standing :data:`BAND_MIN_HEIGHT` of the view's range above the background,
    with the line just inside it :data:`BORDER_CONTRAST` of its height lower: a panel
    border cut with a margin, or the dark band along one side of a white display (which
    reads as a hot wall). A head or feet crossing the edge, and a body filling the
    field, leave no flat line there.

    Args:
        a: One view, float64 (rows, columns).
        background: The view's background level.

    Returns:
        ``a`` itself when there is no band, otherwise a copy with the bands cleared.
    """
    span = float(a.max()) - background
    if span <= 0:
        return a
    min_height = BAND_MIN_HEIGHT * span
    out = a
    for axis in (0, 1):
        size = a.shape[axis]
        for from_end in (False, True):

            def at(i: int, axis: int = axis, size: int = size, from_end: bool = from_end) -> int:
                return size - 1 - i if from_end else i

            def line(i: int, axis: int = axis) -> np.ndarray:
                return a[at(i)] if axis == 0 else a[:, at(i)]

            start = next(
                (
                    i
                    for i in range(BAND_SEARCH_PX)
                    if _band_level(line(i), background, min_height) is not None
                ),
                None,
            )
            if start is None:
                continue
            levels: list[float] = []
            i = start
            while i < min(start + BAND_MAX_PX, size // 2):
                level = _band_level(line(i), background, min_height)
                if level is None:
                    break
                levels.append(level)
                i += 1
            if i >= min(start + BAND_MAX_PX, size // 2):
                continue  # flat as far as we look: a body filling the field, not a band
            low = min(levels)
            inner = float(np.median(line(min(i + 2, size // 2))))
            if low - inner < BORDER_CONTRAST * (low - background):
                continue
            if out is a:
                out = a.copy()
            lines = [at(k) for k in range(start, i)]
            if axis == 0:
                out[lines] = background
            else:
                out[:, lines] = background
    return out


def _clear_text(a: np.ndarray, background: float) -> np.ndarray:
    """Return ``a`` with burned-in words near the top and bottom set to ``background``.

    A word is a part of the finely smoothed signal (:data:`TEXT_SIGMA_PX`) lying wholly
    within :data:`TEXT_BAND_ROWS` of the top or bottom, at most :data:`TEXT_MAX_ROWS`
    tall, drawn at the picture's hot extreme (:data:`TEXT_MIN_PEAK`) and flat
    (:data:`TEXT_FLATNESS`). Such a label beside or above a head would otherwise make
    the head look wide, or the body start abruptly; a head is taller, a foot or a hot
    spot is not flat.

    Args:
        a: One view, float64 (rows, columns).
        background: The view's background level.

    Returns:
        ``a`` itself when no word is found, otherwise a copy with the words cleared
        (each grown by 2 pixels, for anti-aliased edges).
    """
    peak = float(a.max())
    if peak <= background:
        return a
    hi = float(np.percentile(a, 99.5)) - background
    if hi <= 0:
        return a
    out = a
    rows = a.shape[0]
    band_rows = min(TEXT_BAND_ROWS, rows // 2)
    # Only the two bands are smoothed (with a margin so their inner edge is smoothed
    # as in the whole view): the rest of the view holds no label to look for.
    reach = int(4 * TEXT_SIGMA_PX) + 1
    for start in (0, rows - band_rows):
        lo, up = max(start - reach, 0), min(start + band_rows + reach, rows)
        fine = ndimage.gaussian_filter(a[lo:up], TEXT_SIGMA_PX) - background
        band = fine[start - lo : start - lo + band_rows] > MASK_FRACTION * hi
        labels, n = ndimage.label(band, structure=_EIGHT)
        if n == 0:
            continue
        values = a[start : start + band_rows]
        # the parts reaching the picture's hot extreme (few: labels, a hot spot)
        hot = np.unique(labels[(values >= TEXT_MIN_PEAK * peak) & (labels > 0)])
        for index in hot:
            found = ndimage.find_objects((labels == index).astype(np.int32))[0]
            if found is None:
                continue
            r0, r1 = found[0].start, found[0].stop
            inner_edge = r1 >= band_rows if start == 0 else r0 == 0
            if r1 - r0 > TEXT_MAX_ROWS or inner_edge:
                continue
            part = labels[found] == index
            ink = values[found][part]
            # the strokes themselves (the fine mask adds a blurred halo around them)
            strokes = ink[ink >= 0.5 * float(ink.max())]
            if np.percentile(strokes, 25) < TEXT_FLATNESS * float(ink.max()):
                continue
            if strokes.size > TEXT_MAX_FILL * part.size:
                continue  # a solid block at the ceiling is a clipped spot, not strokes
            if out is a:
                out = a.copy()
            word = np.zeros(band.shape, dtype=bool)
            word[found] = part
            word = ndimage.binary_dilation(word, structure=_EIGHT, iterations=2)
            out[start : start + band_rows][word] = background
    return out


def _body_parts(labels: np.ndarray, n_parts: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort the signal's parts (labels of the whole view, 0 = background) into body and labels.

    The largest part is body. A burned-in label is another part lying wholly in a corner
    (:data:`LABEL_CORNER_ROWS`, :data:`LABEL_CORNER_COLS`) or with its centre column
    outside the largest part's columns. Any other part is body when it is sizeable
    (:data:`MIN_PART_PX`, :data:`MIN_PART_FRACTION` of the largest): faint legs apart
    from the trunk are, specks are not (they stay in the row profile, labels do not).

    Args:
        labels: Labelled parts, 1..``n_parts``, shape (rows, columns) of the view.
        n_parts: Number of parts (>= 1).

    Returns:
        ``(body, label)``: bool per label value (index 0, the background, False).
    """
    sizes = np.bincount(labels.ravel(), minlength=n_parts + 1)
    sizes[0] = 0
    main = int(sizes.argmax())
    cols = np.broadcast_to(np.arange(labels.shape[1], dtype=np.float64), labels.shape)
    centre = np.bincount(labels.ravel(), weights=cols.ravel(), minlength=n_parts + 1) / (
        np.maximum(sizes, 1)
    )
    main_cols = np.nonzero((labels == main).any(axis=0))[0]
    label = (centre < main_cols[0]) | (centre > main_cols[-1])
    # Each part's bounding box, all parts in one pass (noise fields have thousands).
    r0 = np.zeros(n_parts + 1)
    r1, c0, c1 = r0.copy(), r0.copy(), r0.copy()
    for i, box in enumerate(ndimage.find_objects(labels, max_label=n_parts), start=1):
        if box is not None:
            r0[i], r1[i] = box[0].start, box[0].stop - 1
            c0[i], c1[i] = box[1].start, box[1].stop - 1
    n_rows, n_cols = labels.shape
    in_rows = (r1 < LABEL_CORNER_ROWS) | (r0 >= n_rows - LABEL_CORNER_ROWS)
    in_cols = (c1 < LABEL_CORNER_COLS) | (c0 >= n_cols - LABEL_CORNER_COLS)
    label |= in_rows & in_cols
    label[main] = label[0] = False
    body = (sizes >= max(MIN_PART_PX, MIN_PART_FRACTION * sizes[main])) & ~label
    body[main] = True
    body[0] = False
    return body, label


def _end_shapes(body: np.ndarray) -> dict[str, float]:
    """Width measures of the body's two ends, from its smoothed row widths.

    Args:
        body: Body mask (rows, columns), not empty.

    Returns:
        ``top_width``, ``bottom_width``: mean width of the first (last)
        :data:`END_WIDTH_ROWS` rows of the body / the widest row; ``head_span``,
        ``legs_span``: rows from the body's top to its first trunk row (from its last
        trunk row to its bottom) / the body's height, a trunk row being at least
        :data:`TRUNK_WIDTH_RATIO` of the widest; ``top_runs``, ``bottom_runs``: median
        number of separate runs of body across the rows of each end.
    """
    rows = np.nonzero(body.any(axis=1))[0]
    top = int(rows[0])
    # At the top only parts that continue downward are body there: a head runs into the
    # neck, a burned-in word beside it (joined to the body by smoothing elsewhere) ends.
    band = body[top : top + TOP_RUN_DEPTH]
    band_labels, n_band = ndimage.label(band, structure=_EIGHT)
    if n_band > 1:
        deep = [
            i
            for i, sl in enumerate(ndimage.find_objects(band_labels), start=1)
            if sl is not None and sl[0].stop >= band.shape[0]
        ]
        if deep:
            body = body.copy()
            body[top : top + TOP_RUN_DEPTH] = np.isin(band_labels, deep)
    # "nearest": a body running off the field keeps its width beyond the edge.
    w = ndimage.gaussian_filter1d(
        body.sum(axis=1).astype(np.float64), WIDTH_SMOOTH_ROWS, mode="nearest"
    )
    rows = np.nonzero(body.any(axis=1))[0]
    top, bottom = int(rows[0]), int(rows[-1])
    height = bottom - top + 1
    widest = max(float(w.max()), 1e-12)
    trunk = np.nonzero(w[top : bottom + 1] >= TRUNK_WIDTH_RATIO * widest)[0] + top
    # Separate runs of body per row: a head is one, feet two; a cut trunk with the
    # forearms beside it three or more.
    runs = np.count_nonzero(body[:, 1:] & ~body[:, :-1], axis=1) + body[:, 0]
    return {
        "top_runs": float(np.median(runs[top : top + END_WIDTH_ROWS])),
        "bottom_runs": float(np.median(runs[max(bottom - END_WIDTH_ROWS + 1, 0) : bottom + 1])),
        "top_width": float(w[top : top + END_WIDTH_ROWS].mean()) / widest,
        "bottom_width": float(w[max(bottom - END_WIDTH_ROWS + 1, 0) : bottom + 1].mean()) / widest,
        "head_span": float(trunk[0] - top) / height,
        "legs_span": float(bottom - trunk[-1]) / height,
    }


def measure_view(a: np.ndarray, bit_depth: int | None) -> dict[str, float]:
    """Compute the quality measures of one view.

    Args:
        a: One view, float32 (1024, 256), counts >= 0, hot = high.
        bit_depth: Bits per sample of an exported image, None for counts.

    Returns:
        Measures: ``total`` (sum), ``flat`` (1 when max == min), ``signal_px``,
        ``structure`` (view clipped at its 99th percentile), ``structure_raw``,
        ``height_frac``, ``aspect``, ``symmetry``, ``fill_frac``, ``top_end``,
        ``bottom_end`` (row sum at each end of the body / a typical body row),
        ``top_edge_frac``, ``bottom_edge_frac`` (of the columns), ``top_at_edge``,
        ``bottom_at_edge`` (1 when the body reaches that edge), ``top_width``,
        ``bottom_width``, ``head_span``, ``legs_span``, ``top_runs``, ``bottom_runs``
        (see :func:`_end_shapes`),
        ``border_lines`` (rows and columns cleared as panel borders), ``plateau_px``,
        ``wrap_px`` (0 for count images), ``saturated_in_bladder`` (1 when the
        saturated and wrapped pixels are where a bladder lies). Shape measures are 0
        when there is no signal. Everything but ``total`` and ``flat`` is measured with
        the borders cleared; the shape, row-profile and saturation measures see only
        the body's parts.

    Raises:
        ValueError: If ``a`` is not a finite 2-D array of shape (1024, 256).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (ROWS, COLS) or not np.isfinite(a).all():
        raise ValueError(f"a must be a finite array of shape ({ROWS}, {COLS}), got {a.shape}")
    a_max = float(a.max())
    m: dict[str, float] = {"total": float(a.sum()), "flat": float(a_max == a.min())}
    background = float(np.median(a))
    cleared = _clear_borders(_clear_edge_bands(a, background), background)
    m["border_lines"] = float(
        (cleared != a).all(axis=1).sum() + (cleared != a).all(axis=0).sum()
        if cleared is not a
        else 0
    )
    unworded = _clear_text(cleared, background)
    m["text_px"] = float((unworded != cleared).sum()) if unworded is not cleared else 0.0
    a = unworded
    s = ndimage.gaussian_filter(a, SMOOTH_SIGMA_PX, mode="constant", cval=background)
    s_rel = s - background
    hi = float(np.percentile(s_rel, 99.5))
    body_all = s_rel > MASK_FRACTION * hi if hi > 0 else np.zeros(a.shape, dtype=bool)
    m["signal_px"] = float(body_all.sum())
    var_a = float(a.var())
    m["structure_raw"] = float(s.var() / var_a) if var_a > 0 else 0.0
    clipped = np.minimum(a, float(np.percentile(a, STRUCTURE_CLIP_PERCENTILE)))
    s_clip = ndimage.gaussian_filter(clipped, SMOOTH_SIGMA_PX, mode="constant", cval=background)
    var_c = float(clipped.var())
    m["structure"] = float(s_clip.var() / var_c) if var_c > 0 else 0.0

    zero_shape = dict.fromkeys(
        (
            "height_frac",
            "aspect",
            "symmetry",
            "fill_frac",
            "top_end",
            "bottom_end",
            "top_edge_frac",
            "bottom_edge_frac",
            "top_at_edge",
            "bottom_at_edge",
            "top_width",
            "bottom_width",
            "head_span",
            "legs_span",
            "top_runs",
            "bottom_runs",
        ),
        0.0,
    )
    m.update(zero_shape)
    box = bounding_box(body_all) if m["signal_px"] > 0 else None
    # The view the row profile and saturation see: burned-in labels set to the
    # background, so that a label is never an end of the body nor a saturated region.
    a_body = a
    if box is not None:
        # Corners are judged in the whole view's coordinates.
        labels, n_parts = ndimage.label(body_all, structure=_EIGHT)
        is_body, is_label = _body_parts(labels, n_parts)
        body_parts = is_body[labels]
        burned_in = is_label[labels]
        if burned_in.any():
            a_body = a.copy()
            a_body[burned_in] = background
        body = ndimage.binary_fill_holes(body_parts)
        widths = body.sum(axis=1)
        rows = np.nonzero(widths)[0]
        top, bottom = int(rows[0]), int(rows[-1])
        height = bottom - top + 1
        # A skull and feet start thin; a cut (rows blanked) starts at full trunk width.
        prof = a_body - background
        np.clip(prof, 0, None, out=prof)
        prof = prof.sum(axis=1)
        typical = float(np.sort(prof)[-TYPICAL_ROWS:].mean())
        ends = np.nonzero(prof > 0.05 * typical)[0] if typical > 0 else np.array([top, bottom])
        t0, b0 = int(ends[0]), int(ends[-1])
        top_end = float(prof[t0 : t0 + END_ROWS].mean()) / max(typical, 1e-12)
        bottom_end = float(prof[max(b0 - END_ROWS + 1, 0) : b0 + 1].mean()) / max(typical, 1e-12)
        m.update(
            height_frac=height / ROWS,
            aspect=height / float(widths.max()),
            symmetry=_symmetry(s_rel, body),
            fill_frac=float(body_parts.sum()) / body.size,
            top_end=top_end,
            bottom_end=bottom_end,
            top_edge_frac=float(body[:EDGE_ROWS].any(axis=0).sum()) / COLS,
            bottom_edge_frac=float(body[-EDGE_ROWS:].any(axis=0).sum()) / COLS,
            top_at_edge=float(min(top, t0) < EDGE_ROWS),
            bottom_at_edge=float(max(bottom, b0) >= ROWS - EDGE_ROWS),
            **_end_shapes(body),
        )

    ceiling = _ceiling(a_max, bit_depth)
    m["saturated_in_bladder"] = 0.0
    if ceiling > 0:
        plateau = a_body >= PLATEAU_LEVEL * ceiling
        m["plateau_px"] = float(_largest_component_size(plateau))
        # Blurred camera images never jump from near the top to near zero between
        # neighbours inside a hot region; wrapped integers do. Count images have no
        # fixed top to wrap at, and nothing is "low" there.
        wrapped = _wrap_mask(a_body, ceiling) if bit_depth is not None else None
        m["wrap_px"] = float(wrapped.sum()) if wrapped is not None else 0.0
        # small spots at the ceiling pass anyway; where the large regions lie decides
        saturated = _large_parts(plateau, BLADDER_MIN_PLATEAU_PX)
        if wrapped is not None:
            saturated |= wrapped
        m["saturated_share"] = m["saturated_sites"] = 0.0
        if box is not None and saturated.any():
            shoulders = top + round(m["head_span"] * height)
            centre = float(np.median(np.nonzero(body[shoulders : shoulders + height // 4])[1]))
            m.update(
                _saturated_sites(saturated, top, height, shoulders, centre, int(body_parts.sum()))
            )
    else:
        m["plateau_px"] = m["wrap_px"] = m["saturated_share"] = m["saturated_sites"] = 0.0
    return m


def _first_problem(view: str, m: dict[str, float], counts_known: bool) -> tuple[str, str] | None:
    """Return (code, reason) of the first check one view fails, or None."""
    name = {"ANT": "anterior", "POST": "posterior"}[view]
    if m["flat"] or m["signal_px"] < MIN_SIGNAL_PIXELS:
        return "no_body", f"The {name} view shows no body: nothing stands above the background."
    if counts_known and m["total"] < MIN_TOTAL_COUNTS:
        return (
            "too_few_counts",
            f"The {name} view has too few counts ({m['total']:,.0f}; at least "
            f"{MIN_TOTAL_COUNTS:,.0f} are needed for a diagnostic whole-body view).",
        )
    if m["structure"] < MIN_STRUCTURE:
        if m["structure_raw"] >= HOT_SPOT_STRUCTURE_RATIO * m["structure"]:
            return (
                "not_whole_body",
                f"The {name} view is not a whole-body bone scan: only noise and a few "
                "isolated hot spots, no body.",
            )
        return "noise_only", f"The {name} view holds only noise; no body is imaged."
    upright = m["aspect"] >= MIN_ASPECT and m["symmetry"] >= MIN_SYMMETRY
    head = (
        m["top_width"] <= HEAD_MAX_WIDTH_RATIO
        and MIN_HEAD_SPAN <= m["head_span"] <= MAX_HEAD_SPAN
        and m["top_runs"] <= HEAD_MAX_RUNS
    )
    feet = _feet(m)
    # Reaching both edges, even with faint thin ends (a spine, femurs), fills the field.
    fills_field = (m["top_at_edge"] and m["bottom_at_edge"]) or m["fill_frac"] > MAX_FILL_FRACTION
    if not fills_field and (not upright or m["height_frac"] < MIN_HEIGHT_FRACTION):
        return (
            "not_whole_body",
            f"The {name} view is not a whole-body bone scan: no upright, symmetric body is seen.",
        )
    # A tall patient or a tight crop fills the field too; it shows a head and feet.
    if fills_field and not (upright and head and feet):
        return (
            "spot_view",
            f"The {name} view is a spot view: it shows only part of the body.",
        )
    # Inside the field, an abrupt start is a cut (rows blanked in the file) unless it
    # is a head, whose top a tight crop shaved: that passes with a caution.
    top_cut = not head if m["top_at_edge"] else (m["top_end"] >= MAX_END_LEVEL and not head)
    if top_cut:
        return (
            "body_cut_off",
            f"The {name} view is cut off at the top: the head is not in the field.",
        )
    if _bottom_state(m, feet) == "cut":
        return (
            "body_cut_off",
            f"The {name} view is cut off at the bottom: the feet are not in the field.",
        )
    if m["saturated_share"] > MAX_SATURATED_SHARE:
        return (
            "saturated",
            f"The {name} view has saturated regions over {100 * m['saturated_share']:.0f} % "
            "of the body (counts beyond the image's range); uptake there cannot be measured.",
        )
    return None


def _feet(m: dict[str, float]) -> bool:
    """Feet at the body's bottom: narrow, with the legs long below the hips and hands."""
    return m["bottom_width"] <= FEET_MAX_WIDTH_RATIO and m["legs_span"] >= MIN_LEGS_SPAN


def _bottom_state(m: dict[str, float], feet: bool) -> str:
    """``"whole"``, ``"short"`` (stops at the lower legs: a caution) or ``"cut"``.

    At the field's edge the shape there decides (feet may touch it); inside the field,
    rows blanked in the file leave an abrupt, wide end. Either way, narrow legs with the
    pelvis in the field (:data:`MAX_SHORT_HEAD_SPAN`) are a whole-body scan that stops
    above the feet, as clinical scans often do.
    """
    ended = not feet if m["bottom_at_edge"] else m["bottom_end"] >= MAX_END_LEVEL
    if not ended:
        return "whole"
    narrow = m["bottom_width"] <= FEET_MAX_WIDTH_RATIO
    if narrow and m["head_span"] <= MAX_SHORT_HEAD_SPAN:
        return "short"
    return "cut"


def _saturated(m: dict[str, float]) -> bool:
    return m["plateau_px"] >= MAX_PLATEAU_PX or m["wrap_px"] >= MAX_WRAP_PX


def _site_name(view: str, row: float, offset: float) -> str:
    """Name where a site lies, e.g. ``"the patient's left humerus"``, ``"the skull"``."""
    region = skeletal_region(view, row, offset, BodyBox(0.0, 1.0, 0.0))
    if region in _MIDLINE_REGIONS or abs(offset) < _MIDLINE_OFFSET:
        return "the " + region.replace("_", " ")
    # Anterior: the patient faces the viewer, so the viewer's left is the patient's right.
    viewer_left = offset < 0
    side = "right" if viewer_left == (view == "ANT") else "left"
    return f"the patient's {side} {region.replace('_', ' ')}"


#: Regions without a side.
_MIDLINE_REGIONS = frozenset(
    {"skull", "cervical_spine", "thoracic_spine", "sternum", "lumbar_spine"}
)
#: A site closer than this (fraction of the body's height) to the mid-line has no side.
_MIDLINE_OFFSET = 0.015


def _cautions(view: str, m: dict[str, float], counts_known: bool = False) -> list[str]:
    """Remarks on a view that passed: low counts, saturated sites, the feet out of the field.

    Args:
        view: ``"ANT"`` or ``"POST"``.
        m: The view's measures (:func:`measure_view`).
        counts_known: Pixel values are counts (DICOM, phantom), so ``m["total"]`` is the
            view's total counts; an export's sum says nothing about counts.
    """
    name = {"ANT": "anterior", "POST": "posterior"}[view]
    out: list[str] = []
    if m["saturated_in_bladder"] and _saturated(m):
        kind = "saturated" if m["plateau_px"] >= MAX_PLATEAU_PX else "wrapped around"
        out.append(
            f"The {name} view's bladder is {kind} (counts beyond the image's range); its "
            "own uptake cannot be measured. BSTBI leaves the bladder out, so the burden "
            "holds where the bladder mask covers that region: check the overlay."
        )
    for k in range(min(int(m.get("saturated_sites", 0)), MAX_SATURATED_SITES)):
        where = _site_name(view, m[f"site{k}_row"], m[f"site{k}_offset"])
        out.append(
            f"The {name} view is saturated at {where} ({m[f'site{k}_px']:.0f} pixels; counts "
            "beyond the image's range): uptake there cannot be measured, and a lesion "
            "there may be missed or misjudged. Check it on the original."
        )
    if m["signal_px"] > 0 and not m["top_at_edge"] and m["top_end"] >= MAX_END_LEVEL:
        out.append(
            f"The {name} view starts abruptly at the head: the top of the skull may lie "
            "outside the field (a tight crop); check the vertex on the original."
        )
    if m["signal_px"] > 0 and _bottom_state(m, _feet(m)) == "short":
        out.append(
            f"The {name} view stops above the feet (the acquisition ends at the lower "
            "legs): the feet are not in the field, and nothing below the end is assessed."
        )
    # last: it concerns comparing studies, not where this one is blind
    if counts_known and m["total"] < LOW_COUNTS_PER_VIEW:
        total = max(m["total"], 1.0)
        out.append(
            f"The {name} view has {m['total'] / 1e6:.2f} million counts, below "
            f"{LOW_COUNTS_PER_VIEW / 1e6:.2f} million: a change from another study smaller "
            "than the least significant change at these counts (BSTBI "
            f"{least_significant_change('bstbi', total):.4f}, BSI "
            f"{least_significant_change('bsi', total):.2f} %, "
            f"{least_significant_change('hotspots', total):.1f} hotspots) cannot be told "
            "from noise."
        )
    return out


def assess(scan: Scan) -> QualityVerdict:
    """Decide whether ``scan`` is a diagnostic whole-body bone scan.

    Args:
        scan: The scan; each view float32 (1024, 256), counts >= 0, hot = high.

    Returns:
        The verdict: ``ok`` with code ``"ok"``, or the first failed check (views in
        :data:`core.config.VIEWS` order) with its code and reason, and the measures of
        every view checked (``"<VIEW>.<measure>"``).

    Raises:
        ValueError: If ``scan`` is not a :class:`~core.scan.Scan`.
    """
    if not isinstance(scan, Scan):
        raise ValueError(f"scan must be a core.scan.Scan, got {type(scan).__name__}")
    counts_known = scan.meta.bit_depth is None
    measures: dict[str, float] = {}
    problem: tuple[str, str] | None = None
    for view in VIEWS:
        if view not in scan.views:
            continue
        m = measure_view(scan.views[view], scan.meta.bit_depth)
        measures.update({f"{view}.{k}": v for k, v in m.items()})
        if problem is None:
            problem = _first_problem(view, m, counts_known)
    if problem is None:
        cautions = tuple(
            c
            for view in VIEWS
            if view in scan.views
            for c in _cautions(
                view,
                {k.split(".", 1)[1]: v for k, v in measures.items() if k.startswith(f"{view}.")},
                counts_known,
            )
        )
        return QualityVerdict(True, "ok", "ok", measures, cautions)
    return QualityVerdict(False, problem[1], problem[0], measures)
