"""One body model per patient: bones, joints, soft tissue and organs as primitives.

:func:`build_body` scales the anatomy of :mod:`core.phantom.anatomy_tables` to one
patient (stature, shoulder and pelvis width, adiposity, bone calibre, scoliosis, arm
position) and draws it as :mod:`core.phantom.primitives`, one helper per structure
family: skull, spine, pelvis, ribs, shoulder girdle, arms, legs, soft tissue and
organs. Coordinates are the patient's own, in mm (see :mod:`core.phantom.primitives`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

import core.phantom.anatomy_tables as tables
from core.phantom.primitives import Blob, Primitive, Tube, make_tube

#: Skeletal regions a bone (and so a lesion) belongs to; names used in every truth record.
REGIONS: tuple[str, ...] = (
    "skull",
    "face",
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


#: The two sides: name and the sign of a lateral offset (the patient's right is -x).
SIDES: tuple[tuple[str, float], ...] = (("right", -1.0), ("left", 1.0))

#: Named anchor points (x, y) in mm that a structure's offsets are measured from.
Anchors = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class _Build:
    """One patient's drawn proportions, which every structure is scaled by.

    Attributes:
        height: Stature, mm.
        shoulder_factor: Shoulder (and rib cage) width over the average.
        pelvis_factor: Pelvis width over the average.
        adiposity: Soft-tissue girth over the average.
        scoliosis_mm: Lateral bend of the thoracolumbar spine at its apex (0: none).
        bone_scale: Bone calibre over the average.
        thickness: AP thickness of each level of
            :data:`core.phantom.anatomy_tables.THICKNESS`, mm.
    """

    height: float
    shoulder_factor: float
    pelvis_factor: float
    adiposity: float
    scoliosis_mm: float
    bone_scale: float
    thickness: dict[str, float]

    def mm(self, fraction: float) -> float:
        """Return a fraction of the stature in mm."""
        return fraction * self.height

    def trunk_thickness(self, y: float) -> float:
        """Return the midline AP thickness at height ``y`` (mm), piecewise linear."""
        ys = np.array([f for f, _ in tables.THICKNESS_PROFILE]) * self.height
        ts = np.array([self.thickness[level] for _, level in tables.THICKNESS_PROFILE])
        return float(np.interp(y, ys, ts))

    def place(self, offset: tables.Offset, sgn: float, anchors: Anchors) -> tuple[float, float]:
        """Return where an offset lies on the side of sign ``sgn`` (mm)."""
        ax, ay = anchors[offset.anchor]
        dx = sgn * offset.x_h * self.height
        if offset.wide == "pelvis":
            dx = dx * self.pelvis_factor
        elif offset.wide == "shoulder":
            dx = dx * self.shoulder_factor
        return (ax + dx, ay + offset.y_h * self.height)

    def spine_x(self, y: float) -> float:
        """Return the spine's lateral shift at height ``y`` (scoliosis; mm)."""
        y0, y1 = (self.mm(f) for f in tables.SCOLIOSIS_SPAN_H)
        if self.scoliosis_mm == 0.0 or y < y0 or y > y1:
            return 0.0
        return float(self.scoliosis_mm * math.sin(math.pi * (y - y0) / (y1 - y0)))


@dataclass
class _Parts:
    """The primitives and landmarks of a body while it is built."""

    bones: list[Primitive] = field(default_factory=list)
    joints: list[Primitive] = field(default_factory=list)
    soft: list[Primitive] = field(default_factory=list)
    arms_soft: list[Primitive] = field(default_factory=list)
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)


def _level_thickness(height: float, adiposity: float) -> dict[str, float]:
    out = {}
    for row in tables.THICKNESS:
        lean = row.fraction_h * height
        if row.girth == "none":
            out[row.name] = lean
        elif row.girth == "sqrt":
            out[row.name] = lean * math.sqrt(adiposity)
        else:
            out[row.name] = lean * adiposity ** float(row.girth)
    return out


def _draw_build(rng: np.random.Generator, sex: str, age: int, height: float) -> _Build:
    male = sex == "M"
    shoulder_factor = rng.normal(1.0, 0.045) * (1.03 if male else 0.97)
    pelvis_factor = rng.normal(1.0, 0.045) * (0.97 if male else 1.05)
    adiposity = float(np.clip(rng.normal(1.0, 0.12), 0.8, 1.4))
    scoliosis = rng.normal(0.0, 0.006) * height if (age > 55 and rng.random() < 0.2) else 0.0
    bone_scale = float(np.clip(rng.normal(1.0, 0.04), 0.88, 1.12))
    return _Build(
        height=height,
        shoulder_factor=shoulder_factor,
        pelvis_factor=pelvis_factor,
        adiposity=adiposity,
        scoliosis_mm=scoliosis,
        bone_scale=bone_scale,
        thickness=_level_thickness(height, adiposity),
    )


