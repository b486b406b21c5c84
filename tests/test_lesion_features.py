"""Candidate marks and their features for the lesion scorer (core.lesions.features)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from core.anatomy.references import midline_column
from core.anatomy.regions import index_of
from core.config import COLS, LABEL_METASTASIS, ROWS
from core.lesions.features import (
    FEATURES,
    GROUPS,
    LOG_RANGE,
    Candidates,
    candidate_truth,
    view_candidates,
)

BONE = 40.0  # uniform uptake of every skeleton pixel
SOFT = 10.0  # soft tissue
SPINE = (slice(200, 700), slice(124, 132))  # columns 124..131: mid-line 127.5
HUMERUS_RIGHT = (slice(200, 500), slice(40, 60))  # mirror of column c is 255 - c
HUMERUS_LEFT = (slice(200, 500), slice(196, 216))
MIDLINE = 127.5
# a 10 x 10 mark on the right humerus (columns 45..54) and its mirror (201..210)
MARK = (slice(300, 310), slice(45, 55))
MIRROR_MARK = (slice(300, 310), slice(201, 211))
COL = {name: i for i, name in enumerate(FEATURES)}
RATIOS = [c for c in FEATURES if c.startswith("log_peak")]
GROUP_COLS = [COL[f"group_{g}"] for g in GROUPS] + [COL["group_none"]]


def skeleton_map() -> np.ndarray:
    """Spine band in the middle, a humerus pair symmetric about column 127.5."""
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    skeleton[SPINE] = index_of("thoracic_spine")
    skeleton[HUMERUS_RIGHT] = index_of("humerus_right")
    skeleton[HUMERUS_LEFT] = index_of("humerus_left")
    return skeleton


def counts_map(skeleton: np.ndarray) -> np.ndarray:
    """Soft tissue over the body, bone at BONE on every skeleton pixel."""
    counts = np.zeros((ROWS, COLS), dtype=np.float32)
    counts[100:950, 20:236] = SOFT
    counts[skeleton != 0] = BONE
    return counts


def blank() -> tuple[np.ndarray, np.ndarray]:
    """An empty label map and an all-zero probability map."""
    return np.zeros((ROWS, COLS), dtype=np.uint8), np.zeros((ROWS, COLS), dtype=np.float32)


def one_mark(counts: np.ndarray, skeleton: np.ndarray, *, posterior: bool = False) -> np.ndarray:
    """Features of the single mark at MARK (checked to be the only one)."""
    labels, p = blank()
    labels[MARK] = LABEL_METASTASIS
    out = view_candidates(counts, skeleton, labels, p, posterior=posterior)
    assert out.features.shape == (1, len(FEATURES))
    return out.features[0]


# --- numbering and shapes ---------------------------------------------------------


def test_skeleton_midline_is_known() -> None:
    """The synthetic skeleton's mid-line is column 127.5 (the mirror is 255 - c)."""
    assert midline_column(skeleton_map()) == MIDLINE


def test_no_marks_no_rows() -> None:
    """An all-zero label map gives zero rows of the right width and no components."""
    skeleton = skeleton_map()
    labels, p = blank()
    out = view_candidates(counts_map(skeleton), skeleton, labels, p, posterior=False)
    assert isinstance(out, Candidates)
    assert out.features.shape == (0, len(FEATURES)) and out.features.dtype == np.float32
    assert out.components.shape == (ROWS, COLS) and out.components.dtype == np.int32
    assert not out.components.any()


def test_marks_are_8_connected_and_numbered_in_raster_order() -> None:
    """Diagonal neighbours are one mark; other labels (bladder) are not marks."""
    skeleton = skeleton_map()
    labels, p = blank()
    labels[300, 50] = labels[301, 51] = LABEL_METASTASIS  # touch at a corner: one mark
    labels[600, 127] = LABEL_METASTASIS  # a second, lower mark
    labels[800, 100:110] = 2  # bladder: ignored
    out = view_candidates(counts_map(skeleton), skeleton, labels, p, posterior=False)
    assert out.features.shape == (2, len(FEATURES)) and out.features.dtype == np.float32
    assert out.components[300, 50] == out.components[301, 51] == 1
    assert out.components[600, 127] == 2
    assert int((out.components > 0).sum()) == 3
    assert out.features[0, COL["log_area"]] == pytest.approx(math.log(2))
    assert out.features[1, COL["log_area"]] == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["counts", "skeleton", "labels", "p_metastasis"])
