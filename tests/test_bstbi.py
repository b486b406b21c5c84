"""BSTBI of one display image and of a scan (core.burden.indices)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.burden.indices import BSTBI_K, bstbi, bstbi_images, scan_bstbi

# Worked 4x4 example. Heat = 255 - display.
#   display                 heat
#   255 255 255 255         0   0   0   0
#   255  55 155 255         0 200 100   0      L = {(1,1), (1,2)}: S_L = 200 + 100 = 300
#   255 105 255 255         0 150   0   0      other heat (2,1): 150
#   255 255   5 255         0   0 250   0      B = {(3,2)}: S_B = 250
# S_R = 300 + 150 + 250 = 700
# BSTBI = 5 * 300 / (4 * 300 + 700 - 250) = 1500 / 1650 = 10 / 11
DISPLAY = np.array(
    [[255, 255, 255, 255], [255, 55, 155, 255], [255, 105, 255, 255], [255, 255, 5, 255]],
    dtype=np.uint8,
)
LESION = np.zeros((4, 4), dtype=bool)
LESION[1, 1] = LESION[1, 2] = True
BLADDER = np.zeros((4, 4), dtype=bool)
BLADDER[3, 2] = True


def test_worked_example() -> None:
    assert bstbi(DISPLAY, LESION, BLADDER) == pytest.approx(10 / 11, abs=1e-15)
    assert BSTBI_K == 5.0


def test_worked_example_with_other_k() -> None:
    # K = 2: 2 * 300 / (1 * 300 + 450) = 600 / 750 = 0.8
    assert bstbi(DISPLAY, LESION, BLADDER, k=2.0) == pytest.approx(0.8)


def test_bladder_wins_over_lesion() -> None:
    both = LESION.copy()
    both[3, 2] = True  # the bladder pixel is also marked lesion
    assert bstbi(DISPLAY, both, BLADDER) == pytest.approx(10 / 11)


def test_integer_masks_accepted() -> None:
    assert bstbi(DISPLAY, LESION.astype(np.uint8), BLADDER.astype(np.int64)) == pytest.approx(
        10 / 11
    )


def test_no_lesion_gives_zero() -> None:
    assert bstbi(DISPLAY, np.zeros((4, 4), bool), BLADDER) == 0.0


def test_all_non_bladder_pixels_lesion_gives_one() -> None:
    assert bstbi(DISPLAY, ~BLADDER, BLADDER) == 1.0


def test_zero_denominator_gives_zero() -> None:
    white = np.full((4, 4), 255, dtype=np.uint8)
    assert bstbi(white, LESION, BLADDER) == 0.0
    # Everything bladder: the lesion pixels are bladder, no lesion heat is left.
    assert bstbi(DISPLAY, LESION, np.ones((4, 4), bool)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"display": DISPLAY.astype(np.float32)}, "display"),
        ({"display": DISPLAY[0]}, "display"),
        ({"lesion_mask": LESION[:3]}, "lesion_mask"),
        ({"bladder_mask": BLADDER.astype(np.uint8) * 2}, "bladder_mask"),
        ({"lesion_mask": LESION.astype(np.float64)}, "lesion_mask"),
        ({"k": 0.0}, "k"),
        ({"k": float("nan")}, "k"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], word: str) -> None:
    args: dict[str, object] = {
        "display": DISPLAY,
        "lesion_mask": LESION,
        "bladder_mask": BLADDER,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        bstbi(**args)  # type: ignore[arg-type]


def test_scan_bstbi_is_the_mean_of_four() -> None:
    per_image = {("ANT", 1): 0.1, ("ANT", 2): 0.2, ("POST", 1): 0.3, ("POST", 2): 0.4}
    assert scan_bstbi(per_image) == pytest.approx(0.25)
    assert scan_bstbi([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.25)
    assert scan_bstbi({("ANT", 1): 0.2, ("ANT", 2): 0.4}) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        [],
        [0.1, 0.2, 0.3],
        [0.1, 0.2, 0.3, 1.5],
        {("ANT", 1): 0.1},
        {("LAT", 1): 0.1, ("LAT", 2): 0.1},
        {("ANT", 3): 0.1, ("ANT", 1): 0.1},
    ],
)
def test_scan_bstbi_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="per_image"):
        scan_bstbi(bad)  # type: ignore[arg-type]


def test_bstbi_images_uses_label_masks() -> None:
    label = np.zeros((4, 4), dtype=np.uint8)
    label[LESION] = 1
    label[BLADDER] = 2
    displays = {(v, lvl): DISPLAY for v in ("ANT", "POST") for lvl in (1, 2)}
    masks = {"ANT": label, "POST": np.zeros((4, 4), np.uint8)}
    out = bstbi_images(displays, masks)
    assert out[("ANT", 1)] == out[("ANT", 2)] == pytest.approx(10 / 11)
    assert out[("POST", 1)] == out[("POST", 2)] == 0.0
    assert scan_bstbi(out) == pytest.approx(5 / 11)


def test_bstbi_images_refuses_missing_or_bad_mask() -> None:
    displays = {("POST", 1): DISPLAY}
    with pytest.raises(ValueError, match="POST"):
        bstbi_images(displays, {"ANT": np.zeros((4, 4), np.uint8)})
    with pytest.raises(ValueError, match="uint8"):
        bstbi_images(displays, {"POST": np.zeros((4, 4), np.int32)})
    with pytest.raises(ValueError, match="labels"):
        bstbi_images(displays, {"POST": np.full((4, 4), 3, np.uint8)})


# --- invariants -------------------------------------------------------------------

SHAPE = st.tuples(st.integers(1, 12), st.integers(1, 12))


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = draw(SHAPE)
    display = draw(hnp.arrays(np.uint8, shape))
    lesion = draw(hnp.arrays(np.bool_, shape))
    bladder = draw(hnp.arrays(np.bool_, shape))
    return display, lesion, bladder


@settings(max_examples=60, deadline=None)
@given(cases())
def test_in_unit_interval(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    value = bstbi(*case)
    assert 0.0 <= value <= 1.0


@settings(max_examples=60, deadline=None)
@given(cases(), st.data())
def test_hotter_lesion_never_lowers(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    display, lesion, bladder = case
    inside = np.argwhere(lesion & ~bladder)
    if len(inside) == 0:
        return
    r, c = inside[data.draw(st.integers(0, len(inside) - 1))]
    hotter = display.copy()
    hotter[r, c] = data.draw(st.integers(0, int(display[r, c])))
    assert bstbi(hotter, lesion, bladder) >= bstbi(display, lesion, bladder)


@settings(max_examples=60, deadline=None)
@given(cases(), st.data())
def test_larger_lesion_never_lowers(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    display, lesion, bladder = case
    outside = np.argwhere(~lesion)
    if len(outside) == 0:
        return
    r, c = outside[data.draw(st.integers(0, len(outside) - 1))]
    larger = lesion.copy()
    larger[r, c] = True
    assert bstbi(display, larger, bladder) >= bstbi(display, lesion, bladder)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_unchanged_by_flips(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    display, lesion, bladder = case
    value = bstbi(display, lesion, bladder)
    for flip in (np.fliplr, np.flipud):
        assert bstbi(flip(display), flip(lesion), flip(bladder)) == value


def test_invariant_tests_can_fail() -> None:
    # A lesion pixel made hotter must raise the index when other heat exists.
    hotter = DISPLAY.copy()
    hotter[1, 2] = 0
    assert bstbi(hotter, LESION, BLADDER) > bstbi(DISPLAY, LESION, BLADDER)
