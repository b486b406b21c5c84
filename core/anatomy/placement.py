"""Where a lesion sits on the skeleton: its bone and side, from a skeleton label map.

A lesion's region is the region most of its pixels lie on. Hot spots spill a few
pixels past the bone's edge (the camera's blur, a lesion at a cortex), and a small one
can sit wholly beside the map's outline, so a pixel off the bone votes for the nearest
bone pixel's region when it lies within :data:`MAX_DISTANCE_PX`. A lesion farther
from every bone (soft tissue, a map that missed the bone) gets no region here, and the
caller falls back to body proportions (:func:`core.imaging.regions.skeletal_region`).

A view is *readable* when its map shows the spine and the pelvis, each as one piece
(:func:`unreadable_reason`): a network that did not find those on a whole-body view
did not find the skeleton (shown noise, it scatters every label in flecks), and its
regions and BSI would mislead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.anatomy.bsi import check_skeleton_map
from core.anatomy.regions import BACKGROUND, N_LABELS, REGIONS, Region, index_of

#: Farthest a lesion pixel may lie from the bone and still vote for it, in pixels
#: (2.4 mm each on the paper's camera: about the blur's half width plus a margin).
MAX_DISTANCE_PX = 6
#: Least pixels of the spine's largest piece (cervical, thoracic, lumbar) for a readable
#: view (a whole-body view's spine has thousands).
MIN_SPINE_PX = 300
#: Least pixels of the pelvis's largest piece (both sides) for a readable view.
MIN_PELVIS_PX = 300

_SPINE = tuple(index_of(n) for n in ("cervical_spine", "thoracic_spine", "lumbar_spine"))
_PELVIS = tuple(index_of(n) for n in ("pelvis_right", "pelvis_left"))
_BY_INDEX: dict[int, Region] = {r.index: r for r in REGIONS}


def unreadable_reason(skeleton: np.ndarray) -> str | None:
    """Return why a view's skeleton map cannot place lesions, or None when it can.

    Args:
        skeleton: ``uint8`` (1024, 256) label map (:mod:`core.anatomy.regions`).

    Returns:
        None when the map's largest connected piece of spine (cervical, thoracic and
        lumbar labels together) has at least :data:`MIN_SPINE_PX` pixels and that of
        the pelvis (both sides) :data:`MIN_PELVIS_PX`; else a short reason, e.g.
        ``"no pelvis found"``.

    Raises:
        ValueError: If ``skeleton`` is not a valid label map.
    """
    check_skeleton_map(skeleton, "skeleton")
    missing = [
        name
        for name, labels, least in (
            ("spine", _SPINE, MIN_SPINE_PX),
            ("pelvis", _PELVIS, MIN_PELVIS_PX),
        )
        if int(largest_piece(np.isin(skeleton, labels)).sum()) < least
    ]
    return None if not missing else "no " + " and no ".join(missing) + " found"


def largest_piece(where: np.ndarray) -> np.ndarray:
    """Return the largest connected piece (4-connected) of a boolean map.

    A network shown noise scatters every label in small flecks; a spine or a pelvis it
    really found is one piece. Measuring the largest piece, not all pixels, tells them
    apart.

    Args:
        where: bool 2-D array.

    Returns:
        bool array of ``where``'s shape, True on its largest piece only (all False when
        ``where`` is empty; the lower-numbered piece on a tie).
    """
    if not where.any():
        return np.zeros(where.shape, dtype=bool)
    pieces, n = ndimage.label(where)
    biggest = int(np.bincount(pieces.ravel(), minlength=n + 1)[1:].argmax()) + 1
    return pieces == biggest


def component_regions(
    skeleton: np.ndarray, components: np.ndarray, n_components: int
) -> list[Region | None]:
    """Return the skeletal region of each connected lesion component.

    Args:
        skeleton: ``uint8`` (H, W) label map of the view.
        components: ``int`` (H, W) component labels of the same view, 0 background,
            1..``n_components`` the lesions (e.g. from
            :func:`core.burden.lesion_review.lesion_components`).
        n_components: The largest component label.

    Returns:
        One entry per component 1..``n_components`` (index 0 is component 1): the
        region most of its pixels lie on or beside (within :data:`MAX_DISTANCE_PX`),
        ties to the lower label; None when no pixel is that close to any bone.

    Raises:
        ValueError: If the arrays differ in shape or ``n_components`` is negative.
    """
    if skeleton.shape != components.shape:
        raise ValueError(
            f"components: shape {components.shape} differs from the skeleton's {skeleton.shape}"
        )
    if n_components < 0:
        raise ValueError(f"n_components must be >= 0, got {n_components}")
    if n_components == 0:
        return []
    lesion = components > 0
    if not (skeleton != BACKGROUND).any():
        return [None] * n_components
    # Nearest bone pixel of every pixel: bone pixels are their own (distance 0).
    distance, (rows, cols) = ndimage.distance_transform_edt(
        skeleton == BACKGROUND, return_indices=True
    )
    votes = np.where(distance[lesion] <= MAX_DISTANCE_PX, skeleton[rows[lesion], cols[lesion]], 0)
    table = np.bincount(
        components[lesion].astype(np.int64) * N_LABELS + votes.astype(np.int64),
        minlength=(n_components + 1) * N_LABELS,
    ).reshape(n_components + 1, N_LABELS)
    table[:, BACKGROUND] = 0
    out: list[Region | None] = []
    for k in range(1, n_components + 1):
        row = table[k]
        out.append(_BY_INDEX[int(row.argmax())] if row.any() else None)
    return out