def _add_skull(parts: _Parts, build: _Build) -> None:
    """Vault, base, orbits, maxilla, nasal bones and the mandible."""
    head = build.thickness["head"]
    for row in tables.SKULL:
        sides: tuple[tuple[str | None, float], ...] = SIDES if row.paired else ((None, 0.0),)
        for side, sgn in sides:
            x = sgn * row.x_h * build.height if row.paired else 0.0
            shell = row.shell_mm * build.bone_scale if row.bone_scaled else row.shell_mm
            parts.bones.append(
                Blob(
                    row.name if side is None else f"{row.name}_{side}",
                    row.region,
                    side,
                    (x, build.mm(row.y_h)),
                    (build.mm(row.axes_h[0]), build.mm(row.axes_h[1]), build.mm(row.axes_h[2])),
                    0.0,
                    head * 0.5 if row.depth_h is None else build.mm(row.depth_h),
                    head,
                    row.uptake,
                    shell=shell,
                )
            )
    parts.bones.append(
        make_tube(
            "mandible",
            "mandible",
            None,
            [(build.mm(x), build.mm(y)) for x, y, _ in tables.MANDIBLE],
            tables.MANDIBLE_RADIUS_MM * build.bone_scale,
            [d * head for _, _, d in tables.MANDIBLE],
            head,
            1.0,
            half_depth=tables.MANDIBLE_HALF_DEPTH_MM * build.bone_scale,
        )
    )
    parts.landmarks["chin"] = (0.0, build.mm(tables.CHIN_H))


def _vertebral_depth(build: _Build, region: str, y: float) -> float:
    """Depth of a vertebral body's centre as a fraction of the local thickness."""
    if region == "cervical_spine":
        return tables.CERVICAL_DEPTH_T
    if region == "thoracic_spine":
        phase = math.pi * (y - build.mm(tables.KYPHOSIS_START_H)) / build.mm(tables.KYPHOSIS_SPAN_H)
        return tables.THORACIC_DEPTH_T + tables.KYPHOSIS_DEPTH_T * math.sin(phase)
    return tables.LUMBAR_DEPTH_T


def _add_spine(parts: _Parts, build: _Build) -> tuple[dict[str, float], float]:
    """Vertebral bodies and their posterior arches, C1 to L5.

    Returns:
        The centre height of each level (``{"C1": y, ...}``) and the bottom of L5, mm.
    """
    levels: list[tuple[str, str, float, float, float]] = []  # name, region, top, bottom, hw
    y = build.mm(tables.SPINE_TOP_H)
    for seg in tables.SPINE:
        for i in range(seg.count):
            level_height = build.mm(seg.level_h)
            half_width = (seg.half_width_mm + seg.half_width_step_mm * i) * build.bone_scale
            levels.append((f"{seg.prefix}{i + 1}", seg.region, y, y + level_height, half_width))
            y += level_height
    centre_y: dict[str, float] = {}
    for name, region, top, bottom, hw in levels:
        yc = 0.5 * (top + bottom)
        centre_y[name] = yc
        tt = build.trunk_thickness(yc)
        depth = _vertebral_depth(build, region, yc) * tt
        xc = build.spine_x(yc)
        # the body fills most of the level; the gap reads as the disc space
        parts.bones.append(
            Blob(
                name,
                region,
                None,
                (xc, yc),
                (hw, 0.5 * (bottom - top), hw * tables.VERTEBRA_DEPTH_RATIO),
                0.0,
                depth,
                tt,
                1.0,
                power=tables.VERTEBRA_POWER,
            )
        )
        parts.bones.append(
            Blob(
                f"{name}_arch",
                region,
                None,
                (xc, yc + tables.ARCH_SHIFT * (bottom - top)),
                (
                    hw * tables.ARCH_WIDTH,
                    tables.ARCH_HALF_HEIGHT * (bottom - top),
                    tables.ARCH_HALF_DEPTH_MM * build.bone_scale,
                ),
                0.0,
                min(
                    tt - tables.ARCH_SKIN_MM,
                    depth + hw * tables.VERTEBRA_DEPTH_RATIO + tables.ARCH_GAP_MM,
                ),
                tt,
                tables.ARCH_UPTAKE,
            )
        )
    lm = parts.landmarks
    lm["L5_bottom"] = (0.0, y)
    lm["T12"] = (build.spine_x(centre_y["T12"]), centre_y["T12"])
    lm["L3"] = (build.spine_x(centre_y["L3"]), centre_y["L3"])
    lm["C7"] = (0.0, centre_y["C7"])
    return centre_y, y


