"""The canvas drawing becomes a mask at the view's own resolution (ui.review_panel)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.burden.lesion_review import BurdenResult, StudyImages, lesion_components
from ui.review_panel import (
    CANVAS_SCALE,
    DRAWN_ALPHA,
    TOOLS,
    canvas_mask,
    changed_pixels,
    drawn_objects,
    event_notice,
    mark_words,
    review_state_tag,
)
from workflow.review_changes import ReviewEvent


def _canvas(rows: int, cols: int, scale: int = CANVAS_SCALE) -> np.ndarray:
    """A transparent RGBA canvas showing ``rows`` x ``cols`` scan pixels."""
    return np.zeros((rows * scale, cols * scale, 4), np.uint8)


def test_nothing_drawn_is_an_empty_mask_of_the_view() -> None:
    out = canvas_mask(None, (6, 4), (2, 5))
    assert out.shape == (6, 4) and out.dtype == bool and not out.any()
    assert not canvas_mask(_canvas(3, 4), (6, 4), (2, 5)).any()


def test_a_scan_pixel_is_set_when_half_its_canvas_pixels_are_drawn() -> None:
    # The canvas shows rows 2..4 of a 6 x 4 view, 2 canvas pixels per scan pixel.
    canvas = _canvas(3, 4)
    canvas[2:4, 2:4, 3] = 255  # all four canvas pixels of scan pixel (3, 1)
    canvas[0, 6:8, 3] = 255  # two of four of scan pixel (2, 3): half, set
    canvas[4, 0, 3] = 255  # one of four of scan pixel (4, 0): not set
    out = canvas_mask(canvas, (6, 4), (2, 5))
    assert sorted(zip(*np.nonzero(out), strict=True)) == [(2, 3), (3, 1)]


def test_half_opaque_strokes_count_and_a_faint_rim_does_not() -> None:
    canvas = _canvas(1, 2)
    canvas[:, 0:2, 3] = 128  # a tool's half-opaque fill
    canvas[:, 2:4, 3] = DRAWN_ALPHA - 1  # anti-aliasing at a stroke's edge
    out = canvas_mask(canvas, (3, 2), (1, 2))
    assert out.tolist() == [[False, False], [True, False], [False, False]]


def test_a_canvas_rendered_at_another_size_is_brought_to_the_view() -> None:
    # Four canvas pixels per scan pixel (a high-density screen): still exact.
    canvas = _canvas(2, 2, scale=4)
    canvas[4:8, 0:4, 3] = 255
    assert canvas_mask(canvas, (2, 2), (0, 2)).tolist() == [[False, False], [True, False]]
    # Not a whole multiple (5 x 9 for 2 x 4 scan pixels): resampled to 2 per pixel first.
    odd = np.zeros((5, 9, 4), np.uint8)
    odd[:, :5, 3] = 255
    assert canvas_mask(odd, (2, 4), (0, 2)).tolist() == [[True, True, False, False]] * 2


@settings(max_examples=40, deadline=None)
@given(arrays(np.bool_, (5, 4)), st.integers(1, 3), st.integers(0, 3))
def test_an_enlarged_mask_comes_back_exactly(mask: np.ndarray, scale: int, top: int) -> None:
    canvas = np.zeros((5 * scale, 4 * scale, 4), np.uint8)
    canvas[:, :, 3] = np.kron(mask, np.ones((scale, scale), np.uint8)) * 255
    out = canvas_mask(canvas, (top + 7, 4), (top, top + 5))
    assert np.array_equal(out[top : top + 5], mask)
    assert not out[:top].any() and not out[top + 5 :].any()


def test_bad_inputs_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="rows must lie inside"):
        canvas_mask(None, (6, 4), (4, 7))
    with pytest.raises(ValueError, match="rows must lie inside"):
        canvas_mask(None, (6, 4), (3, 3))
    with pytest.raises(ValueError, match="image_data must be RGBA"):
        canvas_mask(np.zeros((4, 4, 3), np.uint8), (6, 4), (0, 2))


def test_the_drawing_words_and_tags() -> None:
    assert drawn_objects(None) == 0 and drawn_objects({"objects": []}) == 0
    assert drawn_objects({"objects": [{"type": "Path"}, {"type": "Polygon"}]}) == 2
    assert set(TOOLS.values()) == {"lesion", "erase", "bladder", "erase_bladder"}
    lesions = [{"id": 1, "status": "model"}, {"id": 2, "status": "removed"}]
    tag = review_state_tag(lesions, [])
    assert tag != review_state_tag(lesions, [{"id": 7}])
    assert tag != review_state_tag([{"id": 1, "status": "removed"}, lesions[1]], [])
    assert tag == review_state_tag(list(lesions), [])
    result = BurdenResult({}, 0.125, 1, 0.5, {})
    event = ReviewEvent("drew ANT lesion 3", result, stored=True)
    assert event_notice(event, 0.1, "dr.lee") == (
        "Drew ANT lesion 3: BSTBI 0.1000 -> 0.1250. Saved by dr.lee."
    )
    unreliable = ReviewEvent("marked bladder on POST (4 pixels)", result, stored=False)
    assert "(not reliable, not stored)" in event_notice(unreliable, 0.1, "demo")
    assert mark_words(None) == "Not marked reviewed yet."
    assert mark_words({"by": "dr.lee", "at": "2024-05-06T07:08:09.123Z", "metastasis": False}) == (
        "Marked reviewed by dr.lee on 2024-05-06 07:08 UTC: no metastasis."
    )


def test_what_a_drawing_would_change_follows_the_review_rule() -> None:
    # ANT 4 x 4: lesion at (0, 0), bladder at (2, 0); (1, 2) is background.
    ant = np.zeros((4, 4), np.uint8)
    ant[0, 0], ant[2, 0] = 1, 2
    masks = {"ANT": ant}
    images = StudyImages({}, {"ANT": lesion_components(ant)[0]}, (1.0, 1.0))
    lesions = [{"id": 1, "view": "ANT", "component": 1, "status": "model", "drawn": None}]

    def at(*cells: tuple[int, int]) -> np.ndarray:
        out = np.zeros((4, 4), bool)
        for cell in cells:
            out[cell] = True
        return out

    def change(tool: str, pixels: np.ndarray, edits: list[dict[str, object]] | None = None) -> int:
        return changed_pixels(
            images, masks, lesions, edits or [], view="ANT", tool=tool, pixels=pixels
        )

    assert change("lesion", at((1, 2), (2, 0), (0, 0))) == 1  # only the background pixel
    assert change("erase", at((0, 0), (1, 2))) == 1
    assert change("bladder", at((0, 0), (1, 1), (2, 0))) == 2
    assert change("erase_bladder", at((2, 0), (0, 0))) == 1
    # An earlier erase applies after drawn lesions: drawing there again changes nothing.
    erased = [{"id": 5, "view": "ANT", "action": "erase", "pixels": at((1, 2))}]
    assert change("lesion", at((1, 2)), erased) == 0
    with pytest.raises(ValueError, match="tool must be one of"):
        change("paint", at((1, 2)))
