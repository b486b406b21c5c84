"""Follow-up of a patient's studies: comparisons and the PCWG3 "2+2" bone-scan rule.

Pure functions on small frozen records; nothing here reads the database.

Each later study is compared (:func:`compare`) with an earlier one, view by view:
the body's offset between them (:func:`core.burden.registration.estimate_offset`),
the lesions matched and the new ones counted once across views
(:mod:`core.burden.lesion_matching`), the BSTBI change, and a warning when the
injection-to-scan delays differ. :func:`followup` compares every study with the
baseline and with the one before, and flags progression by PCWG3 (see there).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.burden.lesion_matching import GATE_PX, LesionPoint, Matching, count_new, match_lesions
from core.burden.registration import Offset, estimate_offset
from core.config import COLS, ROWS, VIEWS

#: Injection-to-scan delays of two compared studies may differ by at most this, hours.
MAX_DELAY_DIFF_H = 1.0
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
