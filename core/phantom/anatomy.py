"""One body model per patient: bone, soft-tissue and organ primitives in millimetres.

Coordinates are the patient's own, in mm: ``x`` runs to the patient's **left**
(negative = patient's right), ``y`` runs down from the vertex (0 = top of the head),
and ``depth`` is measured from the anterior skin towards the back. Every primitive
also carries the body's anterior-posterior thickness where it lies, so that the
renderer can attenuate it for the anterior and the posterior detector.

Two kinds of primitive describe everything:

* :class:`Tube` — a polyline with a per-vertex radius, half-depth, depth, thickness
  and uptake (long bones, ribs, clavicles, soft-tissue limbs, the trunk outline).
  Its projected path length at a pixel is ``2 * half_depth * sqrt(1 - u**2)`` with
  ``u`` the distance to the axis over the local radius (a cylinder seen side on).
* :class:`Blob` — an ellipsoid, optionally a shell (skull vault, vertebral bodies,
  kidneys, bladder, joints).

Uptake is activity per mm of path, relative: normal cortical/trabecular bone is 1.0.
Proportions follow standard anthropometry as fractions of the stature ``H`` (vertex
to sole), e.g. chin 0.13 H, shoulders 0.19 H, hip joints 0.48 H, knee joints 0.715 H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

#: Skeletal regions a bone (and so a lesion) belongs to; names used in every truth record.
REGIONS: tuple[str, ...] = (
    "skull",
    "mandible",
    "cervical_spine",
    "thoracic_spine",
    "lumbar_spine",
    "sacrum",
    "ribs",
    "sternum",
    "clavicle",
    "scapula",
    "humerus",
    "forearm",
    "hand",
    "pelvis",
    "femur",
    "patella",
    "tibia",
    "fibula",
    "foot",
)
#: Regions of the axial skeleton (where most metastases lie).
AXIAL_REGIONS: frozenset[str] = frozenset(
    {
        "skull",
        "cervical_spine",
        "thoracic_spine",
        "lumbar_spine",
        "sacrum",
        "ribs",
        "sternum",
        "pelvis",
    }
)

ArmPosition = Literal["sides", "abdomen", "abducted"]
ARM_POSITIONS: tuple[str, ...] = ("sides", "abdomen", "abducted")


@dataclass(frozen=True)
class Tube:
    """A polyline primitive (bone or soft tissue), values per vertex, interpolated between.

    Attributes:
        name: Bone name, e.g. ``"femur_left"`` or ``"rib7_right"``.
        region: One of :data:`REGIONS` (soft tissue: ``"soft"``).
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


@dataclass(frozen=True)
class Body:
    """One patient's anatomy: primitives plus the landmarks findings are placed by.

    Attributes:
        height_mm: Stature, vertex to sole.
        sex: ``"M"`` or ``"F"``.
        age: Years.
        arm_position: One of :data:`ARM_POSITIONS`.
        bones: Bone primitives (normal uptake, before findings).
        soft: Soft-tissue outline parts (head, neck, trunk, legs), combined by maximum.
        arms_soft: Soft tissue of the arms, added on top of ``soft``.
        kidneys: The two kidneys (uptake filled in by the renderer's physiology).
        joints: Normal brighter joints (SI joints, knees, shoulders, hips, ankles).
        landmarks: Named points ``(x, y)`` in mm (e.g. ``"symphysis"``, ``"elbow_left"``).
        thickness: Named AP thicknesses, mm (``"chest"``, ``"abdomen"``, ``"pelvis"`` ...).
        params: Scalars that drew the body (width factors, adiposity, scoliosis ...).
    """

    height_mm: float
    sex: str
    age: int
    arm_position: str
    bones: tuple[Primitive, ...]
    soft: tuple[Primitive, ...]
    arms_soft: tuple[Primitive, ...]
    kidneys: tuple[Blob, Blob]
    joints: tuple[Primitive, ...]
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    thickness: dict[str, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)

    def bone(self, name: str) -> Primitive:
        """Return the bone called ``name``.

        Raises:
            KeyError: If there is none.
        """
        for b in self.bones:
            if b.name == name:
                return b
        raise KeyError(name)


def _tube(
    name: str,
    region: str,
    side: str | None,
    pts: list[tuple[float, float]],
    radius: float | list[float],
    depth: float | list[float],
    thickness: float | list[float],
    uptake: float | list[float] = 1.0,
    half_depth: float | list[float] | None = None,
    caps: bool = True,
) -> Tube:
    n = len(pts)

    def arr(v: float | list[float]) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64)
        return np.full(n, float(a)) if a.ndim == 0 else a

    r = arr(radius)
    return Tube(
        name=name,
        region=region,
        side=side,
        xy=np.asarray(pts, dtype=np.float64),
        radius=r,
        half_depth=r.copy() if half_depth is None else arr(half_depth),
        depth=arr(depth),
        thickness=arr(thickness),
        uptake=arr(uptake),
        caps=caps,
    )