def _add_pelvis(parts: _Parts, build: _Build, sacrum_top: float) -> None:
    """Sacrum, iliac wings and crests, SI joints, acetabula and the obturator rings."""
    pelvis = build.thickness["pelvis"]
    lm = parts.landmarks
    parts.bones.append(
        make_tube(
            "sacrum",
            "sacrum",
            None,
            [(0.0, sacrum_top + build.mm(v.dy_h)) for v in tables.SACRUM],
            [
                build.mm(v.radius_h) * build.pelvis_factor if v.wide else build.mm(v.radius_h)
                for v in tables.SACRUM
            ],
            [v.depth_t * pelvis for v in tables.SACRUM],
            pelvis,
            [v.uptake for v in tables.SACRUM],
            half_depth=[v.half_depth_mm for v in tables.SACRUM],
        )
    )
    lm["sacrum_top"] = (0.0, sacrum_top)
    symphysis_y = sacrum_top + build.mm(tables.SYMPHYSIS_DY_H)
    lm["symphysis"] = (0.0, symphysis_y)
    hip_dx = build.mm(tables.HIP_X_H) * build.pelvis_factor
    hip_y = sacrum_top + build.mm(tables.HIP_DY_H)
    bs = build.bone_scale
    for side, sgn in SIDES:
        hip_x = sgn * hip_dx
        anchors = {
            "sacrum": (0.0, sacrum_top),
            "symphysis": (0.0, symphysis_y),
            "hip": (hip_x, hip_y),
        }
        parts.bones.append(
            Blob(
                f"ilium_{side}",
                "pelvis",
                side,
                build.place(tables.ILIUM_CENTRE, sgn, anchors),
                (
                    build.mm(tables.ILIUM_AXES[0]) * build.pelvis_factor,
                    build.mm(tables.ILIUM_AXES[1]),
                    tables.ILIUM_HALF_DEPTH_MM * bs,
                ),
                sgn * math.radians(tables.ILIUM_TILT_DEG),
                0.5 * pelvis,
                pelvis,
                tables.ILIUM_UPTAKE,
            )
        )
        parts.bones.append(
            make_tube(
                f"iliac_crest_{side}",
                "pelvis",
                side,
                [build.place(p, sgn, anchors) for p, _ in tables.ILIAC_CREST],
                tables.ILIAC_CREST_RADIUS_MM * bs,
                [d * pelvis for _, d in tables.ILIAC_CREST],
                pelvis,
                1.0,
                half_depth=tables.ILIAC_CREST_HALF_DEPTH_MM * bs,
            )
        )
        parts.joints.append(
            make_tube(
                f"si_joint_{side}",
                "pelvis",
                side,
                [build.place(p, sgn, anchors) for p in tables.SI_JOINT],
                tables.SI_JOINT_RADIUS_MM * bs,
                tables.SI_JOINT_DEPTH_T * pelvis,
                pelvis,
                1.0,
                half_depth=tables.SI_JOINT_HALF_DEPTH_MM,
            )
        )
        lm[f"si_{side}"] = build.place(tables.SI_JOINT_LANDMARK, sgn, anchors)
        lm[f"hip_{side}"] = (hip_x, hip_y)
        shift = tables.ACETABULUM_SHIFT_MM
        parts.bones.append(
            Blob(
                f"acetabulum_{side}",
                "pelvis",
                side,
                (hip_x - sgn * shift, hip_y - shift),
                (
                    build.mm(tables.ACETABULUM_AXES[0]),
                    build.mm(tables.ACETABULUM_AXES[1]),
                    build.mm(tables.ACETABULUM_AXES[2]),
                ),
                0.0,
                0.5 * pelvis,
                pelvis,
                tables.ACETABULUM_UPTAKE,
                shell=tables.ACETABULUM_SHELL_MM,
            )
        )
        parts.bones.append(
            make_tube(
                f"pubis_{side}",
                "pelvis",
                side,
                [build.place(p, sgn, anchors) for p, _ in tables.PUBIC_RING],
                tables.PUBIC_RING_RADIUS_MM * bs,
                [d * pelvis for _, d in tables.PUBIC_RING],
                pelvis,
                tables.PUBIC_RING_UPTAKE,
                half_depth=tables.PUBIC_RING_HALF_DEPTH_MM * bs,
            )
        )


