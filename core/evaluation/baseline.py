"""The classical baseline: hot spots above the bone background and a hand-made rule.

What a reader's computer did before deep learning, on the same views the networks
see, so that an evaluation shows what the networks add. Deterministic, no training;
its constants were set by hand on generated training data (``data/phantom-train``,
seed 1; the held-out seed-2 set was not looked at). Per view (counts, float
1024 x 256, hot = high; the rows and columns below are pixels of that grid):

1. **Smooth** with a Gaussian of :data:`SMOOTHING_SIGMA_PX` (1 px) against Poisson noise.
2. **Bone level**: the median smoothed count of the normal-bone reference pixels of
   :func:`core.burden.indices.normal_bone_reference` (body pixels above the body's median).
   Body pixels are those above :data:`core.burden.indices.BODY_FRACTION` of the 99.9th
   percentile; the body's height runs from its first to its last row.
3. **Midline**: the column axis about which the column profile (counts summed over
   rows) is most symmetric: the argmax of the profile convolved with itself.
4. **Bladder rule**: the hottest pixel of the pelvic window (rows :data:`PELVIS_ROWS`
   of the body's height below the top of the head, within :data:`PELVIS_HALF_WIDTH_PX`
   of the midline: below the iliac crests, on the midline). If it reaches
   :data:`BLADDER_RATIO` x the bone level, the bladder is the 8-connected region of
   window pixels at or above half that peak around it (half maximum). The window
   bounds it, because in a posterior view the sacrum can be as hot as the urine. The
   view's bladder score is peak / bone level.
5. **Local reference**: symmetric uptake (knees, shoulders, hips, sacro-iliac joints,
   the skull) is normal, so a pixel is compared with the mirror side: the view
   mirrored about the midline and grey-dilated over :data:`MIRROR_TOLERANCE_PX`
   (a small misalignment is not asymmetry). On the spine band of the trunk (within
   :data:`SPINE_HALF_WIDTH_PX` of the midline, rows :data:`TRUNK_ROWS` of the body's
   height: neck to lumbar spine) the mirror is the same bone, so the reference is
   the hotter of the :data:`VERTICAL_PERCENTILE` th percentile along
   :data:`VERTICAL_WINDOW_PX` rows of that column (the neighbouring vertebrae) and
   the hottest pixel within :data:`LATERAL_WIDTH_PX` beside the band (a structure
   wider than the spine is judged by its sides). The reference is at least the bone
   level. Midline pixels of the head and the pelvis are their own mirror: never hot.
6. **Contrast** = smoothed counts / reference; set to 0 outside the body, in the
   bladder grown by :data:`BLADDER_MARGIN_PX` (urine spills around it), farther than
   :data:`JUDGED_HALF_WIDTH_PX` from the midline, and below :data:`ARMS_BELOW` of the
   body's height farther than :data:`JUDGED_HALF_WIDTH_LOW_PX` (forearms and hands lie
   wherever the patient put them, so their mirror side means nothing).
7. **Hot spot**: a 3 x 3 neighbourhood with at least :data:`MIN_HOT_PIXELS` pixels of
   contrast > :data:`HOT_RATIO` (a minimum area that a lone noisy pixel cannot meet)
   seeds it; its outline is the 8-connected region around the seed with contrast >
   :data:`EDGE_RATIO` (hysteresis).

The view's **score** is the largest contrast that :data:`MIN_HOT_PIXELS` pixels of
one 3 x 3 neighbourhood all reach (the max of a rank filter), so a view has a hot spot
exactly when its score > :data:`HOT_RATIO`. A scan is called metastatic when either
view has a hot spot; its metastasis score (for ROC) is the max of its views' scores,
its bladder score the max of its views' bladder scores, and its label masks hold the
hot spots (1) and the bladder (2).

What it cannot do, by design: tell a fracture, a degenerative joint, an injection
site or urine contamination from a metastasis (all are asymmetric hot spots), see
lesions placed symmetrically or on the midline of the head and pelvis, find lesions
fainter than :data:`HOT_RATIO` x their surroundings or on bones colder than the bone
level (ribs), or judge the hands. Its posterior bladder takes in the lower sacrum.
:data:`HOT_RATIO` is the threshold that maximised sensitivity plus specificity on
training scans; docs/model_card.md gives its figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from core.burden.indices import BODY_FRACTION, HOTSPOT_STRUCTURE, normal_bone_reference
from core.config import LABEL_BLADDER, LABEL_METASTASIS

#: Gaussian smoothing of the counts, pixels.
SMOOTHING_SIGMA_PX = 1.0
#: A hot spot is hotter than this many times its local reference (tuned on training data).
HOT_RATIO = 1.6
#: A hot spot's outline: its connected pixels above this contrast (hysteresis; tuned).
EDGE_RATIO = 1.25
#: Pixels of one 3 x 3 neighbourhood that must exceed :data:`HOT_RATIO` (1 to 9; tuned).
MIN_HOT_PIXELS = 4
#: Mirror-side tolerance: the mirrored view is grey-dilated by a square of this side.
MIRROR_TOLERANCE_PX = 5
#: Half width of the spine band around the midline, pixels.
SPINE_HALF_WIDTH_PX = 10
#: Columns just outside the spine band, each side, whose hottest pixel is also a reference.
LATERAL_WIDTH_PX = 6
#: Rows of the running percentile that gives the spine band's reference.
VERTICAL_WINDOW_PX = 81
#: Percentile of that running window (vertebral bodies, not the discs between them).
VERTICAL_PERCENTILE = 75
#: Rows (fractions of the body's height below the head's top) where the spine band
#: rule applies: the trunk. Elsewhere a midline pixel is its own mirror and never hot.
TRUNK_ROWS: tuple[float, float] = (0.12, 0.41)
#: Pixels farther than this from the midline are not judged (forearms and hands lie
#: wherever the patient put them, so their mirror side means nothing).
JUDGED_HALF_WIDTH_PX = 80
#: Below this fraction of the body's height (elbows down) the limit is tighter ...
ARMS_BELOW = 0.32
#: ... this many pixels: the femora are judged, the hands beside them are not.
JUDGED_HALF_WIDTH_LOW_PX = 55
#: Pelvic window for the bladder: fractions of the body's height below the head's top.
PELVIS_ROWS: tuple[float, float] = (0.43, 0.54)
#: Half width of the pelvic window around the midline, pixels.
PELVIS_HALF_WIDTH_PX = 25
#: The bladder's peak must reach this many times the bone level.
BLADDER_RATIO = 2.0
#: The bladder is grown by this many pixels before hot spots are looked for.
BLADDER_MARGIN_PX = 5


@dataclass(frozen=True)
class ViewFindings:
    """What the baseline finds in one view.

    Attributes:
        mask: uint8 (rows, cols) labels: 0 background, 1 hot spot, 2 bladder.
        score: Metastasis score (>= 0): the contrast the hot-spot rule reaches.
        hot: True when ``score > HOT_RATIO``, i.e. the view has a hot spot.
        hotspots: Number of hot spots (8-connected regions of label 1).
        bladder_score: Peak of the pelvic window / bone level (>= 0); 0 without body.
        bone_level: The view's bone level (smoothed counts), 0 without body.
        midline: Column of the mirror axis (a multiple of 0.5).
    """

    mask: np.ndarray
    score: float
    hot: bool
    hotspots: int
    bladder_score: float
    bone_level: float
    midline: float


@dataclass(frozen=True)
class BaselineResult:
    """What the baseline finds in one scan.

    Attributes:
        views: ``{view: ViewFindings}``.
        score_metastasis: Max of the views' scores (>= 0; higher = more suspicious).
        score_bladder: Max of the views' bladder scores (>= 0).
        metastasis: True when any view has a hot spot.
        bladder: True when any view has a bladder region.
        masks: ``{view: uint8 (rows, cols) label mask}`` (0, 1 hot spot, 2 bladder).
    """

    views: dict[str, ViewFindings]
    score_metastasis: float
    score_bladder: float
    metastasis: bool
    bladder: bool

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """Return ``{view: label mask}``."""
        return {name: f.mask for name, f in self.views.items()}


def mirror_axis(profile: np.ndarray) -> int:
    """Return ``m`` such that column ``j`` mirrors onto ``m - j`` best (axis at ``m / 2``).

    Args:
        profile: 1-D non-negative column profile (e.g. counts summed over rows).

    Returns:
        The integer ``m`` in [0, 2 * (len - 1)] maximising ``sum_j p[j] * p[m - j]``;
        ``len - 1`` (the centre) when the profile is all zero.

    Raises:
        ValueError: If ``profile`` is not 1-D and non-empty.
    """
    p = np.asarray(profile, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"profile must be a non-empty 1-D array, got shape {p.shape}")
    if not p.any():
        return p.size - 1
    return int(np.argmax(np.convolve(p, p)))


def _mirror(a: np.ndarray, m: int) -> np.ndarray:
    """Return ``a`` mirrored column-wise so that column j holds column ``m - j`` (0 outside)."""
    cols = a.shape[1]
    src = m - np.arange(cols)
    out = np.zeros_like(a)
    ok = (src >= 0) & (src < cols)
    out[:, ok] = a[:, src[ok]]
    return out


def _bladder(
    smooth: np.ndarray, body: np.ndarray, bone: float, midline: float
) -> tuple[np.ndarray, float]:
    rows_any = np.flatnonzero(body.any(axis=1))
    region = np.zeros(smooth.shape, dtype=bool)
    if rows_any.size == 0 or bone <= 0:
        return region, 0.0
    top, bottom = int(rows_any[0]), int(rows_any[-1])
    height = bottom - top
    r0 = top + int(PELVIS_ROWS[0] * height)
    r1 = max(r0 + 1, top + int(np.ceil(PELVIS_ROWS[1] * height)))
    c0 = max(0, int(midline) - PELVIS_HALF_WIDTH_PX)
    c1 = min(smooth.shape[1], int(np.ceil(midline)) + PELVIS_HALF_WIDTH_PX + 1)
    window = smooth[r0:r1, c0:c1]
    i, j = np.unravel_index(int(np.argmax(window)), window.shape)
    peak = float(window[i, j])
    score = peak / bone
    if score < BLADDER_RATIO:
        return region, score
    # the window bounds the region: in a posterior view the sacrum can be as hot as urine
    labels, _ = ndimage.label(window >= 0.5 * peak, structure=HOTSPOT_STRUCTURE)
    region[r0:r1, c0:c1] = labels == labels[i, j]
    return region, score


class _Maps(NamedTuple):
    smooth: np.ndarray
    contrast: np.ndarray
    reached: np.ndarray
    bladder: np.ndarray
    bladder_score: float
    bone: float
    midline: float


def _analyse(counts: np.ndarray) -> _Maps:
    """Steps 1-6 of the module docstring, plus the rank-filtered contrast of step 7."""
    a = np.maximum(np.asarray(counts, dtype=np.float64), 0.0)
    smooth = ndimage.gaussian_filter(a, SMOOTHING_SIGMA_PX)
    m = mirror_axis(smooth.sum(axis=0))
    midline = m / 2.0
    reference = normal_bone_reference(smooth, np.zeros(a.shape, dtype=bool))
    if not reference.any():
        zeros = np.zeros(a.shape)
        return _Maps(smooth, zeros, zeros, zeros.astype(bool), 0.0, 0.0, midline)
    bone = float(np.median(smooth[reference]))
    body = smooth > BODY_FRACTION * np.percentile(smooth, 99.9)
    bladder, bladder_score = _bladder(smooth, body, bone, midline)
    rows_any = np.flatnonzero(body.any(axis=1))
    top, height = int(rows_any[0]), int(rows_any[-1] - rows_any[0])

    mirror = ndimage.maximum_filter(_mirror(smooth, m), size=MIRROR_TOLERANCE_PX)
    ref = np.maximum(mirror, bone)
    cols = np.arange(a.shape[1])
    band = np.abs(cols - midline) <= SPINE_HALF_WIDTH_PX
    t0 = top + int(TRUNK_ROWS[0] * height)
    t1 = top + int(TRUNK_ROWS[1] * height)
    if band.any() and t1 > t0:
        trunk = smooth[t0:t1, band]
        vertical = ndimage.percentile_filter(
            trunk, VERTICAL_PERCENTILE, size=(VERTICAL_WINDOW_PX, 1), mode="nearest"
        )
        # a structure wider than the band (pelvis, shoulders) is judged by its sides
        offset = np.abs(cols - midline) - SPINE_HALF_WIDTH_PX
        beside = (offset > 0) & (offset <= LATERAL_WIDTH_PX)
        lateral = smooth[t0:t1, beside].max(axis=1, keepdims=True) if beside.any() else 0.0
        ref[t0:t1, band] = np.maximum(np.maximum(vertical, lateral), bone)
    contrast = smooth / ref
    excluded = ~body
    far = np.abs(cols - midline)
    excluded[:, far > JUDGED_HALF_WIDTH_PX] = True
    excluded[top + int(ARMS_BELOW * height) :, far > JUDGED_HALF_WIDTH_LOW_PX] = True
    if bladder.any():
        excluded |= ndimage.binary_dilation(
            bladder, structure=HOTSPOT_STRUCTURE, iterations=BLADDER_MARGIN_PX
        )
    contrast[excluded] = 0.0
    # the k-th largest of each 3 x 3 neighbourhood: MIN_HOT_PIXELS pixels all reach it
    reached = ndimage.rank_filter(contrast, rank=-MIN_HOT_PIXELS, size=3)
    return _Maps(smooth, contrast, reached, bladder, float(bladder_score), bone, midline)


def baseline_view(counts: np.ndarray) -> ViewFindings:
    """Apply the baseline's rule (see the module docstring) to one view.

    Args:
        counts: float 2-D counts of one view (rows x cols, e.g. 1024 x 256), hot =
            high, finite; negative values are treated as 0.

    Returns:
        The view's :class:`ViewFindings`.

    Raises:
        ValueError: If ``counts`` is not a non-empty finite 2-D array.
    """
    a = np.asarray(counts, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"counts must be a non-empty 2-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("counts must be finite")
    maps = _analyse(a)
    score = float(maps.reached.max())
    # hysteresis: a hot spot reaches down to EDGE_RATIO around its seeds above HOT_RATIO
    labels, _ = ndimage.label(maps.contrast > EDGE_RATIO, structure=HOTSPOT_STRUCTURE)
    kept = np.unique(labels[(maps.reached > HOT_RATIO) & (maps.contrast > HOT_RATIO)])
    kept = kept[kept > 0]
    mask = np.zeros(a.shape, dtype=np.uint8)
    mask[np.isin(labels, kept)] = LABEL_METASTASIS
    mask[maps.bladder] = LABEL_BLADDER
    return ViewFindings(
        mask=mask,
        score=score,
        hot=score > HOT_RATIO,
        hotspots=int(kept.size),
        bladder_score=maps.bladder_score,
        bone_level=maps.bone,
        midline=maps.midline,
    )


def baseline_scan(views: Mapping[str, np.ndarray]) -> BaselineResult:
    """Apply the baseline to every view of a scan.

    Args:
        views: ``{view: counts}``, each float 2-D (1024 x 256), hot = high, finite;
            e.g. ``scan.views``.

    Returns:
        The scan's :class:`BaselineResult`.

    Raises:
        ValueError: If ``views`` is empty or a view is not a finite 2-D array.
    """
    if not views:
        raise ValueError("views must hold at least one view")
    found = {}
    for name, counts in views.items():
        try:
            found[name] = baseline_view(counts)
        except ValueError as err:
            raise ValueError(f"views[{name!r}]: {err}") from None
    return BaselineResult(
        views=found,
        score_metastasis=max(f.score for f in found.values()),
        score_bladder=max(f.bladder_score for f in found.values()),
        metastasis=any(f.hot for f in found.values()),
        bladder=any(bool((f.mask == LABEL_BLADDER).any()) for f in found.values()),
    )