def test_wrong_shape_names_the_argument(name: str) -> None:
    """A (1024, 255) array raises ValueError naming the argument."""
    skeleton = skeleton_map()
    labels, p = blank()
    args = {"counts": counts_map(skeleton), "skeleton": skeleton, "labels": labels}
    args["p_metastasis"] = p
    args[name] = args[name][:, :-1]
    with pytest.raises(ValueError, match=name):
        view_candidates(
            args["counts"], args["skeleton"], args["labels"], args["p_metastasis"],
            posterior=False,
        )  # fmt: skip


# --- hand-computed features ------------------------------------------------------


def test_hot_mark_on_one_humerus() -> None:
    """A 10 x 10 mark at 3 x bone on one humerus, nothing opposite: every ratio is log 3.

    Bone and region references are medians (the mark is 100 of 16000 skeleton pixels
    and 100 of the pair's 12000); the ring lies on the humerus (40); the mirrored
    side is uniform bone as far as smoothing (sigma 2, truncated at 8 px) and the 3-px
    reach look, so its maximum is exactly BONE.
    """
    skeleton = skeleton_map()
    counts = counts_map(skeleton)
    counts[MARK] = 3 * BONE
    f = one_mark(counts, skeleton)
    assert f[COL["log_area"]] == pytest.approx(math.log(100))
    for name in RATIOS:
        if name != "log_peak_over_mirror":
            assert f[COL[name]] == pytest.approx(math.log(3), abs=1e-3), name
    # the mark's own side is smoothed like the mirror: a little under log 3 at its 90th
    # percentile, far from the 0 of a paired mark
    assert 1.0 < f[COL["log_peak_over_mirror"]] <= math.log(3) + 1e-3
    assert f[COL["midline_distance"]] == pytest.approx((MIDLINE - 49.5) / 100)
    # skeleton rows 200..699, mark centre row 304.5
    assert f[COL["height"]] == pytest.approx((304.5 - 200) / (699 - 200))
    assert f[COL["posterior"]] == 0.0
    assert f[COL["group_shoulder"]] == 1.0 and f[GROUP_COLS].sum() == 1.0


def test_equal_mark_on_the_other_side_reads_as_paired() -> None:
    """The same mark with its mirror equally hot: log_peak_over_mirror near 0.

    Smoothing keeps about 97% of the mirrored 10 x 10 mark's excess at its centre
    (40 + 80 * 0.97 = 117.6 against 120), and the other ratios are unchanged.
    """
    skeleton = skeleton_map()
    counts = counts_map(skeleton)
    counts[MARK] = 3 * BONE
    counts[MIRROR_MARK] = 3 * BONE
    f = one_mark(counts, skeleton)
    # both sides are smoothed alike and the mirror's 3-px maximum is taken: near 0
    assert abs(f[COL["log_peak_over_mirror"]]) < 0.05
    for name in ("log_peak_over_bone", "log_peak_over_region", "log_peak_over_ring"):
        assert f[COL[name]] == pytest.approx(math.log(3), abs=1e-3), name


def test_region_reference_is_the_pooled_pair() -> None:
    """The region level is the humerus pair's pooled median, not the marked side's.

    Right humerus 5900 px at 40 (+ the mark), left 6000 at 80: pooled, the median is
    80 (the right side alone would give 40), so a 120 mark reads log 1.5 against the
    region while the view's bone level stays 40 (the spine's 4000 px at 40 tip it).
    """
    skeleton = skeleton_map()
    counts = counts_map(skeleton)
    counts[HUMERUS_LEFT] = 2 * BONE
    counts[MARK] = 3 * BONE
    f = one_mark(counts, skeleton)
    assert f[COL["log_peak_over_region"]] == pytest.approx(math.log(120 / 80), abs=1e-3)
    assert f[COL["log_peak_over_bone"]] == pytest.approx(math.log(3), abs=1e-3)
    assert f[COL["log_peak_over_mirror"]] == pytest.approx(math.log(120 / 80), abs=0.05)
    assert f[COL["log_peak_over_ring"]] == pytest.approx(math.log(3), abs=1e-3)


