from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.imaging.crops import (
    CROP_SIZE,
    crop_origins,
    extract_crops,
    gate_mask,
    scan_probabilities,
)


def test_default_view_has_seven_half_overlapping_crops() -> None:
    assert crop_origins() == [(r, 0) for r in (0, 128, 256, 384, 512, 640, 768)]


def test_last_crop_is_flush_with_the_edge() -> None:
    assert crop_origins((10, 4), size=4, stride=4) == [(0, 0), (4, 0), (6, 0)]


@settings(max_examples=50, deadline=None)
@given(
    rows=st.integers(1, 80),
    cols=st.integers(1, 40),
    size=st.integers(1, 40),
    stride_frac=st.floats(0.01, 1.0),
)
def test_crops_cover_every_pixel_and_stay_inside(
    rows: int, cols: int, size: int, stride_frac: float
) -> None:
    if rows < size or cols < size:
        with pytest.raises(ValueError):
            crop_origins((rows, cols), size, 1)
        return
    stride = max(1, round(size * stride_frac))
    cover = np.zeros((rows, cols), dtype=int)
    origins = crop_origins((rows, cols), size, stride)
    for r, c in origins:
        assert 0 <= r <= rows - size and 0 <= c <= cols - size
        cover[r : r + size, c : c + size] += 1
    assert cover.min() >= 1
    assert len(set(origins)) == len(origins)


def test_crop_origins_refuses_a_gap() -> None:
    with pytest.raises(ValueError, match="stride"):
        crop_origins((1024, 256), 256, 300)


def test_extract_crops_cuts_the_right_pixels() -> None:
    view = np.arange(8 * 4).reshape(8, 4)
    crops = extract_crops(view, [(0, 0), (4, 0)], size=4)
    assert crops.shape == (2, 4, 4)
    assert crops[1, 0, 0] == 16 and crops[1, 3, 3] == 31
    with pytest.raises(ValueError, match="outside"):
        extract_crops(view, [(6, 0)], size=4)
    assert extract_crops(np.zeros((1024, 256)), crop_origins()).shape == (7, CROP_SIZE, CROP_SIZE)


def test_scan_probability_is_the_max_over_crops_of_both_views() -> None:
    ant = np.array([[0.1, 0.9], [0.3, 0.2]])
    post = np.array([[0.7, 0.1], [0.2, 0.4]])
    np.testing.assert_array_equal(scan_probabilities([ant, post]), [0.7, 0.9])
    np.testing.assert_array_equal(scan_probabilities([ant]), [0.3, 0.9])
    with pytest.raises(ValueError):
        scan_probabilities([])


def test_gate_keeps_labels_only_inside_crops_that_found_them() -> None:
    # 8 x 4 view, 4 x 4 crops at rows 0, 2, 4 (stride 2)
    mask = np.zeros((8, 4), dtype=np.uint8)
    mask[0, 0] = 1  # in crop 0 only (metastasis 0.9): kept
    mask[2, 1] = 2  # in crops 0, 1; crop 1 has bladder 0.6: kept
    mask[4, 2] = 1  # in crops 1, 2 (metastasis 0.2, 0.49): removed
    mask[6, 3] = 2  # in crop 2 only, bladder exactly 0.5: kept
    mask[7, 0] = 1  # in crop 2 only (metastasis 0.49): removed
    probs = np.array([[0.9, 0.1], [0.2, 0.6], [0.49, 0.5]])
    origins = crop_origins((8, 4), size=4, stride=2)
    assert origins == [(0, 0), (2, 0), (4, 0)]
    out = gate_mask(mask, probs, origins, size=4)
    expected = np.zeros((8, 4), dtype=np.uint8)
    expected[0, 0], expected[2, 1], expected[6, 3] = 1, 2, 2
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint8
    assert mask[4, 2] == 1  # the input is not modified


def test_gate_with_every_crop_positive_or_negative() -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 3, size=(1024, 256)).astype(np.uint8)
    origins = crop_origins()
    np.testing.assert_array_equal(gate_mask(mask, np.ones((7, 2)), origins), mask)
    assert not gate_mask(mask, np.zeros((7, 2)), origins).any()
    only_met = gate_mask(mask, np.tile([1.0, 0.0], (7, 1)), origins)
    np.testing.assert_array_equal(only_met, np.where(mask == 1, 1, 0))


def test_gate_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="crop_probs"):
        gate_mask(np.zeros((1024, 256)), np.zeros((6, 2)), crop_origins())