def _add_ribs(parts: _Parts, build: _Build, centre_y: dict[str, float]) -> None:
    """Twelve pairs of ribs, each an arc round the cage from its thoracic vertebra."""
    chest = build.thickness["chest"]
    half_width = np.array(tables.RIB_HALF_WIDTH_H) * build.height * build.shoulder_factor
    drop = np.array(tables.RIB_DROP_H) * build.height
    end = np.radians(tables.RIB_END_DEG)
    drop_start = math.radians(tables.RIB_DROP_START_DEG)
    for k in range(12):
        yk = centre_y[f"T{k + 1}"]
        # the upper ribs sit in a shallower cage
        cage_depth = tables.RIB_CAGE_DEPTH_T * chest * (0.75 + 0.25 * min(1.0, k / 5))
        cage_centre = tables.RIB_CAGE_CENTRE_T * chest
        phi = np.linspace(math.radians(tables.RIB_START_DEG), end[k], tables.RIB_VERTICES)
        along = np.clip((phi - drop_start) / (end[k] - drop_start), 0.0, 1.0)
        # each rib first rises a little from its vertebra, then drops to the front
        rise = tables.RIB_RISE_H * build.height * np.sin(np.minimum(phi, math.pi / 2))
        ys = (
            yk
            + drop[k] * along**tables.RIB_DROP_POWER
            - rise * (1.0 if k > 0 else tables.FIRST_RIB_RISE)
        )
        xs = half_width[k] * np.sin(phi)
        depths = cage_centre + cage_depth * np.cos(phi)
        for side, sgn in SIDES:
            pts = [
                (sgn * float(x) + build.spine_x(yk), float(y)) for x, y in zip(xs, ys, strict=True)
            ]
            parts.bones.append(
                make_tube(
                    f"rib{k + 1}_{side}",
                    "ribs",
                    side,
                    pts,
                    tables.RIB_RADIUS_MM * build.bone_scale,
                    list(map(float, depths)),
                    chest,
                    tables.RIB_UPTAKE,
                    half_depth=tables.RIB_HALF_DEPTH_MM * build.bone_scale,
                )
            )
    parts.landmarks["xiphoid"] = (0.0, build.mm(tables.XIPHOID_H))


def _girdle_anchors(sgn: float, half_width: float, sternum_top: float) -> Anchors:
    return {"sternum": (0.0, sternum_top), "acromion": (sgn * half_width, sternum_top)}


def _add_sternum_and_girdle(parts: _Parts, build: _Build, sternum_top: float) -> float:
    """Sternum, clavicles and scapulae.

    Returns:
        Half the biacromial width, mm.
    """
    chest = build.thickness["chest"]
    bs = build.bone_scale
    lm = parts.landmarks
    parts.bones.append(
        make_tube(
            "sternum",
            "sternum",
            None,
            [(0.0, sternum_top + build.mm(v.dy_h)) for v in tables.STERNUM],
            [v.radius_mm * bs if v.bone_scaled else v.radius_mm for v in tables.STERNUM],
            tables.STERNUM_DEPTH_MM,
            chest,
            [v.uptake for v in tables.STERNUM],
            half_depth=tables.STERNUM_HALF_DEPTH_MM,
        )
    )
    lm["sternum_top"] = (0.0, sternum_top)
    half_width = build.mm(tables.SHOULDER_HALF_WIDTH_H) * build.shoulder_factor
    for side, sgn in SIDES:
        anchors = _girdle_anchors(sgn, half_width, sternum_top)

        def at(
            p: tables.Offset, sgn: float = sgn, anchors: Anchors = anchors
        ) -> tuple[float, float]:
            return build.place(p, sgn, anchors)

        parts.bones.append(
            make_tube(
                f"clavicle_{side}",
                "clavicle",
                side,
                [at(p) for p in tables.CLAVICLE],
                tables.CLAVICLE_RADIUS_MM * bs,
                list(tables.CLAVICLE_DEPTH_MM),
                chest,
                tables.CLAVICLE_UPTAKE,
            )
        )
        lm[f"acromion_{side}"] = at(tables.ACROMION)
        superior = at(tables.SCAPULA_SUPERIOR)
        inferior = at(tables.SCAPULA_INFERIOR)
        glenoid = at(tables.SCAPULA_GLENOID)
        cx = (superior[0] + inferior[0] + glenoid[0]) / 3
        cy = (superior[1] + inferior[1] + glenoid[1]) / 3
        depth = tables.SCAPULA_DEPTH_T * chest
        tilt = tables.SCAPULA_TILT_DEG[0 if sgn < 0 else 1]
        parts.bones.append(
            Blob(
                f"scapula_{side}",
                "scapula",
                side,
                (cx, cy),
                (
                    build.mm(tables.SCAPULA_AXES[0]),
                    build.mm(tables.SCAPULA_AXES[1]),
                    tables.SCAPULA_HALF_DEPTH_MM,
                ),
                math.radians(tilt) + sgn * tables.SCAPULA_TILT_OUT,
                depth,
                chest,
                tables.SCAPULA_UPTAKE,
            )
        )
        parts.bones.append(
            make_tube(
                f"scapula_border_{side}",
                "scapula",
                side,
                [superior, inferior, glenoid],
                tables.SCAPULA_BORDER_RADIUS_MM * bs,
                depth,
                chest,
                tables.SCAPULA_BORDER_UPTAKE,
                half_depth=tables.SCAPULA_BORDER_HALF_DEPTH_MM,
            )
        )
        parts.bones.append(
            make_tube(
                f"scapula_spine_{side}",
                "scapula",
                side,
                [at(p) for p in tables.SCAPULA_SPINE],
                tables.SCAPULA_SPINE_RADIUS_MM * bs,
                depth - tables.SCAPULA_SPINE_LIFT_MM,
                chest,
                tables.SCAPULA_SPINE_UPTAKE,
                half_depth=tables.SCAPULA_SPINE_HALF_DEPTH_MM,
            )
        )
        lm[f"scapula_{side}"] = (cx, cy)
        lm[f"inferior_angle_{side}"] = inferior
    return half_width


