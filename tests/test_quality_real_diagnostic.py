"""Real diagnostic scans pass the gate: what made it refuse them is a caution or set aside.

Real whole-body panels cut from exports were refused for things that do not make a scan
non-diagnostic: a head touching the panel's top edge with a burned-in label beside it, a
dark band along one side of the white display, a clipped bladder or injection site, and
an acquisition that stops at the lower legs. Each is rebuilt here on a phantom scan; the
refusals that are right (a cut through the pelvis, a chest cut off) stay in
tests/test_quality.py and tests/test_quality_real_exports.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.config import COLS, ROWS
from core.imaging.quality import assess
from core.phantom.generate import generate_case, to_scan
from core.scan import Scan, ScanMeta
from tests.test_quality_real_exports import _extent, _letters, _map, _to_bottom, _to_top

EXPORT_8BIT = ScanMeta(source_format="png", polarity="hot-dark", bit_depth=8)


@pytest.fixture(scope="module")
def phantom() -> Scan:
    return to_scan(generate_case(3, 1))


@pytest.fixture(scope="module")
def white(phantom: Scan) -> Scan:
    """The phantom as the paper's white display, read back as counts (255 - pixel)."""

    def display(a: np.ndarray) -> np.ndarray:
        return np.round(np.clip(a / np.percentile(a, 99.9), 0, 1) * 255)

    return _map(phantom, display, EXPORT_8BIT)


@pytest.mark.parametrize("fraction", [0.66, 0.7])
def test_scan_stopping_at_the_thighs_or_knees_passes_with_a_caution(
    phantom: Scan, fraction: float
) -> None:
    def stop(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        return _to_bottom(a, top + int(fraction * (bottom - top)))

    verdict = assess(_map(phantom, stop))
    assert verdict.ok, (verdict.reason, verdict.measures)
    assert any("stops above the feet" in c for c in verdict.cautions), verdict.cautions


@pytest.mark.parametrize("fraction", [0.75, 0.8, 0.9])
def test_scan_stopping_at_the_shins_passes(phantom: Scan, fraction: float) -> None:
    # narrow shins at the edge look like feet touching it: passed (no caution can tell)
    def stop(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        return _to_bottom(a, top + int(fraction * (bottom - top)))

    verdict = assess(_map(phantom, stop))
    assert verdict.ok, (verdict.reason, verdict.measures)


def test_acquisition_ending_inside_the_field_passes_with_a_caution(phantom: Scan) -> None:
    # the camera stopped at the shins; the exported panel goes on with background
    def stop(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        a[top + int(0.8 * (bottom - top)) :] = 0.0
        return a

    verdict = assess(_map(phantom, stop))
    assert verdict.ok, (verdict.reason, verdict.measures)
    assert verdict.measures["ANT.bottom_at_edge"] == 0.0
    assert any("stops above the feet" in c for c in verdict.cautions)


def test_whole_body_has_no_short_scan_caution(phantom: Scan) -> None:
    assert not any("feet" in c for c in assess(phantom).cautions)


@pytest.mark.parametrize("gap", [2, 4, 8])
def test_label_beside_a_head_at_the_top_edge_passes(white: Scan, gap: int) -> None:
    def label(a: np.ndarray) -> np.ndarray:
        a = _to_top(a, _extent(a)[0])  # the vertex on row 0
        head = np.nonzero(a[:30].max(axis=0) > 0.2 * a.max())[0]
        _letters(a, 2, int(head[-1]) + gap, 4)  # "ANT." right beside the head
        _letters(a, 40, int(head[0]) - gap - 8, 1)  # "R" on the other side
        return a

    verdict = assess(_map(white, label))
    assert verdict.ok, (verdict.reason, verdict.measures)
    assert verdict.measures["ANT.text_px"] > 0


def test_word_above_the_head_inside_the_field_passes(white: Scan) -> None:
    def label(a: np.ndarray) -> np.ndarray:
        top = _extent(a)[0]
        shifted = np.zeros_like(a)
        shifted[40:] = a[top : top + ROWS - 40]  # the vertex 40 rows down
        a = shifted
        _letters(a, 10, COLS // 2 - 20, 4)  # "ANT." centred above it
        return a

    verdict = assess(_map(white, label))
    assert verdict.ok, (verdict.reason, verdict.measures)
    assert verdict.measures["ANT.text_px"] > 0


@pytest.mark.parametrize(("side", "width"), [("right", 15), ("left", 6), ("bottom", 25)])
def test_dark_band_along_one_side_passes(white: Scan, side: str, width: int) -> None:
    def band(a: np.ndarray) -> np.ndarray:
        # black in the white display: the hottest value once read as counts
        if side == "right":
            a[:, COLS - width :] = 250.0
        elif side == "left":
            a[:, 3 : 3 + width] = 250.0  # a little way in from the edge
        else:
            a[ROWS - width :] = 250.0
        return a

    verdict = assess(_map(white, band))
    assert verdict.ok, (verdict.reason, verdict.measures)
    assert verdict.measures["ANT.border_lines"] >= width


def test_body_filling_the_field_is_not_a_band(phantom: Scan) -> None:
    # a pelvis spot view still fills the field: no band is cleared from it
    from core.imaging.resize import resize_bilinear

    def spot(a: np.ndarray) -> np.ndarray:
        return resize_bilinear(a[380:560, 30:226])

    verdict = assess(_map(phantom, spot))
    assert verdict.code == "spot_view"
    assert verdict.measures["ANT.border_lines"] == 0


def test_clipped_injection_site_is_named_in_a_caution(white: Scan) -> None:
    def injection(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        row = top + int(0.45 * (bottom - top))
        arm = np.nonzero(a[row] > 0.05 * a.max())[0]
        col = int(arm[-1]) - 6  # the outer edge of the body at the level of the hands
        a[row - 6 : row + 6, col - 6 : col + 6] = 255.0
        return a

    verdict = assess(_map(white, injection))
    assert verdict.ok, (verdict.reason, verdict.measures)
    named = [c for c in verdict.cautions if "saturated at the patient's left" in c]
    assert named, verdict.cautions  # the viewer's right of an anterior view


def test_head_shaved_by_a_crop_inside_the_field_passes_with_a_caution(phantom: Scan) -> None:
    # a tight crop sliced the top of the skull; the export padded the panel above it
    def shave(a: np.ndarray) -> np.ndarray:
        top = _extent(a)[0]
        out = np.zeros_like(a)
        kept = a[top + 15 : top + 15 + ROWS - 30]
        out[30 : 30 + len(kept)] = kept
        return out

    verdict = assess(_map(phantom, shave))
    assert verdict.ok, (verdict.reason, verdict.measures)
    assert any("starts abruptly at the head" in c for c in verdict.cautions)