def test_ring_compares_with_the_surroundings() -> None:
    """A mark off the skeleton on soft tissue: ring = soft level, group_none."""
    skeleton = skeleton_map()
    counts = counts_map(skeleton)
    labels, p = blank()
    box = (slice(800, 805), slice(80, 85))  # soft tissue, far from bone
    counts[box] = 3 * BONE
    labels[box] = LABEL_METASTASIS
    f = view_candidates(counts, skeleton, labels, p, posterior=False).features[0]
    assert f[COL["log_peak_over_ring"]] == pytest.approx(math.log(3 * BONE / SOFT), abs=1e-3)
    assert f[COL["log_peak_over_bone"]] == pytest.approx(math.log(3), abs=1e-3)
    # no region under the mark: the region level falls back to the bone level
    assert f[COL["log_peak_over_region"]] == pytest.approx(math.log(3), abs=1e-3)
    assert f[COL["group_none"]] == 1.0 and f[GROUP_COLS].sum() == 1.0
    assert f[COL["midline_distance"]] == pytest.approx((MIDLINE - 82) / 100)
    assert f[COL["height"]] == pytest.approx((802 - 200) / (699 - 200))


def test_groups_posterior_and_probabilities() -> None:
    """Spine and humerus marks get their groups; p_mean / p_max and posterior are read."""
    skeleton = skeleton_map()
    counts = counts_map(skeleton)
    labels, p = blank()
    labels[MARK] = LABEL_METASTASIS  # mark 1 (higher)
    labels[600:604, 126:130] = LABEL_METASTASIS  # mark 2, on the spine
    p[MARK] = 0.5
    p[305, 50] = 0.9  # mean (99 * 0.5 + 0.9) / 100
    p[600:604, 126:130] = 0.25
    out = view_candidates(counts, skeleton, labels, p, posterior=True)
    humerus, spine = out.features
    assert humerus[COL["group_shoulder"]] == 1.0 and humerus[GROUP_COLS].sum() == 1.0
    assert spine[COL["group_spine"]] == 1.0 and spine[GROUP_COLS].sum() == 1.0
    assert humerus[COL["p_mean"]] == pytest.approx(0.504, abs=1e-6)
    assert humerus[COL["p_max"]] == pytest.approx(0.9, abs=1e-6)
    assert spine[COL["p_mean"]] == spine[COL["p_max"]] == 0.25
    assert (out.features[:, COL["posterior"]] == 1.0).all()
    assert spine[COL["midline_distance"]] == pytest.approx(0.0)
    for name in ("log_peak_over_bone", "log_peak_over_region", "log_peak_over_ring"):
        assert spine[COL[name]] == pytest.approx(0.0, abs=1e-3), name  # at bone level
    # on the mid-line the mirror is the spine itself, smoothed with the soft tissue 4 px
    # either side: a little below 40 (40 - 2 * 30 * Phi(-2) = 38.6, log 0.036)
    assert abs(spine[COL["log_peak_over_mirror"]]) < 0.05  # its own mirror


def test_group_is_the_majority_bone_under_the_mark() -> None:
    """A mark mostly on the spine and partly on soft tissue is a spine mark."""
    skeleton = skeleton_map()
    labels, p = blank()
    labels[400:404, 122:130] = LABEL_METASTASIS  # 2 soft columns, 6 spine columns
    f = view_candidates(counts_map(skeleton), skeleton, labels, p, posterior=False).features
    assert f[0, COL["group_spine"]] == 1.0 and f[0, GROUP_COLS].sum() == 1.0


# --- clipping --------------------------------------------------------------------


def test_ratios_are_clipped_on_empty_counts() -> None:
    """Zero counts around a mark, or a hot mark on an empty field, stay finite and clipped."""
    skeleton = skeleton_map()
    labels, p = blank()
    counts = counts_map(skeleton)
    counts[MARK] = 0.0  # a cold mark on bone: every ratio at the low clip
    labels[MARK] = LABEL_METASTASIS
    hot = (slice(980, 984), slice(5, 9))  # a hot mark where there is no body at all
    counts[hot] = 1000.0
    labels[hot] = LABEL_METASTASIS
    f = view_candidates(counts, skeleton, labels, p, posterior=False).features
    assert np.isfinite(f).all()
    cold_mark, hot_mark = f
    for name in RATIOS:
        if name != "log_peak_over_mirror":  # smoothed, the cold mark borrows its rim
            assert cold_mark[COL[name]] == LOG_RANGE[0], name
    assert cold_mark[COL["log_peak_over_mirror"]] < -0.5
    assert hot_mark[COL["log_peak_over_ring"]] == LOG_RANGE[1]
    assert hot_mark[COL["log_peak_over_mirror"]] == LOG_RANGE[1]


