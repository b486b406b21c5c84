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
    99.5th percentile, largest connected part kept) must be taller than wide
    (``height / width >= MIN_ASPECT``), reach :data:`MIN_HEIGHT_FRACTION` of the field
    height (a small child fills about a third), and be roughly left-right symmetric
    (correlation of the smoothed body with its mirror image about its centre of mass,
    ``>= MIN_SYMMETRY``). Only the largest connected part counts, so isolated hot spots
    in a noise field are not a body.
``spot_view``
    The body fills the field: it touches both the top and the bottom edge, or covers
    more than :data:`MAX_FILL_FRACTION` of the field. A
    whole-body view leaves background around the body.
``body_cut_off``
    Head or feet missing: the body touches the top or bottom edge of the field
    (:data:`EDGE_ROWS` rows, over :data:`EDGE_TOUCH_FRACTION` of the columns), or one
    end of the body starts abruptly: the row sums of its first (last)
    :data:`END_ROWS` rows reach :data:`MAX_END_LEVEL` of a typical body row, where a
    whole body starts with a thin skull top and ends in small feet (rows blanked in the
    file). Touching both edges is a spot view.
``saturated``
    A flat plateau at the ceiling (``2**bit_depth - 1`` for exports, the view's own
    maximum for counts) of at least :data:`MAX_PLATEAU_PX` connected pixels, or
    wrap-around: at least :data:`MAX_WRAP_PX` pixels near zero (<= :data:`WRAP_LOW` of
    the ceiling) inside a hot region (the 5 x 5 median around them >=
    :data:`WRAP_HOT` of the ceiling), which a blurred gamma-camera image never shows.
    Small hot spots at the ceiling (growth plates, an injection site) pass.

