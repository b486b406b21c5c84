"""The Bone Scan Index (BSI): percent of skeletal mass involved by metastasis.

For each skeletal region of :mod:`core.anatomy.regions`, the *involvement* is the
fraction of the region's pixels that the metastasis mask covers; the BSI weights each
region's involvement by the region's share of total skeletal mass (ICRP 23 via
Imbriaco et al. 1998, see :mod:`core.anatomy.regions`) and sums::

    BSI (%) = 100 * sum over regions r of involvement(r) * share(r)

so it lies in [0, 100]: 0 with no metastasis, 100 when every region is fully involved
(the shares sum to 1). ``docs/bsi.md`` has the formula, a worked example and what is
not yet done (the skeleton maps come from a network still in training).

**Two views, one skeleton.** A whole-body scan shows the same skeleton twice, from the
front (ANT) and from the back (POST). Per region this module takes the *larger* of the
two views' involvements, never their sum or mean:

* a lesion in a posterior rib or a vertebral body is often seen on one view only
  (the other view's bone is farther from the camera and its uptake attenuated), and
  EXINI's automated BSI (Ulmert et al. 2012) likewise takes a hotspot's extent on the
  view where it is seen; averaging would halve such a lesion;
* a lesion seen on both views is one lesion of one bone; adding the views would count
  its mass twice and could exceed the region's share;
* the maximum keeps the BSI in [0, 100] and monotone: covering more pixels on either
  view never lowers it.

With one view only, that view's involvement is the region's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from core.anatomy.regions import N_LABELS, REGIONS
from core.config import COLS, ROWS

#: Percent scale of the index (involvement fractions times shares sum to at most 1).
_PERCENT = 100.0
#: Youngest age, in years at the study, whose BSI is reported. The regions' shares are
#: the adult Reference Man's (ICRP 23), every published BSI (EXINI's aBSI among them)
#: was built and validated on adults, and a child's open growth plates are hot and
#: normal: below this age the index would be a number without a meaning.
ADULT_AGE = 18.0


@dataclass(frozen=True)
class BoneScanIndex:
    """The BSI of one scan and how it is made up.

    Attributes:
        bsi: The Bone Scan Index in percent of total skeletal mass, in [0, 100].
        regions: ``{region name: contribution in percent}`` (involvement x share x 100)
            for the regions with any involvement only; the values sum to ``bsi`` (up
            to float rounding). Read-only.
        involvement: ``{region name: involved fraction in [0, 1]}`` for every region
            present (one pixel or more) on at least one given skeleton map, 0.0
            included; a region absent from every map is absent here, so "not seen"
            stays distinguishable from "seen and clear". Read-only.
    """

    bsi: float
    regions: Mapping[str, float]
    involvement: Mapping[str, float]


def withheld_for_age(age: float | None) -> str | None:
    """Say why a patient's BSI is not reported, or None when it is.

    Args:
        age: The patient's age in years at the study, or None when the file did not
            say (the index is then reported: most patients are adults).

    Returns:
        One sentence naming the age for a patient younger than :data:`ADULT_AGE`;
        None otherwise.

    Raises:
        ValueError: If ``age`` is negative or not finite.
    """
    if age is None:
        return None
    if not (math.isfinite(age) and age >= 0):
        raise ValueError(f"age: expected a finite age >= 0 in years, got {age}")
    if age >= ADULT_AGE:
        return None
    return (
        f"No BSI for a patient aged {int(age)}: the index's bone weights are an adult's "
        f"and it is validated in adults only (from {ADULT_AGE:.0f} years); a child's "
        "open growth plates are hot and normal."
    )


def check_skeleton_map(skeleton: object, name: str) -> np.ndarray:
    """Return ``skeleton`` as an array after checking it is a skeleton label map.

    Args:
        skeleton: The candidate map: ``uint8`` of shape ``(ROWS, COLS)`` =
            ``(1024, 256)``, values in ``0 .. N_LABELS - 1`` (0 background, the
            others the labels of :data:`core.anatomy.regions.LABELS`).
        name: The argument's name, put in the error message.

    Returns:
        The same array (not copied).

    Raises:
        ValueError: If it is not an array of that shape and dtype, or holds a value
            that is no label.
    """
    skeleton = _check_view_array(skeleton, name, np.dtype(np.uint8), "labels")
    top = int(skeleton.max())
    if top >= N_LABELS:
        raise ValueError(f"{name}: label {top} is not a region (labels are 0..{N_LABELS - 1})")
    return skeleton


def _check_mask(mask: object, name: str) -> np.ndarray:
    return _check_view_array(mask, name, np.dtype(np.bool_), "a mask")


def _check_view_array(a: object, name: str, dtype: np.dtype, what: str) -> np.ndarray:
    """``a`` itself when it is a (1024, 256) array of ``dtype``; else ValueError naming it."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.shape != (ROWS, COLS):
        raise ValueError(f"{name}: expected shape {(ROWS, COLS)}, got {a.shape}")
    if a.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {dtype} ({what}), got {a.dtype}")
    return a


