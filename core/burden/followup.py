"""Follow-up across a patient's consecutive studies: lesion matching, new lesions, 2+2.

Pure functions on small frozen records; nothing here reads the database.

How two studies are compared, step by step:

1. **Registration** (:func:`estimate_offset`), per view, because the body lies at a
   different place in the field at every visit (head 8-40 rows from the top, midline
   a few columns off). The translation between the two views' count images is found
   by *phase correlation* (numpy FFT): each image is smoothed (Gaussian, sigma 2 px),
   compressed with ``sqrt`` and clipped at its 98th percentile so that the bladder,
   hot lesions and injection sites, which change between visits, weigh no more than
   the skeleton that does not; it is then windowed (Hann) and the peak of the
   inverse FFT of the normalised cross-power spectrum, searched within
   ``|rows| <= 160``, ``|cols| <= 64``, is the offset. Whole-image correlation uses
   every bone, so it is robust to one changed region, unlike a landmark such as the
   top-of-head row. An optional row scale (different body length in the field, e.g.
   another pixel spacing) is estimated from the body's extent in rows. Without count
   images the offset is zero.
2. **Matching** (:func:`match_lesions`), per view: lesion centroids of the earlier
   study are moved by the offset and paired with the later study's by Hungarian
   assignment (:func:`scipy.optimize.linear_sum_assignment`) on Euclidean distance,
   with a gate of :data:`GATE_PX` = 25 px (about 58 mm at 2.3 mm/px: well above the
   registration error, ~1 px on phantoms, plus a centroid's drift as a lesion grows
   or fades; one-to-one assignment, not the gate, keeps neighbouring vertebrae
   apart). Pairs farther than the gate are not pairs. Unpaired later lesions are
   *new*, unpaired earlier ones *disappeared*, except fragments: an unpaired lesion
   within :data:`SPLIT_PX` of the other study's nearest paired lesion is taken as a
   piece of it (one component split in two, or two merged), not a new lesion.
3. **Counting once across views** (:func:`count_new`): a lesion usually shows on both
   the anterior and the posterior view, which a dual-head camera acquires at the same
   time and position, the posterior mirrored (column ``c`` <-> ``COLS - 1 - c``, same
   row). The new lesions of the two views are paired by that mirror (Hungarian, same
   gate :data:`VIEW_GATE_PX`) into sites, all of the later study's lesions, not only
   new ones; a site is new when each of its lesions is new on its own view. So a new
   lesion seen on both views counts once, one seen on only one view (deep spine on
   the posterior view, sternum on the anterior) still counts, and an old lesion that
   now also shows on its other view is not new.

Only lesions whose status is not ``"removed"`` (the physician deleted a false positive)
take part anywhere.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from core.config import COLS, LABEL_METASTASIS, ROWS, VIEWS

#: Distance gate for pairing two lesions, pixels (~58 mm at 2.3 mm/px).
GATE_PX = 25.0
#: An unpaired lesion this close to a paired one is a fragment of it, pixels (~28 mm).
SPLIT_PX = 12.0
#: Gate for one lesion's anterior and posterior centroids (mirrored), pixels (~28 mm).
VIEW_GATE_PX = 12.0
#: Injection-to-scan delays of two compared studies may differ by at most this, hours.
MAX_DELAY_DIFF_H = 1.0
#: Lesion statuses; only ``"removed"`` lesions are ignored.
LESION_STATUSES: tuple[str, str, str] = ("model", "added", "removed")
#: Largest offset the registration searches, (rows, cols).
MAX_SHIFT: tuple[int, int] = (160, 64)
#: End of the PCWG3 early window (first reassessment), days of treatment (12 weeks).
EARLY_DAYS = 84
#: A confirmatory scan must follow the early scan by at least this, days (6 weeks).
CONFIRM_DAYS = 42
#: New lesions needed for progression (PCWG3).
MIN_NEW = 2

#: PCWG3 flags of one compared study.
FLAG_BEFORE_TREATMENT = "before treatment"
FLAG_NONE = "no progression"
FLAG_PENDING = "progression pending confirmation"
FLAG_CONFIRMED = "progression confirmed"
FLAG_NOT_CONFIRMED = "not confirmed (flare?)"
FLAG_PROGRESSION = "progression"

#: 8-connectivity, as :func:`core.burden.indices.hotspot_count` counts hotspots.
_STRUCTURE = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class LesionPoint:
    """One lesion (connected component) of one view, reduced to what matching needs.

    Attributes:
        view: ``"ANT"`` or ``"POST"``.
        row: Centroid row on the 1024 x 256 grid, pixels (0 = top, head).
        col: Centroid column, pixels, in the view's own orientation (the posterior
            view as displayed, mirrored).
        area_px: Area, pixels (> 0).
        region: Skeletal region, when known.
        status: ``"model"``, ``"added"`` or ``"removed"`` (removed ones are ignored).
    """

    view: str
    row: float
    col: float
    area_px: float = 1.0
    region: str | None = None
    status: str = "model"

    def __post_init__(self) -> None:
        """Validate the fields early, naming the bad one."""
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {self.view!r}")
        if not (np.isfinite(self.row) and np.isfinite(self.col)):
            raise ValueError(f"row and col must be finite, got {self.row!r}, {self.col!r}")
        if not self.area_px > 0:
            raise ValueError(f"area_px must be > 0, got {self.area_px!r}")
        if self.status not in LESION_STATUSES:
            raise ValueError(f"status must be one of {LESION_STATUSES}, got {self.status!r}")

    @property
    def active(self) -> bool:
        """True unless the physician removed the lesion."""
        return self.status != "removed"


@dataclass(frozen=True)
class StudyFindings:
    """What follow-up needs of one study.

    Attributes:
        date: Study date.
        injection_delay_h: Injection-to-scan delay, hours, or None when unknown.
        bstbi: The scan's BSTBI in [0, 1] (after review), or None.
        lesions: Lesions of both views.
        counts: Optional ``{"ANT", "POST"}`` float (1024, 256) count images (hot =
            high) used for registration; a missing view gets a zero offset.
        label: Optional name shown in warnings (e.g. a study id).
    """

    date: dt.date
    injection_delay_h: float | None
    bstbi: float | None
    lesions: tuple[LesionPoint, ...] = ()
    counts: Mapping[str, np.ndarray] | None = field(default=None, compare=False, repr=False)
    label: str = ""

    def __post_init__(self) -> None:
        """Validate the fields early, naming the bad one."""
        if self.injection_delay_h is not None and not (
            np.isfinite(self.injection_delay_h) and self.injection_delay_h >= 0
        ):
            raise ValueError(
                f"injection_delay_h must be >= 0 or None, got {self.injection_delay_h!r}"
            )
        if self.bstbi is not None and not 0.0 <= self.bstbi <= 1.0:
            raise ValueError(f"bstbi must be in [0, 1] or None, got {self.bstbi!r}")
        if self.counts is not None:
            for view, img in self.counts.items():
                if view not in VIEWS or np.shape(img) != (ROWS, COLS):
                    raise ValueError(
                        f"counts must map views {VIEWS} to ({ROWS}, {COLS}) arrays, "
                        f"got {view!r} with shape {np.shape(img)}"
                    )

    def active(self, view: str) -> tuple[LesionPoint, ...]:
        """Return the view's lesions that were not removed."""
        return tuple(les for les in self.lesions if les.view == view and les.active)