#: Relative MDP uptake per region (multiplies each primitive's own uptake).
REGION_UPTAKE: dict[str, float] = {
    # Tuned (issue 13) so that each region's level against the lumbar spine matches the
    # real scans of ``../shared/real-scans`` (docs/phantom.md, realism table): the
    # lumbar bodies are large and were far too hot against ribs, pelvis and cervical
    # spine; limb shafts and knees were too hot.
    "skull": 0.78,
    "mandible": 0.7,
    "cervical_spine": 2.2,
    "thoracic_spine": 1.3,
    "lumbar_spine": 0.9,
    "sacrum": 1.25,
    "pelvis": 2.2,
    "ribs": 1.5,
    "sternum": 1.7,
    "clavicle": 1.0,
    "scapula": 1.0,
    "humerus": 0.5,
    "forearm": 0.55,
    "hand": 0.7,
    "femur": 0.4,
    "patella": 0.4,
    "tibia": 0.45,
    "fibula": 0.5,
    "foot": 0.6,
}


def _scaled(p: Primitive, k: float) -> Primitive:
    if isinstance(p, Tube):
        return replace(p, uptake=p.uptake * k)
    return replace(p, uptake=p.uptake * k)


def adult_height(sex: str, age: int, rng: np.random.Generator) -> float:
    """Draw a stature in mm for a patient of the paper's (Chinese hospital) cohort.

    Args:
        sex: ``"M"`` or ``"F"``.
        age: Years (>= 0); adolescents are drawn shorter, the old slightly shorter.
        rng: Random generator.

    Returns:
        Height in mm, within [1350, 1900].
    """
    mean, sd = (1650.0, 60.0) if sex == "M" else (1540.0, 55.0)
    if age < 18:
        # rough growth curve: about 1500 mm at 12, adult at 17 (boys) / 15 (girls)
        adult_age = 17 if sex == "M" else 15
        frac = min(1.0, max(0.0, (age - 12) / (adult_age - 12)))
        mean = 1500.0 + frac * (mean - 1500.0)
    elif age > 70:
        mean -= 2.0 * (age - 70)
    return float(np.clip(rng.normal(mean, sd), 1350.0, 1900.0))


