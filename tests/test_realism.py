"""The realism measures (core.phantom.realism) on hand-built views with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import COLS, ROWS
from core.phantom import generate_case
from core.phantom.realism import (
    REGIONS,
    find_frame,
    hot_spots,
    scan_realism,
    separability_auc,
    smooth_window,
    view_realism,
)

TOP, LENGTH, MID = 40, 680, 128


def _body(level: dict[str, float], background: float = 0.0) -> np.ndarray:
    """A 'body': a dim column 680 rows long, and each region's box filled with its level."""
    a = np.full((ROWS, COLS), background)
    a[TOP : TOP + LENGTH, MID - 60 : MID + 61] = 0.2
    for name, box in REGIONS.items():
        r0, r1 = TOP + round(box.f0 * LENGTH), TOP + round(box.f1 * LENGTH) + 1
        cols = np.abs(np.arange(COLS) - MID)
        sel = (cols <= box.dx1) if box.dx0 == 0 else (cols >= box.dx0) & (cols <= box.dx1)
        a[r0:r1, sel] = np.maximum(a[r0:r1, sel], level.get(name, 0.2))
    return a


def test_frame_finds_top_length_and_midline() -> None:
    fr = find_frame(smooth_window(_body({"lumbar spine": 1.0})))
    assert fr is not None
    assert abs(fr.top - TOP) <= 4 and abs(fr.length - LENGTH) <= 8
    assert abs(fr.midline - MID) <= 2


def test_no_frame_without_a_body() -> None:
    assert find_frame(smooth_window(np.zeros((ROWS, COLS)))) is None
    short = np.zeros((ROWS, COLS))
    short[100:300, 100:150] = 1.0  # 200 rows: a spot view, not a body
    assert find_frame(smooth_window(short)) is None


def test_region_ratios_are_levels_over_the_lumbar_spine() -> None:
    # the knees at half the lumbar level, the femoral shafts at a quarter
    view = _body({"lumbar spine": 1.0, "knees": 0.5, "femoral shafts": 0.25})
    m = view_realism(view, "ANT")
    assert m["knees"] == pytest.approx(0.5, abs=0.03)
    assert m["femoral shafts"] == pytest.approx(0.25, abs=0.03)
    assert np.isnan(m["sacroiliac joints"])  # measured on the posterior view only
    assert np.isnan(m["kidney"])


def test_hot_spots_count_and_contrast() -> None:
    w = np.full((ROWS, COLS), 0.1)
    for r in (200, 500, 800):
        w[r : r + 4, 100:104] = 0.4  # 4 x the background, 16 px each
    contrasts = hot_spots(w, floor=0.05)
    assert len(contrasts) == 3
    assert contrasts == pytest.approx([4.0] * 3, rel=0.01)
    assert hot_spots(w, floor=0.5) == []  # under the floor: not obvious uptake


def test_a_generated_normal_scan_has_every_measure() -> None:
    m = scan_realism(generate_case(9, 1, metastasis=False).views)
    assert all(np.isfinite(v) for v in m.values()), m
    assert 0.3 < m["thoracic spine"] < 1.5 and m["kidney"] > 1.0


def test_separability_auc_tells_separated_groups_and_not_mixed_ones() -> None:
    rng = np.random.default_rng(0)
    a = [{"x": float(v), "y": float(rng.normal())} for v in rng.normal(0, 1, 12)]
    b = [{"x": float(v), "y": float(rng.normal())} for v in rng.normal(6, 1, 30)]
    assert separability_auc(a, b) == 1.0
    same = [{"x": float(v), "y": float(rng.normal())} for v in rng.normal(0, 1, 30)]
    assert 0.2 < separability_auc(a, same) < 0.8
    with pytest.raises(ValueError, match="2 scans"):
        separability_auc(a[:1], b)
