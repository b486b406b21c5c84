"""The quality gate: phantoms pass; noise, blanks, cuts, spot views, saturation fail."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from core.config import COLS, ROWS
from core.imaging.quality import CODES, QualityVerdict, assess, measure_view
from core.imaging.resize import resize_bilinear
from core.phantom.generate import generate_case, to_scan
from core.scan import Scan, ScanMeta

EXPORT_8BIT = ScanMeta(source_format="png", polarity="hot-bright", bit_depth=8)


@pytest.fixture(scope="module")
def phantom() -> Scan:
    return to_scan(generate_case(3, 1))


def _map(scan: Scan, f: Callable[[np.ndarray], np.ndarray], meta: ScanMeta | None = None) -> Scan:
    views = {
        v: np.asarray(f(np.array(a, dtype=np.float64)), dtype=np.float32)
        for v, a in scan.views.items()
    }
    return Scan(views=views, meta=meta or scan.meta)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"pattern": "superscan"},
        {"pattern": "solitary"},
        {"age": 12},
        {"arm_position": "abducted"},
    ],
)
def test_phantom_scans_pass(kwargs: dict[str, object]) -> None:
    verdict = assess(to_scan(generate_case(11, 2, **kwargs)))  # type: ignore[arg-type]
    assert verdict.ok and verdict.code == "ok" and verdict.reason == "ok", verdict


def test_phantom_exported_as_8bit_passes(phantom: Scan) -> None:
    scan = _map(phantom, lambda a: np.round(a / a.max() * 200), EXPORT_8BIT)
    assert assess(scan).ok


def test_pure_poisson_noise_is_noise_only(phantom: Scan) -> None:
    rng = np.random.default_rng(0)
    for meta in (phantom.meta, EXPORT_8BIT):
        verdict = assess(_map(phantom, lambda a: rng.poisson(3.0, a.shape), meta))
        assert verdict.code == "noise_only" and not verdict.ok
        # white noise keeps about 1 / (4 pi sigma^2) = 0.005 of its variance when smoothed
        assert verdict.measures["ANT.structure"] < 0.02


def test_uniform_image_has_no_body(phantom: Scan) -> None:
    verdict = assess(_map(phantom, lambda a: np.full_like(a, 5.0)))
    assert verdict.code == "no_body"
    assert verdict.measures["ANT.flat"] == 1.0


def test_too_few_counts_only_for_count_images(phantom: Scan) -> None:
    rng = np.random.default_rng(1)
    low = _map(phantom, lambda a: rng.poisson(a * 0.1))
    verdict = assess(low)
    assert verdict.code == "too_few_counts"
    assert verdict.measures["ANT.total"] < 200_000
    # the same pixels in an 8-bit export say nothing about counts: structure decides
    assert assess(Scan(views=low.views, meta=EXPORT_8BIT)).code != "too_few_counts"


def test_head_cut_off(phantom: Scan) -> None:
    def cut(a: np.ndarray) -> np.ndarray:
        a[:200] = 0
        return a

    verdict = assess(_map(phantom, cut))
    assert verdict.code == "body_cut_off" and "top" in verdict.reason


def test_body_running_off_the_bottom_edge(phantom: Scan) -> None:
    # Shifted far enough that the edge cuts through the pelvis: refused. Shifted less,
    # the edge cuts through the thighs and the scan passes with a caution
    # (tests/test_quality_short_scans.py).
    def shift(a: np.ndarray) -> np.ndarray:
        return np.roll(a, 640, axis=0) * (np.arange(ROWS) >= 640)[:, None]

    verdict = assess(_map(phantom, shift))
    assert verdict.code == "body_cut_off" and "bottom" in verdict.reason, verdict.measures


def test_pelvis_spot_view(phantom: Scan) -> None:
    def spot(a: np.ndarray) -> np.ndarray:
        return resize_bilinear(a[380:560, 30:226])

    verdict = assess(_map(phantom, spot))
    assert verdict.code == "spot_view", verdict.measures


def test_flat_saturated_plateau(phantom: Scan) -> None:
    # clipped at its 95th percentile: the whole hot skeleton is flat, over 15 % of the body
    verdict = assess(_map(phantom, lambda a: np.minimum(a, np.percentile(a, 95))))
    assert verdict.code == "saturated" and verdict.measures["ANT.plateau_px"] >= 150
    assert verdict.measures["ANT.saturated_share"] > 0.15
    assert "% of the body" in verdict.reason
    # clipped at its 97th percentile (pelvis, spine and skull flat, 11 % of the body):
    # read, each site named where it is blind
    low = assess(_map(phantom, lambda a: np.minimum(a, np.percentile(a, 97))))
    assert low.ok and sum("saturated at the" in c for c in low.cautions) >= 2, low.reason
    # an export clipping the bladder and a few hot spots passes, each site named
    clipped = assess(
        _map(phantom, lambda a: np.minimum(np.round(a / a.max() * 800), 255), EXPORT_8BIT)
    )
    assert clipped.ok, clipped.reason
    assert any("bladder" in c for c in clipped.cautions)
    assert any("saturated at the" in c for c in clipped.cautions)


def test_wrap_around_in_8bit_export(phantom: Scan) -> None:
    # the bladder wrapped past 255 in both views: read, with a caution per view
    verdict = assess(_map(phantom, lambda a: np.mod(np.round(a / a.max() * 400), 256), EXPORT_8BIT))
    assert verdict.ok, verdict.reason
    assert verdict.measures["ANT.wrap_px"] >= 30
    assert [c.split(" view")[0] for c in verdict.cautions] == ["The anterior", "The posterior"]
    assert all("wrapped around" in c for c in verdict.cautions)


def test_smooth_random_blobs_are_not_a_whole_body_scan(phantom: Scan) -> None:
    rng = np.random.default_rng(2)

    def blobs(a: np.ndarray) -> np.ndarray:
        z = np.zeros_like(a)
        z.flat[rng.integers(0, z.size, 40)] = 1000.0
        return ndimage.gaussian_filter(z, 12)

    assert assess(_map(phantom, blobs, EXPORT_8BIT)).code == "not_whole_body"


def test_noise_with_two_hot_spots_is_not_a_whole_body_scan(phantom: Scan) -> None:
    rng = np.random.default_rng(3)

    def spots(a: np.ndarray) -> np.ndarray:
        z = rng.poisson(2.0, a.shape).astype(np.float64)
        z[700:720, 60:80] += 200
        z[700:720, 170:190] += 200
        return ndimage.gaussian_filter(z, 1)

    verdict = assess(_map(phantom, spots, EXPORT_8BIT))
    assert verdict.code == "not_whole_body" and "hot spots" in verdict.reason


def test_plateau_measure_hand_case() -> None:
    a = np.zeros((ROWS, COLS), dtype=np.float32)
    a[100:130, 50:80] = 255  # a 30 x 30 plateau at the 8-bit ceiling
    a[500:505, 10:15] = 255  # a smaller one, not connected
    m = measure_view(a, 8)
    assert m["plateau_px"] == 900.0
    assert m["total"] == 255.0 * (900 + 25)


def test_single_view_scan_and_bad_input(phantom: Scan) -> None:
    verdict = assess(Scan(views={"POST": phantom.views["POST"]}, meta=phantom.meta))
    assert verdict.ok and all(k.startswith("POST.") for k in verdict.measures)
    with pytest.raises(ValueError, match="scan"):
        assess(phantom.views["ANT"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        measure_view(np.zeros((10, 10)), None)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    level=st.floats(0.0, 300.0),
    bit_depth=st.sampled_from([None, 8, 16]),
)
def test_verdict_is_consistent(seed: int, level: float, bit_depth: int | None) -> None:
    rng = np.random.default_rng(seed)
    a = (rng.random((ROWS, COLS)) * level).astype(np.float32)
    verdict = assess(Scan(views={"ANT": a}, meta=ScanMeta(bit_depth=bit_depth)))
    assert isinstance(verdict, QualityVerdict)
    assert verdict.code in CODES
    assert verdict.ok == (verdict.code == "ok") == (verdict.reason == "ok")
    assert all(np.isfinite(v) for v in verdict.measures.values())
    assert not verdict.ok  # uniform random fields are never a bone scan