def _draw_arm_angles(rng: np.random.Generator, pose: tables.ArmPose) -> tuple[float, float, float]:
    """Draw the upper arm's, forearm's and hand's angles (radians) for one arm."""
    upper = math.radians(rng.uniform(*pose.upper_deg))
    base = upper if pose.forearm_follows else 0.0
    forearm = base + pose.forearm_sign * math.radians(rng.uniform(*pose.forearm_deg))
    hand = forearm + pose.hand_sign * math.radians(rng.uniform(*pose.hand_deg))
    return upper, forearm, hand


def _add_arm(
    parts: _Parts,
    build: _Build,
    rng: np.random.Generator,
    side: str,
    sgn: float,
    arm_position: str,
    shoulder: tuple[float, float],
) -> None:
    """Humerus, shoulder joint, radius and ulna, carpus, hand rays and the arm's soft tissue."""
    lm = parts.landmarks
    bs = build.bone_scale
    arm = build.thickness["arm"]
    chest = build.thickness["chest"]
    lm[f"shoulder_{side}"] = shoulder
    a_upper, a_fore, a_hand = _draw_arm_angles(rng, tables.ARM_POSES[arm_position])
    upper_len, fore_len, hand_len = (
        build.mm(tables.UPPER_ARM_H),
        build.mm(tables.FOREARM_H),
        build.mm(tables.HAND_H),
    )

    def step(p: tuple[float, float], angle: float, length: float) -> tuple[float, float]:
        # angle from the downward vertical, positive = away from the midline
        return (p[0] + sgn * length * math.sin(angle), p[1] + length * math.cos(angle))

    elbow = step(shoulder, a_upper, upper_len)
    wrist = step(elbow, a_fore, fore_len)
    tip = step(wrist, a_hand, hand_len)
    lm[f"elbow_{side}"], lm[f"wrist_{side}"] = elbow, wrist
    on_body = arm_position == "abdomen"
    # a forearm and hand on the abdomen lie in front of it: shallow for ANT, deep for POST
    fore_thickness = build.thickness["abdomen"] + arm if on_body else arm
    fore_depth = (tables.FOREARM_ON_BODY_DEPTH_T if on_body else tables.FOREARM_DEPTH_T) * arm
    humerus = [step(shoulder, a_upper, f * upper_len) for f, _, _ in tables.HUMERUS]
    parts.bones.append(
        make_tube(
            f"humerus_{side}",
            "humerus",
            side,
            humerus,
            [r * bs for _, r, _ in tables.HUMERUS],
            0.5 * arm,
            [arm, arm, arm, (arm + fore_thickness) / 2],
            [u for _, _, u in tables.HUMERUS],
        )
    )
    size = tables.SHOULDER_JOINT_MM
    parts.joints.append(
        Blob(
            f"shoulder_joint_{side}",
            "humerus",
            side,
            shoulder,
            (size, size, size),
            0.0,
            0.5 * chest,
            chest,
            tables.SHOULDER_JOINT_UPTAKE,
        )
    )
    # radius and ulna: two thin lines a few mm apart along the forearm
    dx, dy = wrist[0] - elbow[0], wrist[1] - elbow[1]
    norm = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / norm, dx / norm
    spread = tables.FOREARM_SPREAD_AT_WRIST
    for bone, offset, radius in tables.FOREARM_BONES:
        p0 = (elbow[0] + offset * nx, elbow[1] + offset * ny)
        p1 = (wrist[0] + spread * offset * nx, wrist[1] + spread * offset * ny)
        parts.bones.append(
            make_tube(
                f"{bone}_{side}",
                "forearm",
                side,
                [p0, p1],
                [radius * bs, radius * bs * tables.FOREARM_WIDEN_AT_WRIST],
                fore_depth,
                fore_thickness,
                list(tables.FOREARM_UPTAKE),
            )
        )
    carpus = step(wrist, a_hand, build.mm(tables.CARPUS_H))
    parts.bones.append(
        Blob(
            f"carpus_{side}",
            "hand",
            side,
            carpus,
            tables.CARPUS_AXES_MM,
            -sgn * a_hand,
            fore_depth,
            fore_thickness,
            tables.CARPUS_UPTAKE,
        )
    )
    fan_scale = tables.HAND_FAN_AT_SIDES if arm_position == "sides" else 1.0
    last = len(tables.HAND_FAN_DEG) - 1
    for j, fan in enumerate(tables.HAND_FAN_DEG):
        angle = a_hand + math.radians(fan) * fan_scale
        ray = build.mm(tables.HAND_OUTER_RAY_H if j in (0, last) else tables.HAND_INNER_RAY_H)
        parts.bones.append(
            make_tube(
                f"hand{j + 1}_{side}",
                "hand",
                side,
                [step(carpus, angle, tables.HAND_RAY_START_MM), step(carpus, angle, ray)],
                list(tables.HAND_RAY_RADIUS_MM),
                fore_depth,
                fore_thickness,
                list(tables.HAND_RAY_UPTAKE),
            )
        )
    adip = build.adiposity
    parts.arms_soft.append(
        make_tube(
            f"arm_soft_{side}",
            "soft",
            side,
            [shoulder, elbow, wrist, tip],
            [build.mm(w) * adip if fat else build.mm(w) for w, _, fat in tables.ARM_SOFT],
            0.5 * arm,
            [arm, arm, fore_thickness, fore_thickness],
            1.0,
            half_depth=[
                build.mm(d) * adip if fat else build.mm(d) for _, d, fat in tables.ARM_SOFT
            ],
        )
    )


