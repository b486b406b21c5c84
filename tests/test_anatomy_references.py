"""Per-pixel references: mirrored side and region median (core.anatomy.references)."""

from __future__ import annotations

import numpy as np
import pytest

from core.anatomy.references import (
    FLOOR_FRACTION,
    MIN_FLOOR,
    asymmetry,
    default_floor,
    midline_column,
    mirrored_uptake,
    region_reference,
    relative_to_region,
)
from core.anatomy.regions import index_of
from core.config import COLS, ROWS

BODY_ROWS = slice(100, 900)
BODY_COLS = slice(28, 228)  # columns 28..227: symmetric about 127.5 (255 - 28 = 227)


def skeleton_with_spine() -> np.ndarray:
    """A map whose mid-line (spine, columns 124..131) is at 127.5: the mirror is fliplr."""
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    skeleton[200:600, 124:132] = index_of("thoracic_spine")
    skeleton[200:400, 40:100] = index_of("ribs_right")
    skeleton[200:400, 156:216] = index_of("ribs_left")
    return skeleton


def flat_body(level: float = 100.0) -> np.ndarray:
    view = np.zeros((ROWS, COLS), dtype=np.float32)
    view[BODY_ROWS, BODY_COLS] = level
    return view


# --- mid-line ---------------------------------------------------------------------


def test_midline_is_the_median_column_of_the_midline_regions() -> None:
    assert midline_column(skeleton_with_spine()) == 127.5
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    skeleton[0:50, 118:123] = index_of("skull")  # columns 118..122: median 120
    skeleton[400:500, 200:210] = index_of("femur_left")  # paired: ignored
    assert midline_column(skeleton) == 120.0


def test_midline_half_pixels_and_fallbacks() -> None:
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    assert midline_column(skeleton) == (COLS - 1) / 2  # nothing at all: the centre
    skeleton[10, 100:102] = index_of("sternum")  # columns 100, 101: median 100.5
    assert midline_column(skeleton) == 100.5
    skeleton[11, 101] = index_of("sternum")  # columns 100, 101, 101: median 101
    assert midline_column(skeleton) == 101.0
    skeleton[:] = 0
    skeleton[10, [50, 60]] = index_of("humerus_right")  # no mid-line: all bone, 55
    assert midline_column(skeleton) == 55.0


# --- mirrored uptake and asymmetry --------------------------------------------------


def test_mirror_about_a_given_column() -> None:
    view = np.tile(np.arange(COLS, dtype=np.float32), (ROWS, 1))  # value = column
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    mirrored = mirrored_uptake(view, skeleton, midline=100.0, sigma=0.0)
    assert mirrored.dtype == np.float32 and mirrored.shape == (ROWS, COLS)
    cols = np.arange(COLS)
    inside = cols <= 200  # column c mirrors to 200 - c
    np.testing.assert_array_equal(mirrored[:, inside], np.tile(200 - cols[inside], (ROWS, 1)))
    assert np.isnan(mirrored[:, ~inside]).all()
    half = mirrored_uptake(view, skeleton, midline=100.5, sigma=0.0)
    assert half[5, 0] == 201.0 and half[5, 201] == 0.0 and np.isnan(half[5, 202])


def test_estimated_midline_at_127_5_is_a_left_right_flip() -> None:
    rng = np.random.default_rng(0)
    view = rng.uniform(0, 50, (ROWS, COLS)).astype(np.float32)
    mirrored = mirrored_uptake(view, skeleton_with_spine(), sigma=0.0)
    np.testing.assert_array_equal(mirrored, np.fliplr(view))


def test_symmetric_view_has_asymmetry_one() -> None:
    rng = np.random.default_rng(1)
    half = rng.uniform(1, 50, (ROWS, COLS)).astype(np.float32)
    view = half + np.fliplr(half)  # symmetric about 127.5
    ratio = asymmetry(view, skeleton_with_spine(), sigma=0.0)
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-6)


def test_symmetric_body_smoothed_has_asymmetry_one_inside() -> None:
    view = flat_body()
    view[300:500, 40:100] = 150.0  # ribs hotter than soft tissue, on both sides
    view[300:500, 156:216] = 150.0
    ratio = asymmetry(view, skeleton_with_spine())
    # away from the edges of the flat patches (the smoothing kernel reaches 8 px)
    np.testing.assert_allclose(ratio[320:480, 50:90], 1.0, rtol=1e-5)
    np.testing.assert_allclose(ratio[600:880, 40:216], 1.0, rtol=1e-5)