def view_involvement(skeleton: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Return each region's involved fraction on one view.

    Args:
        skeleton: The view's skeleton label map, ``uint8`` ``(1024, 256)``, labels as
            :mod:`core.anatomy.regions` defines them, 0 background.
        mask: The view's metastasis mask, ``bool`` ``(1024, 256)``.

    Returns:
        ``{region name: metastatic pixels in the region / pixels of the region}``,
        each in [0, 1], for the regions with at least one pixel on this map only (a
        region missing from the map has no fraction, rather than 0/0). Metastasis
        pixels on background count nothing: the BSI measures bone.

    Raises:
        ValueError: If either array has the wrong shape, dtype or labels.
    """
    check_skeleton_map(skeleton, "skeleton")
    _check_mask(mask, "mask")
    return _involvement(skeleton, mask)


def _involvement(skeleton: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    # One pass each over the map and the masked labels instead of a loop per region.
    area = np.bincount(skeleton.ravel(), minlength=N_LABELS)
    hit = np.bincount(skeleton[mask], minlength=N_LABELS)
    return {
        r.name: float(hit[r.index]) / float(area[r.index]) for r in REGIONS if area[r.index] > 0
    }


def bone_scan_index(
    *,
    ant_skeleton: np.ndarray | None = None,
    ant_mask: np.ndarray | None = None,
    post_skeleton: np.ndarray | None = None,
    post_mask: np.ndarray | None = None,
) -> BoneScanIndex:
    """Return the Bone Scan Index of a scan from its skeleton maps and metastasis masks.

    Give the anterior view, the posterior view or both; each given view needs both its
    skeleton map and its mask. A region's involvement is the larger of the two views'
    (see the module docstring for why not the sum or the mean).

    Args:
        ant_skeleton: Anterior skeleton label map, ``uint8`` ``(1024, 256)``, labels
            as :mod:`core.anatomy.regions` defines them (0 background).
        ant_mask: Anterior metastasis mask, ``bool`` ``(1024, 256)``.
        post_skeleton: Posterior skeleton label map, as ``ant_skeleton``.
        post_mask: Posterior metastasis mask, as ``ant_mask``.

    Returns:
        The BSI in percent (in [0, 100]) with its per-region contributions and
        involvements.

    Raises:
        ValueError: If no view is given, a view is given without its skeleton or its
            mask, or an array has the wrong shape, dtype or labels; the message names
            the argument.
    """
    views: list[tuple[np.ndarray, np.ndarray]] = []
    for view, skeleton, mask in (
        ("ant", ant_skeleton, ant_mask),
        ("post", post_skeleton, post_mask),
    ):
        if skeleton is None and mask is None:
            continue
        if skeleton is None:
            raise ValueError(f"{view}_skeleton: missing while {view}_mask is given")
        if mask is None:
            raise ValueError(f"{view}_mask: missing while {view}_skeleton is given")
        views.append(
            (
                check_skeleton_map(skeleton, f"{view}_skeleton"),
                _check_mask(mask, f"{view}_mask"),
            )
        )
    if not views:
        raise ValueError("ant_skeleton/post_skeleton: give at least one view")

    involvement: dict[str, float] = {}
    for skeleton, mask in views:
        for name, fraction in _involvement(skeleton, mask).items():
            # The larger view wins: one lesion, one bone, counted once.
            involvement[name] = max(fraction, involvement.get(name, 0.0))

    shares = {r.name: r.share for r in REGIONS}
    contributions = {
        name: _PERCENT * fraction * shares[name]
        for name, fraction in involvement.items()
        if fraction > 0.0
    }
    # fsum keeps the total exact to rounding (and so monotone); the clip only absorbs
    # the last-bit excess of shares that sum to 1 in floating point.
    total = min(_PERCENT, max(0.0, math.fsum(contributions.values())))
    return BoneScanIndex(
        bsi=total,
        regions=MappingProxyType(contributions),
        involvement=MappingProxyType(involvement),
    )