def build_body(
    rng: np.random.Generator,
    sex: str,
    age: int,
    *,
    height_mm: float | None = None,
    arm_position: str | None = None,
) -> Body:
    """Draw one patient's anatomy.

    Args:
        rng: Random generator (consumed; same state, same body).
        sex: ``"M"`` or ``"F"``.
        age: Age in years (12 to 100).
        height_mm: Stature; drawn by :func:`adult_height` when None.
        arm_position: One of :data:`ARM_POSITIONS`; drawn (70 % sides, 18 % abdomen,
            12 % abducted) when None.

    Returns:
        The :class:`Body`.

    Raises:
        ValueError: If ``sex`` or ``arm_position`` is not a known value.
    """
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    H = adult_height(sex, age, rng) if height_mm is None else float(height_mm)
    if arm_position is None:
        arm_position = str(rng.choice(ARM_POSITIONS, p=[0.70, 0.18, 0.12]))
    if arm_position not in ARM_POSITIONS:
        raise ValueError(f"arm_position must be one of {ARM_POSITIONS}, got {arm_position!r}")

    male = sex == "M"
    sf = rng.normal(1.0, 0.045) * (1.03 if male else 0.97)  # shoulder width factor
    hf = rng.normal(1.0, 0.045) * (0.97 if male else 1.05)  # pelvis width factor
    adip = float(np.clip(rng.normal(1.0, 0.12), 0.8, 1.4))  # soft-tissue girth
    scol = rng.normal(0.0, 0.006) * H if (age > 55 and rng.random() < 0.2) else 0.0
    bone_scale = float(np.clip(rng.normal(1.0, 0.04), 0.88, 1.12))  # bone calibre

    T = {
        "head": 0.11 * H,
        "neck": 0.07 * H,
        "chest": 0.125 * H * adip,
        "abdomen": 0.13 * H * adip**1.3,
        "pelvis": 0.13 * H * adip,
        "thigh": 0.09 * H * adip,
        "knee": 0.065 * H,
        "shank": 0.06 * H * math.sqrt(adip),
        "ankle": 0.05 * H,
        "foot": 0.07 * H,
        "arm": 0.05 * H * math.sqrt(adip),
    }

    def trunk_thickness(y: float) -> float:
        """AP thickness of the body at height y (mm), piecewise linear."""
        ys = np.array([0.0, 0.13, 0.17, 0.22, 0.33, 0.42, 0.5, 0.56, 0.72, 0.9, 1.0]) * H
        ts = np.array(
            [
                T["head"],
                T["head"],
                T["neck"],
                T["chest"],
                T["chest"],
                T["abdomen"],
                T["pelvis"],
                T["thigh"],
                T["knee"],
                T["shank"],
                T["foot"],
            ]
        )
        return float(np.interp(y, ys, ts))

    bones: list[Primitive] = []
    joints: list[Primitive] = []
    lm: dict[str, tuple[float, float]] = {}
    bs = bone_scale

    def spine_x(y: float) -> float:
        y0, y1 = 0.19 * H, 0.45 * H
        if scol == 0.0 or y < y0 or y > y1:
            return 0.0
        return float(scol * math.sin(math.pi * (y - y0) / (y1 - y0)))

    # --- skull and face ---------------------------------------------------------------
    head_T = T["head"]
    bones.append(
        Blob(
            "cranium",
            "skull",
            None,
            (0.0, 0.054 * H),
            (0.042 * H, 0.05 * H, 0.048 * H),
            0.0,
            head_T / 2,
            head_T,
            1.0,
            shell=10.0 * bs,
        )
    )
    bones.append(
        Blob(
            "skull_base",
            "skull",
            None,
            (0.0, 0.085 * H),
            (0.034 * H, 0.012 * H, 0.035 * H),
            0.0,
            head_T * 0.5,
            head_T,
            0.12,
        )
    )
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        bones.append(
            Blob(
                f"orbit_{side}",
                "skull",
                side,
                (sgn * 0.017 * H, 0.072 * H),
                (0.011 * H, 0.01 * H, 0.012 * H),
                0.0,
                0.05 * H * 0.5,
                head_T,
                0.9,
                shell=3.5,
            )
        )
    bones.append(
        Blob(
            "maxilla",
            "skull",
            None,
            (0.0, 0.1 * H),
            (0.02 * H, 0.011 * H, 0.012 * H),
            0.0,
            0.03 * H,
            head_T,
            0.9,
        )
    )
    bones.append(
        Blob(
            "nasal",
            "skull",
            None,
            (0.0, 0.084 * H),
            (0.006 * H, 0.01 * H, 0.012 * H),
            0.0,
            0.02 * H,
            head_T,
            0.8,
        )
    )
    mand = [
        (-0.029 * H, 0.092 * H),
        (-0.027 * H, 0.113 * H),
        (-0.015 * H, 0.126 * H),
        (0.0, 0.13 * H),
        (0.015 * H, 0.126 * H),
        (0.027 * H, 0.113 * H),
        (0.029 * H, 0.092 * H),
    ]
    bones.append(
        _tube(
            "mandible",
            "mandible",
            None,
            mand,
            5.0 * bs,
            [
                0.55 * head_T,
                0.4 * head_T,
                0.2 * head_T,
                0.12 * head_T,
                0.2 * head_T,
                0.4 * head_T,
                0.55 * head_T,
            ],
            head_T,
            1.0,
            half_depth=8.0 * bs,
        )
    )
    lm["chin"] = (0.0, 0.13 * H)

    # --- spine ------------------------------------------------------------------------
    levels: list[tuple[str, str, float, float, float]] = []  # name, region, y_top, y_bot, hw
    y = 0.108 * H
    for i in range(7):
        h = 0.0100 * H
        levels.append((f"C{i + 1}", "cervical_spine", y, y + h, (9.0 + 0.6 * i) * bs))
        y += h
    for i in range(12):
        h = 0.0135 * H
        levels.append((f"T{i + 1}", "thoracic_spine", y, y + h, (14.0 + 0.8 * i) * bs))
        y += h
    for i in range(5):
        h = 0.0205 * H
        levels.append((f"L{i + 1}", "lumbar_spine", y, y + h, (23.0 + 1.2 * i) * bs))
        y += h
    vert_y: dict[str, float] = {}
    for name, region, y0, y1, hw in levels:
        yc = 0.5 * (y0 + y1)
        vert_y[name] = yc
        tt = trunk_thickness(yc)
        if region == "cervical_spine":
            dfrac = 0.55
        elif region == "thoracic_spine":
            dfrac = 0.68 + 0.04 * math.sin(math.pi * (yc - 0.19 * H) / (0.16 * H))
        else:
            dfrac = 0.64
        d = dfrac * tt
        xc = spine_x(yc)
        # bodies fill ~80 % of the level; the gap reads as the disc space
        bones.append(
            Blob(
                name,
                region,
                None,
                (xc, yc),
                (hw, 0.5 * (y1 - y0), hw * 0.85),
                0.0,
                d,
                tt,
                1.0,
                # rounder than a box: real vertebrae blur into a column, not beads
                power=2.5,
            )
        )
        # posterior elements (pedicles, laminae, spinous process), deeper
        bones.append(
            Blob(
                f"{name}_arch",
                region,
                None,
                (xc, yc + 0.1 * (y1 - y0)),
                (hw * 0.75, 0.45 * (y1 - y0), 10.0 * bs),
                0.0,
                min(tt - 12.0, d + hw * 0.85 + 14.0),
                tt,
                0.9,
            )
        )
    lm["L5_bottom"] = (0.0, y)
    lm["T12"] = (spine_x(vert_y["T12"]), vert_y["T12"])
    lm["L3"] = (spine_x(vert_y["L3"]), vert_y["L3"])
    lm["C7"] = (0.0, vert_y["C7"])

    # --- sacrum and pelvis --------------------------------------------------------------
    ys0 = y
    pT = T["pelvis"]
    bones.append(
        _tube(
            "sacrum",
            "sacrum",
            None,
            [
                (0.0, ys0 + 0.004 * H),
                (0.0, ys0 + 0.04 * H),
                (0.0, ys0 + 0.075 * H),
                (0.0, ys0 + 0.095 * H),
            ],
            [0.026 * H * hf, 0.02 * H * hf, 0.009 * H, 0.004 * H],
            [0.72 * pT, 0.75 * pT, 0.8 * pT, 0.82 * pT],
            pT,
            [1.05, 1.0, 0.9, 0.7],
            half_depth=[14.0, 12.0, 9.0, 6.0],
        )
    )
    lm["sacrum_top"] = (0.0, ys0)
    sym_y = ys0 + 0.062 * H  # pubic symphysis, upper border of the bladder's bed
    lm["symphysis"] = (0.0, sym_y)
    hip_dx = 0.052 * H * hf
    hip_y = ys0 + 0.03 * H
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        s = sgn
        # iliac wing: a tilted plate, with a brighter crest along its rim
        bones.append(
            Blob(
                f"ilium_{side}",
                "pelvis",
                side,
                (s * 0.056 * H * hf, ys0 - 0.004 * H),
                (0.038 * H * hf, 0.027 * H, 14.0 * bs),
                s * math.radians(-22),
                0.5 * pT,
                pT,
                0.75,
            )
        )
        crest = [
            (s * 0.024 * H, ys0 - 0.012 * H),
            (s * 0.045 * H * hf, ys0 - 0.032 * H),
            (s * 0.072 * H * hf, ys0 - 0.03 * H),
            (s * 0.088 * H * hf, ys0 - 0.012 * H),
            (s * 0.086 * H * hf, ys0 + 0.006 * H),
        ]
        bones.append(
            _tube(
                f"iliac_crest_{side}",
                "pelvis",
                side,
                crest,
                6.5 * bs,
                [0.72 * pT, 0.6 * pT, 0.45 * pT, 0.3 * pT, 0.25 * pT],
                pT,
                1.0,
                half_depth=12.0 * bs,
            )
        )
        # SI joint: a short oblique line beside the sacrum, normally brighter
        si = [(s * 0.02 * H * hf, ys0 + 0.002 * H), (s * 0.017 * H * hf, ys0 + 0.036 * H)]
        joints.append(
            _tube(
                f"si_joint_{side}",
                "pelvis",
                side,
                si,
                6.0 * bs,
                0.72 * pT,
                pT,
                1.0,
                half_depth=16.0,
            )
        )
        lm[f"si_{side}"] = (s * 0.019 * H * hf, ys0 + 0.02 * H)
        # acetabulum rim and the pubic and ischial rami (the obturator ring)
        hx = s * hip_dx
        lm[f"hip_{side}"] = (hx, hip_y)
        bones.append(
            Blob(
                f"acetabulum_{side}",
                "pelvis",
                side,
                (hx - s * 3.0, hip_y - 3.0),
                (0.017 * H, 0.017 * H, 0.02 * H),
                0.0,
                0.5 * pT,
                pT,
                0.7,
                shell=6.0,
            )
        )
        ring = [
            (hx - s * 0.006 * H, hip_y + 0.008 * H),
            (s * 0.02 * H, sym_y - 0.006 * H),
            (s * 0.007 * H, sym_y),
            (s * 0.009 * H, sym_y + 0.018 * H),
            (s * 0.028 * H, sym_y + 0.03 * H),
            (s * 0.043 * H * hf, sym_y + 0.024 * H),
            (hx - s * 0.002 * H, hip_y + 0.018 * H),
        ]
        bones.append(
            _tube(
                f"pubis_{side}",
                "pelvis",
                side,
                ring,
                5.5 * bs,
                [0.45 * pT, 0.25 * pT, 0.18 * pT, 0.25 * pT, 0.55 * pT, 0.62 * pT, 0.55 * pT],
                pT,
                0.95,
                half_depth=8.0 * bs,
            )
        )

    # --- ribs, sternum, clavicles ---------------------------------------------------
    cT = T["chest"]
    rib_rx = (
        np.array([0.035, 0.05, 0.06, 0.067, 0.072, 0.075, 0.077, 0.077, 0.075, 0.071, 0.064, 0.056])
        * H
        * sf
    )
    rib_drop = (
        np.array([0.02, 0.04, 0.057, 0.066, 0.073, 0.077, 0.079, 0.077, 0.07, 0.056, 0.034, 0.02])
        * H
    )
    rib_end = np.radians([150, 155, 158, 158, 158, 158, 155, 148, 140, 130, 105, 80])
    for k in range(12):
        yk = vert_y[f"T{k + 1}"]
        rx = rib_rx[k]
        rz = 0.42 * cT * (0.75 + 0.25 * min(1.0, k / 5))
        zc = 0.52 * cT
        phi = np.linspace(math.radians(14), rib_end[k], 14)
        s_ = np.clip((phi - math.radians(15)) / (rib_end[k] - math.radians(15)), 0.0, 1.0)
        ys = (
            yk
            + rib_drop[k] * s_**1.1
            - 0.003 * H * np.sin(np.minimum(phi, math.pi / 2)) * (1.0 if k > 0 else 0.3)
        )
        xs = rx * np.sin(phi)
        ds = zc + rz * np.cos(phi)
        for side, sgn in (("right", -1.0), ("left", 1.0)):
            pts = [(sgn * float(a) + spine_x(yk), float(b)) for a, b in zip(xs, ys, strict=True)]
            bones.append(
                _tube(
                    f"rib{k + 1}_{side}",
                    "ribs",
                    side,
                    pts,
                    4.2 * bs,
                    list(map(float, ds)),
                    cT,
                    0.85,
                    half_depth=5.0 * bs,
                )
            )
    lm["xiphoid"] = (0.0, 0.29 * H)
    st_y0 = vert_y["T2"]
    st = [
        (0.0, st_y0),
        (0.0, st_y0 + 0.028 * H),
        (0.0, st_y0 + 0.06 * H),
        (0.0, st_y0 + 0.1 * H),
        (0.0, st_y0 + 0.112 * H),
    ]
    bones.append(
        _tube(
            "sternum",
            "sternum",
            None,
            st,
            [13.0 * bs, 11.0 * bs, 9.0 * bs, 8.5 * bs, 4.0],
            18.0,
            cT,
            [1.0, 0.95, 0.95, 0.95, 0.8],
            half_depth=7.0,
        )
    )
    lm["sternum_top"] = (0.0, st_y0)
    sh = 0.112 * H * sf  # half biacromial width
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        s = sgn
        cl = [
            (s * 0.013 * H, st_y0 + 0.003 * H),
            (s * 0.035 * H, st_y0 - 0.004 * H),
            (s * 0.06 * H * sf, st_y0 - 0.011 * H),
            (s * (sh - 0.014 * H), st_y0 - 0.015 * H),
        ]
        bones.append(
            _tube(
                f"clavicle_{side}",
                "clavicle",
                side,
                cl,
                5.0 * bs,
                [20.0, 30.0, 45.0, 55.0],
                cT,
                0.8,
            )
        )
        lm[f"acromion_{side}"] = (s * sh, st_y0 - 0.006 * H)
        # scapula: thin plate, brighter borders, spine of the scapula
        sup = (s * 0.045 * H * sf, st_y0 - 0.002 * H)
        inf = (s * 0.058 * H * sf, st_y0 + 0.095 * H)
        gle = (s * (sh - 0.022 * H), st_y0 + 0.013 * H)
        cx = (sup[0] + inf[0] + gle[0]) / 3
        cy = (sup[1] + inf[1] + gle[1]) / 3
        sd = 0.84 * cT
        bones.append(
            Blob(
                f"scapula_{side}",
                "scapula",
                side,
                (cx, cy),
                (0.03 * H, 0.021 * H, 8.0),
                math.radians(95 if s < 0 else 85) + s * 0.2,
                sd,
                cT,
                0.9,
            )
        )
        bones.append(
            _tube(
                f"scapula_border_{side}",
                "scapula",
                side,
                [sup, inf, gle],
                4.5 * bs,
                sd,
                cT,
                1.1,
                half_depth=7.0,
            )
        )
        bones.append(
            _tube(
                f"scapula_spine_{side}",
                "scapula",
                side,
                [(s * 0.05 * H * sf, st_y0 + 0.018 * H), (s * (sh - 0.004 * H), st_y0 - 0.004 * H)],
                5.0 * bs,
                sd - 10.0,
                cT,
                1.2,
                half_depth=8.0,
            )
        )
        lm[f"scapula_{side}"] = (cx, cy)
        lm[f"inferior_angle_{side}"] = inf

    # --- arms --------------------------------------------------------------------------
    arms_soft: list[Primitive] = []
    aT = T["arm"]
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        s = sgn
        shoulder = (s * (sh - 0.017 * H), st_y0 + 0.012 * H)
        lm[f"shoulder_{side}"] = shoulder
        if arm_position == "sides":
            a_up = math.radians(rng.uniform(2, 9))
            a_fore = a_up + math.radians(rng.uniform(-6, 3))
            a_hand = a_fore + math.radians(rng.uniform(-8, 8))
        elif arm_position == "abducted":
            a_up = math.radians(rng.uniform(18, 38))
            a_fore = a_up + math.radians(rng.uniform(-5, 12))
            a_hand = a_fore + math.radians(rng.uniform(-5, 10))
        else:  # hands resting on the abdomen: elbows flexed, forearms point to the midline
            a_up = math.radians(rng.uniform(8, 16))
            a_fore = -math.radians(rng.uniform(40, 65))
            a_hand = a_fore - math.radians(rng.uniform(-10, 15))
        L_up, L_fore, L_hand = 0.186 * H, 0.146 * H, 0.09 * H

        def step(
            p: tuple[float, float], ang: float, length: float, s: float = s
        ) -> tuple[float, float]:
            # angle from the downward vertical, positive = away from the midline
            return (p[0] + s * length * math.sin(ang), p[1] + length * math.cos(ang))

        elbow = step(shoulder, a_up, L_up)
        wrist = step(elbow, a_fore, L_fore)
        tip = step(wrist, a_hand, L_hand)
        lm[f"elbow_{side}"], lm[f"wrist_{side}"] = elbow, wrist
        on_body = arm_position == "abdomen"
        # forearm and hand on the abdomen lie in front of it: shallow for ANT, deep for POST
        fT = T["abdomen"] + aT if on_body else aT
        fd = 0.5 * aT if not on_body else 0.45 * aT
        hum = [
            shoulder,
            step(shoulder, a_up, 0.15 * L_up),
            step(shoulder, a_up, 0.85 * L_up),
            elbow,
        ]
        bones.append(
            _tube(
                f"humerus_{side}",
                "humerus",
                side,
                hum,
                [17.0 * bs, 11.0 * bs, 9.5 * bs, 14.0 * bs],
                0.5 * aT,
                [aT, aT, aT, (aT + fT) / 2],
                [1.3, 1.0, 0.85, 1.0],
            )
        )
        joints.append(
            Blob(
                f"shoulder_joint_{side}",
                "humerus",
                side,
                shoulder,
                (15.0, 15.0, 15.0),
                0.0,
                0.5 * cT,
                cT,
                0.8,
            )
        )
        # radius and ulna: two thin lines a few mm apart along the forearm
        dx_, dy_ = wrist[0] - elbow[0], wrist[1] - elbow[1]
        norm = math.hypot(dx_, dy_) or 1.0
        nx, ny = -dy_ / norm, dx_ / norm
        for bname, off, rad in (("radius", 5.5, 4.3), ("ulna", -5.5, 4.0)):
            p0 = (elbow[0] + off * nx, elbow[1] + off * ny)
            p1 = (wrist[0] + 1.3 * off * nx, wrist[1] + 1.3 * off * ny)
            bones.append(
                _tube(
                    f"{bname}_{side}",
                    "forearm",
                    side,
                    [p0, p1],
                    [rad * bs, rad * bs * 1.25],
                    fd,
                    fT,
                    [0.85, 1.05],
                )
            )
        carpus = step(wrist, a_hand, 0.02 * H)
        bones.append(
            Blob(
                f"carpus_{side}",
                "hand",
                side,
                carpus,
                (13.0, 10.0, 10.0),
                -s * a_hand,
                fd,
                fT,
                1.2,
            )
        )
        for j, fan in enumerate((-16, -8, 0, 8, 15)):
            ang = a_hand + math.radians(fan) * (0.6 if arm_position == "sides" else 1.0)
            ln = (0.065 if j in (0, 4) else 0.078) * H
            bones.append(
                _tube(
                    f"hand{j + 1}_{side}",
                    "hand",
                    side,
                    [step(carpus, ang, 6.0), step(carpus, ang, ln)],
                    [4.5, 3.0],
                    fd,
                    fT,
                    [1.0, 0.8],
                )
            )
        arms_soft.append(
            _tube(
                f"arm_soft_{side}",
                "soft",
                side,
                [shoulder, elbow, wrist, tip],
                [0.03 * H * adip, 0.024 * H * adip, 0.018 * H, 0.016 * H],
                0.5 * aT,
                [aT, aT, fT, fT],
                1.0,
                half_depth=[0.028 * H * adip, 0.022 * H * adip, 0.015 * H, 0.01 * H],
            )
        )

    # --- legs ------------------------------------------------------------------------
    tgT, kT, shT, anT, ftT = T["thigh"], T["knee"], T["shank"], T["ankle"], T["foot"]
    knee_y, ankle_y = 0.715 * H, 0.955 * H
    spread = rng.uniform(-0.006, 0.012) * H  # legs together or slightly apart
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        s = sgn
        hx, hy = lm[f"hip_{side}"]
        kx = s * (0.047 * H + spread)
        ax_ = s * (0.046 * H + 1.4 * spread)
        lm[f"knee_{side}"], lm[f"ankle_{side}"] = (kx, knee_y), (ax_, ankle_y)
        troch = (hx + s * 0.03 * H * hf, hy + 0.012 * H)
        bones.append(
            Blob(
                f"femoral_head_{side}",
                "femur",
                side,
                (hx, hy),
                (0.013 * H, 0.013 * H, 0.013 * H),
                0.0,
                0.5 * pT,
                pT,
                0.75,
            )
        )
        fem = [
            (hx + s * 0.004 * H, hy + 0.003 * H),
            troch,
            (hx + s * 0.024 * H * hf, hy + 0.035 * H),
            (kx + s * 0.003 * H, knee_y - 0.07 * H),
            (kx, knee_y - 0.018 * H),
            (kx, knee_y - 0.004 * H),
        ]
        bones.append(
            _tube(
                f"femur_{side}",
                "femur",
                side,
                fem,
                [10.0 * bs, 15.0 * bs, 12.0 * bs, 12.0 * bs, 0.021 * H * bs, 0.022 * H * bs],
                [0.5 * pT, 0.5 * pT, 0.5 * tgT, 0.5 * tgT, 0.5 * kT, 0.5 * kT],
                [pT, pT, tgT, tgT, kT, kT],
                [1.0, 1.15, 0.9, 0.85, 0.95, 1.0],
                half_depth=[10.0, 18.0, 13.0, 12.0, 17.0, 17.0],
            )
        )
        bones.append(
            Blob(
                f"patella_{side}",
                "patella",
                side,
                (kx, knee_y - 0.02 * H),
                (13.0, 15.0, 9.0),
                0.0,
                14.0,
                kT,
                0.7,
            )
        )
        tib = [
            (kx, knee_y + 0.004 * H),
            (kx, knee_y + 0.025 * H),
            (kx - s * 0.003 * H, knee_y + 0.08 * H),
            (ax_ - s * 0.004 * H, ankle_y - 0.03 * H),
            (ax_ - s * 0.004 * H, ankle_y - 0.002 * H),
        ]
        bones.append(
            _tube(
                f"tibia_{side}",
                "tibia",
                side,
                tib,
                [0.022 * H * bs, 0.015 * H * bs, 10.5 * bs, 10.0 * bs, 14.0 * bs],
                [0.45 * kT, 0.4 * kT, 0.35 * shT, 0.4 * anT, 0.45 * anT],
                [kT, kT, shT, anT, anT],
                [1.05, 1.0, 0.85, 0.9, 1.05],
                half_depth=[16.0, 14.0, 11.0, 10.0, 13.0],
            )
        )
        fib = [
            (kx + s * 0.019 * H, knee_y + 0.022 * H),
            (kx + s * 0.017 * H, knee_y + 0.1 * H),
            (ax_ + s * 0.014 * H, ankle_y - 0.01 * H),
        ]
        bones.append(
            _tube(
                f"fibula_{side}",
                "fibula",
                side,
                fib,
                [6.0 * bs, 4.0 * bs, 6.0 * bs],
                [0.55 * kT, 0.55 * shT, 0.55 * anT],
                [kT, shT, anT],
                [0.9, 0.75, 0.95],
            )
        )
        # feet point up at the detector: the tarsus is a compact, deep blob below the
        # ankle, the metatarsals short foreshortened rays splayed outwards
        tars = (ax_ + s * 0.004 * H, ankle_y + 0.022 * H)
        bones.append(
            Blob(
                f"tarsus_{side}",
                "foot",
                side,
                tars,
                (0.012 * H, 0.014 * H, 0.02 * H),
                0.0,
                0.5 * ftT,
                ftT,
                0.9,
            )
        )
        lm[f"foot_{side}"] = tars
        turn = math.radians(rng.uniform(5, 30))
        for j, off in enumerate((-0.25, -0.08, 0.08, 0.25)):
            ang = turn + off
            p0 = (tars[0] + s * 6.0 * math.sin(ang), tars[1] + 8.0)
            p1 = (tars[0] + s * 0.045 * H * math.sin(ang), tars[1] + 0.045 * H * math.cos(ang))
            bones.append(
                _tube(
                    f"metatarsal{j + 1}_{side}",
                    "foot",
                    side,
                    [p0, p1],
                    [6.0, 4.5],
                    0.35 * ftT,
                    ftT,
                    1.0,
                    half_depth=[12.0, 9.0],
                )
            )
        joints.append(
            Blob(
                f"knee_joint_{side}",
                "tibia",
                side,
                (kx, knee_y),
                (0.021 * H, 9.0, 0.02 * H),
                0.0,
                0.5 * kT,
                kT,
                0.15,
            )
        )
        joints.append(
            Blob(
                f"ankle_joint_{side}",
                "tibia",
                side,
                (ax_, ankle_y),
                (13.0, 9.0, 14.0),
                0.0,
                0.5 * anT,
                anT,
                0.7,
            )
        )
        joints.append(
            Blob(
                f"hip_joint_{side}",
                "femur",
                side,
                (hx, hy),
                (14.0, 14.0, 14.0),
                0.0,
                0.5 * pT,
                pT,
                0.35,
            )
        )

    # --- soft-tissue outline -------------------------------------------------------------
    soft: list[Primitive] = [
        Blob(
            "head_soft",
            "soft",
            None,
            (0.0, 0.062 * H),
            (0.05 * H, 0.065 * H, 0.055 * H),
            0.0,
            head_T / 2,
            head_T,
            1.0,
        ),
        _tube(
            "neck_soft",
            "soft",
            None,
            [(0.0, 0.11 * H), (0.0, 0.185 * H)],
            0.036 * H,
            T["neck"] / 2,
            T["neck"],
            1.0,
            half_depth=T["neck"] / 2,
        ),
    ]
    trunk_y = [0.17, 0.2, 0.23, 0.28, 0.35, 0.42, 0.47, 0.52]
    trunk_w = [
        0.045 * H,
        (sh + 0.006 * H) * 0.95,
        0.098 * H * sf * adip**0.5,
        0.094 * H * adip**0.6,
        0.088 * H * adip**0.9,
        0.096 * H * hf * adip**0.8,
        0.103 * H * hf * adip**0.6,
        0.095 * H * hf * adip**0.5,
    ]
    trunk_d = [trunk_thickness(v * H) for v in trunk_y]
    soft.append(
        _tube(
            "trunk_soft",
            "soft",
            None,
            [(0.0, v * H) for v in trunk_y],
            trunk_w,
            [t / 2 for t in trunk_d],
            trunk_d,
            1.0,
            half_depth=[t / 2 for t in trunk_d],
            caps=False,
        )
    )
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        s = sgn
        hx, hy = lm[f"hip_{side}"]
        kx, ky = lm[f"knee_{side}"]
        ax_, ay_ = lm[f"ankle_{side}"]
        fx, fy = lm[f"foot_{side}"]
        pts = [(s * 0.045 * H * hf, hy), (kx, ky), (ax_, ay_ - 0.03 * H), (fx, fy)]
        widths = [0.05 * H * adip, 0.032 * H * adip**0.5, 0.022 * H, 0.024 * H]
        leg_t = [tgT, kT, anT, ftT]
        soft.append(
            _tube(
                f"leg_soft_{side}",
                "soft",
                side,
                pts,
                widths,
                [t / 2 for t in leg_t],
                leg_t,
                1.0,
                half_depth=[t / 2 for t in leg_t],
            )
        )

    # --- kidneys (uptake set by the physiology) ------------------------------------------
    aT_ = T["abdomen"]
    kid: list[Blob] = []
    for side, sgn, dy in (("right", -1.0, 0.012 * H), ("left", 1.0, 0.0)):
        kid.append(
            Blob(
                f"kidney_{side}",
                "soft",
                side,
                (sgn * 0.038 * H, vert_y["L1"] + dy),
                (0.034 * H, 0.016 * H, 0.018 * H),
                math.radians(90 - sgn * 15),
                0.7 * aT_,
                aT_,
                0.0,
            )
        )

    # lungs: air, not tissue; the renderer removes their share of chest soft tissue
    for side, sgn in (("right", -1.0), ("left", 1.0)):
        soft.append(
            Blob(
                f"lung_{side}",
                "lung",
                side,
                (sgn * 0.045 * H * sf, 0.255 * H),
                (0.065 * H, 0.034 * H * sf, 0.045 * H * adip**0.5),
                math.pi / 2,
                0.5 * cT,
                cT,
                1.0,
            )
        )

    # metabolic activity differs by bone: trabecular axial bone takes up more MDP than
    # the cortical shafts of the limbs
    bones = [_scaled(b, REGION_UPTAKE.get(b.region, 1.0)) for b in bones]
    joints = [_scaled(b, REGION_UPTAKE.get(b.region, 1.0)) for b in joints]

    return Body(
        height_mm=H,
        sex=sex,
        age=int(age),
        arm_position=arm_position,
        bones=tuple(bones),
        soft=tuple(soft),
        arms_soft=tuple(arms_soft),
        kidneys=(kid[0], kid[1]),
        joints=tuple(joints),
        landmarks=lm,
        thickness=T,
        params={
            "shoulder_factor": float(sf),
            "pelvis_factor": float(hf),
            "adiposity": adip,
            "scoliosis_mm": float(scol),
            "bone_scale": bone_scale,
        },
    )
