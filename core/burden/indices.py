"""Tumour-burden indices: the paper's BSTBI, and hotspot count, lesion area and uptake.

**BSTBI** (Liu et al. 2021). On an 8-bit display image in the paper's inverted
convention (uint8, 0 = hottest, 255 = no counts) the *heat* of a pixel is
``255 - value`` and ``S_X`` is the heat summed over the pixels of region ``X``::

    BSTBI = K * S_L / ((K - 1) * S_L + S_R - S_B)

with ``L`` the metastasis pixels, ``R`` every pixel of the image, ``B`` the bladder
pixels and ``K = 5`` (:data:`BSTBI_K`). Writing ``D = S_R - S_B - S_L`` (the heat
outside lesions and bladder, >= 0) the same number is ``K * S_L / (K * S_L + D)``,
which shows why it lies in [0, 1], is 0 without lesion heat, 1 when every hot
non-bladder pixel is lesion, and grows when lesions get hotter or larger. The scan's
BSTBI is the mean over its display images (:func:`scan_bstbi`): ANT and POST, each at
grey levels 1 and 2.

Edge rules chosen here:

* A pixel in both masks is bladder, not lesion ("the bladder wins"), the same rule
  :mod:`core.reading.labelme` uses when polygons overlap; urine activity is never burden.
* A zero denominator can only happen when ``S_L = 0`` (an all-white image, or one
  whose only heat is bladder); BSTBI is then 0.0, as for any image without lesion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from core.config import LABEL_BLADDER, LABEL_METASTASIS, VIEWS
from core.imaging.boxes import bounding_box
from core.imaging.display import GREY_LEVELS

#: The paper's scaling factor K of BSTBI.
BSTBI_K = 5.0
#: Pixels of one hotspot touch by edge or corner (8-connectivity), see :func:`hotspot_count`.
HOTSPOT_STRUCTURE = np.ones((3, 3), dtype=bool)
#: Body pixels (for the normal-bone reference) have counts above this fraction of the
#: view's 99.9th percentile; below it is air and scatter.
BODY_FRACTION = 0.05
#: The bladder is grown by this many pixels before it is left out of the normal-bone
#: reference, because urine activity spills into the pixels around it.
BLADDER_MARGIN_PX = 5


def _binary_mask(name: str, mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Return ``mask`` as bool after checking it is a 0/1 (or bool) array of ``shape``."""
    m = np.asarray(mask)
    if m.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {m.shape}")
    if m.dtype == np.bool_:
        return m
    if not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"{name} must be bool or integer 0/1, got dtype {m.dtype}")
    if m.size and (m.min() < 0 or m.max() > 1):
        raise ValueError(
            f"{name} must hold only 0 and 1 (pass label_mask == LABEL_METASTASIS for a "
            f"label mask), got values in [{m.min()}, {m.max()}]"
        )
    return m.astype(bool)


def _heat_sum(display: np.ndarray, mask: np.ndarray) -> int:
    """Sum of ``255 - display`` over the pixels of a bool mask, as an exact integer."""
    n = int(np.count_nonzero(mask))
    if n == 0:
        return 0
    return 255 * n - int(display[mask].sum(dtype=np.int64))