@dataclass(frozen=True)
class Offset:
    """Geometric map from an earlier study's view to a later one's.

    ``row' = row_scale * row + d_row`` and ``col' = col + d_col`` (pixels).
    """

    d_row: float = 0.0
    d_col: float = 0.0
    row_scale: float = 1.0

    def __post_init__(self) -> None:
        """Validate the scale."""
        if not (np.isfinite(self.row_scale) and self.row_scale > 0):
            raise ValueError(f"row_scale must be a finite number > 0, got {self.row_scale!r}")

    def apply(self, row: float, col: float) -> tuple[float, float]:
        """Return ``(row, col)`` moved into the later study's frame."""
        return self.row_scale * row + self.d_row, col + self.d_col

    def inverse(self) -> Offset:
        """Return the map from the later study back to the earlier one."""
        return Offset(-self.d_row / self.row_scale, -self.d_col, 1.0 / self.row_scale)


@dataclass(frozen=True)
class Matching:
    """Result of matching the lesions of one view between two studies.

    Attributes:
        pairs: ``(earlier, later)`` lesions paired within the gate.
        new: Later lesions without a partner.
        disappeared: Earlier lesions without a partner.
        split: ``(earlier, later)``: an unpaired later lesion close to a paired
            earlier one (one component became two), neither new nor paired.
        merged: ``(earlier, later)``: an unpaired earlier lesion close to a paired
            later one (two components became one), not disappeared.
    """

    pairs: tuple[tuple[LesionPoint, LesionPoint], ...]
    new: tuple[LesionPoint, ...]
    disappeared: tuple[LesionPoint, ...]
    split: tuple[tuple[LesionPoint, LesionPoint], ...] = ()
    merged: tuple[tuple[LesionPoint, LesionPoint], ...] = ()


