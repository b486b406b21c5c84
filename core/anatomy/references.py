"""Per-pixel references for lesion decisions: the other side, and the region's norm.

A reader calls a hot spot abnormal by comparing it with two things: the same place on
the other side of the body (a rib or a hip is usually symmetric) and the rest of the
same bone (a lesion is hotter than its own bone's normal uptake). This module turns a
view and its skeleton label map into both references, pixel by pixel, for the lesion
decisions to use; nothing here decides.

Every function takes one view's counts (``float32``, shape ``(ROWS, COLS)`` =
``(1024, 256)``, finite; other float dtypes are accepted) and that view's skeleton map
(``uint8`` ``(1024, 256)``, labels as :mod:`core.anatomy.regions` defines them, 0
background), and returns a ``float32`` ``(1024, 256)`` array.

* :func:`mirrored_uptake` / :func:`asymmetry`: the uptake at the mirrored position about
  the body's mid-line, lightly smoothed, and the ratio of the view to it.
* :func:`region_reference` / :func:`relative_to_region`: the median uptake of the
  pixel's region (optionally of the left-right pair pooled), and the ratio to it.

**Mid-line.** One global column (:func:`midline_column`): the median column of the
pixels labelled as an unpaired mid-line region (skull, cervical, thoracic and lumbar
spine, sacrum, sternum). A scoliotic spine or a tilted head bends the true mid-line;
one column is the simple first version and the smoothing absorbs a pixel or two of
error. The mirror is taken in image space, so it is the same for ANT and POST.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.anatomy.bsi import check_skeleton_map
from core.anatomy.regions import BACKGROUND, N_LABELS, REGIONS, mirror_lut
from core.config import COLS, ROWS

#: Labels of the unpaired regions that lie on the mid-line (side ``"mid"``).
MIDLINE_LABELS: frozenset[int] = frozenset(r.index for r in REGIONS if r.side == "mid")
#: Gaussian sigma (pixels) of the smoothing of the mirrored side: a pixel is compared
#: with its counterpart's neighbourhood, so a mid-line off by a pixel or two or a
#: slightly asymmetric bone does not read as a lesion.
MIRROR_SIGMA = 2.0
#: Default floor of a ratio's denominator, as a fraction of the view's median uptake
#: over its skeleton pixels: far below any bone's normal uptake, so it only keeps
#: near-empty soft tissue or a dead region from dividing by (almost) zero.
FLOOR_FRACTION = 0.01
#: Absolute floor when the view has no skeleton pixels or no uptake on them.
MIN_FLOOR = 1e-6


def _check_view(view: object, name: str = "view") -> np.ndarray:
    if not isinstance(view, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(view).__name__}")
    if view.shape != (ROWS, COLS):
        raise ValueError(f"{name}: expected shape {(ROWS, COLS)}, got {view.shape}")
    if not np.issubdtype(view.dtype, np.floating):
        raise ValueError(f"{name}: expected float counts (float32), got {view.dtype}")
    if not np.isfinite(view).all():
        raise ValueError(f"{name}: holds NaN or infinite values")
    return view


def _check_pair(view: object, skeleton: object) -> tuple[np.ndarray, np.ndarray]:
    return _check_view(view), check_skeleton_map(skeleton, "skeleton")


def midline_column(skeleton: np.ndarray) -> float:
    """Return the column of the body's mid-line on a skeleton map, to half a pixel.

    Args:
        skeleton: A skeleton label map, ``uint8`` ``(1024, 256)``.

    Returns:
        The median column of the mid-line regions' pixels (:data:`MIDLINE_LABELS`),
        in [0, COLS - 1], rounded to the nearest half pixel so that every column's
        mirror is a whole column (no interpolation). Without any mid-line pixel, the
        median column of all skeleton pixels (the skeleton is roughly symmetric);
        with no skeleton at all, the field's centre ``(COLS - 1) / 2``.

    Raises:
        ValueError: If ``skeleton`` is not a skeleton label map.
    """
    check_skeleton_map(skeleton, "skeleton")
    on_midline = np.isin(skeleton, list(MIDLINE_LABELS))
    if not on_midline.any():
        on_midline = skeleton != BACKGROUND
    if not on_midline.any():
        return (COLS - 1) / 2.0
    column = float(np.median(np.nonzero(on_midline)[1]))
    return round(2.0 * column) / 2.0


def mirrored_uptake(
    view: np.ndarray,
    skeleton: np.ndarray,
    *,
    midline: float | None = None,
    sigma: float = MIRROR_SIGMA,
) -> np.ndarray:
    """Return, for every pixel, the smoothed uptake at its mirror about the mid-line.

    Pixel ``(row, col)`` gets the Gaussian-smoothed view at ``(row, 2 * midline - col)``.

    Args:
        view: The view's counts, ``float32`` ``(1024, 256)``, finite.
        skeleton: Its skeleton label map, ``uint8`` ``(1024, 256)``; used only for the
            mid-line when ``midline`` is None.
        midline: The mid-line column, in [0, COLS - 1] (rounded to half a pixel);
            None estimates it with :func:`midline_column`.
        sigma: Gaussian sigma in pixels (>= 0; 0 mirrors the raw view).

    Returns:
        ``float32`` ``(1024, 256)``: the mirrored smoothed counts (the view's range,
        shrunk by the smoothing), NaN where the mirror falls outside the field.

    Raises:
        ValueError: If an array is malformed, ``midline`` is outside the field or not
            finite, or ``sigma`` is negative.
    """
    view, skeleton = _check_pair(view, skeleton)
    if not sigma >= 0.0:
        raise ValueError(f"sigma: expected >= 0, got {sigma}")
    if midline is None:
        midline = midline_column(skeleton)
    elif not (np.isfinite(midline) and 0.0 <= midline <= COLS - 1):
        raise ValueError(f"midline: expected a column in [0, {COLS - 1}], got {midline}")
    smooth = view.astype(np.float64)
    if sigma > 0.0:
        # "nearest" so the field's edge columns are not pulled towards zero.
        smooth = ndimage.gaussian_filter(smooth, sigma, mode="nearest")
    twice = round(2.0 * midline)  # mirror of column c is twice - c, a whole column
    source = twice - np.arange(COLS)
    inside = (source >= 0) & (source < COLS)
    out = np.full((ROWS, COLS), np.nan, dtype=np.float32)
    out[:, inside] = smooth[:, source[inside]]
    return out


def default_floor(view: np.ndarray, skeleton: np.ndarray) -> float:
    """Return the default floor of a ratio's denominator for this view.

    Args:
        view: The view's counts, ``float32`` ``(1024, 256)``, finite.
        skeleton: Its skeleton label map, ``uint8`` ``(1024, 256)``.

    Returns:
        :data:`FLOOR_FRACTION` of the view's median uptake over its skeleton pixels,
        at least :data:`MIN_FLOOR` (also the value when there is no skeleton).

    Raises:
        ValueError: If an array is malformed.
    """
    view, skeleton = _check_pair(view, skeleton)
    bone = view[skeleton != BACKGROUND]
    level = float(np.median(bone)) if bone.size else 0.0
    return max(MIN_FLOOR, FLOOR_FRACTION * level)


def _ratio(view: np.ndarray, reference: np.ndarray, floor: float) -> np.ndarray:
    if not (np.isfinite(floor) and floor > 0.0):
        raise ValueError(f"floor: expected a positive number, got {floor}")
    # np.maximum keeps NaN (no reference) as NaN instead of replacing it by the floor.
    return (view / np.maximum(reference, floor)).astype(np.float32)


def asymmetry(
    view: np.ndarray,
    skeleton: np.ndarray,
    *,
    midline: float | None = None,
    sigma: float = MIRROR_SIGMA,
    floor: float | None = None,
) -> np.ndarray:
    """Return the ratio of each pixel's uptake to its mirrored counterpart's.

    ``view / max(mirrored_uptake(view, skeleton), floor)``: 1 where the body is
    symmetric, about ``h`` inside a hot spot ``h`` times its counterpart, about
    ``1 / h`` at that counterpart. The numerator is the raw pixel, so a small hot spot
    stands out against the other side's smoothed neighbourhood.

    Args:
        view: The view's counts, ``float32`` ``(1024, 256)``, finite, >= 0.
        skeleton: Its skeleton label map, ``uint8`` ``(1024, 256)``.
        midline: The mid-line column; None estimates it (:func:`midline_column`).
        sigma: Gaussian sigma of the mirrored side, pixels.
        floor: Least denominator, in counts (> 0); None: :func:`default_floor`.

    Returns:
        ``float32`` ``(1024, 256)``, in [0, inf) for non-negative counts, NaN where
        the mirror falls outside the field. Computed on every pixel, background
        included: mask with the skeleton map where only bone matters.

    Raises:
        ValueError: If an array is malformed or an option is out of range.
    """
    mirrored = mirrored_uptake(view, skeleton, midline=midline, sigma=sigma)
    if floor is None:
        floor = default_floor(view, skeleton)
    return _ratio(view.astype(np.float64), mirrored, floor)


def region_reference(
    view: np.ndarray, skeleton: np.ndarray, *, pool_pairs: bool = False
) -> np.ndarray:
    """Return, for every bone pixel, its region's normal uptake: the region's median.

    The median, not the mean, so that a lesion covering less than half of a region
    does not raise its own reference.

    Args:
        view: The view's counts, ``float32`` ``(1024, 256)``, finite.
        skeleton: Its skeleton label map, ``uint8`` ``(1024, 256)``.
        pool_pairs: When True, a paired region's reference is the median of both
            sides' pixels together (e.g. ``femur_left`` with ``femur_right``), which
            resists a lesion covering most of one side; mid-line regions are unchanged.

    Returns:
        ``float32`` ``(1024, 256)``: the median counts of the pixel's region (or
        pair), within the view's range; NaN on background pixels, which have no
        region, so that a ratio to it is NaN rather than a misleading number.

    Raises:
        ValueError: If an array is malformed.
    """
    view, skeleton = _check_pair(view, skeleton)
    groups = skeleton
    if pool_pairs:
        # Each label maps to the smaller label of its pair, so both sides share a group.
        pair_of = np.minimum(np.arange(N_LABELS), np.asarray(mirror_lut())).astype(np.uint8)
        groups = pair_of[skeleton]
    present = [int(g) for g in np.unique(groups) if g != BACKGROUND]
    table = np.full(N_LABELS, np.nan, dtype=np.float64)
    if present:
        table[present] = ndimage.median(view.astype(np.float64), labels=groups, index=present)
    return table[groups].astype(np.float32)


def relative_to_region(
    view: np.ndarray,
    skeleton: np.ndarray,
    *,
    pool_pairs: bool = False,
    floor: float | None = None,
) -> np.ndarray:
    """Return each bone pixel's uptake relative to its region's median.

    ``view / max(region_reference(view, skeleton), floor)``: about 1 on normal bone,
    ``h`` on a lesion ``h`` times its bone's normal uptake.

    Args:
        view: The view's counts, ``float32`` ``(1024, 256)``, finite, >= 0.
        skeleton: Its skeleton label map, ``uint8`` ``(1024, 256)``.
        pool_pairs: Use the left-right pair's pooled median (:func:`region_reference`).
        floor: Least denominator, in counts (> 0); None: :func:`default_floor`.

    Returns:
        ``float32`` ``(1024, 256)``, in [0, inf) for non-negative counts on bone
        pixels, NaN on background.

    Raises:
        ValueError: If an array is malformed or ``floor`` is not positive.
    """
    reference = region_reference(view, skeleton, pool_pairs=pool_pairs)
    if floor is None:
        floor = default_floor(view, skeleton)
    return _ratio(view.astype(np.float64), reference, floor)
