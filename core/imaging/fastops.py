"""Faster stand-ins for a few numpy/scipy calls of the per-scan CPU stages, same results.

Each function here returns exactly (bit for bit) what the call it replaces returns on
the inputs the stages give it; ``tests/test_stage_speedups_exact.py`` checks that
against the numpy/scipy call on random and hand-made arrays.

* :func:`percentile` and :func:`median`: ``np.percentile`` (method ``"linear"``) and
  ``np.median`` partition the whole array at three or four positions, which takes
  about 1 to 3.5 ms on a 1024 x 256 view depending on its values. Here the two order
  statistics needed are bracketed from a sorted sample and picked from the few values
  inside the bracket (:func:`_order_pair`); the interpolation is numpy's own formula.
* :func:`bounding_box`: the smallest rectangle holding a mask's pixels, so labelling,
  hole filling and dilation can run on that part of a 1024 x 256 view only.
* :func:`fill_holes`: ``ndimage.binary_fill_holes`` grows the border's background one
  pixel per pass; labelling the background once (same 4-connectivity) is faster.
* :func:`gaussian_passes`: ``ndimage.gaussian_filter`` of a 2-D image whose top and
  bottom rows are background (a whole-body view above the head and below the feet)
  filters those rows once, as one line, instead of one by one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _values(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("values must not be empty")
    return x


#: Arrays up to this size are partitioned directly; larger ones are bracketed first.
_SMALL = 8192
#: About this many values of a large array are sorted to bracket an order statistic.
_SAMPLE = 2048
#: Sample ranks on either side of the wanted one kept inside the bracket (the sample
#: quantile's standard error is at most sqrt(_SAMPLE) / 2 ~ 23 ranks).
_SAMPLE_MARGIN = 64


def _order_pair(x: np.ndarray, k: int) -> tuple[float, float]:
    """Return the k-th and (k+1)-th smallest of ``x`` (0-based; the k-th twice at the end).

    ``np.partition`` at those two positions, which numpy's median and percentile do (with
    more positions), is slow on some arrays (milliseconds on a 1024 x 256 view, either
    with one position or with several, depending on the values). Here a sorted sample
    brackets the two values, two counts check that the bracket holds them, and only the
    values inside it are sorted; the partition remains for small arrays and for a
    bracket that misses (then correct, only slower).
    """
    n = x.size
    last = k + 1 if k + 1 < n else k
    if n > _SMALL:
        # An odd stride, so a sample of an image does not fall on a few columns only.
        step = (n // _SAMPLE) | 1
        sample = np.sort(x[::step])
        pos = round(k / max(n - 1, 1) * (sample.size - 1))
        i_lo, i_hi = pos - _SAMPLE_MARGIN, pos + _SAMPLE_MARGIN
        lo = float(sample[i_lo]) if i_lo > 0 else -np.inf
        hi = float(sample[i_hi]) if i_hi < sample.size - 1 else np.inf
        below = int(np.count_nonzero(x < lo)) if i_lo > 0 else 0
        upto = int(np.count_nonzero(x <= hi)) if i_hi < sample.size - 1 else n
        if below <= k and last < upto:
            if lo == hi:
                return lo, lo
            inside = np.sort(x[(x >= lo) & (x <= hi)])
            return float(inside[k - below]), float(inside[last - below])
    part = np.partition(x, [k, last] if last != k else k)
    return float(part[k]), float(part[last])


def percentile(values: np.ndarray, q: float) -> float:
    """Return ``float(np.percentile(values, q))`` (linear method), computed faster.

    Args:
        values: Finite real values, any shape (flattened); compared as float64.
        q: Percentile in [0, 100].

    Returns:
        The same float as ``np.percentile`` on the float64 values.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q!r}")
    x = _values(values)
    n = x.size
    # numpy's steps for method "linear": quantile q / 100, virtual index (n - 1) * quantile,
    # its floor and fraction, then _lerp(previous, next, fraction).
    quantile = float(np.true_divide(q, 100))
    virtual = (n - 1) * quantile
    if virtual >= n - 1:
        return float(x.max())
    previous = float(np.floor(virtual))
    gamma = virtual - previous
    a, b = _order_pair(x, int(previous))
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1 - gamma)
    return a + diff * gamma