def _check_2d(name: str, arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {a.shape}")
    return a


def bstbi(
    display: np.ndarray,
    lesion_mask: np.ndarray,
    bladder_mask: np.ndarray,
    k: float = BSTBI_K,
) -> float:
    """Return the paper's Bone Scan Tumour Burden Index of one display image.

    Args:
        display: uint8 2-D display image, any shape, the paper's inverted convention
            (0 = hottest, 255 = no counts).
        lesion_mask: bool or 0/1 integer array, same shape: metastasis pixels ``L``.
        bladder_mask: bool or 0/1 integer array, same shape: bladder pixels ``B``.
            Pixels in both masks count as bladder only.
        k: Scaling factor K (> 0, finite); the paper's 5 by default.

    Returns:
        BSTBI in [0, 1]; 0.0 when the lesion holds no heat (including an empty
        lesion mask and a zero denominator).

    Raises:
        ValueError: If ``display`` is not a non-empty 2-D uint8 array, a mask has
            another shape or values other than 0/1, or ``k`` is not finite and > 0.
    """
    d = _check_2d("display", display)
    if d.dtype != np.uint8:
        raise ValueError(f"display must be uint8 (0 = hottest), got dtype {d.dtype}")
    if not (math.isfinite(k) and k > 0):
        raise ValueError(f"k must be a finite number > 0, got {k!r}")
    bladder = _binary_mask("bladder_mask", bladder_mask, d.shape)
    lesion = _binary_mask("lesion_mask", lesion_mask, d.shape) & ~bladder
    # Integer sums are exact, so summing grey values and subtracting from 255 per pixel
    # gives the heat sums themselves, without an int64 copy of the image.
    s_l = float(_heat_sum(d, lesion))
    s_r = float(255 * d.size - int(d.sum(dtype=np.int64)))
    s_b = float(_heat_sum(d, bladder))
    if s_l == 0.0:
        return 0.0
    value = k * s_l / ((k - 1.0) * s_l + s_r - s_b)
    # The denominator is >= k * s_l > 0 here; clipping only guards the last ulp.
    return min(1.0, max(0.0, value))


def _check_index(name: str, value: float) -> float:
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a BSTBI in [0, 1], got {value!r}")
    return v


def scan_bstbi(per_image: Mapping[tuple[str, int], float] | Sequence[float]) -> float:
    """Return a scan's BSTBI: the mean of its display images' BSTBI.

    The paper's scan has four images (ANT and POST, each at grey levels 1 and 2). A
    scan read from a single-view file has only that view's two images, and its BSTBI
    is their mean.

    Args:
        per_image: Either ``{(view, level): bstbi}`` as :func:`bstbi_images` returns,
            holding both grey levels of every view present, or a sequence of 4 (or 2,
            one view) values. Each value in [0, 1].

    Returns:
        The mean, in [0, 1].

    Raises:
        ValueError: If ``per_image`` is empty, has a key that is not a (view, level)
            of ``VIEWS`` x ``GREY_LEVELS``, misses a grey level of a view, is a
            sequence of other than 2 or 4 values, or holds a value outside [0, 1].
    """
    if isinstance(per_image, Mapping):
        if not per_image:
            raise ValueError("per_image must not be empty")
        views_present = set()
        for key in per_image:
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ValueError(f"per_image: key {key!r} is not a (view, level) pair")
            view, level = key
            if view not in VIEWS or level not in GREY_LEVELS:
                raise ValueError(
                    f"per_image: key {key!r} is not one of views {VIEWS} x levels {GREY_LEVELS}"
                )
            views_present.add(view)
        for view in views_present:
            for level in GREY_LEVELS:
                if (view, level) not in per_image:
                    raise ValueError(f"per_image: view {view!r} lacks grey level {level}")
        values = [_check_index(f"per_image[{k!r}]", v) for k, v in per_image.items()]
    else:
        if len(per_image) not in (2, 4):
            raise ValueError(
                f"per_image must hold 4 values (or 2 for one view), got {len(per_image)}"
            )
        values = [_check_index(f"per_image[{i}]", v) for i, v in enumerate(per_image)]
    return float(np.mean(values))


def bstbi_images(
    displays: Mapping[tuple[str, int], np.ndarray],
    masks: Mapping[str, np.ndarray],
    k: float = BSTBI_K,
) -> dict[tuple[str, int], float]:
    """Return the BSTBI of every display image, with the masks of its view.

    Args:
        displays: ``{(view, level): image}`` as :func:`core.imaging.display.display_images`
            returns; each uint8 2-D, 0 = hottest.
        masks: ``{view: label_mask}``; each uint8 of the same shape as that view's
            display images, values 0 background, 1 metastasis, 2 bladder.
        k: Scaling factor K, see :func:`bstbi`.

    Returns:
        ``{(view, level): bstbi}`` with the keys of ``displays``, each in [0, 1].

    Raises:
        ValueError: If a view of ``displays`` has no mask, a mask is not uint8 or holds
            values other than 0, 1, 2, or anything :func:`bstbi` refuses.
    """
    out: dict[tuple[str, int], float] = {}
    # Each view's mask is checked and split once, for both of its grey levels.
    split: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, image in displays.items():
        view = key[0]
        if view not in split:
            if view not in masks:
                raise ValueError(f"masks has no label mask for view {view!r} (needed by {key!r})")
            mask = np.asarray(masks[view])
            if mask.dtype != np.uint8:
                raise ValueError(f"masks[{view!r}] must be a uint8 label mask, got {mask.dtype}")
            if mask.size and mask.max() > LABEL_BLADDER:
                raise ValueError(f"masks[{view!r}] must hold only labels 0, 1, 2")
            split[view] = (mask == LABEL_METASTASIS, mask == LABEL_BLADDER)
        lesion, bladder = split[view]
        out[key] = bstbi(image, lesion, bladder, k)
    return out


def hotspot_count(lesion_mask: np.ndarray) -> int:
    """Return the number of hotspots: 8-connected components of the lesion mask.

    8-connectivity (pixels touching by an edge or a corner are one hotspot) because
    oblique structures such as ribs give lesions whose pixels often meet only at
    corners after polygon rasterisation or resizing; 4-connectivity would split one
    focus into several and inflate the count.

    Args:
        lesion_mask: bool or 0/1 integer 2-D array (e.g. ``label_mask == 1``).

    Returns:
        The number of components (0 for an empty mask).

    Raises:
        ValueError: If ``lesion_mask`` is not 2-D or holds values other than 0/1.
    """
    m = _check_2d("lesion_mask", lesion_mask)
    lesion = _binary_mask("lesion_mask", m, m.shape)
    box = bounding_box(lesion)
    if box is None:
        return 0
    # Components lie inside the mask's bounding box; labelling only it is faster.
    _, n = ndimage.label(lesion[box], structure=HOTSPOT_STRUCTURE)
    return int(n)


def lesion_area_cm2(lesion_mask: np.ndarray, pixel_spacing_mm: tuple[float, float]) -> float:
    """Return the bone scan lesion area (BSLA): the lesion pixels' area in cm².

    Args:
        lesion_mask: bool or 0/1 integer 2-D array (e.g. ``label_mask == 1``).
        pixel_spacing_mm: (row, column) size of one pixel in mm, both finite and > 0
            (e.g. :attr:`core.scan.ScanMeta.pixel_spacing_mm` of the canonical grid).

    Returns:
        ``n_pixels * row_mm * col_mm / 100`` (cm², >= 0).

    Raises:
        ValueError: If ``lesion_mask`` is not a 2-D 0/1 array or a spacing is not
            a finite number > 0.
    """
    m = _check_2d("lesion_mask", lesion_mask)
    lesion = _binary_mask("lesion_mask", m, m.shape)
    if len(pixel_spacing_mm) != 2 or not all(math.isfinite(s) and s > 0 for s in pixel_spacing_mm):
        raise ValueError(
            f"pixel_spacing_mm must be two finite numbers > 0, got {pixel_spacing_mm!r}"
        )
    row_mm, col_mm = pixel_spacing_mm
    return float(np.count_nonzero(lesion)) * float(row_mm) * float(col_mm) / 100.0


def normal_bone_reference(
    counts: np.ndarray,
    lesion_mask: np.ndarray,
    bladder_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Return the default normal-bone reference pixels of one view.

    The rule, kept simple on purpose: *body* pixels are those with counts above
    :data:`BODY_FRACTION` of the view's 99.9th percentile; lesion pixels and the
    bladder grown by :data:`BLADDER_MARGIN_PX` pixels are left out (of the
    percentile too); of what remains, the pixels with counts strictly above its
    median are normal bone. MDP puts more activity in bone than in soft tissue, so
    the upper half of the body is bone (and some bright soft tissue); this is an
    approximation, not a skeleton segmentation.

    Args:
        counts: float 2-D counts of one view, hot = high, finite.
        lesion_mask: bool or 0/1 integer array, same shape.
        bladder_mask: bool or 0/1 integer array, same shape, or None (no bladder).

    Returns:
        bool array of ``counts.shape``; may be all False (e.g. a uniform view).

    Raises:
        ValueError: If ``counts`` is not a finite 2-D array or a mask is unfit.
    """
    c = _check_2d("counts", counts).astype(np.float64)
    if not np.isfinite(c).all():
        raise ValueError("counts must be finite")
    lesion = _binary_mask("lesion_mask", lesion_mask, c.shape)
    excluded = lesion.copy()
    if bladder_mask is not None:
        bladder = _binary_mask("bladder_mask", bladder_mask, c.shape)
        box = bounding_box(bladder, margin=BLADDER_MARGIN_PX)
        if box is not None:
            # The grown bladder stays within its box plus the margin; dilating only that
            # part gives the same pixels (outside it is no bladder, as beyond the edge).
            excluded[box] |= ndimage.binary_dilation(
                bladder[box], structure=HOTSPOT_STRUCTURE, iterations=BLADDER_MARGIN_PX
            )
    kept = ~excluded
    if not kept.any():
        return kept
    # The percentile leaves lesions and bladder out: a hot bladder would otherwise
    # push the body threshold above the soft tissue.
    body = kept & (c > BODY_FRACTION * float(np.percentile(c[kept], 99.9)))
    if not body.any():
        return body
    return body & (c > float(np.median(c[body])))


def lesion_uptake_ratio(
    counts: np.ndarray,
    lesion_mask: np.ndarray,
    bladder_mask: np.ndarray | None = None,
    *,
    normal_bone_mask: np.ndarray | None = None,
) -> float:
    """Return mean lesion counts / mean counts of normal bone in one view.

    Args:
        counts: float 2-D counts of one view (hot = high), finite.
        lesion_mask: bool or 0/1 integer array, same shape: the lesion pixels.
        bladder_mask: bool or 0/1 integer array, same shape, or None; only used by
            the default reference (:func:`normal_bone_reference`).
        normal_bone_mask: bool or 0/1 integer array, same shape, to give the
            reference pixels yourself; lesion pixels in it are left out.

    Returns:
        The ratio (>= 0 for counts >= 0); NaN when the lesion mask is empty or the
        reference is empty or has mean 0 (the ratio is undefined there).

    Raises:
        ValueError: If ``counts`` is not a finite 2-D array or a mask is unfit.
    """
    c = _check_2d("counts", counts).astype(np.float64)
    if not np.isfinite(c).all():
        raise ValueError("counts must be finite")
    lesion = _binary_mask("lesion_mask", lesion_mask, c.shape)
    if normal_bone_mask is None:
        reference = normal_bone_reference(c, lesion, bladder_mask)
    else:
        reference = _binary_mask("normal_bone_mask", normal_bone_mask, c.shape) & ~lesion
    if not lesion.any() or not reference.any():
        return math.nan
    ref_mean = float(c[reference].mean())
    if ref_mean == 0.0:
        return math.nan
    return float(c[lesion].mean()) / ref_mean