@dataclass(frozen=True)
class Comparison:
    """One later study compared with an earlier one (both views).

    Attributes:
        reference_date: Date of the earlier study.
        matchings: Per-view matchings.
        offsets: Per-view offsets used.
        n_new: Distinct new lesions across views (:func:`count_new`).
        bstbi_change: Later minus earlier BSTBI, or None when either is unknown.
        bstbi_rel_change: ``bstbi_change / earlier BSTBI``; None when unknown or the
            earlier BSTBI is 0.
        delay_warning: Text when the injection-to-scan delays differ by more than
            :data:`MAX_DELAY_DIFF_H` hours, or one of them is unknown; else None.
    """

    reference_date: dt.date
    matchings: Mapping[str, Matching]
    offsets: Mapping[str, Offset]
    n_new: int
    bstbi_change: float | None
    bstbi_rel_change: float | None
    delay_warning: str | None


@dataclass(frozen=True)
class StudyFollowUp:
    """Follow-up result of one study after the baseline.

    Attributes:
        date: Study date.
        days_on_treatment: Days from treatment start (negative: before it).
        vs_baseline: Comparison with the baseline (first) study.
        vs_previous: Comparison with the study just before.
        pcwg3: One of the ``FLAG_*`` strings.
        pcwg3_new: New lesions the flag was decided on (against its PCWG3 reference).
        warnings: Delay warnings of both comparisons, de-duplicated.
    """

    date: dt.date
    days_on_treatment: int
    vs_baseline: Comparison
    vs_previous: Comparison
    pcwg3: str
    pcwg3_new: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class FollowUp:
    """Follow-up of a patient's studies.

    Attributes:
        baseline_date: Date of the first study.
        treatment_start: Treatment start used (the baseline date when not given).
        studies: One :class:`StudyFollowUp` per study after the baseline, in date order.
        progression: True when PCWG3 progression was met (confirmed 2+2, or >= 2 new
            lesions after the early window).
        progression_date: Date of progression: the early scan's date for a confirmed
            2+2, else the first scan meeting the rule; None without progression.
    """

    baseline_date: dt.date
    treatment_start: dt.date
    studies: tuple[StudyFollowUp, ...]
    progression: bool
    progression_date: dt.date | None


def lesion_points(
    mask: np.ndarray, view: str, *, label: int = LABEL_METASTASIS
) -> tuple[LesionPoint, ...]:
    """Return the lesions of a label mask: its 8-connected components of ``label``.

    Args:
        mask: Integer (1024, 256) label mask (0 background, 1 metastasis, 2 bladder).
        view: ``"ANT"`` or ``"POST"``.
        label: Label value whose components are lesions.

    Returns:
        One :class:`LesionPoint` per component (centroid, area in pixels, status
        ``"model"``), in label order (top to bottom, then left to right).

    Raises:
        ValueError: If ``mask`` is not (1024, 256) or ``view`` is unknown.
    """
    if np.shape(mask) != (ROWS, COLS):
        raise ValueError(f"mask must have shape ({ROWS}, {COLS}), got {np.shape(mask)}")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    lab, n = ndimage.label(np.asarray(mask) == label, structure=_STRUCTURE)
    if n == 0:
        return ()
    idx = np.arange(1, n + 1)
    centres = ndimage.center_of_mass(np.ones_like(lab, dtype=np.float64), lab, idx)
    areas = ndimage.sum_labels(np.ones_like(lab), lab, idx)
    return tuple(
        LesionPoint(view, float(r), float(c), float(a))
        for (r, c), a in zip(centres, areas, strict=True)
    )