def median(values: np.ndarray) -> float:
    """Return ``float(np.median(values))``, computed faster.

    Args:
        values: Finite real values, any shape (flattened); compared as float64.

    Returns:
        The same float as ``np.median`` on the float64 values: the middle value, or
        the mean of the two middle values (``(a + b) / 2``, as ``np.mean`` computes it).

    Raises:
        ValueError: If ``values`` is empty.
    """
    x = _values(values)
    n = x.size
    if n % 2:
        return _order_pair(x, (n - 1) // 2)[0]
    a, b = _order_pair(x, n // 2 - 1)
    return (a + b) / 2


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


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Return ``ndimage.binary_fill_holes(mask)`` for a 2-D mask, computed faster.

    A hole is a background part (4-connected, as ``binary_fill_holes`` grows it) that
    does not reach the array's border. Only the mask's bounding box is labelled: every
    background pixel outside it reaches the border in a straight line, and a path
    from inside the box to the border leaves the box through its edge.

    Args:
        mask: bool (or 0/1) 2-D array.

    Returns:
        bool array of ``mask``'s shape: the mask with its holes filled.

    Raises:
        ValueError: If ``mask`` is not 2-D.
    """
    m = np.asarray(mask, dtype=bool)
    box = bounding_box(m)
    out = np.zeros(m.shape, dtype=bool)
    if box is None:
        return out
    crop = m[box]
    labels, n = ndimage.label(~crop)
    inside = np.ones(n + 1, dtype=bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        inside[edge] = False
    inside[0] = True  # label 0: the mask's own pixels
    out[box] = inside[labels]
    return out


#: ``ndimage.gaussian_filter`` modes :func:`gaussian_passes` handles: those where a row
#: far from the image's other rows sees only itself and its neighbours ("wrap" does not).
GAUSSIAN_MODES: tuple[str, ...] = ("constant", "reflect", "nearest", "mirror")


def gaussian_passes(
    image: np.ndarray,
    sigma: float,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    background: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``ndimage.gaussian_filter(image, sigma, mode=mode, cval=cval)`` and its first pass.

    ``gaussian_filter`` makes two 1-D passes (``gaussian_filter1d``, ``truncate=4``):
    down the columns (axis 0), then along the rows (axis 1). A pass computes each output
    from the kernel's radius of input around it, the same way at every position (the
    padding beyond the edges included), so every row of the first pass more than a
    radius from all rows holding a value other than ``background`` holds one same
    number, and so does its second pass. Those rows are computed once, on a single line;
    the rows between are filtered as ``gaussian_filter`` filters them, from the same
    input rows around them. The result is the same array, bit for bit.

    Args:
        image: Real 2-D array (its dtype is kept, as ``gaussian_filter`` keeps it).
        sigma: Standard deviation of the Gaussian, pixels (> 0).
        mode: One of :data:`GAUSSIAN_MODES`.
        cval: Value beyond the edges for ``mode="constant"``.
        background: The value of the rows computed once; ``cval`` when None. With
            ``mode="constant"`` it must equal ``cval`` (beyond the edges is not
            background otherwise).

    Returns:
        ``(smoothed, first_pass)``, both of ``image``'s shape and dtype.

    Raises:
        ValueError: If ``image`` is not 2-D, ``sigma`` is not > 0, ``mode`` is not one
            of :data:`GAUSSIAN_MODES`, or ``background`` differs from ``cval`` with
            ``mode="constant"``.
    """
    a = np.asarray(image)
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {a.shape}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if mode not in GAUSSIAN_MODES:
        raise ValueError(f"mode must be one of {GAUSSIAN_MODES}, got {mode!r}")
    bg = cval if background is None else background
    if mode == "constant" and bg != cval:
        raise ValueError(f"background must equal cval for mode='constant', got {bg!r}, {cval!r}")

    def gauss(x: np.ndarray, axis: int, output: np.ndarray | None = None) -> np.ndarray:
        return ndimage.gaussian_filter1d(x, sigma, axis=axis, output=output, mode=mode, cval=cval)

    rows, cols = a.shape
    radius = int(4.0 * float(sigma) + 0.5)  # gaussian_filter1d's, for truncate=4
    differs = np.flatnonzero((a != bg).any(axis=1))
    if differs.size == 0:
        b0 = b1 = 0
    else:
        b0 = max(int(differs[0]) - radius, 0)
        b1 = min(int(differs[-1]) + radius + 1, rows)
    first = np.empty_like(a)
    out = np.empty_like(a)
    if b1 > b0:
        # The band's first pass, from the band and a radius of input rows around it.
        i0, i1 = max(b0 - radius, 0), min(b1 + radius, rows)
        if (i0, i1) == (b0, b1):  # the band is the whole image: no margin to cut off
            gauss(a, 0, output=first)
        else:
            first[b0:b1] = gauss(a[i0:i1], 0)[b0 - i0 : b1 - i0]
        gauss(first[b0:b1], 1, output=out[b0:b1])
    if b0 > 0 or b1 < rows:
        level = gauss(np.full((1, 1), bg, dtype=a.dtype), 0)[0, 0]
        line = gauss(np.full((1, cols), level, dtype=a.dtype), 1)[0]
        first[:b0] = level
        first[b1:] = level
        out[:b0] = line
        out[b1:] = line
    return out, first