def _leg_bone(
    name: str,
    region: str,
    side: str,
    sgn: float,
    build: _Build,
    anchors: Anchors,
    rows: Sequence[tables.LegVertex],
) -> Tube:
    return make_tube(
        f"{name}_{side}",
        region,
        side,
        [build.place(v.at, sgn, anchors) for v in rows],
        [(build.mm(v.radius) if v.radius_in_h else v.radius) * build.bone_scale for v in rows],
        [v.depth_t * build.thickness[v.level] for v in rows],
        [build.thickness[v.level] for v in rows],
        [v.uptake for v in rows],
        # no half-depths in the table: a round cross-section
        half_depth=[v.half_depth_mm for v in rows if v.half_depth_mm is not None] or None,
    )


def _add_leg(
    parts: _Parts, build: _Build, rng: np.random.Generator, side: str, sgn: float, spread: float
) -> None:
    """Femur, patella, tibia, fibula, foot and the knee, ankle and hip joints of one leg."""
    lm = parts.landmarks
    pelvis, knee, foot = (build.thickness[level] for level in ("pelvis", "knee", "foot"))
    knee_y, ankle_y = build.mm(tables.KNEE_H), build.mm(tables.ANKLE_H)
    hip_x, hip_y = lm[f"hip_{side}"]
    knee_x = sgn * (build.mm(tables.KNEE_X_H) + spread)
    ankle_x = sgn * (build.mm(tables.ANKLE_X_H) + tables.ANKLE_SPREAD * spread)
    lm[f"knee_{side}"], lm[f"ankle_{side}"] = (knee_x, knee_y), (ankle_x, ankle_y)
    anchors = {"hip": (hip_x, hip_y), "knee": (knee_x, knee_y), "ankle": (ankle_x, ankle_y)}
    anchors["trochanter"] = build.place(tables.TROCHANTER, sgn, anchors)
    head = build.mm(tables.FEMORAL_HEAD_H)
    parts.bones.append(
        Blob(
            f"femoral_head_{side}",
            "femur",
            side,
            (hip_x, hip_y),
            (head, head, head),
            0.0,
            0.5 * pelvis,
            pelvis,
            tables.FEMORAL_HEAD_UPTAKE,
        )
    )
    parts.bones.append(_leg_bone("femur", "femur", side, sgn, build, anchors, tables.FEMUR))
    parts.bones.append(
        Blob(
            f"patella_{side}",
            "patella",
            side,
            build.place(tables.PATELLA, sgn, anchors),
            tables.PATELLA_AXES_MM,
            0.0,
            tables.PATELLA_DEPTH_MM,
            knee,
            tables.PATELLA_UPTAKE,
        )
    )
    parts.bones.append(_leg_bone("tibia", "tibia", side, sgn, build, anchors, tables.TIBIA))
    parts.bones.append(_leg_bone("fibula", "fibula", side, sgn, build, anchors, tables.FIBULA))
    tarsus = build.place(tables.TARSUS, sgn, anchors)
    parts.bones.append(
        Blob(
            f"tarsus_{side}",
            "foot",
            side,
            tarsus,
            (
                build.mm(tables.TARSUS_AXES_H[0]),
                build.mm(tables.TARSUS_AXES_H[1]),
                build.mm(tables.TARSUS_AXES_H[2]),
            ),
            0.0,
            0.5 * foot,
            foot,
            tables.TARSUS_UPTAKE,
        )
    )
    lm[f"foot_{side}"] = tarsus
    turn = math.radians(rng.uniform(*tables.FOOT_TURN_DEG))
    base_x, base_y = tables.METATARSAL_BASE_MM
    length = build.mm(tables.METATARSAL_H)
    for j, splay in enumerate(tables.METATARSAL_SPLAY):
        angle = turn + splay
        p0 = (tarsus[0] + sgn * base_x * math.sin(angle), tarsus[1] + base_y)
        p1 = (
            tarsus[0] + sgn * tables.METATARSAL_H * build.height * math.sin(angle),
            tarsus[1] + length * math.cos(angle),
        )
        parts.bones.append(
            make_tube(
                f"metatarsal{j + 1}_{side}",
                "foot",
                side,
                [p0, p1],
                list(tables.METATARSAL_RADIUS_MM),
                tables.METATARSAL_DEPTH_T * foot,
                foot,
                tables.METATARSAL_UPTAKE,
                half_depth=list(tables.METATARSAL_HALF_DEPTH_MM),
            )
        )
    for joint in tables.LEG_JOINTS:
        level = build.thickness[joint.level]
        axes = tuple(
            build.mm(a) if in_h else a for a, in_h in zip(joint.axes, joint.axes_in_h, strict=True)
        )
        parts.joints.append(
            Blob(
                f"{joint.name}_{side}",
                joint.region,
                side,
                anchors[joint.at],
                (axes[0], axes[1], axes[2]),
                0.0,
                0.5 * level,
                level,
                joint.uptake,
            )
        )