def _prepare(img: np.ndarray) -> np.ndarray:
    """Return the image made fit for phase correlation (see the module docstring)."""
    a = np.sqrt(np.clip(ndimage.gaussian_filter(np.asarray(img, dtype=np.float64), 2.0), 0, None))
    pos = a[a > 0]
    if pos.size:
        a = np.minimum(a, np.percentile(pos, 98))
    a = a - a.mean()
    return a * np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))


def _body_rows(img: np.ndarray) -> tuple[float, float, bool]:
    """Return (top, bottom, cut) rows of the body.

    Body rows: smoothed row sums above the background (their 2nd percentile) by more
    than 10 % of the 90th percentile's excess.
    """
    prof = ndimage.uniform_filter1d(np.asarray(img, dtype=np.float64).sum(axis=1), 9)
    prof = prof - np.percentile(prof, 2)
    rows = np.flatnonzero(prof > 0.1 * np.percentile(prof, 90))
    if rows.size == 0:
        return 0.0, float(img.shape[0] - 1), True
    top, bottom = float(rows[0]), float(rows[-1])
    return top, bottom, bottom >= img.shape[0] - 3 or top <= 2


def estimate_offset(prev: np.ndarray, curr: np.ndarray, *, estimate_scale: bool = False) -> Offset:
    """Estimate the offset from an earlier view's counts to a later one's.

    Phase correlation of the prepared images (module docstring, step 1). With
    ``estimate_scale`` the row scale is first taken as the ratio of body lengths
    (rows from the top of the head to the lowest body row: smoothed row sums above
    their 2nd percentile by more than 10 % of the 90th percentile's excess), kept
    within [0.85, 1.15], and 1 when the body touches the top or bottom edge of
    either image (cut off: its length is unknown); the earlier image is resampled
    by that scale before the correlation.

    Args:
        prev: Earlier float (1024, 256) counts, hot = high, >= 0.
        curr: Later float (1024, 256) counts of the same view.
        estimate_scale: Also estimate a row scale.

    Returns:
        The offset (integer-pixel translation; ``row_scale`` 1 unless estimated).

    Raises:
        ValueError: If the shapes are not (1024, 256) or an image is not finite.
    """
    for name, img in (("prev", prev), ("curr", curr)):
        if np.shape(img) != (ROWS, COLS):
            raise ValueError(f"{name} must have shape ({ROWS}, {COLS}), got {np.shape(img)}")
        if not np.all(np.isfinite(img)):
            raise ValueError(f"{name} must hold finite counts")
    scale = 1.0
    p = np.asarray(prev, dtype=np.float64)
    if estimate_scale:
        tp, bp, cut_p = _body_rows(p)
        tc, bc, cut_c = _body_rows(np.asarray(curr, dtype=np.float64))
        if not (cut_p or cut_c) and bp > tp:
            scale = float(np.clip((bc - tc) / (bp - tp), 0.85, 1.15))
            # resample about row 0 so that row' = scale * row before the translation
            p = ndimage.affine_transform(p, np.diag([1.0 / scale, 1.0]), order=1)
    fa, fb = np.fft.fft2(_prepare(p)), np.fft.fft2(_prepare(curr))
    cross = np.conj(fa) * fb
    # regularised whitening: a flat image (no counts) gives a zero surface, not NaN
    surface = np.fft.ifft2(cross / (np.abs(cross) + 1e-9 * (np.abs(cross).max() + 1e-30))).real
    surface = ndimage.gaussian_filter(surface, 1.0, mode="wrap")
    shifts_r = np.fft.fftfreq(ROWS, 1.0 / ROWS)
    shifts_c = np.fft.fftfreq(COLS, 1.0 / COLS)
    allowed = (np.abs(shifts_r)[:, None] <= MAX_SHIFT[0]) & (
        np.abs(shifts_c)[None, :] <= MAX_SHIFT[1]
    )
    r, c = np.unravel_index(int(np.argmax(np.where(allowed, surface, -np.inf))), surface.shape)
    return Offset(float(shifts_r[r]), float(shifts_c[c]), scale)


