"""Resizing a view to the canonical grid."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.config import COLS, ROWS


def resize_bilinear(a: np.ndarray, shape: tuple[int, int] = (ROWS, COLS)) -> np.ndarray:
    """Resize a 2-D image with bilinear interpolation (pixel centres, edges clamped).

    Same sampling as ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)`` without antialiasing, the usual "bilinear resize" of the
    paper's tools. Values are interpolated, not rescaled.

    Args:
        a: 2-D array, any real dtype.
        shape: Output (rows, columns), each >= 1.

    Returns:
        float32 array of ``shape``; a copy of ``a`` when the shape already matches.

    Raises:
        ValueError: If ``a`` is not a non-empty 2-D array or ``shape`` is not positive.
    """
    arr = np.asarray(a)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"a must be a non-empty 2-D array, got shape {arr.shape}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be two positive sizes, got {shape}")
    arr = arr.astype(np.float32)
    if arr.shape == tuple(shape):
        return arr.copy()
    factors = (shape[0] / arr.shape[0], shape[1] / arr.shape[1])
    out = ndimage.zoom(arr, factors, order=1, mode="nearest", grid_mode=True)
    if out.shape != tuple(shape):  # zoom rounds the output size; guard its arithmetic
        raise AssertionError(f"resize produced {out.shape}, expected {shape}")
    return out.astype(np.float32, copy=False)