def _trunk_half_width(level: tables.TrunkLevel, build: _Build, shoulder_half_width: float) -> float:
    if level.wide == "acromion":
        return (shoulder_half_width + build.mm(level.half_width_h)) * tables.TRUNK_AT_SHOULDERS
    width = build.mm(level.half_width_h)
    if level.wide == "shoulder":
        width = width * build.shoulder_factor
    elif level.wide == "pelvis":
        width = width * build.pelvis_factor
    return width * build.adiposity**level.girth if level.girth else width


def _add_soft_tissue(parts: _Parts, build: _Build, shoulder_half_width: float) -> None:
    """Head, neck, trunk outline and legs (combined by maximum in the renderer)."""
    head = build.thickness["head"]
    neck = build.thickness["neck"]
    across, down, deep = tables.HEAD_SOFT_AXES_H
    parts.soft.append(
        Blob(
            "head_soft",
            "soft",
            None,
            (0.0, build.mm(tables.HEAD_SOFT_Y_H)),
            (build.mm(across), build.mm(down), build.mm(deep)),
            0.0,
            head / 2,
            head,
            1.0,
        )
    )
    parts.soft.append(
        make_tube(
            "neck_soft",
            "soft",
            None,
            [(0.0, build.mm(y)) for y in tables.NECK_SOFT_H],
            build.mm(tables.NECK_SOFT_HALF_WIDTH_H),
            neck / 2,
            neck,
            1.0,
            half_depth=neck / 2,
        )
    )
    depths = [build.trunk_thickness(build.mm(level.y_h)) for level in tables.TRUNK]
    parts.soft.append(
        make_tube(
            "trunk_soft",
            "soft",
            None,
            [(0.0, build.mm(level.y_h)) for level in tables.TRUNK],
            [_trunk_half_width(level, build, shoulder_half_width) for level in tables.TRUNK],
            [t / 2 for t in depths],
            depths,
            1.0,
            half_depth=[t / 2 for t in depths],
            caps=False,
        )
    )
    lm = parts.landmarks
    leg_t = [build.thickness[level] for level in tables.LEG_SOFT_LEVELS]
    adip = build.adiposity
    for side, sgn in SIDES:
        anchors = {"hip_level": (0.0, lm[f"hip_{side}"][1]), "ankle": lm[f"ankle_{side}"]}
        pts = [
            build.place(tables.LEG_SOFT_HIP, sgn, anchors),
            lm[f"knee_{side}"],
            build.place(tables.LEG_SOFT_ANKLE, sgn, anchors),
            lm[f"foot_{side}"],
        ]
        parts.soft.append(
            make_tube(
                f"leg_soft_{side}",
                "soft",
                side,
                pts,
                [build.mm(w) * adip**p if p else build.mm(w) for w, p in tables.LEG_SOFT_WIDTH],
                [t / 2 for t in leg_t],
                leg_t,
                1.0,
                half_depth=[t / 2 for t in leg_t],
            )
        )