def _assign(
    a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]], gate: float
) -> list[tuple[int, int]]:
    """Return index pairs of a gated Hungarian assignment of points ``a`` to ``b``.

    Out-of-gate pairs cost a constant larger than any sum of in-gate costs, so the
    assignment first maximises the number of in-gate pairs, then minimises distance.
    """
    if not a or not b:
        return []
    d = np.hypot(
        np.subtract.outer([p[0] for p in a], [q[0] for q in b]),
        np.subtract.outer([p[1] for p in a], [q[1] for q in b]),
    )
    big = gate * (min(len(a), len(b)) + 1) + 1.0
    rows, cols = linear_sum_assignment(np.where(d <= gate, d, big))
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if d[i, j] <= gate]


def match_lesions(
    prev: Sequence[LesionPoint],
    curr: Sequence[LesionPoint],
    offset: Offset | None = None,
    *,
    gate_px: float = GATE_PX,
    split_px: float = SPLIT_PX,
) -> Matching:
    """Match the lesions of one view between an earlier and a later study.

    Args:
        prev: Earlier study's lesions, all of one view (removed ones are ignored).
        curr: Later study's lesions of the same view.
        offset: Map from the earlier to the later frame (:func:`estimate_offset`);
            None means no shift.
        gate_px: Largest centroid distance of a pair, pixels (> 0).
        split_px: An unpaired lesion within this distance of the other study's nearest
            *paired* lesion is a fragment of it (a split or a merge), pixels (>= 0;
            0 turns this off).

    Returns:
        Pairs, new (later, unpaired, not a fragment) and disappeared (earlier,
        unpaired, not a fragment) lesions, each in input order, and the fragments.

    Raises:
        ValueError: If the lesions are not all of one view or ``gate_px`` <= 0.
    """
    if not gate_px > 0:
        raise ValueError(f"gate_px must be > 0, got {gate_px!r}")
    if not split_px >= 0:
        raise ValueError(f"split_px must be >= 0, got {split_px!r}")
    if len({les.view for les in (*prev, *curr)}) > 1:
        raise ValueError("prev and curr must hold lesions of one view only")
    off = offset or Offset()
    p = [les for les in prev if les.active]
    c = [les for les in curr if les.active]
    pairs = _assign([off.apply(x.row, x.col) for x in p], [(x.row, x.col) for x in c], gate_px)
    used_p = {i for i, _ in pairs}
    used_c = {j for _, j in pairs}
    # a component that split in two (or two that merged) leaves a fragment close to a
    # paired lesion: it is part of that lesion, not a new (or disappeared) one
    moved = [off.apply(x.row, x.col) for x in p]
    split = [
        (p[i], c[j])
        for j in range(len(c))
        if j not in used_c
        for i in _nearest(moved, (c[j].row, c[j].col), used_p, split_px)
    ]
    merged = [
        (p[i], c[j])
        for i in range(len(p))
        if i not in used_p
        for j in _nearest([(x.row, x.col) for x in c], moved[i], used_c, split_px)
    ]
    in_split = {id(b) for _, b in split}
    in_merged = {id(a) for a, _ in merged}
    return Matching(
        pairs=tuple((p[i], c[j]) for i, j in sorted(pairs)),
        new=tuple(x for j, x in enumerate(c) if j not in used_c and id(x) not in in_split),
        disappeared=tuple(x for i, x in enumerate(p) if i not in used_p and id(x) not in in_merged),
        split=tuple(split),
        merged=tuple(merged),
    )


def _nearest(
    points: Sequence[tuple[float, float]], at: tuple[float, float], among: set[int], gate: float
) -> list[int]:
    """Return ``[i]`` of the nearest point of ``among`` within ``gate`` of ``at``, else []."""
    best = min(
        among, key=lambda i: math.hypot(points[i][0] - at[0], points[i][1] - at[1]), default=None
    )
    if best is None or math.hypot(points[best][0] - at[0], points[best][1] - at[1]) > gate:
        return []
    return [best]


