"""Registration of one view between two studies of a patient: where did the body move?

The body lies at a different place in the field at every visit (head 8-40 rows from
the top, midline a few columns off), so lesions of two studies are compared only after
moving the earlier ones by the offset between the two views' count images
(:func:`estimate_offset`).

The translation is found by cross-correlation
(:func:`skimage.registration.phase_cross_correlation`, whole pixels, without phase
normalisation: the whitened spectrum of a noisy count image has no clear peak). Each
image is first smoothed (Gaussian, sigma 2 px), compressed with ``sqrt`` and clipped
at its 98th percentile so that the bladder, hot lesions and injection sites, which
change between visits, weigh no more than the skeleton that does not; it is then
centred and windowed (Hann). Whole-image correlation uses every bone, so it is robust
to one changed region, unlike a landmark such as the top-of-head row. A peak beyond
:data:`MAX_SHIFT` is no placement a camera gives: the registration failed there, and
the offset is zero, as without count images. An optional row scale (different body
length in the field, e.g. another pixel spacing) is estimated from the body's extent
in rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from core.config import COLS, ROWS

#: Largest offset a registration may find, (rows, cols); beyond it the offset is zero.
MAX_SHIFT: tuple[int, int] = (160, 64)


@dataclass(frozen=True)
class Offset:
    """Geometric map from an earlier study's view to a later one's.

    ``row' = row_scale * row + d_row`` and ``col' = col + d_col`` (pixels).
    """

    d_row: float = 0.0
    d_col: float = 0.0
    row_scale: float = 1.0

    def __post_init__(self) -> None:
        """Validate the scale."""
        if not (np.isfinite(self.row_scale) and self.row_scale > 0):
            raise ValueError(f"row_scale must be a finite number > 0, got {self.row_scale!r}")

    def apply(self, row: float, col: float) -> tuple[float, float]:
        """Return ``(row, col)`` moved into the later study's frame."""
        return self.row_scale * row + self.d_row, col + self.d_col

    def inverse(self) -> Offset:
        """Return the map from the later study back to the earlier one."""
        return Offset(-self.d_row / self.row_scale, -self.d_col, 1.0 / self.row_scale)


def _prepare(img: np.ndarray) -> np.ndarray:
    """Return the image made fit for the correlation (see the module docstring)."""
    a = np.sqrt(np.clip(ndimage.gaussian_filter(np.asarray(img, dtype=np.float64), 2.0), 0, None))
    pos = a[a > 0]
    if pos.size:
        a = np.minimum(a, np.percentile(pos, 98))
    a = a - a.mean()
    return a * np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))


def _body_rows(img: np.ndarray) -> tuple[float, float, bool]:
    """Return (top, bottom, cut) rows of the body.

    Body rows: smoothed row sums above the background (their 2nd percentile) by more
    than 10 % of the 90th percentile's excess.
    """
    prof = ndimage.uniform_filter1d(np.asarray(img, dtype=np.float64).sum(axis=1), 9)
    prof = prof - np.percentile(prof, 2)
    rows = np.flatnonzero(prof > 0.1 * np.percentile(prof, 90))
    if rows.size == 0:
        return 0.0, float(img.shape[0] - 1), True
    top, bottom = float(rows[0]), float(rows[-1])
    return top, bottom, bottom >= img.shape[0] - 3 or top <= 2


def estimate_offset(prev: np.ndarray, curr: np.ndarray, *, estimate_scale: bool = False) -> Offset:
    """Estimate the offset from an earlier view's counts to a later one's.

    Cross-correlation of the prepared images (see the module docstring). With
    ``estimate_scale`` the row scale is first taken as the ratio of body lengths
    (rows from the top of the head to the lowest body row: smoothed row sums above
    their 2nd percentile by more than 10 % of the 90th percentile's excess), kept
    within [0.85, 1.15], and 1 when the body touches the top or bottom edge of
    either image (cut off: its length is unknown); the earlier image is resampled
    by that scale before the correlation.

    Args:
        prev: Earlier float (1024, 256) counts, hot = high, >= 0.
        curr: Later float (1024, 256) counts of the same view.
        estimate_scale: Also estimate a row scale.

    Returns:
        The offset (integer-pixel translation, zero when the peak lies beyond
        :data:`MAX_SHIFT` or an image is flat; ``row_scale`` 1 unless estimated).

    Raises:
        ValueError: If the shapes are not (1024, 256) or an image is not finite.
    """
    for name, img in (("prev", prev), ("curr", curr)):
        if np.shape(img) != (ROWS, COLS):
            raise ValueError(f"{name} must have shape ({ROWS}, {COLS}), got {np.shape(img)}")
        if not np.all(np.isfinite(img)):
            raise ValueError(f"{name} must hold finite counts")
    scale = 1.0
    p = np.asarray(prev, dtype=np.float64)
    if estimate_scale:
        tp, bp, cut_p = _body_rows(p)
        tc, bc, cut_c = _body_rows(np.asarray(curr, dtype=np.float64))
        if not (cut_p or cut_c) and bp > tp:
            scale = float(np.clip((bc - tc) / (bp - tp), 0.85, 1.15))
            # resample about row 0 so that row' = scale * row before the translation
            p = ndimage.affine_transform(p, np.diag([1.0 / scale, 1.0]), order=1)
    if np.ptp(p) == 0 or np.ptp(curr) == 0:  # a flat image has nothing to register
        return Offset(0.0, 0.0, scale)
    # The shift that registers the earlier image onto the later one is the offset.
    shift, _, _ = phase_cross_correlation(_prepare(curr), _prepare(p), normalization=None)
    d_row, d_col = float(shift[0]), float(shift[1])
    if abs(d_row) > MAX_SHIFT[0] or abs(d_col) > MAX_SHIFT[1]:
        return Offset(0.0, 0.0, scale)
    return Offset(d_row, d_col, scale)
