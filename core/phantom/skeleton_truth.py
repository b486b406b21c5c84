"""Exact skeleton label maps of a phantom case: which region each pixel's bone uptake is.

For a generated case the skeleton is known bone by bone, so its region map needs no
annotator. Every bone and normal joint is drawn and blurred on its own, with the same
renderer, placement and gains as :func:`core.phantom.generate.generate_case` draws
it into the image (attenuation and the depth-dependent collimator blur included), so
the maps align pixel for pixel with the case's views.

* **Which region.** A pixel takes the region whose parts together contribute most
  uptake there (the argmax of the per-region sums).
* **Bone or background.** A pixel is bone where at least one part reaches
  :data:`MIN_FRACTION` of that part's own level on that view (its
  :data:`LEVEL_PERCENTILE`-th percentile over the pixels it reaches), so a thin bone
  beside a thick one (fibula by the tibia, metatarsals) keeps its outline, and the
  blurred tails of a bone do not spread into soft tissue. It is background anyway
  where the winning contribution is below :data:`FLOOR_FRACTION` of the view's
  skeleton level: a part hidden by depth on one view (a hand on the abdomen seen from
  behind) is not labelled there.

Soft tissue, kidneys, bladder, benign findings and metastases draw nothing: the map
is the normal skeleton under them.

**Geometry.** Everything is drawn in the anterior orientation (patient's right on the
image left) and the posterior map is mirrored left-right at the end, exactly as
:func:`core.phantom.render.render` mirrors the posterior view: the patient's left arm
is on the viewer's right in ANT and on the viewer's left in POST.

**Phantom parts to regions** (:func:`label_of_part`): skull, face and mandible are
``skull``; forearm and hand are ``forearm``; tibia and fibula are ``lower_leg``; the
patella and the knee joint are ``knee``, and so is every femur, tibia and fibula pixel
row within :data:`KNEE_HALF_BAND_H` of stature of the knee's height (the bone ends
inside the joint, split before the blur so their blurred uptake follows them); the
hip joint is ``femur``, the shoulder joint ``humerus``, the ankle joint ``lower_leg``,
the sacroiliac joints ``pelvis``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

import core.phantom.render as rd
from core.anatomy.regions import BACKGROUND, LABELS, N_LABELS, index_of
from core.config import COLS, ROWS, VIEWS
from core.phantom.anatomy import Body
from core.phantom.generate import Physiology, bone_gain, draw_scene, joint_gain
from core.phantom.primitives import Primitive

#: Knee band: femur/tibia/fibula rows within this fraction of stature of the knee's
#: height belong to the knee (about 55 mm each way for a 1.6 m patient).
KNEE_HALF_BAND_H = 0.035
#: A pixel is background when its largest contribution is below this fraction of
#: that label's own level.
MIN_FRACTION = 0.2
#: Percentile of a label's contribution (over the pixels it reaches) taken as its level.
LEVEL_PERCENTILE = 99.0
#: A bone pixel's largest contribution must reach this fraction of the view's skeleton
#: level (the same percentile of the summed bone uptake).
FLOOR_FRACTION = 0.02
#: Pixels below this fraction of a part's peak do not count as "reached" by it.
_REACH_FRACTION = 0.01

_SIDED = frozenset({"pelvis", "ribs", "clavicle", "scapula", "humerus", "foot"})
_MID = frozenset({"cervical_spine", "thoracic_spine", "lumbar_spine", "sacrum", "sternum"})
_SPLIT_AT_KNEE = ("femur", "lower_leg")


def label_of_part(region: str, side: str | None, name: str) -> str:
    """Return the table region of one phantom bone or joint.

    Args:
        region: The part's phantom region (:data:`core.phantom.anatomy.REGIONS`).
        side: The patient's side (``"left"``, ``"right"``) or None when midline.
        name: The part's name (tells the knee joint from the ankle joint, both "tibia").

    Returns:
        A name of :data:`core.anatomy.regions.LABELS` (before the knee band split).

    Raises:
        ValueError: If the part is not a known bone, or a paired bone has no side.
    """
    if region in ("skull", "face", "mandible"):
        return "skull"
    if region in _MID:
        return region
    if side not in ("left", "right"):
        raise ValueError(f"paired part {name!r} ({region}) has no side")
    if region in _SIDED:
        base = region
    elif region in ("forearm", "hand"):
        base = "forearm"
    elif region == "femur":
        base = "femur"
    elif region == "patella" or name.startswith("knee_joint"):
        base = "knee"
    elif region in ("tibia", "fibula"):
        base = "lower_leg"
    else:
        raise ValueError(f"part {name!r} has no skeletal region ({region!r})")
    return f"{base}_{side}"


def _parts(body: Body, phys: Physiology) -> dict[str, list[tuple[Primitive, float]]]:
    """Group the body's bones and joints by table region, each with its drawing gain."""
    out: dict[str, list[tuple[Primitive, float]]] = {}
    for b in body.bones:
        out.setdefault(label_of_part(b.region, b.side, b.name), []).append(
            (b, bone_gain(phys, b.region))
        )
    for j in body.joints:
        out.setdefault(label_of_part(j.region, j.side, j.name), []).append(
            (j, joint_gain(phys, j.name))
        )
    return out


