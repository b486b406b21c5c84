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


def _ceiling(a: np.ndarray, bit_depth: int | None) -> float:
    # Exports clip or wrap at their format's top value; counts have no fixed ceiling.
    if bit_depth is not None:
        return float(2**bit_depth - 1)
    return float(a.max())


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def _symmetry(s: np.ndarray, body: np.ndarray) -> float:
    """Correlation of the smoothed body with its mirror about its centre of mass column."""
    cols = np.nonzero(body.any(axis=0))[0]
    weights = (s * body).sum(axis=0)
    centre = float((np.arange(s.shape[1]) * weights).sum() / max(weights.sum(), 1e-12))
    half = int(max(centre - cols[0], cols[-1] - centre)) + 1
    c = round(centre)
    padded = np.pad(s * body, ((0, 0), (half + 1, half + 1)))
    win = padded[:, c + 1 : c + 2 * half + 2]
    rows = body.any(axis=1)
    x = win[rows].ravel()
    y = win[rows][:, ::-1].ravel()
    if x.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


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
    m: dict[str, float] = {"total": float(a.sum()), "flat": float(a.max() == a.min())}
    background = float(np.median(a))
    s = ndimage.gaussian_filter(a, SMOOTH_SIGMA_PX, mode="constant", cval=background)
    s_rel = s - background
    hi = float(np.percentile(s_rel, 99.5))
    body_all = s_rel > MASK_FRACTION * hi if hi > 0 else np.zeros(a.shape, dtype=bool)
    m["signal_px"] = float(body_all.sum())
    var_a = float(a.var())
    m["structure_raw"] = float(s.var() / var_a) if var_a > 0 else 0.0
    clipped = np.minimum(a, np.percentile(a, STRUCTURE_CLIP_PERCENTILE))
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
        ),
        0.0,
    )
    m.update(zero_shape)
    if m["signal_px"] > 0:
        # Every sizeable part counts (faint legs may be apart from the trunk); specks not.
        labels, _ = ndimage.label(body_all, structure=np.ones((3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = sizes >= max(MIN_PART_PX, 0.05 * sizes.max())
        body = ndimage.binary_fill_holes(keep[labels])
        widths = body.sum(axis=1).astype(np.float64)
        rows = np.nonzero(widths)[0]
        top, bottom = int(rows[0]), int(rows[-1])
        max_w = float(widths.max())
        height = bottom - top + 1
        # A skull and feet start thin; a cut (rows blanked) starts at full trunk width.
        prof = np.clip(a - background, 0, None).sum(axis=1)
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

    ceiling = _ceiling(a, bit_depth)
    if ceiling > 0:
        plateau = a >= PLATEAU_LEVEL * ceiling
        m["plateau_px"] = float(_largest_component(plateau).sum()) if plateau.any() else 0.0
        # Blurred camera images never jump from near the top to near zero between
        # neighbours inside a hot region; wrapped integers do.
        low = (a <= WRAP_LOW * ceiling) if bit_depth is not None else np.zeros(a.shape, bool)
        hot_next = ndimage.maximum_filter(a, size=3) >= WRAP_HOT * ceiling
        hot_region = ndimage.uniform_filter(a, size=7) >= WRAP_REGION * ceiling
        m["wrap_px"] = float((low & hot_next & hot_region).sum())
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
