"""The quality gate on what real exports do to a whole-body view, simulated on phantoms.

Real exported whole-body scans often have the head a few pixels from the top edge, the
feet at the bottom edge, panel borders along the edges and burned-in labels in the
corners; they are still whole-body scans. Cuts through the chest or the thighs, spot
views and noise are still refused. Only generated phantom scans are used here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from core.config import COLS, ROWS
from core.imaging.quality import QualityVerdict, assess
from core.imaging.resize import resize_bilinear
from core.phantom.generate import generate_case, to_scan
from core.scan import Scan, ScanMeta

EXPORT_8BIT = ScanMeta(source_format="png", polarity="hot-bright", bit_depth=8)
#: Share of a row's counts, of the fullest rows', where the body starts and ends.
BODY_ROW_LEVEL = 0.05
#: Top value of the 8-bit exports made here (the body stays below the ceiling).
EXPORT_TOP = 200.0


@pytest.fixture(scope="module")
def phantom() -> Scan:
    return to_scan(generate_case(3, 1))


@pytest.fixture(scope="module")
def export(phantom: Scan) -> Scan:
    """The phantom as an 8-bit export: hot = bright, body below 255."""
    return _map(phantom, lambda a: np.round(a / a.max() * EXPORT_TOP), EXPORT_8BIT)


def _map(scan: Scan, f: Callable[[np.ndarray], np.ndarray], meta: ScanMeta | None = None) -> Scan:
    views = {
        v: np.asarray(f(np.array(a, dtype=np.float64)), dtype=np.float32)
        for v, a in scan.views.items()
    }
    return Scan(views=views, meta=meta or scan.meta)


def _extent(a: np.ndarray) -> tuple[int, int]:
    """First and last row of the body (row sums above a small share of the fullest)."""
    prof = np.clip(a - np.median(a), 0, None).sum(axis=1)
    rows = np.nonzero(prof > BODY_ROW_LEVEL * np.sort(prof)[-400:].mean())[0]
    return int(rows[0]), int(rows[-1])


def _to_top(a: np.ndarray, first: int) -> np.ndarray:
    """Row ``first`` of ``a`` moved to row 0, background below."""
    out = np.zeros_like(a)
    out[: ROWS - first] = a[first:]
    return out


def _to_bottom(a: np.ndarray, last: int) -> np.ndarray:
    """Row ``last`` of ``a`` moved to the last row, background above."""
    out = np.zeros_like(a)
    out[ROWS - 1 - last :] = a[: last + 1]
    return out


def _ok(verdict: QualityVerdict) -> None:
    assert verdict.ok and verdict.code == "ok", (verdict.reason, verdict.measures)


def test_head_at_the_top_edge_passes(phantom: Scan) -> None:
    def up(a: np.ndarray) -> np.ndarray:
        return _to_top(a, _extent(a)[0] - 1)  # the vertex on row 1

    scan = _map(phantom, up)
    assert all(_extent(a)[0] <= 2 for a in scan.views.values())
    _ok(assess(scan))


def test_feet_at_the_bottom_edge_pass(phantom: Scan) -> None:
    def down(a: np.ndarray) -> np.ndarray:
        return _to_bottom(a, _extent(a)[1])  # the soles on the last row

    scan = _map(phantom, down)
    assert all(_extent(a)[1] == ROWS - 1 for a in scan.views.values())
    _ok(assess(scan))


def test_body_stretched_to_fill_the_height_passes(phantom: Scan) -> None:
    def stretch(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        return resize_bilinear(a[top : bottom + 1])

    verdict = assess(_map(phantom, stretch))
    _ok(verdict)
    assert (
        verdict.measures["ANT.top_edge_frac"] > 0 and verdict.measures["ANT.bottom_edge_frac"] > 0
    )


def test_bright_two_pixel_border_on_all_edges_passes(export: Scan) -> None:
    def border(a: np.ndarray) -> np.ndarray:
        a[:2] = a[-2:] = 255.0
        a[:, :2] = a[:, -2:] = 255.0
        return a

    verdict = assess(_map(export, border))
    _ok(verdict)
    assert verdict.measures["ANT.border_lines"] == 8


def _letters(a: np.ndarray, row: int, col: int, n: int) -> None:
    """Burn ``n`` block letters (12 x 8 px, 2-px strokes, at the ceiling) into ``a``."""
    for k in range(n):
        c = col + 10 * k
        a[row : row + 12, c : c + 2] = 255.0
        a[row : row + 12, c + 6 : c + 8] = 255.0
        a[row : row + 2, c : c + 8] = 255.0
        a[row + 5 : row + 7, c : c + 8] = 255.0


def test_burned_in_corner_labels_pass(export: Scan) -> None:
    def labels(a: np.ndarray) -> np.ndarray:
        a = _to_top(a, _extent(a)[0] - 1)  # labels beside a head at the edge
        _letters(a, 3, 4, 1)  # "R"
        _letters(a, 3, COLS - 34, 3)  # "ANT"
        _letters(a, ROWS - 16, 4, 5)  # "POST."
        return a

    verdict = assess(_map(export, labels))
    _ok(verdict)
    # the labels reach the ceiling over more pixels than a saturated plateau would
    assert verdict.measures["ANT.plateau_px"] < 150


def test_chest_blanked_is_cut_off_at_the_top(phantom: Scan) -> None:
    def blank(a: np.ndarray) -> np.ndarray:
        a[:250] = 0
        return a

    verdict = assess(_map(phantom, blank))
    assert verdict.code == "body_cut_off"
    assert (
        verdict.reason == "The anterior view is cut off at the top: the head is not in the field."
    )


def test_chest_running_off_the_top_edge_is_cut_off(phantom: Scan) -> None:
    def up(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        return _to_top(a, top + (bottom - top) // 4)  # the edge through the chest

    verdict = assess(_map(phantom, up))
    assert verdict.code == "body_cut_off" and "at the top" in verdict.reason


def test_pelvis_running_off_the_bottom_edge_is_cut_off(phantom: Scan) -> None:
    def down(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        return _to_bottom(a, top + int(0.5 * (bottom - top)))  # the edge through the pelvis

    verdict = assess(_map(phantom, down))
    assert verdict.code == "body_cut_off"
    assert verdict.reason == (
        "The anterior view is cut off at the bottom: the feet are not in the field."
    )


def test_pelvis_crop_filling_the_view_is_a_spot_view(phantom: Scan) -> None:
    def pelvis(a: np.ndarray) -> np.ndarray:
        top, bottom = _extent(a)
        h = bottom - top
        return resize_bilinear(a[top + int(0.25 * h) : top + int(0.55 * h), 20 : COLS - 20])

    verdict = assess(_map(phantom, pelvis))
    assert verdict.code == "spot_view", (verdict.reason, verdict.measures)
    assert verdict.reason == "The anterior view is a spot view: it shows only part of the body."


def test_noise_in_a_bordered_panel_stays_noise_only(phantom: Scan) -> None:
    rng = np.random.default_rng(4)

    def noise(a: np.ndarray) -> np.ndarray:
        z = rng.poisson(20.0, a.shape).astype(np.float64)
        z[:2] = z[-2:] = 255.0
        z[:, :2] = z[:, -2:] = 255.0
        return z

    verdict = assess(_map(phantom, noise, EXPORT_8BIT))
    assert verdict.code == "noise_only", (verdict.reason, verdict.measures)


def _wrapped_at(export: Scan, region: np.ndarray) -> Scan:
    """The export with counts in ``region`` 4x higher and wrapped at 256, as 8-bit
    exports of an over-full bladder do (rings of near-zero inside the hot region)."""
    ant = np.array(export.views["ANT"], dtype=np.float64)
    hot = np.maximum(ant[region], 0.8 * EXPORT_TOP) * 4.0
    ramp = np.linspace(0.0, 1.0, int(region.sum()))  # a smooth rise, as counts do
    ant[region] = np.mod(hot * (1.0 + ramp), 256.0)
    return Scan(views={**export.views, "ANT": ant.astype(np.float32)}, meta=export.meta)


def _bladder(seed: tuple[int, int] = (3, 1)) -> np.ndarray:
    return generate_case(*seed).masks["ANT"] == 2


def test_wrapped_bladder_passes_with_a_caution(export: Scan) -> None:
    verdict = assess(_wrapped_at(export, _bladder()))
    _ok(verdict)
    assert verdict.measures["ANT.wrap_px"] >= 30  # it is wrapped, and noticed
    assert verdict.measures["ANT.saturated_in_bladder"] == 1.0
    assert len(verdict.cautions) == 1
    assert "bladder" in verdict.cautions[0] and "anterior" in verdict.cautions[0]


def test_wrapped_region_in_the_chest_passes_with_a_caution_naming_it(export: Scan) -> None:
    bladder = _bladder()
    rows, cols = np.nonzero(bladder)
    shifted = np.zeros_like(bladder)
    # the same region moved up the mid-line into the chest: not where a bladder lies
    shifted[rows - 150, cols] = True
    verdict = assess(_wrapped_at(export, shifted))
    _ok(verdict)
    assert verdict.measures["ANT.saturated_in_bladder"] == 0.0
    assert len(verdict.cautions) == 1
    caution = verdict.cautions[0]
    assert caution.startswith("The anterior view is saturated at the ")
    assert any(site in caution for site in ("spine", "sternum", "ribs")), caution


def test_clean_scan_has_no_caution(export: Scan) -> None:
    assert assess(export).cautions == ()