def _knee_rows(body: Body, placement: rd.Placement, side: str) -> slice:
    """Rows (anterior grid) of the knee band of one leg."""
    knee_y = body.landmarks[f"knee_{side}"][1]
    half = KNEE_HALF_BAND_H * body.height_mm
    ys = (np.arange(ROWS) - placement.vertex_row) * rd.PIXEL_MM
    inside = np.flatnonzero(np.abs(ys - knee_y) <= half)
    if inside.size == 0:
        return slice(0, 0)
    return slice(int(inside[0]), int(inside[-1]) + 1)


@dataclass(frozen=True)
class _Piece:
    """One part's blurred uptake on a crop of both views (anterior orientation).

    Attributes:
        label: Its table region.
        rows: Rows of the crop in the field.
        cols: Columns of the crop (anterior orientation).
        planes: float64 (2, h, w): ANT and POST (POST not yet mirrored).
    """

    label: str
    rows: slice
    cols: slice
    planes: np.ndarray


def _blur_crop(layers: np.ndarray, placement: rd.Placement) -> np.ndarray:
    """Blur a (4, h, w) crop of the canvas layers as the renderer blurs the field.

    The crop carries a zero margin of at least 3.5 sigma (the filters' truncation),
    so the result equals the renderer's whole-field blur on it exactly.
    """
    # the renderer's own sigmas (private there): the same near/far split
    s_near = rd._sigma_px(rd.NEAR_MM, placement.blur_scale)
    s_far = rd._sigma_px(rd.FAR_MM, placement.blur_scale)
    out = np.empty((2, *layers.shape[1:]))
    for v, k in enumerate((0, 2)):
        near = ndimage.gaussian_filter(layers[k], s_near, mode="constant", truncate=3.5)
        far = ndimage.gaussian_filter(layers[k + 1], s_far, mode="constant", truncate=3.5)
        out[v] = near + far
    return out


def _pieces(body: Body, phys: Physiology, placement: rd.Placement) -> list[_Piece]:
    """Draw and blur every bone and joint on its own (the knee band split off)."""
    pad = math.ceil(3.5 * rd._sigma_px(rd.FAR_MM, placement.blur_scale)) + 2
    knee_rows = {side: _knee_rows(body, placement, side) for side in ("left", "right")}
    out: list[_Piece] = []
    for name, items in _parts(body, phys).items():
        for prim, gain in items:
            canvas = rd.Canvas(placement)
            rd.draw(canvas, [prim], gain=gain)
            pieces = [(name, canvas.layers)]
            base, _, side = name.rpartition("_")
            if base in _SPLIT_AT_KNEE:
                rows = knee_rows[side]
                knee = np.zeros_like(canvas.layers)
                knee[:, rows] = canvas.layers[:, rows]
                canvas.layers[:, rows] = 0.0
                pieces.append((f"knee_{side}", knee))
            for label, layers in pieces:
                on_r = np.flatnonzero(layers.any(axis=(0, 2)))
                on_c = np.flatnonzero(layers.any(axis=(0, 1)))
                if on_r.size == 0:
                    continue
                rows = slice(max(0, int(on_r[0]) - pad), min(ROWS, int(on_r[-1]) + 1 + pad))
                cols = slice(max(0, int(on_c[0]) - pad), min(COLS, int(on_c[-1]) + 1 + pad))
                out.append(_Piece(label, rows, cols, _blur_crop(layers[:, rows, cols], placement)))
    return out


