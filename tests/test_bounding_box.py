"""core.imaging.boxes.bounding_box: the smallest rectangle holding a mask's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.imaging.boxes import bounding_box


def test_empty_mask_has_no_box() -> None:
    assert bounding_box(np.zeros((6, 5), bool)) is None


def test_box_holds_the_pixels_and_margin_is_clipped() -> None:
    m = np.zeros((6, 5), bool)
    m[2, 1] = m[3, 3] = True
    assert bounding_box(m) == (slice(2, 4), slice(1, 4))
    assert bounding_box(m, margin=2) == (slice(0, 6), slice(0, 5))


def test_box_equals_find_objects() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = rng.random((20, 30)) < 0.01
        want = ndimage.find_objects(m.astype(np.uint8))
        assert bounding_box(m) == (want[0] if want else None)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        bounding_box(np.ones((2, 2), bool), margin=-1)
    with pytest.raises(ValueError, match="2-D"):
        bounding_box(np.ones(4, bool))
