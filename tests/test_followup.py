"""Follow-up: registration, lesion matching, new-lesion counts, BSTBI change, PCWG3 2+2."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from core.burden.lesion_matching import LesionPoint, count_new, lesion_points, match_lesions
from core.burden.pcwg3 import (
    FLAG_CONFIRMED,
    FLAG_NONE,
    FLAG_NOT_CONFIRMED,
    FLAG_PENDING,
    FLAG_PROGRESSION,
    StudyFindings,
    followup,
)
from core.burden.registration import Offset, estimate_offset
from core.config import COLS, ROWS

D0 = dt.date(2024, 1, 1)
# well-separated sites, (row, col) on the anterior view
SITES = [(100.0, 60.0), (100.0, 190.0), (300.0, 128.0), (500.0, 70.0), (700.0, 180.0)]
FAR = [(850.0, 60.0), (900.0, 190.0), (600.0, 200.0), (200.0, 40.0)]


def both_views(points: list[tuple[float, float]], shift: tuple[float, float] = (0, 0)) -> tuple:
    """Each site on the anterior view and mirrored on the posterior view."""
    dr, dc = shift
    ant = [LesionPoint("ANT", r + dr, c + dc, 20.0) for r, c in points]
    post = [LesionPoint("POST", r + dr, COLS - 1 - (c + dc), 20.0) for r, c in points]
    return tuple(ant + post)


def study(
    days: int,
    points: list[tuple[float, float]],
    *,
    delay: float | None = 3.0,
    bstbi: float | None = 0.1,
) -> StudyFindings:
    return StudyFindings(D0 + dt.timedelta(days=days), delay, bstbi, both_views(points))


# --- matching -------------------------------------------------------------------------------


def test_shifted_lesions_match_with_their_offset() -> None:
    prev = [LesionPoint("ANT", r, c) for r, c in SITES]
    curr = [LesionPoint("ANT", r + 30, c - 10) for r, c in SITES]
    m = match_lesions(prev, curr, Offset(30, -10))
    assert len(m.pairs) == 5 and not m.new and not m.disappeared
    assert all(a.row + 30 == b.row for a, b in m.pairs)


def test_offset_matters_beyond_the_gate() -> None:
    prev = [LesionPoint("ANT", 100, 60)]
    curr = [LesionPoint("ANT", 140, 60)]  # 40 px down: beyond the 25 px gate
    assert len(match_lesions(prev, curr).new) == 1
    assert len(match_lesions(prev, curr, Offset(40, 0)).pairs) == 1


def test_far_lesion_is_new_and_missing_one_disappeared() -> None:
    prev = [LesionPoint("ANT", r, c) for r, c in SITES]
    curr = [LesionPoint("ANT", r, c) for r, c in SITES[1:]] + [LesionPoint("ANT", 900, 60)]
    m = match_lesions(prev, curr)
    assert [(x.row, x.col) for x in m.new] == [(900, 60)]
    assert [(x.row, x.col) for x in m.disappeared] == [SITES[0]]


def test_hungarian_prefers_the_globally_best_pairing() -> None:
    # greedy nearest-first would pair b0 with a1 (distance 5) and leave a0 unmatched
    prev = [LesionPoint("ANT", 100, 100), LesionPoint("ANT", 100, 120)]
    curr = [LesionPoint("ANT", 100, 115), LesionPoint("ANT", 100, 139)]
    m = match_lesions(prev, curr, gate_px=20)
    assert len(m.pairs) == 2 and not m.new


def test_removed_lesions_are_ignored() -> None:
    prev = [LesionPoint("ANT", 100, 60)]
    curr = [LesionPoint("ANT", 100, 60), LesionPoint("ANT", 900, 60, status="removed")]
    assert not match_lesions(prev, curr).new


def test_split_fragment_is_not_new() -> None:
    prev = [LesionPoint("ANT", 200, 100, 40)]
    curr = [LesionPoint("ANT", 196, 100, 20), LesionPoint("ANT", 206, 100, 20)]
    m = match_lesions(prev, curr)
    assert len(m.pairs) == 1 and len(m.split) == 1 and not m.new
    assert len(match_lesions(prev, curr, split_px=0).new) == 1


def test_match_refuses_mixed_views_and_bad_gate() -> None:
    with pytest.raises(ValueError, match="one view"):
        match_lesions([LesionPoint("ANT", 1, 1)], [LesionPoint("POST", 1, 1)])
    with pytest.raises(ValueError, match="gate_px"):
        match_lesions([], [], gate_px=0)
    with pytest.raises(ValueError, match="view"):
        LesionPoint("LAT", 1, 1)
    with pytest.raises(ValueError, match="status"):
        LesionPoint("ANT", 1, 1, status="deleted")


coord = st.integers(min_value=0, max_value=ROWS - 1)
col = st.integers(min_value=0, max_value=COLS - 1)
points = st.lists(st.tuples(coord, col), max_size=12)


@settings(max_examples=60, deadline=None)
@given(points, points, st.integers(-40, 40), st.integers(-20, 20))
def test_swapping_studies_swaps_new_and_disappeared(
    a: list[tuple[int, int]], b: list[tuple[int, int]], dr: int, dc: int
) -> None:
    prev = [LesionPoint("ANT", r, c) for r, c in a]
    curr = [LesionPoint("ANT", r, c) for r, c in b]
    off = Offset(dr, dc)
    fwd = match_lesions(prev, curr, off, split_px=0)
    back = match_lesions(curr, prev, off.inverse(), split_px=0)
    assert len(fwd.pairs) == len(back.pairs)
    assert len(fwd.new) == len(back.disappeared)
    assert len(fwd.disappeared) == len(back.new)
    # the optimum is unique in size; the total distance too
    cost_f = sum(np.hypot(x.row + dr - y.row, x.col + dc - y.col) for x, y in fwd.pairs)
    cost_b = sum(np.hypot(x.row - dr - y.row, x.col - dc - y.col) for x, y in back.pairs)
    assert cost_f == pytest.approx(cost_b)


@settings(max_examples=60, deadline=None)
@given(points, st.integers(-60, 60), st.integers(-30, 30))
def test_pure_translation_gives_no_new_lesions(a: list[tuple[int, int]], dr: int, dc: int) -> None:
    prev = [LesionPoint("ANT", r, c) for r, c in a]
    curr = [LesionPoint("ANT", r + dr, c + dc) for r, c in a]
    m = match_lesions(prev, curr, Offset(dr, dc))
    assert not m.new and not m.disappeared and len(m.pairs) == len(a)


# --- counting across views --------------------------------------------------------------------


def test_new_lesion_on_both_views_counts_once() -> None:
    prev = study(0, SITES)
    curr = study(60, [*SITES, FAR[0]])
    fu = followup([prev, curr])
    assert fu.studies[0].vs_baseline.n_new == 1


def test_new_lesions_on_one_view_only_count() -> None:
    base = study(0, SITES)
    extra = (LesionPoint("ANT", 850, 60), LesionPoint("POST", 600, 40))
    curr = StudyFindings(D0 + dt.timedelta(days=60), 3.0, 0.1, base.lesions + extra)
    assert followup([base, curr]).studies[0].vs_baseline.n_new == 2


def test_old_lesion_newly_seen_on_its_other_view_is_not_new() -> None:
    ant = LesionPoint("ANT", 300, 100)
    post = LesionPoint("POST", 300, COLS - 1 - 100)
    a = match_lesions([], [post])  # new on the posterior view
    b = match_lesions([ant], [ant])  # seen before on the anterior view
    assert count_new(b, a) == 0
    assert count_new(match_lesions([], [ant]), a) == 1


# --- registration ---------------------------------------------------------------------------


def synthetic_body(shift: tuple[int, int], seed: int) -> np.ndarray:
    """A skeleton-like count image: spine, pelvis, limbs, skull, with noise."""
    img = np.zeros((ROWS, COLS))
    img[40:110, 100:156] = 40  # skull
    img[110:520, 122:134] = 60  # spine
    img[160:330, 70:186:8] = 30  # ribs
    img[480:560, 80:176] = 45  # pelvis
    img[560:980, 92:104] = 35  # femur, tibia
    img[560:980, 152:164] = 35
    img[200:500, 40:48] = 25  # arms
    img[200:500, 208:216] = 25
    img = ndimage.shift(ndimage.gaussian_filter(img, 3), shift, order=1) + 2.0
    return np.random.default_rng(seed).poisson(img).astype(np.float32)


@pytest.mark.parametrize("shift", [(0, 0), (23, -7), (-31, 12), (8, 14)])
def test_estimate_offset_recovers_translation(shift: tuple[int, int]) -> None:
    prev = synthetic_body((0, 0), 1)
    curr = synthetic_body(shift, 2)
    curr[700:720, 60:80] += 500  # a hot new lesion must not pull the estimate
    off = estimate_offset(prev, curr)
    assert (off.d_row, off.d_col) == pytest.approx(shift, abs=1)
    assert off.row_scale == 1.0


def test_estimate_offset_with_row_scale() -> None:
    prev = synthetic_body((0, 0), 1)
    prev[900:] = prev[1000:].mean()  # feet well inside the field: the length is known
    curr = ndimage.affine_transform(prev, np.diag([1 / 1.05, 1.0]), order=1)
    off = estimate_offset(prev, curr, estimate_scale=True)
    assert off.row_scale == pytest.approx(1.05, abs=0.02)
    r, _ = off.apply(500.0, 100.0)
    assert r == pytest.approx(525.0, abs=3)


def test_estimate_offset_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match="prev"):
        estimate_offset(np.zeros((10, 10)), np.zeros((ROWS, COLS)))


def test_followup_registers_with_counts() -> None:
    shift = (25, -9)
    base = StudyFindings(D0, 3.0, 0.1, both_views(SITES), {"ANT": synthetic_body((0, 0), 1)})
    curr = StudyFindings(
        D0 + dt.timedelta(days=60),
        3.0,
        0.1,
        both_views(SITES, shift),
        {"ANT": synthetic_body(shift, 2)},
    )
    res = followup([base, curr]).studies[0].vs_baseline
    assert (res.offsets["ANT"].d_row, res.offsets["ANT"].d_col) == pytest.approx(shift, abs=1)
    assert not res.matchings["ANT"].new
    # no posterior counts: zero offset, so the posterior lesions (25 px down, 9 across)
    # are beyond the gate; they are paired with the anterior ones and so not new
    assert len(res.matchings["POST"].new) == 5
    assert res.n_new == 0


def test_lesion_points_from_mask() -> None:
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[10:13, 20:23] = 1
    mask[13, 23] = 1  # touches by a corner: same lesion (8-connectivity)
    mask[100:102, 50:52] = 1
    mask[200:210, 100:110] = 2  # bladder is not a lesion
    pts = lesion_points(mask, "POST")
    assert [p.area_px for p in pts] == [10.0, 4.0]
    assert (pts[1].row, pts[1].col) == (100.5, 50.5)
    assert all(p.view == "POST" for p in pts)


# --- BSTBI change, delays -------------------------------------------------------------------


def test_bstbi_change_absolute_and_relative() -> None:
    fu = followup(
        [study(0, SITES, bstbi=0.2), study(60, SITES, bstbi=0.25), study(120, SITES, bstbi=0.1)]
    )
    s1, s2 = fu.studies
    assert s1.vs_baseline.bstbi_change == pytest.approx(0.05)
    assert s1.vs_baseline.bstbi_rel_change == pytest.approx(0.25)
    assert s2.vs_baseline.bstbi_change == pytest.approx(-0.1)
    assert s2.vs_baseline.bstbi_rel_change == pytest.approx(-0.5)
    assert s2.vs_previous.bstbi_change == pytest.approx(-0.15)
    assert s2.vs_previous.bstbi_rel_change == pytest.approx(-0.6)


def test_bstbi_change_unknown_or_from_zero() -> None:
    fu = followup([study(0, [], bstbi=0.0), study(60, SITES, bstbi=None)])
    c = fu.studies[0].vs_baseline
    assert c.bstbi_change is None and c.bstbi_rel_change is None
    c = followup([study(0, [], bstbi=0.0), study(60, SITES, bstbi=0.1)]).studies[0].vs_baseline
    assert c.bstbi_change == pytest.approx(0.1) and c.bstbi_rel_change is None


def test_delay_warning_above_one_hour_only() -> None:
    fu = followup(
        [study(0, SITES, delay=2.0), study(60, SITES, delay=3.0), study(120, SITES, delay=3.5)]
    )
    assert fu.studies[0].warnings == ()  # exactly 1 h: allowed
    (w,) = fu.studies[1].warnings  # 1.5 h vs baseline; 0.5 h vs previous
    assert "1.5 h" in w and "2024-01-01" in w
    unknown = followup([study(0, SITES, delay=None), study(60, SITES)])
    assert "unknown" in unknown.studies[0].warnings[0]


# --- PCWG3 2+2 ------------------------------------------------------------------------------


def test_two_new_then_two_more_is_confirmed() -> None:
    fu = followup(
        [study(0, SITES), study(56, SITES + FAR[:2]), study(112, SITES + FAR)],
        treatment_start=D0,
    )
    assert [s.pcwg3 for s in fu.studies] == [FLAG_PENDING, FLAG_CONFIRMED]
    assert fu.studies[1].pcwg3_new == 2
    assert fu.progression and fu.progression_date == D0 + dt.timedelta(days=56)


def test_two_new_then_none_is_not_confirmed() -> None:
    fu = followup(
        [study(0, SITES), study(56, SITES + FAR[:2]), study(112, SITES + FAR[:2])],
        treatment_start=D0,
    )
    assert [s.pcwg3 for s in fu.studies] == [FLAG_PENDING, FLAG_NOT_CONFIRMED]
    assert not fu.progression and fu.progression_date is None


def test_confirmation_needs_six_weeks() -> None:
    fu = followup(
        [
            study(0, SITES),
            study(56, SITES + FAR[:2]),
            study(90, SITES + FAR),  # 34 days later: too early to decide
            study(100, SITES + FAR),  # 44 days after the early scan
        ],
        treatment_start=D0,
    )
    assert [s.pcwg3 for s in fu.studies] == [FLAG_PENDING, FLAG_PENDING, FLAG_CONFIRMED]


def test_one_new_lesion_is_no_progression() -> None:
    fu = followup([study(0, SITES), study(56, SITES + FAR[:1])], treatment_start=D0)
    assert fu.studies[0].pcwg3 == FLAG_NONE and not fu.progression


def test_late_scans_compare_with_the_first_reassessment() -> None:
    fu = followup(
        [
            study(0, SITES),
            study(120, SITES + FAR[:1]),  # after 12 weeks, 1 new: no progression
            study(200, SITES + FAR[:2]),  # 1 new vs first reassessment: none
            study(280, SITES + FAR),  # 3 new vs first reassessment
        ],
        treatment_start=D0,
    )
    assert [s.pcwg3 for s in fu.studies] == [FLAG_NONE, FLAG_NONE, FLAG_PROGRESSION]
    assert [s.pcwg3_new for s in fu.studies] == [1, 1, 3]
    assert fu.progression_date == D0 + dt.timedelta(days=280)


def test_late_first_reassessment_needs_no_confirmation() -> None:
    fu = followup([study(0, SITES), study(100, SITES + FAR[:2])], treatment_start=D0)
    assert fu.studies[0].pcwg3 == FLAG_PROGRESSION


def test_new_vs_baseline_and_vs_previous() -> None:
    fu = followup([study(0, SITES), study(60, SITES + FAR[:2]), study(120, SITES + FAR[:3])])
    s2 = fu.studies[1]
    assert (s2.vs_baseline.n_new, s2.vs_previous.n_new) == (3, 1)


def test_followup_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        followup([])
    with pytest.raises(ValueError, match="increasing"):
        followup([study(10, SITES), study(0, SITES)])
    with pytest.raises(ValueError, match="bstbi"):
        study(0, SITES, bstbi=1.5)