def test_hot_spot_ratio_on_its_side_and_inverse_on_the_other() -> None:
    view = flat_body(100.0)
    view[300:321, 60:81] = 300.0  # 21 x 21 at (310, 70): its mirror is column 185
    ratio = asymmetry(view, skeleton_with_spine())
    assert ratio[310, 70] == pytest.approx(3.0, rel=1e-5)
    assert ratio[310, 185] == pytest.approx(1.0 / 3.0, rel=1e-5)
    assert ratio[700, 70] == pytest.approx(1.0, rel=1e-5)


def test_asymmetry_floor_and_out_of_field() -> None:
    view = np.zeros((ROWS, COLS), dtype=np.float32)
    view[10, 20] = 5.0  # nothing at its mirror (column 235)
    skeleton = skeleton_with_spine()
    ratio = asymmetry(view, skeleton, sigma=0.0, floor=0.5)
    assert ratio[10, 20] == pytest.approx(10.0)
    assert ratio[10, 235] == 0.0
    off_centre = asymmetry(view, skeleton, midline=60.0, sigma=0.0, floor=0.5)
    assert np.isnan(off_centre[:, 121:]).all() and not np.isnan(off_centre[:, :121]).any()


def test_default_floor() -> None:
    skeleton = skeleton_with_spine()
    assert default_floor(flat_body(100.0), skeleton) == pytest.approx(FLOOR_FRACTION * 100.0)
    empty = np.zeros((ROWS, COLS), dtype=np.uint8)
    assert default_floor(flat_body(100.0), empty) == MIN_FLOOR


# --- region reference -------------------------------------------------------------


def test_region_median_ignores_a_lesion() -> None:
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    view = np.full((ROWS, COLS), 7.0, dtype=np.float32)  # background uptake: not bone
    skeleton[500, 120:124] = index_of("lumbar_spine")
    view[500, 120:124] = [1.0, 1.0, 1.0, 10.0]
    reference = region_reference(view, skeleton)
    assert reference.dtype == np.float32
    np.testing.assert_array_equal(reference[500, 120:124], 1.0)
    background = skeleton == 0
    assert np.isnan(reference[background]).all()
    relative = relative_to_region(view, skeleton)
    np.testing.assert_allclose(relative[500, 120:124], [1.0, 1.0, 1.0, 10.0])
    assert np.isnan(relative[background]).all()


def test_pooled_pairs() -> None:
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    view = np.zeros((ROWS, COLS), dtype=np.float32)
    skeleton[600, 60:63] = index_of("femur_right")
    view[600, 60:63] = 2.0
    skeleton[600, 190:192] = index_of("femur_left")
    view[600, 190:192] = 8.0
    skeleton[300, 126:129] = index_of("sternum")
    view[300, 126:129] = [4.0, 5.0, 9.0]
    own = region_reference(view, skeleton)
    assert own[600, 60] == 2.0 and own[600, 190] == 8.0 and own[300, 127] == 5.0
    pooled = region_reference(view, skeleton, pool_pairs=True)
    # median of 2, 2, 2, 8, 8 is 2 on both sides; the unpaired sternum is unchanged
    assert pooled[600, 60] == 2.0 and pooled[600, 191] == 2.0 and pooled[300, 128] == 5.0
    relative = relative_to_region(view, skeleton, pool_pairs=True)
    assert relative[600, 190] == pytest.approx(4.0)


def test_region_floor() -> None:
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    view = np.zeros((ROWS, COLS), dtype=np.float32)
    skeleton[10, 0:3] = index_of("skull")
    view[10, 0:3] = [0.0, 0.0, 3.0]  # median 0: the floor stands in
    assert relative_to_region(view, skeleton, floor=0.5)[10, 2] == pytest.approx(6.0)


# --- refusals ---------------------------------------------------------------------


def test_refusals() -> None:
    skeleton = skeleton_with_spine()
    view = flat_body()
    with pytest.raises(ValueError, match="view"):
        asymmetry(view.astype(np.int32), skeleton)
    with pytest.raises(ValueError, match="view"):
        region_reference(view[:512], skeleton)
    bad = view.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="view"):
        relative_to_region(bad, skeleton)
    with pytest.raises(ValueError, match="skeleton"):
        mirrored_uptake(view, skeleton.astype(np.int64))
    with pytest.raises(ValueError, match="midline"):
        mirrored_uptake(view, skeleton, midline=300.0)
    with pytest.raises(ValueError, match="sigma"):
        mirrored_uptake(view, skeleton, sigma=-1.0)
    with pytest.raises(ValueError, match="floor"):
        asymmetry(view, skeleton, floor=0.0)
