"""Registration of one view between two studies (core.burden.registration)."""

from __future__ import annotations

import numpy as np
import pytest

from core.burden.registration import MAX_SHIFT, Offset, estimate_offset
from core.config import COLS, ROWS


def blobs(d_row: int = 0, d_col: int = 0) -> np.ndarray:
    """Three Gaussian spots (a skull, a pelvis, a knee) moved by whole pixels."""
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(np.float64)
    img = np.zeros((ROWS, COLS))
    for row, col, sigma, height in ((150, 128, 4, 50), (500, 110, 6, 80), (800, 150, 3, 40)):
        img += height * np.exp(-((r - row - d_row) ** 2 + (c - col - d_col) ** 2) / (2 * sigma**2))
    return img


def test_known_shift_is_recovered_in_the_later_frame() -> None:
    # The later study shows every spot 12 rows lower and 5 columns to the left: the
    # offset maps the earlier positions there, (150, 128) -> (162, 123).
    off = estimate_offset(blobs(), blobs(12, -5))
    assert (off.d_row, off.d_col, off.row_scale) == (12.0, -5.0, 1.0)
    assert off.apply(150.0, 128.0) == (162.0, 123.0)
    assert off.inverse().apply(162.0, 123.0) == (150.0, 128.0)


def test_flat_image_gives_zero_offset() -> None:
    assert estimate_offset(np.zeros((ROWS, COLS)), blobs(3, 3)) == Offset()
    assert estimate_offset(blobs(), np.full((ROWS, COLS), 7.0)) == Offset()


@pytest.mark.parametrize("shift", [(0, MAX_SHIFT[1] + 20), (MAX_SHIFT[0] + 40, 0)])
def test_peak_beyond_the_largest_shift_gives_zero_offset(shift: tuple[int, int]) -> None:
    assert estimate_offset(blobs(), blobs(*shift)) == Offset()


def test_bad_images_are_refused() -> None:
    with pytest.raises(ValueError, match="curr"):
        estimate_offset(blobs(), np.zeros((ROWS, COLS - 1)))
    bad = blobs()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="prev"):
        estimate_offset(bad, blobs())
