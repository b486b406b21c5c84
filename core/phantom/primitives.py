"""The two primitives every phantom structure is drawn from, in patient millimetres.

Coordinates are the patient's own, in mm: ``x`` runs to the patient's **left**
(negative = patient's right), ``y`` runs down from the vertex (0 = top of the head),
and ``depth`` is measured from the anterior skin towards the back. Every primitive
also carries the body's anterior-posterior thickness where it lies, so that the
renderer can attenuate it for the anterior and the posterior detector.

* :class:`Tube` — a polyline with a per-vertex radius, half-depth, depth, thickness
  and uptake (long bones, ribs, clavicles, soft-tissue limbs, the trunk outline).
  Its projected path length at a pixel is ``2 * half_depth * sqrt(1 - u**2)`` with
  ``u`` the distance to the axis over the local radius (a cylinder seen side on).
* :class:`Blob` — an ellipsoid, optionally a shell (skull vault, vertebral bodies,
  kidneys, bladder, joints).

Uptake is activity per mm of path, relative: normal cortical/trabecular bone is 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tube:
    """A polyline primitive (bone or soft tissue), values per vertex, interpolated between.

    Attributes:
        name: Bone name, e.g. ``"femur_left"`` or ``"rib7_right"``.
        region: One of :data:`core.phantom.anatomy.REGIONS` (soft tissue: ``"soft"``).
        side: ``"right"``, ``"left"`` or None for midline parts.
        xy: (n, 2) float vertices, mm (x to the patient's left, y down from the vertex).
        radius: (n,) half-width in the image plane, mm (> 0).
        half_depth: (n,) half extent along the depth axis, mm (path length = 2x at the axis).
        depth: (n,) depth of the axis from the anterior skin, mm.
        thickness: (n,) body AP thickness there, mm (>= depth).
        uptake: (n,) activity per mm of path (normal bone 1.0).
        caps: Round ends (bones). False makes a vertical slab with flat ends whose
            ``radius`` is the half-width at each vertex's height (the trunk outline;
            vertices must then go down in y).
    """

    name: str
    region: str
    side: str | None
    xy: np.ndarray
    radius: np.ndarray
    half_depth: np.ndarray
    depth: np.ndarray
    thickness: np.ndarray
    uptake: np.ndarray
    caps: bool = True

    def length(self) -> float:
        """Return the polyline length in mm."""
        return float(np.linalg.norm(np.diff(self.xy, axis=0), axis=1).sum())

    def at(self, t: float) -> dict[str, float]:
        """Return position and attributes at arc-length fraction ``t`` in [0, 1].

        Returns:
            Dict with ``x, y, radius, half_depth, depth, thickness, uptake`` and
            ``angle`` (direction of the axis, radians, in the image plane).
        """
        seg = np.linalg.norm(np.diff(self.xy, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        s = float(np.clip(t, 0.0, 1.0)) * cum[-1]
        i = int(min(np.searchsorted(cum, s, side="right") - 1, len(seg) - 1))
        f = 0.0 if seg[i] == 0 else (s - cum[i]) / seg[i]
        out = {}
        for key in ("radius", "half_depth", "depth", "thickness", "uptake"):
            arr = getattr(self, key)
            out[key] = float(arr[i] + f * (arr[i + 1] - arr[i]))
        p = self.xy[i] + f * (self.xy[i + 1] - self.xy[i])
        d = self.xy[i + 1] - self.xy[i]
        out["x"], out["y"] = float(p[0]), float(p[1])
        out["angle"] = float(math.atan2(d[1], d[0]))
        return out


@dataclass(frozen=True)
class Blob:
    """An ellipsoid primitive (solid, or a shell of the given thickness).

    Attributes:
        name, region, side: As for :class:`Tube`.
        centre: (x, y) mm.
        axes: (a, b, c) semi-axes, mm: ``a`` along ``angle``, ``b`` across it in the
            image plane, ``c`` along depth.
        angle: Direction of ``a`` in the image plane, radians (0 = to the patient's left).
        depth: Depth of the centre from the anterior skin, mm.
        thickness: Body AP thickness there, mm.
        uptake: Activity per mm of path.
        shell: Shell thickness, mm; 0 for a solid ellipsoid.
        power: Exponent of the in-plane outline (2 = ellipse, 4 = rounded box, for
            vertebral bodies).
    """

    name: str
    region: str
    side: str | None
    centre: tuple[float, float]
    axes: tuple[float, float, float]
    angle: float
    depth: float
    thickness: float
    uptake: float
    shell: float = 0.0
    power: float = 2.0


Primitive = Tube | Blob


def make_tube(
    name: str,
    region: str,
    side: str | None,
    pts: Sequence[tuple[float, float]],
    radius: float | Sequence[float],
    depth: float | Sequence[float],
    thickness: float | Sequence[float],
    uptake: float | Sequence[float] = 1.0,
    half_depth: float | Sequence[float] | None = None,
    caps: bool = True,
) -> Tube:
    """Return a :class:`Tube`; a scalar attribute is the same at every vertex.

    ``half_depth`` defaults to the radius (a round cross-section).
    """
    n = len(pts)

    def per_vertex(value: float | Sequence[float]) -> np.ndarray:
        a = np.asarray(value, dtype=np.float64)
        return np.full(n, float(a)) if a.ndim == 0 else a

    r = per_vertex(radius)
    return Tube(
        name=name,
        region=region,
        side=side,
        xy=np.asarray(pts, dtype=np.float64),
        radius=r,
        half_depth=r.copy() if half_depth is None else per_vertex(half_depth),
        depth=per_vertex(depth),
        thickness=per_vertex(thickness),
        uptake=per_vertex(uptake),
        caps=caps,
    )