def _kidneys(build: _Build, centre_y: dict[str, float]) -> tuple[Blob, Blob]:
    """The two kidneys beside L1, the right one lower (uptake set by the physiology)."""
    abdomen = build.thickness["abdomen"]
    across, down, deep = tables.KIDNEY_AXES_H
    out = []
    for (side, sgn), drop_h in zip(SIDES, tables.KIDNEY_DROP_H, strict=True):
        out.append(
            Blob(
                f"kidney_{side}",
                "soft",
                side,
                (sgn * tables.KIDNEY_X_H * build.height, centre_y["L1"] + build.mm(drop_h)),
                (build.mm(across), build.mm(down), build.mm(deep)),
                math.radians(90 - sgn * tables.KIDNEY_TILT_DEG),
                tables.KIDNEY_DEPTH_T * abdomen,
                abdomen,
                0.0,
            )
        )
    return out[0], out[1]


def _add_lungs(parts: _Parts, build: _Build) -> None:
    """Lungs: air, not tissue; the renderer removes their share of chest soft tissue."""
    chest = build.thickness["chest"]
    sf = build.shoulder_factor
    across, down, deep = tables.LUNG_AXES_H
    for side, sgn in SIDES:
        parts.soft.append(
            Blob(
                f"lung_{side}",
                "lung",
                side,
                (sgn * tables.LUNG_X_H * build.height * sf, build.mm(tables.LUNG_Y_H)),
                (build.mm(across), build.mm(down) * sf, build.mm(deep) * build.adiposity**0.5),
                math.pi / 2,
                0.5 * chest,
                chest,
                1.0,
            )
        )


def _scaled(p: Primitive, k: float) -> Primitive:
    # one branch per type: dataclasses.replace needs the concrete class for mypy
    if isinstance(p, Tube):
        return replace(p, uptake=p.uptake * k)
    return replace(p, uptake=p.uptake * k)


def build_body(
    rng: np.random.Generator,
    sex: str,
    age: int,
    *,
    height_mm: float | None = None,
    arm_position: str | None = None,
) -> Body:
    """Draw one patient's anatomy from the tables of :mod:`core.phantom.anatomy_tables`.

    The random draws come in a fixed order (stature, arm position, proportions,
    arm angles right then left, leg spread, foot turns), so that the same generator
    state gives the same body.

    Args:
        rng: Random generator (consumed; same state, same body).
        sex: ``"M"`` or ``"F"``.
        age: Age in years (12 to 100).
        height_mm: Stature; drawn by :func:`adult_height` when None.
        arm_position: One of :data:`ARM_POSITIONS`; drawn by
            :data:`core.phantom.anatomy_tables.ARM_POSITION_P` when None.

    Returns:
        The :class:`Body`.

    Raises:
        ValueError: If ``sex`` or ``arm_position`` is not a known value.
    """
    if sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    height = adult_height(sex, age, rng) if height_mm is None else float(height_mm)
    if arm_position is None:
        p = [tables.ARM_POSITION_P[a] for a in ARM_POSITIONS]
        arm_position = str(rng.choice(ARM_POSITIONS, p=p))
    if arm_position not in ARM_POSITIONS:
        raise ValueError(f"arm_position must be one of {ARM_POSITIONS}, got {arm_position!r}")

    build = _draw_build(rng, sex, age, height)
    parts = _Parts()
    _add_skull(parts, build)
    centre_y, sacrum_top = _add_spine(parts, build)
    _add_pelvis(parts, build, sacrum_top)
    _add_ribs(parts, build, centre_y)
    sternum_top = centre_y["T2"]
    half_width = _add_sternum_and_girdle(parts, build, sternum_top)
    for side, sgn in SIDES:
        anchors = _girdle_anchors(sgn, half_width, sternum_top)
        shoulder = build.place(tables.SHOULDER_JOINT, sgn, anchors)
        _add_arm(parts, build, rng, side, sgn, arm_position, shoulder)
    spread = rng.uniform(*tables.LEG_SPREAD_H) * height
    for side, sgn in SIDES:
        _add_leg(parts, build, rng, side, sgn, spread)
    _add_soft_tissue(parts, build, half_width)
    kidneys = _kidneys(build, centre_y)
    _add_lungs(parts, build)

    # metabolic activity differs by bone: trabecular axial bone takes up more MDP than
    # the cortical shafts of the limbs
    uptake = tables.REGION_UPTAKE
    return Body(
        height_mm=height,
        sex=sex,
        age=int(age),
        arm_position=arm_position,
        bones=tuple(_scaled(p, uptake.get(p.region, 1.0)) for p in parts.bones),
        soft=tuple(parts.soft),
        arms_soft=tuple(parts.arms_soft),
        kidneys=kidneys,
        joints=tuple(_scaled(p, uptake.get(p.region, 1.0)) for p in parts.joints),
        landmarks=parts.landmarks,
        thickness=build.thickness,
        params={
            "shoulder_factor": float(build.shoulder_factor),
            "pelvis_factor": float(build.pelvis_factor),
            "adiposity": build.adiposity,
            "scoliosis_mm": float(build.scoliosis_mm),
            "bone_scale": build.bone_scale,
        },
    )
