"""Skeletal region of a lesion from its position in the body's extent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.imaging.regions import COARSE_GROUPS, REGIONS, BodyBox, body_box, skeletal_region
from core.phantom.generate import generate_case

BOX = BodyBox(top=0.0, bottom=1000.0, centre_col=128.0)


@pytest.mark.parametrize(
    ("view", "row", "col", "region"),
    [
        ("ANT", 50, 128, "skull"),
        ("ANT", 150, 128, "cervical_spine"),
        ("POST", 250, 128, "thoracic_spine"),
        ("ANT", 250, 128, "sternum"),  # f 0.25 on the mid-line: sternum on ANT only
        ("ANT", 300, 128 + 50, "ribs"),  # d 0.05
        ("POST", 220, 128 - 95, "humerus"),  # d 0.095 beside the upper chest
        ("ANT", 380, 130, "lumbar_spine"),
        ("ANT", 470, 128 + 30, "pelvis"),
        ("ANT", 500, 128 + 75, "femur"),  # hip level, lateral: femoral neck
        ("ANT", 600, 128 + 60, "femur"),
        ("ANT", 560, 128 + 140, "arm"),  # hand beside the thigh
        ("ANT", 730, 128 + 40, "knee"),
        ("ANT", 850, 128 + 40, "lower_leg"),
        ("ANT", 980, 128 + 40, "foot"),
    ],
)
def test_hand_placed_positions(view: str, row: float, col: float, region: str) -> None:
    assert skeletal_region(view, row, col, BOX) == region


def test_refusals() -> None:
    with pytest.raises(ValueError, match="view"):
        skeletal_region("LAT", 10, 10, BOX)
    with pytest.raises(ValueError, match="finite"):
        skeletal_region("ANT", float("nan"), 10, BOX)
    with pytest.raises(ValueError, match="height"):
        skeletal_region("ANT", 10, 10, BodyBox(5.0, 5.0, 128.0))


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(["ANT", "POST"]),
    st.floats(-100, 1100),
    st.floats(-50, 300),
)
def test_always_a_known_region_and_mirror_symmetric(view: str, row: float, col: float) -> None:
    region = skeletal_region(view, row, col, BOX)
    assert region in REGIONS and region in COARSE_GROUPS
    assert skeletal_region(view, row, 2 * BOX.centre_col - col, BOX) == region


def test_body_box_of_a_block() -> None:
    counts = np.zeros((1024, 256), dtype=np.float32)
    counts[100:900, 60:200] = 100.0
    box = body_box(counts)
    # the 2-px Gaussian smoothing widens the edges by about two sigma
    assert abs(box.top - 100) <= 5 and abs(box.bottom - 899) <= 5
    assert box.centre_col == pytest.approx(129.5, abs=0.5)
    empty = body_box(np.zeros((1024, 256), dtype=np.float32))
    assert empty.height == 1023


def test_agrees_with_phantom_truth() -> None:
    """Coarse groups agree on >= 85 % of visible lesions (seed 1, not used for tuning)."""
    hits = total = 0
    for i in range(4):
        case = generate_case(1, i, pattern="multiple")
        for view in ("ANT", "POST"):
            box = body_box(case.views[view])
            for les in case.truth["lesions"]:
                if les["mask_pixels"][view] == 0:
                    continue
                row, col = les["centre_px"][view]
                got = skeletal_region(view, row, col, box)
                total += 1
                hits += COARSE_GROUPS[got] == COARSE_GROUPS[les["region"]]
    assert total >= 20
    assert hits / total >= 0.85