def contributions(body: Body, phys: Physiology, placement: rd.Placement) -> dict[str, np.ndarray]:
    """Return each region's blurred, attenuated bone uptake on both views.

    Args:
        body: The anatomy (:attr:`core.phantom.generate.CaseScene.body`).
        phys: The scan's physiology (its region, axial and joint gains and blur).
        placement: Where the body lies in the field.

    Returns:
        ``{region name: float64 (2, 1024, 256)}`` (ANT, POST), in rendered activity
        units before the scaling to counts, the POST plane mirrored like the view.
        Only regions with at least one part are present.
    """
    return _sum_pieces(_pieces(body, phys, placement))


def _sum_pieces(pieces: list[_Piece]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for pc in pieces:
        acc = out.setdefault(pc.label, np.zeros((2, ROWS, COLS)))
        acc[:, pc.rows, pc.cols] += pc.planes
    for acc in out.values():
        acc[1] = acc[1][:, ::-1].copy()
    return out


def label_maps(body: Body, phys: Physiology, placement: rd.Placement) -> dict[str, np.ndarray]:
    """Return the skeleton label map of each view (the rule of the module docstring).

    Args:
        body: The anatomy.
        phys: The scan's physiology.
        placement: Where the body lies in the field.

    Returns:
        ``{"ANT", "POST"}`` uint8 (1024, 256) label maps, values in
        ``[0, N_LABELS)`` (:data:`core.anatomy.regions.LABELS`), view orientation
        (POST mirrored), 0 background.
    """
    pieces = _pieces(body, phys, placement)
    # a pixel is bone where some part reaches MIN_FRACTION of its own level there
    bone = np.zeros((2, ROWS, COLS), dtype=bool)
    for pc in pieces:
        for v in range(2):
            # each view's own level: a part dimmed by depth on one view keeps its
            # outline there; whether it shows at all is the floor's business below
            plane = pc.planes[v]
            peak = float(plane.max())
            if peak <= 0.0:
                continue
            level = float(np.percentile(plane[plane >= _REACH_FRACTION * peak], LEVEL_PERCENTILE))
            bone[v, pc.rows, pc.cols] |= plane >= MIN_FRACTION * level
    bone[1] = bone[1][:, ::-1]
    sums = _sum_pieces(pieces)
    names = sorted(sums)
    stack = np.stack([sums[n] for n in names])  # (labels, 2, H, W)
    best = stack.argmax(axis=0)
    top = np.take_along_axis(stack, best[None], axis=0)[0]
    total = stack.sum(axis=0)
    lut = np.array([index_of(n) for n in names], dtype=np.uint8)
    label = lut[best]
    for v in range(2):
        # blurred tails of neighbours can make a faint part's own rule fire far out in
        # soft tissue; a floor against the view's skeleton level stops that
        floor = FLOOR_FRACTION * float(np.percentile(total[v][total[v] > 0], LEVEL_PERCENTILE))
        label[v][~bone[v] | (top[v] < floor)] = BACKGROUND
    assert int(label.max()) < N_LABELS
    return {view: np.ascontiguousarray(label[v]) for v, view in enumerate(VIEWS)}


def case_label_maps(seed: int, index: int, **forced: Any) -> dict[str, np.ndarray]:
    """Return the skeleton label maps of ``generate_case(seed, index, **forced)``.

    Args:
        seed: Dataset seed, as for :func:`core.phantom.generate.generate_case`.
        index: Case index.
        **forced: The same forcing keywords (``age=``, ``arm_position=`` ...), without
            ``noise`` (the maps do not depend on it).

    Returns:
        ``{"ANT", "POST"}`` uint8 (1024, 256) label maps aligned with that case's views.
    """
    scene = draw_scene(seed, index, **forced)
    return label_maps(scene.body, scene.physiology, scene.placement)


def label_names(maps: Mapping[str, np.ndarray]) -> set[str]:
    """Return the names of the regions present in any of the maps (for checks)."""
    return {LABELS[int(i)] for m in maps.values() for i in np.unique(m) if int(i) != BACKGROUND}
