"""The classical baseline: hot spots on a hand-made skeleton, the bladder rule, phantoms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS
from core.evaluation.baseline import (
    HOT_RATIO,
    PELVIS_ROWS,
    baseline_scan,
    baseline_view,
    mirror_axis,
)
from core.evaluation.metrics import roc_auc
from core.phantom.generate import generate_case, to_scan

TOP, BOTTOM, MID = 50, 950, 128  # body rows and midline column of the hand-made view
HOT_SPOT = (slice(300, 307), slice(92, 99))  # on the left "femur" stripe, off the midline


def _skeleton() -> np.ndarray:
    """Noise-free counts: soft tissue, a spine and two symmetric long-bone stripes."""
    v = np.zeros((ROWS, COLS))
    v[TOP:BOTTOM, MID - 58 : MID + 58] = 5.0
    v[100:900, MID - 5 : MID + 5] = 30.0  # spine
    v[100:900, 90:101] = 30.0  # left stripe, columns mirror 155..165 about 127.5
    v[100:900, 155:166] = 30.0
    return v


def _bladder_row() -> int:
    return TOP + int(np.mean(PELVIS_ROWS) * (BOTTOM - 1 - TOP))


def test_plain_skeleton_has_no_hot_spot() -> None:
    found = baseline_view(_skeleton())
    assert not found.hot and found.hotspots == 0
    assert found.score < HOT_RATIO
    assert not (found.mask == LABEL_METASTASIS).any()


def test_hot_spot_on_a_bone_is_flagged_where_it_is() -> None:
    v = _skeleton()
    v[HOT_SPOT] = 90.0  # three times its bone
    found = baseline_view(v)
    assert found.hot and found.hotspots == 1 and found.score > 2.0
    hot = found.mask == LABEL_METASTASIS
    assert hot[HOT_SPOT].all()
    rows, cols = np.nonzero(hot)
    assert (rows.min(), cols.min()) >= (295, 87)
    assert rows.max() <= 311 and cols.max() <= 103


def test_hot_spot_on_the_spine_is_flagged() -> None:
    v = _skeleton()
    v[280:287, MID - 4 : MID + 3] = 90.0  # a vertebra: its own mirror, judged along the spine
    found = baseline_view(v)
    assert found.hot and found.mask[283, MID] == LABEL_METASTASIS


def test_symmetric_uptake_is_not_flagged() -> None:
    v = _skeleton()
    v[HOT_SPOT] = 90.0
    v[300:307, 156:163] = 90.0  # the mirror image: joint-like, symmetric
    assert not baseline_view(v).hot


def test_lone_noisy_pixel_is_below_the_minimum_area() -> None:
    v = _skeleton()
    v[300, 95] = 180.0  # after smoothing only this pixel is above HOT_RATIO x its bone
    found = baseline_view(v)
    assert not found.hot and not (found.mask == LABEL_METASTASIS).any()
    v[300:302, 95:97] = 180.0  # four such pixels together are a hot spot
    assert baseline_view(v).hot


def test_bladder_rule_removes_a_bladder_like_blob() -> None:
    v = _skeleton()
    rr, cc = np.mgrid[:ROWS, :COLS]
    row = _bladder_row()
    blob = (rr - row) ** 2 + (cc - MID) ** 2 <= 15**2
    v[blob] = 150.0  # hotter than any bone, on the midline, low in the pelvis
    found = baseline_view(v)
    assert not found.hot and found.score < HOT_RATIO
    bladder = found.mask == LABEL_BLADDER
    inter = np.count_nonzero(bladder & blob)
    assert 2 * inter / (bladder.sum() + blob.sum()) > 0.9
    assert found.bladder_score > 4.0
    # the same blob off the midline is no bladder: it is a hot spot
    shifted = _skeleton()
    shifted[np.roll(blob, 45, axis=1)] = 150.0
    assert baseline_view(shifted).hot


def test_scan_combines_views() -> None:
    hot = _skeleton()
    hot[HOT_SPOT] = 90.0
    result = baseline_scan({"ANT": _skeleton(), "POST": hot})
    assert result.metastasis and not result.views["ANT"].hot
    assert result.score_metastasis == result.views["POST"].score
    assert set(result.masks) == {"ANT", "POST"}
    assert result.masks["POST"].dtype == np.uint8


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2-D"):
        baseline_view(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        baseline_view(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="at least one view"):
        baseline_scan({})
    with pytest.raises(ValueError, match="1-D"):
        mirror_axis(np.zeros((2, 2)))


def test_empty_view_has_no_finding() -> None:
    found = baseline_view(np.zeros((ROWS, COLS)))
    assert not found.hot and found.score == 0.0 and not found.mask.any()


@settings(max_examples=30, deadline=None)
@given(
    # Counts: zero or at least 1e-3 (products of subnormal floats underflow to 0).
    half=st.lists(st.just(0.0) | st.floats(1e-3, 100.0), min_size=1, max_size=20),
    left=st.integers(0, 30),
    centre=st.booleans(),
)
def test_mirror_axis_of_a_symmetric_profile(half: list[float], left: int, centre: bool) -> None:
    """A profile symmetric about some axis is symmetric about the axis found."""
    body = half + ([7.0] if centre else []) + half[::-1]
    p = np.array([0.0] * left + body + [0.0] * 5)
    m = mirror_axis(p)
    j = np.arange(p.size)
    src = m - j
    ok = (src >= 0) & (src < p.size)
    mirrored = np.zeros_like(p)
    mirrored[ok] = p[src[ok]]
    np.testing.assert_allclose(mirrored, p)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.05, 50.0))
def test_result_does_not_depend_on_the_count_level(scale: float) -> None:
    """Every rule is a ratio, so more injected activity changes nothing."""
    v = _skeleton()
    v[HOT_SPOT] = 90.0
    a, b = baseline_view(v), baseline_view(v * scale)
    assert b.score == pytest.approx(a.score, rel=1e-9)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_phantom_scans_rank_metastatic_above_clean() -> None:
    """20 noisy phantom scans of the training seed (1) rank by the baseline's score."""
    truth, scores = [], []
    for i in range(20):
        case = generate_case(1, i)
        truth.append(any((m == LABEL_METASTASIS).any() for m in case.masks.values()))
        scores.append(baseline_scan(to_scan(case).views).score_metastasis)
    assert 3 <= sum(truth) <= 17
    assert roc_auc(truth, scores) >= 0.75