def count_new(ant: Matching, post: Matching, *, gate_px: float = VIEW_GATE_PX) -> int:
    """Return the number of distinct new lesions of a later study across its two views.

    The later study's anterior and posterior lesions are paired into *sites* by the
    mirror (module docstring, step 3); a site is new when every lesion in it is new
    on its own view. So a lesion that was seen on one view before and now also
    shows on the other view (it grew or brightened) is not new, and a new lesion
    seen on both views counts once.

    Args:
        ant: Matching of the anterior view (earlier -> later study).
        post: Matching of the posterior view (its own, mirrored, orientation).
        gate_px: Largest distance between the two views' centroids of one lesion,
            pixels (> 0).

    Returns:
        The number of new sites (>= 0).

    Raises:
        ValueError: If ``gate_px`` <= 0.
    """
    if not gate_px > 0:
        raise ValueError(f"gate_px must be > 0, got {gate_px!r}")
    a = [(x, False) for _, x in (*ant.pairs, *ant.split)] + [(x, True) for x in ant.new]
    p = [(x, False) for _, x in (*post.pairs, *post.split)] + [(x, True) for x in post.new]
    pairs = _assign(
        [(x.row, x.col) for x, _ in a],
        [(x.row, COLS - 1 - x.col) for x, _ in p],
        gate_px,
    )
    in_a = {i for i, _ in pairs}
    in_p = {j for _, j in pairs}
    return (
        sum(a[i][1] and p[j][1] for i, j in pairs)
        + sum(new for i, (_, new) in enumerate(a) if i not in in_a)
        + sum(new for j, (_, new) in enumerate(p) if j not in in_p)
    )


def _delay_warning(ref: StudyFindings, cur: StudyFindings) -> str | None:
    a, b = ref.injection_delay_h, cur.injection_delay_h
    names = f"{ref.label or ref.date.isoformat()} and {cur.label or cur.date.isoformat()}"
    if a is None or b is None:
        return f"injection-to-scan delay unknown for {names}: uptake may not be comparable"
    if abs(a - b) > MAX_DELAY_DIFF_H:
        return (
            f"injection-to-scan delays differ by {abs(a - b):.1f} h ({a:.1f} h vs {b:.1f} h) "
            f"between {names}: BSTBI and hotspot counts rise with the delay"
        )
    return None


def compare(
    ref: StudyFindings,
    cur: StudyFindings,
    *,
    gate_px: float = GATE_PX,
    estimate_scale: bool = False,
) -> Comparison:
    """Compare a later study with an earlier one.

    Args:
        ref: Earlier study.
        cur: Later study.
        gate_px: Matching gate, pixels.
        estimate_scale: Also estimate a row scale when registering (see
            :func:`estimate_offset`).

    Returns:
        The per-view matchings and offsets, the distinct new-lesion count, the BSTBI
        change and the delay warning.

    Raises:
        ValueError: If ``gate_px`` <= 0.
    """
    matchings: dict[str, Matching] = {}
    offsets: dict[str, Offset] = {}
    for view in VIEWS:
        off = Offset()
        if (
            ref.counts is not None
            and cur.counts is not None
            and view in ref.counts
            and view in cur.counts
        ):
            off = estimate_offset(ref.counts[view], cur.counts[view], estimate_scale=estimate_scale)
        offsets[view] = off
        matchings[view] = match_lesions(ref.active(view), cur.active(view), off, gate_px=gate_px)
    n_new = count_new(matchings["ANT"], matchings["POST"])
    change = rel = None
    if ref.bstbi is not None and cur.bstbi is not None:
        change = cur.bstbi - ref.bstbi
        rel = change / ref.bstbi if ref.bstbi > 0 else None
    return Comparison(
        reference_date=ref.date,
        matchings=matchings,
        offsets=offsets,
        n_new=n_new,
        bstbi_change=change,
        bstbi_rel_change=rel,
        delay_warning=_delay_warning(ref, cur),
    )


