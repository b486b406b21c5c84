"""Lesion matching between two studies of one patient, and their new lesions.

Pure functions on small frozen records; nothing here reads the database.

1. **Matching** (:func:`match_lesions`), per view: lesion centroids of the earlier
   study are moved by the registration's offset
   (:func:`core.burden.registration.estimate_offset`) and paired with the later
   study's by Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`) on
   Euclidean distance, with a gate of :data:`GATE_PX` = 25 px (about 58 mm at
   2.3 mm/px: well above the registration error, ~1 px on phantoms, plus a centroid's
   drift as a lesion grows or fades; one-to-one assignment, not the gate, keeps
   neighbouring vertebrae apart). Pairs farther than the gate are not pairs. Unpaired
   later lesions are *new*, unpaired earlier ones *disappeared*, except fragments: an
   unpaired lesion within :data:`SPLIT_PX` of the other study's nearest paired lesion
   is taken as a piece of it (one component split in two, or two merged), not a new
   lesion.
2. **Counting once across views** (:func:`count_new`): a lesion usually shows on both
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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from core.burden.registration import Offset
from core.config import COLS, LABEL_METASTASIS, ROWS, VIEWS

#: Distance gate for pairing two lesions, pixels (~58 mm at 2.3 mm/px).
GATE_PX = 25.0
#: An unpaired lesion this close to a paired one is a fragment of it, pixels (~28 mm).
SPLIT_PX = 12.0
#: Gate for one lesion's anterior and posterior centroids (mirrored), pixels (~28 mm).
VIEW_GATE_PX = 12.0
#: Lesion statuses; only ``"removed"`` lesions are ignored.
LESION_STATUSES: tuple[str, str, str] = ("model", "added", "removed")

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
        offset: Map from the earlier to the later frame
            (:func:`core.burden.registration.estimate_offset`); None means no shift.
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
    mirror (module docstring, step 2); a site is new when every lesion in it is new
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
