"""The paper's two display grey levels, and the polarity of exported images.

Liu et al. read each view at two display grey levels, in an inverted display where
the hotter a pixel (more MDP uptake), the darker it is. The rule used here:

* **Grey level 1** windows the counts of one view linearly: 0 counts -> 255 (white),
  the view's 99.9th percentile of counts (:data:`GREY_LEVEL_1_PERCENTILE`) and
  above -> 0 (black), rounded to the nearest integer (halves up). A view whose
  percentile is 0 (e.g. all zero) is all white (255); readers refuse blank files
  before this point, so that only happens for hand-made arrays.
* **Grey level 2** doubles the contrast of grey level 1:
  ``255 - clip(2 * (255 - g1), 0, 255)``; everything at or above half the
  grey-level-1 window is black.
* When a file already *is* the paper's display (an 8-bit export, white background,
  hot = dark; :attr:`core.scan.ScanMeta.display_is_grey_level_1`), its pixels are
  grey level 1 as they are: readers stored ``counts = 255 - pixel``, so grey level 1
  is ``255 - counts`` rounded, not a re-windowing of those values.

Exported images come in two polarities: the paper's display (``"hot-dark"``, white
background) and the common export (``"hot-bright"``, black background, maximum often
far below 255). :func:`detect_polarity` tells them apart from the background level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from core.config import VIEWS
from core.scan import Polarity, Scan, ScanMeta

#: Percentile of a view's counts that grey level 1 maps to black (0).
GREY_LEVEL_1_PERCENTILE = 99.9
#: Grey levels shown for each view, in order.
GREY_LEVELS: tuple[int, int] = (1, 2)
#: Grey level 2 of every grey-level-1 value (a table look-up is faster than the arithmetic).
_GREY_LEVEL_2 = (255 - np.clip(2 * (255 - np.arange(256, dtype=np.int32)), 0, 255)).astype(np.uint8)


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def grey_level_1(counts: np.ndarray) -> np.ndarray:
    """Window one view's counts into the paper's inverted display (grey level 1).

    Args:
        counts: 2-D array of counts (any shape, any real dtype), hot = high; negative
            values are treated as 0.

    Returns:
        uint8 array of the same shape, 0 = hottest, 255 = no counts: 0 counts -> 255,
        ``np.percentile(counts, 99.9)`` and above -> 0, linear between, rounded to
        the nearest integer (halves up). All 255 when that percentile is <= 0.

    Raises:
        ValueError: If ``counts`` is not 2-D, is empty, or holds NaN or infinity.
    """
    a = np.asarray(counts)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"counts must be a non-empty 2-D array, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("counts must hold only finite values (no NaN or infinity)")
    top = float(np.percentile(a, GREY_LEVEL_1_PERCENTILE))
    if top <= 0:
        return np.full(a.shape, 255, dtype=np.uint8)
    # 255 - floor(255 * clip(a / top, 0, 1) + 0.5), step by step in the copy made above
    # (the same operations, without a new array for each).
    np.divide(a, top, out=a)
    np.clip(a, 0.0, 1.0, out=a)
    np.multiply(a, 255.0, out=a)
    np.add(a, 0.5, out=a)
    np.floor(a, out=a)
    np.subtract(255.0, a, out=a)
    return a.astype(np.uint8)


def grey_level_2(g1: np.ndarray) -> np.ndarray:
    """Return grey level 2 (double contrast) of a grey-level-1 image.

    Args:
        g1: 2-D uint8 grey-level-1 image (0 = hottest, 255 = no counts).

    Returns:
        uint8 array of the same shape: ``255 - clip(2 * (255 - g1), 0, 255)``.

    Raises:
        ValueError: If ``g1`` is not a 2-D uint8 array.
    """
    a = np.asarray(g1)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError(f"g1 must be a 2-D uint8 array, got {a.dtype} {a.shape}")
    return _GREY_LEVEL_2[a]


def display_as_is(counts: np.ndarray) -> np.ndarray:
    """Return the grey-level-1 image of a view read from the paper's own 8-bit display.

    Args:
        counts: 2-D counts stored as ``255 - pixel`` (values in [0, 255]).

    Returns:
        uint8 array of the same shape, ``255 - round(counts)`` (clipped to [0, 255]).

    Raises:
        ValueError: If ``counts`` is not a non-empty 2-D array of finite values.
    """
    a = np.asarray(counts, dtype=np.float64)
    if a.ndim != 2 or a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"counts must be a non-empty finite 2-D array, got shape {a.shape}")
    return (255 - np.clip(_round_half_up(a), 0, 255)).astype(np.uint8)


def display_images(scan: Scan) -> dict[tuple[str, int], np.ndarray]:
    """Return the paper's display images of a scan: each view at grey levels 1 and 2.

    Args:
        scan: The scan; each view float32 (1024, 256) counts, hot = high.

    Returns:
        ``{(view, level): image}`` for every view present (in ``VIEWS`` order) and
        level 1 and 2; each uint8 (1024, 256), 0 = hottest. When
        ``scan.meta.display_is_grey_level_1`` is true the file's own pixels are grey
        level 1 (see the module docstring); otherwise counts are windowed by
        :func:`grey_level_1`.
    """
    out: dict[tuple[str, int], np.ndarray] = {}
    for view in VIEWS:
        if view not in scan.views:
            continue
        counts = scan.views[view]
        g1 = display_as_is(counts) if scan.meta.display_is_grey_level_1 else grey_level_1(counts)
        out[(view, 1)] = g1
        out[(view, 2)] = grey_level_2(g1)
    return out


class PolarityGuess(NamedTuple):
    """What :func:`detect_polarity` concluded, and how sure it is.

    Attributes:
        polarity: ``"hot-dark"`` (white background) or ``"hot-bright"`` (black).
        background: The border median, in the image's own pixel values.
        confident: False when the border and the most common value disagree.
    """

    polarity: Polarity
    background: float
    confident: bool


def detect_polarity(image: np.ndarray) -> PolarityGuess:
    """Tell the paper's display (white background) from the common export (black).

    A whole-body view is mostly background, so the background is both the most common
    value and the value along the image border. Each is placed within the image's own
    range [min, max]: in the upper half means a white background (hot-dark), in the
    lower half a black one (hot-bright). When the two disagree the most common value
    decides and the guess is marked not confident.

    Args:
        image: 2-D integer image (8- or 16-bit values) as stored in the file; must not
            be flat (min < max).

    Returns:
        The polarity, the border median and whether both cues agreed.

    Raises:
        ValueError: If ``image`` is not 2-D, not integer, or flat.
    """
    a = np.asarray(image)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"image must be a 2-D integer array, got {a.dtype} {a.shape}")
    lo, hi = int(a.min()), int(a.max())
    if lo == hi:
        raise ValueError("image is flat (every pixel has the same value); no polarity")
    ring = max(1, min(a.shape) // 32)
    border = np.concatenate(
        [a[:ring].ravel(), a[-ring:].ravel(), a[:, :ring].ravel(), a[:, -ring:].ravel()]
    )
    background = float(np.median(border))
    if lo >= 0 and hi <= 0xFFFF:
        # bincount is linear time; np.unique sorts, which is slow on large images
        mode = int(np.argmax(np.bincount(a.ravel())))
    else:
        values, freq = np.unique(a, return_counts=True)
        mode = int(values[np.argmax(freq)])
    border_white = (background - lo) / (hi - lo) > 0.5
    mode_white = (mode - lo) / (hi - lo) > 0.5
    polarity: Polarity = "hot-dark" if mode_white else "hot-bright"
    return PolarityGuess(polarity, background, border_white == mode_white)


def stored_display_images(
    views: Mapping[str, np.ndarray], as_grey_level_1: bool = False
) -> dict[tuple[str, int], np.ndarray]:
    """Display images of a stored study's views (as :func:`display_images` made them at upload).

    Args:
        views: ``{view: counts}`` float (1024, 256), as the store returns them.
        as_grey_level_1: The study's ``display_grey_level_1`` flag: its file was an 8-bit
            export in the paper's display, whose pixels are grey level 1 as they are.

    Returns:
        ``{(view, level): uint8 image}`` for levels 1 and 2 of every view.
    """
    meta = ScanMeta(display_is_grey_level_1=bool(as_grey_level_1))
    return display_images(Scan(views=dict(views), meta=meta))
