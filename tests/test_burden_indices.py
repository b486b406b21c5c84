"""Hotspot count, lesion area (BSLA) and lesion uptake ratio (core.burden.indices)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.burden.indices import (
    BLADDER_MARGIN_PX,
    hotspot_count,
    lesion_area_cm2,
    lesion_uptake_ratio,
    normal_bone_reference,
)


def test_hotspot_count_uses_8_connectivity() -> None:
    m = np.array(
        [
            [1, 0, 0, 0, 1],
            [0, 1, 0, 0, 1],  # (0,0)-(1,1) touch by a corner: one hotspot
            [0, 0, 0, 0, 0],
            [1, 1, 0, 1, 0],
        ],
        dtype=np.uint8,
    )
    assert hotspot_count(m) == 4
    assert hotspot_count(np.zeros((3, 3), bool)) == 0
    assert hotspot_count(np.ones((3, 3), bool)) == 1


def test_hotspot_count_refuses_label_mask() -> None:
    with pytest.raises(ValueError, match="lesion_mask"):
        hotspot_count(np.full((2, 2), 2, np.uint8))
    with pytest.raises(ValueError, match="lesion_mask"):
        hotspot_count(np.zeros(4, bool))


def test_lesion_area() -> None:
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True  # 12 pixels of 2 mm x 3 mm = 72 mm² = 0.72 cm²
    assert lesion_area_cm2(m, (2.0, 3.0)) == pytest.approx(0.72)
    assert lesion_area_cm2(np.zeros((3, 3), bool), (1.0, 1.0)) == 0.0


@pytest.mark.parametrize("spacing", [(0.0, 1.0), (1.0, -2.0), (float("nan"), 1.0), (1.0,)])
def test_lesion_area_refuses_bad_spacing(spacing: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="pixel_spacing_mm"):
        lesion_area_cm2(np.zeros((3, 3), bool), spacing)  # type: ignore[arg-type]


def test_uptake_ratio_with_given_reference() -> None:
    counts = np.array([[10.0, 20.0], [30.0, 50.0]])
    lesion = np.array([[0, 0], [0, 1]], np.uint8)  # mean 50
    bone = np.array([[1, 1], [0, 1]], np.uint8)  # lesion pixel dropped: mean (10+20)/2 = 15
    assert lesion_uptake_ratio(counts, lesion, normal_bone_mask=bone) == pytest.approx(50 / 15)


def _phantom() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.zeros((40, 20))
    counts[5:35, 2:18] = 10.0  # soft tissue: 480 pixels
    counts[5:35, 9:11] = 40.0  # a spine: 60 pixels
    counts[10:12, 9:11] = 120.0  # a lesion on it
    counts[30:33, 3:6] = 400.0  # bladder
    lesion = counts == 120.0
    bladder = counts == 400.0
    return counts, lesion, bladder


def test_default_reference_is_the_bone() -> None:
    counts, lesion, bladder = _phantom()
    ref = normal_bone_reference(counts, lesion, bladder)
    # The spine minus the lesion: counts 40 only (soft tissue is the median, not above it),
    # and minus the grown bladder (rows 25-34 of the spine's 2 columns: 20 pixels).
    assert set(np.unique(counts[ref])) == {40.0}
    assert ref.sum() == 60 - 4 - 20
    assert lesion_uptake_ratio(counts, lesion, bladder) == pytest.approx(120 / 40)


def test_bladder_is_excluded_with_its_margin() -> None:
    counts, lesion, bladder = _phantom()
    counts[30:33, 6 : 6 + BLADDER_MARGIN_PX] = 300.0  # urine spill right of the bladder
    ref = normal_bone_reference(counts, lesion, bladder)
    assert not ref[30:33, 6 : 6 + BLADDER_MARGIN_PX].any()
    assert lesion_uptake_ratio(counts, lesion, bladder) == pytest.approx(3.0)


def test_uptake_ratio_undefined_is_nan() -> None:
    counts, lesion, bladder = _phantom()
    assert math.isnan(lesion_uptake_ratio(counts, np.zeros_like(lesion), bladder))
    assert math.isnan(lesion_uptake_ratio(counts, lesion, normal_bone_mask=np.zeros_like(lesion)))


def test_uptake_ratio_refuses_bad_counts() -> None:
    counts, lesion, _ = _phantom()
    counts[0, 0] = np.inf
    with pytest.raises(ValueError, match="counts"):
        lesion_uptake_ratio(counts, lesion)
