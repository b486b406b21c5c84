"""Bounding boxes of 2-D masks, as slices.

Labelling, dilation and similar scipy calls on a mask give the same result inside
the mask's bounding box as on the whole view, and a lesion or body mask fills a small
part of a 1024 x 256 view; the stages run those calls on the box only.
"""

from __future__ import annotations

import numpy as np


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """Return the rows and columns of the smallest rectangle holding a 2-D mask's pixels.

    Args:
        mask: bool 2-D array.
        margin: Pixels added on every side (>= 0), clipped to the array.

    Returns:
        ``(row_slice, col_slice)``, or None when the mask is empty.

    Raises:
        ValueError: If ``mask`` is not 2-D or ``margin`` is negative.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, m.shape[0])),
        slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, m.shape[1])),
    )
