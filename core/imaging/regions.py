"""The skeletal region a lesion lies in, from its position in the body's extent.

A planar view gives no depth and no bone outlines the pipeline could trust, so the
region is read from where the lesion sits relative to the body: how far down from
the top of the head (as a fraction ``f`` of the body height, 0 = vertex, 1 = soles)
and how far from the body's mid-line (``d``, the same unit, |column - centre| /
height; pixels are taken as square, as on the canonical 1024 x 256 grid of the
paper's camera). Approximate adult proportions of body height, from the vertex
(anthropometric tables; the phantom's anatomy uses the same ones):

==============  ==============  ==================================================
band            f               regions by distance from the mid-line ``d``
==============  ==============  ==================================================
head            0.000 - 0.105   skull
neck            0.105 - 0.17    cervical spine (d < 0.02); skull (mandible, f <
                                0.125, d < 0.04); shoulder; humerus (d >= 0.11)
thorax          0.17 - 0.33     spine (d < 0.02; sternum instead on ANT for
                                f 0.19 - 0.30, d < 0.012); ribs (d < 0.078 above
                                f 0.27, else d < 0.11); humerus further out
lumbar          0.33 - 0.43     lumbar spine (d < 0.025); ribs (f < 0.37) or
                                pelvis (iliac crest) out to 0.11; arm beyond
pelvis, hips    0.43 - 0.52     pelvis (incl. sacrum) out to 0.13, femur (neck,
                                trochanters) for f >= 0.46 and d >= 0.065; arm beyond
thighs          0.52 - 0.70     femur out to 0.13; arm (hands) beyond, above 0.62
knees           0.70 - 0.77     knee
lower legs      0.77 - 0.95     lower leg
feet            0.95 - 1.00     foot
==============  ==============  ==================================================

The sternum lies over the thoracic spine: on the anterior view a mid-line focus of the
upper chest is read as sternum, on the posterior as spine. Arms outside the trunk are
"humerus" beside the chest and "arm" (forearm, hand) lower down; arms resting on the
abdomen cannot be told from the trunk by position and take the trunk's region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.config import VIEWS
from core.imaging.boxes import bounding_box
from core.imaging.display import grey_level_1

#: Every region :func:`skeletal_region` returns.
REGIONS: tuple[str, ...] = (
    "skull",
    "cervical_spine",
    "thoracic_spine",
    "sternum",
    "ribs",
    "shoulder",
    "humerus",
    "arm",
    "lumbar_spine",
    "pelvis",
    "femur",
    "knee",
    "lower_leg",
    "foot",
)

#: Coarse region groups, for both this module's names and the phantom's
#: (:data:`core.phantom.anatomy.REGIONS`), used to compare the two.
COARSE_GROUPS: dict[str, str] = {
    "skull": "head",
    "mandible": "head",
    "cervical_spine": "spine",
    "thoracic_spine": "spine",
    "lumbar_spine": "spine",
    "sternum": "thorax",
    "ribs": "thorax",
    "clavicle": "thorax",
    "scapula": "thorax",
    "shoulder": "thorax",
    "humerus": "upper_limb",
    "arm": "upper_limb",
    "forearm": "upper_limb",
    "hand": "upper_limb",
    "sacrum": "pelvis",
    "pelvis": "pelvis",
    "femur": "lower_limb",
    "patella": "lower_limb",
    "knee": "lower_limb",
    "tibia": "lower_limb",
    "fibula": "lower_limb",
    "lower_leg": "lower_limb",
    "foot": "lower_limb",
}

# Fractions of body height from the vertex (see the module table).
_NECK, _THORAX, _LUMBAR, _PELVIS, _THIGH, _KNEE, _SHANK, _FOOT = (
    0.105, 0.17, 0.33, 0.43, 0.52, 0.70, 0.77, 0.95,
)  # fmt: skip
_MANDIBLE_END, _MANDIBLE_HW = 0.125, 0.04
_HIP, _HIP_HW = 0.46, 0.065
_SHOULDER_END = 0.27
_STERNUM = (0.19, 0.30)
_LOWEST_RIB = 0.37
_HANDS_END = 0.62
# Half-widths from the mid-line, fractions of body height.
_CERVICAL_HW, _SPINE_HW, _STERNUM_HW, _LUMBAR_HW = 0.02, 0.02, 0.012, 0.025
_SHOULDER_HW, _TRUNK_HW, _PELVIS_HW = 0.078, 0.11, 0.13

#: Smoothing of the windowed view before finding the body, pixels.
_SMOOTH_SIGMA_PX = 2.0
#: Body pixels: smoothed heat (255 - grey level 1) at least this (soft tissue is ~10-40).
_BODY_HEAT = 6.0


@dataclass(frozen=True)
class BodyBox:
    """The body's extent in one view.

    Attributes:
        top: Row of the top of the head (vertex), >= 0.
        bottom: Row of the soles, > ``top``.
        centre_col: Column of the body's mid-line (may be fractional).
    """

    top: float
    bottom: float
    centre_col: float

    @property
    def height(self) -> float:
        """Body height in pixels (``bottom - top``, > 0)."""
        return self.bottom - self.top


def body_box(counts: np.ndarray) -> BodyBox:
    """Find the body's extent in one view, from its grey-level-1 window.

    The view is windowed (:func:`core.imaging.display.grey_level_1`), smoothed, and pixels
    with heat >= a low level kept; the largest connected part is the body. Its first
    and last rows are the vertex and the soles; the mid-line is the median of the
    per-row centres of mass over the trunk (20-45 % of the height), where the body is
    widest and most symmetric.

    Args:
        counts: float 2-D counts of one view (e.g. 1024 x 256), hot = high, finite.

    Returns:
        The :class:`BodyBox`; the whole field when no body is found.

    Raises:
        ValueError: If ``counts`` is not a non-empty finite 2-D array.
    """
    heat = 255.0 - grey_level_1(counts).astype(np.float32)
    rows, cols = heat.shape
    smooth = ndimage.gaussian_filter(heat, _SMOOTH_SIGMA_PX)
    warm = smooth >= _BODY_HEAT
    box = bounding_box(warm)
    if box is None:
        return BodyBox(0.0, float(rows - 1), (cols - 1) / 2.0)
    # Parts lie inside the warm pixels' bounding box, numbered in the same raster order
    # as in the whole view (the first largest wins alike); labelling only it is faster.
    labels, _ = ndimage.label(warm[box])
    sizes = np.bincount(labels.ravel())[1:]
    body = np.zeros(heat.shape, dtype=bool)
    body[box] = labels == int(np.argmax(sizes)) + 1
    body_rows = np.flatnonzero(body.any(axis=1))
    top, bottom = float(body_rows[0]), float(body_rows[-1])
    if bottom <= top:
        return BodyBox(0.0, float(rows - 1), (cols - 1) / 2.0)
    lo = int(top + 0.20 * (bottom - top))
    hi = int(top + 0.45 * (bottom - top)) + 1
    weights = smooth[lo:hi] * body[lo:hi]
    sums = weights.sum(axis=1)
    valid = sums > 0
    if not valid.any():
        return BodyBox(top, bottom, (cols - 1) / 2.0)
    centres = (weights[valid] @ np.arange(cols, dtype=np.float64)) / sums[valid]
    return BodyBox(top, bottom, float(np.median(centres)))


def skeletal_region(view: str, row: float, col: float, box: BodyBox) -> str:
    """Return the skeletal region a lesion centred at (row, col) lies in.

    Args:
        view: ``"ANT"`` or ``"POST"`` (the sternum is read on the anterior view only).
        row: Lesion centre row, pixels of the view.
        col: Lesion centre column, pixels of the view.
        box: The body's extent in that view (:func:`body_box`).

    Returns:
        One of :data:`REGIONS`, by the proportions in the module docstring. Positions
        above the vertex count as skull, below the soles as foot.

    Raises:
        ValueError: If ``view`` is unknown, a position is not finite, or the box has
            no height.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if not (np.isfinite(row) and np.isfinite(col)):
        raise ValueError(f"row and col must be finite, got {row!r}, {col!r}")
    if not box.height > 0:
        raise ValueError(f"box must have a positive height, got {box!r}")
    f = (row - box.top) / box.height
    d = abs(col - box.centre_col) / box.height
    if f < _NECK:
        return "skull"
    if f < _THORAX:
        if d < _CERVICAL_HW:
            return "cervical_spine"
        if f < _MANDIBLE_END and d < _MANDIBLE_HW:
            return "skull"
        return "shoulder" if d < _TRUNK_HW else "humerus"
    if f < _LUMBAR:
        if d < _SPINE_HW:
            in_sternum = _STERNUM[0] <= f < _STERNUM[1] and d < _STERNUM_HW
            return "sternum" if view == "ANT" and in_sternum else "thoracic_spine"
        if f < _SHOULDER_END:
            return "ribs" if d < _SHOULDER_HW else "humerus"
        return "ribs" if d < _TRUNK_HW else "humerus"
    if f < _PELVIS:
        if d < _LUMBAR_HW:
            return "lumbar_spine"
        if d < _TRUNK_HW:
            return "ribs" if f < _LOWEST_RIB else "pelvis"
        return "arm"
    if f < _THIGH:
        if d >= _PELVIS_HW:
            return "arm"
        return "femur" if f >= _HIP and d >= _HIP_HW else "pelvis"
    if f < _KNEE:
        return "femur" if d < _PELVIS_HW or f >= _HANDS_END else "arm"
    if f < _SHANK:
        return "knee"
    if f < _FOOT:
        return "lower_leg"
    return "foot"