def test_all_zero_view_is_finite() -> None:
    """A view of zeros with no skeleton: finite features; no 0/0 becomes inf or nan.

    The bone level falls back to 1.0 (and the region to it): 0 / 1 clips to the low
    end; the mirror and ring are 0 too, and 0 / 0 reads log 1 = 0.
    """
    labels, p = blank()
    labels[MARK] = LABEL_METASTASIS
    zeros = np.zeros((ROWS, COLS), dtype=np.float32)
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    f = view_candidates(zeros, skeleton, labels, p, posterior=False).features
    assert np.isfinite(f).all()
    assert f[0, COL["log_peak_over_bone"]] == f[0, COL["log_peak_over_region"]] == LOG_RANGE[0]
    assert f[0, COL["log_peak_over_mirror"]] == f[0, COL["log_peak_over_ring"]] == 0.0
    assert f[0, COL["group_none"]] == 1.0


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    level=st.sampled_from([0.0, 1e-3, 1.0, 1e4]),
    n_marks=st.integers(1, 6),
)
def test_features_are_finite_and_bounded(seed: int, level: float, n_marks: int) -> None:
    """For random marks and counts: one row per 8-connected mark, finite, ratios clipped."""
    rng = np.random.default_rng(seed)
    skeleton = skeleton_map()
    counts = (counts_map(skeleton) / BONE * level).astype(np.float32)
    counts *= rng.choice([0.0, 1.0, 5.0], size=(ROWS, COLS)).astype(np.float32)
    labels, _ = blank()
    for _ in range(n_marks):
        r, c = int(rng.integers(0, ROWS - 8)), int(rng.integers(0, COLS - 8))
        h, w = (int(x) for x in rng.integers(1, 8, size=2))
        labels[r : r + h, c : c + w] = LABEL_METASTASIS
    p = rng.random((ROWS, COLS)).astype(np.float32)
    out = view_candidates(counts, skeleton, labels, p, posterior=bool(seed % 2))
    expected, n = ndimage.label(labels == LABEL_METASTASIS, structure=np.ones((3, 3)))
    np.testing.assert_array_equal(out.components, expected)
    assert out.features.shape == (n, len(FEATURES))
    assert np.isfinite(out.features).all()
    ratios = out.features[:, [COL[name] for name in RATIOS]]
    assert (ratios >= LOG_RANGE[0]).all() and (ratios <= LOG_RANGE[1]).all()
    assert (out.features[:, GROUP_COLS].sum(axis=1) == 1.0).all()
    probs = out.features[:, [COL["p_mean"], COL["p_max"]]]
    assert (probs >= 0).all() and (probs <= 1).all()
    assert (out.features[:, COL["p_mean"]] <= out.features[:, COL["p_max"]]).all()


# --- truth of candidates ---------------------------------------------------------


def test_candidate_truth_rules() -> None:
    """>= 5 pixels, or >= 10% of the candidate, on the truth's metastasis makes it true."""
    components = np.zeros((40, 40), dtype=np.int32)
    truth = np.zeros((40, 40), dtype=np.uint8)
    components[0:10, 0:10] = 1  # 100 px, 5 on truth (5%): true by the 5-pixel rule
    truth[0, 0:5] = LABEL_METASTASIS
    components[20:22, 0:2] = 2  # 4 px, 1 on truth (25% >= 10%): true
    truth[20, 0] = LABEL_METASTASIS
    components[30:34, 0:5] = 3  # 20 px, 1 on truth (5%, < 5 px): false
    truth[30, 0] = LABEL_METASTASIS
    components[30:34, 20:25] = 4  # 20 px next to a truth lesion, none on it: false
    truth[35, 20:25] = LABEL_METASTASIS
    components[10:12, 30:33] = 5  # 6 px, all on the bladder label: false
    truth[10:12, 30:33] = 2
    result = candidate_truth(components, truth)
    assert result.dtype == np.bool_
    np.testing.assert_array_equal(result, [True, True, False, False, False])
    # a stricter share turns the 25% candidate false; the 5-pixel rule still holds
    np.testing.assert_array_equal(
        candidate_truth(components, truth, min_share=0.5), [True, False, False, False, False]
    )


def test_candidate_truth_without_candidates() -> None:
    """No components: an empty bool array, whatever the truth holds."""
    truth = np.ones((ROWS, COLS), dtype=np.uint8)
    result = candidate_truth(np.zeros((ROWS, COLS), dtype=np.int32), truth)
    assert result.dtype == np.bool_ and result.shape == (0,)