All checks apply to every ``source_format``; only ``too_few_counts`` depends on it.
Thresholds were calibrated on generated phantom scans (all pass) and on real 8-bit
exports (noise-only acquisitions, a non-whole-body image and wrapped bladders fail; a
young child with open growth plates passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from core.config import COLS, ROWS, VIEWS
from core.fastops import bounding_box, fill_holes, gaussian_passes, median, percentile
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
#: Rows at the top and bottom of the field where the body touches the edge.
EDGE_ROWS = 3
#: Width, as a fraction of the columns, the body must cover in those rows to touch.
EDGE_TOUCH_FRACTION = 0.05
#: Smallest connected part of the signal, pixels, counted as body (not a speck).
MIN_PART_PX = 200
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
    """

    ok: bool
    reason: str
    code: str
    measures: dict[str, float] = field(default_factory=dict)


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


def _gauss(a: np.ndarray, axis: int, cval: float) -> np.ndarray:
    return ndimage.gaussian_filter1d(a, SMOOTH_SIGMA_PX, axis=axis, mode="constant", cval=cval)


def _smooth_clipped(
    a: np.ndarray, clipped: np.ndarray, s: np.ndarray, down: np.ndarray, cval: float
) -> np.ndarray:
    """Return ``gaussian_filter`` of ``clipped`` (as for ``a``), reusing ``a``'s passes.

    ``clipped`` differs from ``a`` in a few hot pixels only. A 1-D pass computes each
    output from the kernel's radius of input around it, the same way everywhere, so
    the first pass of ``clipped`` equals ``a``'s except in the columns holding changed
    pixels, and its rows equal ``a``'s more than a radius away from every changed row;
    the second pass of such a row equals ``a``'s too. Only the other lines are filtered
    again, each with a radius of its input around it (or the view's edge, where the
    ``cval`` padding is the same), which gives the numbers filtering the whole view gives.
    """
    changed = clipped != a
    cols = np.flatnonzero(changed.any(axis=0))
    if cols.size == 0:
        return s.copy()
    # gaussian_filter1d's radius is int(4 sigma + 0.5); one more row is harmless.
    radius = int(4.0 * SMOOTH_SIGMA_PX + 0.5) + 1
    near = ndimage.binary_dilation(
        changed.any(axis=1), structure=np.ones(2 * radius + 1, dtype=bool)
    )
    rows = np.flatnonzero(near)
    # First pass of the changed columns, on the rows needed and a radius beyond them.
    r0, r1 = max(int(rows[0]) - radius, 0), min(int(rows[-1]) + radius + 1, a.shape[0])
    down_cols = _gauss(clipped[r0:r1, cols], 0, cval)
    down_rows = down[rows]
    down_rows[:, cols] = down_cols[rows - r0]
    out = s.copy()
    out[rows] = _gauss(down_rows, 1, cval)
    return out


def _wrap_px(a: np.ndarray, ceiling: float) -> float:
    """Wrapped-around pixels of an export: near zero, next to a hot pixel, in a hot region."""
    hot = a >= WRAP_HOT * ceiling
    box = bounding_box(hot, margin=1)
    if box is None:
        return 0.0
    # maximum_filter(a, size=3) >= t is "a 3 x 3 neighbour (inside the field) is >= t":
    # the reflected border repeats pixels of the window itself. Only pixels within one
    # of a hot pixel can have one, so the hot pixels' box with a margin of 1 suffices.
    hot_next = np.zeros(a.shape, dtype=bool)
    hot_next[box] = ndimage.binary_dilation(hot[box], structure=_EIGHT)
    candidates = hot_next & (a <= WRAP_LOW * ceiling)
    if not candidates.any():
        return 0.0
    hot_region = ndimage.uniform_filter(a, size=7) >= WRAP_REGION * ceiling
    return float((candidates & hot_region).sum())


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
        ``top_edge_frac``, ``bottom_edge_frac`` (of the columns), ``plateau_px``,
        ``wrap_px`` (0 for count images). Shape measures are 0 when there is no signal.

    Raises:
        ValueError: If ``a`` is not a finite 2-D array of shape (1024, 256).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (ROWS, COLS) or not np.isfinite(a).all():
        raise ValueError(f"a must be a finite array of shape ({ROWS}, {COLS}), got {a.shape}")
    a_max = float(a.max())
    m: dict[str, float] = {"total": float(a.sum()), "flat": float(a_max == a.min())}
    background = median(a)
    s, down = gaussian_passes(
        a, SMOOTH_SIGMA_PX, mode="constant", cval=background, background=background
    )
    s_rel = s - background
    hi = percentile(s_rel, 99.5)
    body_all = s_rel > MASK_FRACTION * hi if hi > 0 else np.zeros(a.shape, dtype=bool)
    m["signal_px"] = float(body_all.sum())
    var_a = float(a.var())
    m["structure_raw"] = float(s.var() / var_a) if var_a > 0 else 0.0
    clipped = np.minimum(a, percentile(a, STRUCTURE_CLIP_PERCENTILE))
    s_clip = _smooth_clipped(a, clipped, s, down, background)
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
        ),
        0.0,
    )
    m.update(zero_shape)
    box = bounding_box(body_all) if m["signal_px"] > 0 else None
    if box is not None:
        # Every sizeable part counts (faint legs may be apart from the trunk); specks not.
        # Labelling the signal's bounding box finds the same parts as the whole view.
        labels, _ = ndimage.label(body_all[box], structure=_EIGHT)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = sizes >= max(MIN_PART_PX, 0.05 * sizes.max())
        body = fill_holes(keep[labels])
        widths = body.sum(axis=1).astype(np.float64)
        rows = np.nonzero(widths)[0]
        top, bottom = int(rows[0]), int(rows[-1])
        max_w = float(widths.max())
        height = bottom - top + 1
        full_body = np.zeros(a.shape, dtype=bool)
        full_body[box] = body
        body = full_body
        # A skull and feet start thin; a cut (rows blanked) starts at full trunk width.
        prof = a - background
        np.clip(prof, 0, None, out=prof)
        prof = prof.sum(axis=1)
        typical = float(np.sort(prof)[-TYPICAL_ROWS:].mean())
        ends = np.nonzero(prof > 0.05 * typical)[0] if typical > 0 else np.array([0])
        t0, b0 = int(ends[0]), int(ends[-1])
        top_end = float(prof[t0 : t0 + END_ROWS].mean()) / max(typical, 1e-12)
        bottom_end = float(prof[max(b0 - END_ROWS + 1, 0) : b0 + 1].mean()) / max(typical, 1e-12)
        m.update(
            height_frac=height / ROWS,
            aspect=height / max_w,
            symmetry=_symmetry(s_rel, body),
            fill_frac=float(body_all.sum()) / body.size,
            top_end=top_end,
            bottom_end=bottom_end,
            top_edge_frac=float(body[:EDGE_ROWS].any(axis=0).sum()) / COLS,
            bottom_edge_frac=float(body[-EDGE_ROWS:].any(axis=0).sum()) / COLS,
        )

    ceiling = _ceiling(a_max, bit_depth)
    if ceiling > 0:
        m["plateau_px"] = float(_largest_component_size(a >= PLATEAU_LEVEL * ceiling))
        # Blurred camera images never jump from near the top to near zero between
        # neighbours inside a hot region; wrapped integers do. Count images have no
        # fixed top to wrap at, and nothing is "low" there.
        m["wrap_px"] = _wrap_px(a, ceiling) if bit_depth is not None else 0.0
    else:
        m["plateau_px"] = m["wrap_px"] = 0.0
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
    if (
        m["aspect"] < MIN_ASPECT
        or m["height_frac"] < MIN_HEIGHT_FRACTION
        or m["symmetry"] < MIN_SYMMETRY
    ) and m["fill_frac"] <= MAX_FILL_FRACTION:
        return (
            "not_whole_body",
            f"The {name} view is not a whole-body bone scan: no upright, symmetric body is seen.",
        )
    touch_top = m["top_edge_frac"] >= EDGE_TOUCH_FRACTION
    touch_bottom = m["bottom_edge_frac"] >= EDGE_TOUCH_FRACTION
    if (touch_top and touch_bottom) or m["fill_frac"] > MAX_FILL_FRACTION:
        return (
            "spot_view",
            f"The {name} view is a spot view: it shows only part of the body.",
        )
    for end, what, touch in (("top", "head", touch_top), ("bottom", "feet", touch_bottom)):
        if touch or m[f"{end}_end"] >= MAX_END_LEVEL:
            return (
                "body_cut_off",
                f"The {name} view is cut off at the {end}: the {what} are not in the field.",
            )
    if m["plateau_px"] >= MAX_PLATEAU_PX or m["wrap_px"] >= MAX_WRAP_PX:
        kind = "saturated" if m["plateau_px"] >= MAX_PLATEAU_PX else "wrapped-around"
        return (
            "saturated",
            f"The {name} view has {kind} regions (counts beyond the image's range); "
            "uptake there cannot be measured.",
        )
    return None


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
        return QualityVerdict(True, "ok", "ok", measures)
    return QualityVerdict(False, problem[1], problem[0], measures)
