from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.imaging.display import (
    GREY_LEVEL_1_PERCENTILE,
    detect_polarity,
    display_as_is,
    display_images,
    grey_level_1,
    grey_level_2,
)
from core.scan import Scan, ScanMeta
from tests.readers_helpers import phantom_counts


def _counts_with_percentile_100() -> np.ndarray:
    # 10001 values: the 99.9th percentile is sorted[9990], the 11th largest (up to float
    # rounding of 0.999 * 10000, which is why no value sits on a rounding tie).
    a = np.zeros((73, 137))
    flat = a.reshape(-1)
    flat[:10] = 200  # above the percentile -> black
    flat[10:15] = 100  # the percentile itself
    flat[20] = 20  # 255 * 0.2 = 51 -> 204
    flat[21] = 25  # 63.75 -> 64 -> 191
    flat[22] = 60  # 153 -> 102
    flat[23] = -5  # negative counts are no counts
    return a


def test_percentile_constant() -> None:
    assert GREY_LEVEL_1_PERCENTILE == 99.9


def test_grey_level_1_hand_computed() -> None:
    counts = _counts_with_percentile_100()
    assert np.percentile(counts, 99.9) == pytest.approx(100)
    g1 = grey_level_1(counts).reshape(-1)
    assert g1.dtype == np.uint8
    assert list(g1[:10]) == [0] * 10
    assert list(g1[10:15]) == [0] * 5
    assert (g1[20], g1[21], g1[22], g1[23]) == (204, 191, 102, 255)
    assert g1[100] == 255  # zero counts -> white


def test_grey_level_1_all_zero_is_all_white() -> None:
    g1 = grey_level_1(np.zeros((4, 3)))
    assert g1.shape == (4, 3)
    assert (g1 == 255).all()


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 2, 2)), np.zeros((0, 3)), np.array([[1.0, np.nan]]), np.zeros(5)]
)
def test_grey_level_1_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="counts"):
        grey_level_1(bad)


def test_grey_level_2_hand_computed() -> None:
    g1 = np.array([[0, 127, 128, 200, 255]], dtype=np.uint8)
    assert grey_level_2(g1).tolist() == [[0, 0, 1, 145, 255]]


@pytest.mark.parametrize("bad", [np.zeros((2, 2), dtype=np.int32), np.zeros(4, dtype=np.uint8)])
def test_grey_level_2_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="g1"):
        grey_level_2(bad)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (8, 5), elements=st.floats(0, 1e4)))
def test_grey_level_1_is_monotone_and_spans(counts: np.ndarray) -> None:
    g1 = grey_level_1(counts).astype(int)
    order = np.argsort(counts, axis=None, kind="stable")
    assert (np.diff(g1.reshape(-1)[order]) <= 0).all()  # more counts, never lighter
    assert (g1[counts == 0] == 255).all()
    top = np.percentile(counts, 99.9)
    if top > 0:
        assert (g1[counts >= top] == 0).all()


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, (6, 7)))
def test_grey_level_2_is_never_lighter(g1: np.ndarray) -> None:
    g2 = grey_level_2(g1)
    assert (g2 <= g1).all()
    assert (g2[g1 == 255] == 255).all()
    assert (g2[g1 <= 127] == 0).all()


def _scan(views: dict[str, np.ndarray], **meta: object) -> Scan:
    return Scan(
        views={k: v.astype(np.float32) for k, v in views.items()},
        meta=ScanMeta(**meta),  # type: ignore[arg-type]
    )


def test_display_images_windows_counts() -> None:
    ant = phantom_counts(top=400)
    post = phantom_counts(top=100, seed=1)
    images = display_images(_scan({"ANT": ant, "POST": post}))
    assert list(images) == [("ANT", 1), ("ANT", 2), ("POST", 1), ("POST", 2)]
    for key, img in images.items():
        assert img.dtype == np.uint8 and img.shape == (1024, 256), key
    assert np.array_equal(images[("ANT", 1)], grey_level_1(ant))
    assert np.array_equal(images[("POST", 2)], grey_level_2(grey_level_1(post)))
    # the two views are windowed each on its own: both reach black
    assert images[("ANT", 1)].min() == 0 and images[("POST", 1)].min() == 0


def test_display_images_single_view() -> None:
    images = display_images(_scan({"POST": phantom_counts()}))
    assert set(images) == {("POST", 1), ("POST", 2)}


def test_display_images_uses_paper_display_as_is() -> None:
    display = 255 - phantom_counts(top=120).astype(np.uint8)  # darkest pixel is 135
    scan = _scan({"ANT": 255 - display.astype(np.float32)}, display_is_grey_level_1=True)
    images = display_images(scan)
    assert np.array_equal(images[("ANT", 1)], display)  # not re-windowed to reach 0
    assert images[("ANT", 1)].min() == 135
    assert np.array_equal(images[("ANT", 2)], grey_level_2(display))


def test_display_as_is_rounds_and_clips() -> None:
    out = display_as_is(np.array([[0.0, 0.4, 0.5, 254.6, 300.0, -3.0]]))
    assert out.tolist() == [[255, 255, 254, 0, 0, 255]]


def test_detect_polarity_both_ways() -> None:
    bright = phantom_counts().astype(np.uint8)
    guess = detect_polarity(bright)
    assert guess.polarity == "hot-bright" and guess.confident and guess.background == 0
    dark = 255 - bright
    guess = detect_polarity(dark)
    assert guess.polarity == "hot-dark" and guess.confident and guess.background == 255


def test_detect_polarity_16_bit_uses_own_range() -> None:
    counts = phantom_counts(top=3000).astype(np.uint16)
    assert detect_polarity(counts).polarity == "hot-bright"
    assert detect_polarity((4095 - counts).astype(np.uint16)).polarity == "hot-dark"


def test_detect_polarity_flags_disagreement() -> None:
    # white border, but most pixels black: the most common value decides, not confident
    a = np.zeros((100, 40), dtype=np.uint8)
    a[:4], a[-4:], a[:, :4], a[:, -4:] = 255, 255, 255, 255
    a[50, 20] = 128
    guess = detect_polarity(a)
    assert guess.polarity == "hot-bright" and not guess.confident


def test_detect_polarity_rejects_flat() -> None:
    with pytest.raises(ValueError, match="flat"):
        detect_polarity(np.full((10, 10), 7, dtype=np.uint8))