def followup(
    studies: Sequence[StudyFindings],
    *,
    treatment_start: dt.date | None = None,
    gate_px: float = GATE_PX,
    estimate_scale: bool = False,
) -> FollowUp:
    """Follow a patient's studies: new lesions, BSTBI changes, delay warnings, PCWG3 2+2.

    The first study is the baseline. Each later study is compared with the baseline
    and with the study just before it. The PCWG3 bone-scan rule (Scher HI et al.,
    "Trial design and objectives for castration-resistant prostate cancer: updated
    recommendations from the Prostate Cancer Clinical Trials Working Group 3", J Clin
    Oncol 2016;34:1402-18, Table 3 and the "2+2" rule) as implemented here:

    * Progression needs >= 2 new lesions.
    * The first scan after treatment start is the *first reassessment*. When it falls
      within 12 weeks (84 days) of treatment start ("early") and shows >= 2 new
      lesions against the baseline, it is flagged ``"progression pending
      confirmation"`` (a healing flare can look like new lesions). The first later
      scan at least 6 weeks (42 days) after it decides: >= 2 *further* new lesions
      against the early scan → ``"progression confirmed"`` (progression dated at the
      early scan); fewer → ``"not confirmed (flare?)"``. Scans in between stay
      pending.
    * A first reassessment after 12 weeks with >= 2 new lesions against the baseline
      is ``"progression"`` (no confirmation is demanded).
    * Every later scan is compared with the first reassessment scan (PCWG3: after
      the first reassessment the post-treatment scan is the reference for new
      lesions): >= 2 new lesions → ``"progression"``. PCWG3 advises a confirmatory
      scan for such progression as well; this function reports the flag and leaves
      that confirmation to the reader.
    * Studies on or before treatment start (other than the baseline) are ``"before
      treatment"`` and take no part in the rule.

    Args:
        studies: The patient's studies, in strictly increasing date order (>= 1).
        treatment_start: Treatment start; None means at the baseline date.
        gate_px: Matching gate, pixels (> 0).
        estimate_scale: Also estimate a row scale when registering.

    Returns:
        The follow-up: per later study its comparisons, PCWG3 flag and warnings, and
        whether and when progression was met.

    Raises:
        ValueError: If ``studies`` is empty or not in strictly increasing date order,
            or ``gate_px`` <= 0.
    """
    if not studies:
        raise ValueError("studies must hold at least one study")
    if any(b.date <= a.date for a, b in itertools.pairwise(studies)):
        raise ValueError("studies must be in strictly increasing date order")
    if not gate_px > 0:
        raise ValueError(f"gate_px must be > 0, got {gate_px!r}")
    base = studies[0]
    start = treatment_start or base.date

    def cmp(i: int, j: int) -> Comparison:
        return compare(studies[i], studies[j], gate_px=gate_px, estimate_scale=estimate_scale)

    out: list[StudyFollowUp] = []
    first_post: int | None = None
    pending: int | None = None
    progression_date: dt.date | None = None
    for k in range(1, len(studies)):
        cur = studies[k]
        vs_base = cmp(0, k)
        vs_prev = vs_base if k == 1 else cmp(k - 1, k)
        days = (cur.date - start).days
        n_flag = 0
        if days <= 0:
            flag = FLAG_BEFORE_TREATMENT
        elif first_post is None:
            first_post = k
            n_flag = vs_base.n_new
            if n_flag < MIN_NEW:
                flag = FLAG_NONE
            elif days <= EARLY_DAYS:
                flag, pending = FLAG_PENDING, k
            else:
                flag = FLAG_PROGRESSION
        elif pending is not None:
            early = studies[pending]
            n_flag = (vs_prev if pending == k - 1 else cmp(pending, k)).n_new
            if (cur.date - early.date).days < CONFIRM_DAYS:
                flag = FLAG_PENDING
            else:
                flag = FLAG_CONFIRMED if n_flag >= MIN_NEW else FLAG_NOT_CONFIRMED
                if flag == FLAG_CONFIRMED and progression_date is None:
                    progression_date = early.date
                pending = None
        else:
            n_flag = (vs_prev if first_post == k - 1 else cmp(first_post, k)).n_new
            flag = FLAG_PROGRESSION if n_flag >= MIN_NEW else FLAG_NONE
        if flag == FLAG_PROGRESSION and progression_date is None:
            progression_date = cur.date
        warnings = tuple(
            dict.fromkeys(w for w in (vs_base.delay_warning, vs_prev.delay_warning) if w)
        )
        out.append(StudyFollowUp(cur.date, days, vs_base, vs_prev, flag, n_flag, warnings))
    return FollowUp(
        baseline_date=base.date,
        treatment_start=start,
        studies=tuple(out),
        progression=progression_date is not None,
        progression_date=progression_date,
    )
