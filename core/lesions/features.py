"""What a physician weighs about one hot spot, as numbers: the lesion scorer's input.

Issue 26. The segmenter marks every hot spot; on real scans most of them are the normal
or degenerative uptake that every reader dismisses because the other side is just as
hot, or because that bone is always that hot. This module turns each candidate mark
(an 8-connected metastasis component of a view's segmenter labels) into a fixed vector
of :data:`FEATURES`, from the view's counts, its skeleton map
(:mod:`core.anatomy.network`) and the segmenter's metastasis probability:

* how hot: the mark's 90th-percentile uptake over the view's normal-bone level
  (:func:`core.networks.lesion_net.bone_reference`), and over its own region's median
  (both sides pooled, :func:`core.anatomy.references.region_reference`);
* **against the other side**: the mark's smoothed 90th-percentile uptake over the
  hottest smoothed uptake within 6 pixels of its mirror about the body's mid-line
  (:func:`core.anatomy.references.mirrored_uptake`); both sides smoothed alike, so near
  0 (log) for paired uptake of any size. A mark on the mid-line (a vertebra, the
  sternum) is its own mirror and reads near 0 too: the bone group and the contrast to
  its region tell those apart;
* against its surroundings: over the median of a 4-pixel ring around it;
* where: distance from the mid-line, height along the skeleton, the bone group
  (:data:`GROUPS`), anterior or posterior view;
* what: its area, and the segmenter's mean and highest probability over it.

Ratios are natural logs, clipped to [-3, 5]. Every function takes one view in any
orientation, as long as the counts, the skeleton map, the labels and the probability
share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.anatomy.references import midline_column, mirrored_uptake, region_reference
from core.anatomy.regions import BACKGROUND, REGIONS
from core.burden.indices import HOTSPOT_STRUCTURE
from core.config import COLS, LABEL_METASTASIS, ROWS
from core.networks.lesion_net import bone_reference

#: Bone groups of the one-hot features, each a set of region bases.
GROUPS: dict[str, frozenset[str]] = {
    "skull": frozenset({"skull"}),
    "spine": frozenset({"cervical_spine", "thoracic_spine", "lumbar_spine"}),
    "pelvis": frozenset({"sacrum", "pelvis"}),
    "chest": frozenset({"ribs", "sternum"}),
    "shoulder": frozenset({"clavicle", "scapula", "humerus"}),
    "limb": frozenset({"forearm", "femur", "knee", "lower_leg", "foot"}),
}
#: Feature names, in vector order.
FEATURES: tuple[str, ...] = (
    "log_area",
    "log_peak_over_bone",
    "log_peak_over_region",
    "log_peak_over_mirror",
    "log_peak_over_ring",
    "midline_distance",
    "height",
    "p_mean",
    "p_max",
    "posterior",
    *(f"group_{g}" for g in GROUPS),
    "group_none",
)
#: Gaussian sigma (pixels) of the mirrored uptake.
MIRROR_SIGMA = 2.0
#: The mirrored side is searched this far (pixels) around the mark's mirror.
MIRROR_REACH = 6
#: Width (pixels) of the ring the mark is compared with.
RING = 4
#: Ratios are clipped to this range (natural log).
LOG_RANGE = (-3.0, 5.0)
_GROUP_OF = {r.index: g for r in REGIONS for g, bases in GROUPS.items() if r.base in bases}


@dataclass(frozen=True)
class Candidates:
    """The candidate marks of one view.

    Attributes:
        components: int32 (H, W): 0 outside marks, 1..n on the n marks (8-connected,
            numbered in raster order as :func:`scipy.ndimage.label` numbers them).
        features: float32 (n, len(FEATURES)).
    """

    components: np.ndarray
    features: np.ndarray


def _log_ratio(a: float, b: float) -> float:
    return float(np.clip(np.log(max(a, 1e-6) / max(b, 1e-6)), *LOG_RANGE))


def view_candidates(
    counts: np.ndarray,
    skeleton: np.ndarray,
    labels: np.ndarray,
    p_metastasis: np.ndarray,
    *,
    posterior: bool,
) -> Candidates:
    """Number a view's candidate marks and compute their features.

    Args:
        counts: float (1024, 256) counts >= 0, finite.
        skeleton: uint8 (1024, 256) skeleton map of the same view.
        labels: uint8 (1024, 256) segmenter labels (1 = metastasis).
        p_metastasis: float (1024, 256) the segmenter's metastasis probability, [0, 1].
        posterior: Whether this is the posterior view.

    Returns:
        The :class:`Candidates` (no rows when the view has no mark).

    Raises:
        ValueError: If a shape differs from (1024, 256).
    """
    for name, a in (("counts", counts), ("skeleton", skeleton), ("labels", labels),
                    ("p_metastasis", p_metastasis)):  # fmt: skip
        if np.shape(a) != (ROWS, COLS):
            raise ValueError(f"{name}: expected shape {(ROWS, COLS)}, got {np.shape(a)}")
    view = np.asarray(counts, dtype=np.float32)
    components, n = ndimage.label(labels == LABEL_METASTASIS, structure=HOTSPOT_STRUCTURE)
    features = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if n == 0:
        return Candidates(components.astype(np.int32), features)
    ref = bone_reference(view, skeleton)
    mid = midline_column(skeleton)
    mirror = np.nan_to_num(mirrored_uptake(view, skeleton, midline=mid, sigma=MIRROR_SIGMA))
    mirror = ndimage.maximum_filter(mirror, size=2 * MIRROR_REACH + 1)
    # the mark's own side smoothed alike, so an equal pair reads near 0 at any size
    smooth = ndimage.gaussian_filter(view, MIRROR_SIGMA, mode="nearest")
    region = region_reference(view, skeleton, pool_pairs=True)
    bone_rows = np.nonzero((skeleton != BACKGROUND).any(axis=1))[0]
    top, bottom = (bone_rows[0], bone_rows[-1]) if bone_rows.size else (0, ROWS - 1)
    slices = ndimage.find_objects(components)
    for k, box in enumerate(slices, start=1):
        assert box is not None
        # a margin around the box for the ring, clipped to the field
        r0, r1 = max(box[0].start - RING, 0), min(box[0].stop + RING, ROWS)
        c0, c1 = max(box[1].start - RING, 0), min(box[1].stop + RING, COLS)
        comp = components[r0:r1, c0:c1] == k
        pix = view[r0:r1, c0:c1][comp]
        peak = float(np.percentile(pix, 90))
        ring = ndimage.binary_dilation(comp, iterations=RING) & ~comp
        ring_level = float(np.median(view[r0:r1, c0:c1][ring])) if ring.any() else ref
        reg = region[r0:r1, c0:c1][comp]
        reg = reg[np.isfinite(reg)]
        region_level = float(np.median(reg)) if reg.size else ref
        mirrored = float(np.percentile(mirror[r0:r1, c0:c1][comp], 90))
        own = float(np.percentile(smooth[r0:r1, c0:c1][comp], 90))
        rows, cols = np.nonzero(comp)
        row_c, col_c = rows.mean() + r0, cols.mean() + c0
        bones = skeleton[r0:r1, c0:c1][comp]
        bones = bones[bones != BACKGROUND]
        group = _GROUP_OF.get(int(np.bincount(bones).argmax())) if bones.size else None
        p = p_metastasis[r0:r1, c0:c1][comp]
        values = [
            float(np.log(comp.sum())),
            _log_ratio(peak, ref),
            _log_ratio(peak, region_level),
            _log_ratio(own, mirrored),
            _log_ratio(peak, ring_level),
            abs(col_c - mid) / 100.0,
            float(np.clip((row_c - top) / max(bottom - top, 1), -0.5, 1.5)),
            float(p.mean()),
            float(p.max()),
            1.0 if posterior else 0.0,
            *(1.0 if group == g else 0.0 for g in GROUPS),
            1.0 if group is None else 0.0,
        ]
        features[k - 1] = values
    return Candidates(components.astype(np.int32), features)


def candidate_truth(
    components: np.ndarray, truth: np.ndarray, min_share: float = 0.1
) -> np.ndarray:
    """Return which candidates are true metastases: bool (n,).

    A candidate is true when at least ``min_share`` of its pixels, or at least 5
    pixels, lie on the reference mask's metastasis.

    Args:
        components: int32 (H, W) from :class:`Candidates`.
        truth: uint8 (H, W) reference label mask (1 = metastasis).
        min_share: Smallest share of the candidate's pixels on a true lesion.
    """
    n = int(components.max())
    if n == 0:
        return np.zeros(0, dtype=bool)
    on = np.bincount(components[truth == LABEL_METASTASIS].ravel(), minlength=n + 1)[1:]
    size = np.bincount(components.ravel(), minlength=n + 1)[1:]
    return (on >= 5) | (on >= min_share * np.maximum(size, 1))
