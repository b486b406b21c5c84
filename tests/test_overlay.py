"""Label masks drawn over display images (core.imaging.overlay, and ui.images which shows them)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.imaging.overlay import LABEL_COLOURS, LABEL_HEX, outline, overlay_rgb
from ui.images import overlay_images

RED = (220, 30, 30)
GREEN = (20, 160, 60)
YELLOW = (250, 200, 0)


def _block(label: int = 1) -> np.ndarray:
    """5 x 5 mask with a 3 x 3 block of ``label`` in the middle."""
    m = np.zeros((5, 5), np.uint8)
    m[1:4, 1:4] = label
    return m


GREY = np.full((5, 5), 100, np.uint8)


def test_colours_are_red_for_metastasis_and_green_for_bladder() -> None:
    assert LABEL_COLOURS == {1: RED, 2: GREEN}
    assert LABEL_HEX == {1: "#dc1e1e", 2: "#14a03c"}


def test_outline_of_a_block_is_its_ring() -> None:
    ring = outline(_block() == 1)
    expected = _block() == 1
    expected[2, 2] = False
    np.testing.assert_array_equal(ring, expected)


def test_outline_of_one_pixel_and_of_the_whole_image() -> None:
    one = np.zeros((3, 3), bool)
    one[1, 1] = True
    np.testing.assert_array_equal(outline(one), one)
    # Outside the image counts as background: the border is the outline.
    full = outline(np.ones((3, 3), bool))
    assert full.sum() == 8 and not full[1, 1]


def test_outline_refuses_a_non_2d_mask() -> None:
    with pytest.raises(ValueError, match="mask must be 2-D"):
        outline(np.ones(4, bool))


def test_without_a_mask_the_grey_image_is_repeated_in_three_channels() -> None:
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = overlay_rgb(img, None)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], img)


def test_opacity_0_leaves_the_fill_unchanged_and_draws_the_outline() -> None:
    rgb = overlay_rgb(GREY, _block(), 0.0)
    assert tuple(rgb[2, 2]) == (100, 100, 100)  # inside
    assert tuple(rgb[1, 1]) == RED and tuple(rgb[3, 2]) == RED  # the ring
    assert tuple(rgb[0, 0]) == (100, 100, 100)  # outside


def test_opacity_1_gives_the_pure_colour() -> None:
    rgb = overlay_rgb(GREY, _block(2), 1.0)
    assert (rgb[1:4, 1:4] == GREEN).all()
    assert (rgb[0] == 100).all() and (rgb[4] == 100).all()


def test_opacity_half_mixes_grey_and_colour() -> None:
    rgb = overlay_rgb(GREY, _block(), 0.5)
    # (100 + 220) / 2, (100 + 30) / 2
    assert tuple(rgb[2, 2]) == (160, 65, 65)


def test_two_labels_get_their_own_colours() -> None:
    m = np.zeros((4, 8), np.uint8)
    m[:, :4] = 1
    m[:, 4:] = 2
    rgb = overlay_rgb(np.zeros((4, 8), np.uint8), m, 1.0)
    assert (rgb[:, :4] == RED).all() and (rgb[:, 4:] == GREEN).all()


def test_values_outside_0_255_are_clipped() -> None:
    rgb = overlay_rgb(np.array([[-5, 300]]), None)
    assert rgb[0, :, 0].tolist() == [0, 255]


def test_a_highlight_is_ringed_in_yellow_two_to_three_pixels_out() -> None:
    h = np.zeros((11, 11), bool)
    h[5, 5] = True
    rgb = overlay_rgb(np.full((11, 11), 50, np.uint8), None, highlight=h)
    yellow = (rgb == YELLOW).all(axis=2)
    rows, cols = np.indices((11, 11))
    distance = abs(rows - 5) + abs(cols - 5)
    np.testing.assert_array_equal(yellow, (distance >= 2) & (distance <= 3))
    assert yellow.sum() == 8 + 12


@pytest.mark.parametrize(
    ("display", "mask", "opacity", "highlight", "message"),
    [
        (np.zeros((2, 2, 3), np.uint8), None, 0.5, None, "display must be 2-D"),
        (GREY, None, -0.01, None, "opacity"),
        (GREY, None, 1.01, None, "opacity"),
        (GREY, np.zeros((4, 5), np.uint8), 0.5, None, "mask shape"),
        (GREY, None, 0.5, np.zeros((5, 4), bool), "highlight shape"),
    ],
)
def test_refusals(
    display: np.ndarray,
    mask: np.ndarray | None,
    opacity: float,
    highlight: np.ndarray | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        overlay_rgb(display, mask, opacity, highlight=highlight)


@settings(max_examples=50, deadline=None)
@given(
    display=arrays(np.uint8, (6, 5)),
    mask=arrays(np.uint8, (6, 5), elements=st.integers(0, 2)),
    opacity=st.floats(0.0, 1.0),
)
def test_background_stays_grey_outlines_are_pure_and_fills_lie_between(
    display: np.ndarray, mask: np.ndarray, opacity: float
) -> None:
    rgb = overlay_rgb(display, mask, opacity).astype(int)
    grey = np.repeat(display[:, :, None].astype(int), 3, axis=2)
    np.testing.assert_array_equal(rgb[mask == 0], grey[mask == 0])
    for label, colour in LABEL_COLOURS.items():
        region = mask == label
        assert (rgb[outline(region)] == colour).all()
        c = np.asarray(colour)
        lo, hi = np.minimum(grey, c), np.maximum(grey, c)
        assert ((rgb[region] >= lo[region]) & (rgb[region] <= hi[region])).all()


# --- ui.images.overlay_images: the four pictures every page shows ----------------------


def test_overlay_images_orders_views_and_levels_and_draws_each_views_mask() -> None:
    display = {(v, g): GREY for v in ("POST", "ANT") for g in (2, 1)}
    pictures = overlay_images(display, {"ANT": _block()}, 1.0)
    assert list(pictures) == [("ANT", 1), ("ANT", 2), ("POST", 1), ("POST", 2)]
    assert tuple(pictures[("ANT", 2)][2, 2]) == RED
    assert (pictures[("POST", 1)] == 100).all()  # no POST mask: the image alone


def test_overlay_images_highlights_only_the_view_named() -> None:
    h = np.zeros((5, 5), bool)
    h[2, 2] = True
    display = {("ANT", 1): GREY, ("POST", 1): GREY}
    pictures = overlay_images(display, {}, 0.5, highlight={"POST": h})
    assert (pictures[("POST", 1)] == YELLOW).all(axis=2).any()
    assert not (pictures[("ANT", 1)] == YELLOW).all(axis=2).any()


@pytest.mark.parametrize(
    ("masks", "opacity", "message"),
    [
        ({"POST": _block()}, 0.5, "masks names views without display images"),
        ({}, 1.5, "opacity"),
    ],
)
def test_overlay_images_refusals(
    masks: dict[str, np.ndarray], opacity: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        overlay_images({("ANT", 1): GREY}, masks, opacity)
