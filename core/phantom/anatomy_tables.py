"""The phantom's anatomy as data: where each structure sits, its size and its MDP uptake.

:func:`core.phantom.anatomy.build_body` walks these tables and scales them to one
patient. Units, by the suffix of a field or constant name:

* ``_h`` — a fraction of the stature ``H`` (vertex to sole), from standard
  anthropometry (e.g. chin 0.13 H, shoulders 0.19 H, hip joints 0.48 H);
* ``_mm`` — millimetres;
* ``_t`` — a fraction of the body's anterior-posterior thickness where the
  structure lies (its depth from the anterior skin);
* ``_deg`` — degrees;
* ``uptake`` — activity per mm of path, relative to normal bone (1.0), before the
  per-region factor of :data:`REGION_UPTAKE`.

``x`` offsets are lateral, positive away from the midline (the builder mirrors them
for the patient's right); ``y`` offsets run down towards the feet. An
:class:`Offset` places a point from a named anchor (a joint, the top of the sacrum
...), so that a structure follows the landmarks it hangs from. Flags named ``wide``
mark sizes that also follow the patient's shoulder or pelvis width factor, and
``bone_scaled`` sizes that follow the bone-calibre factor.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Relative MDP uptake per skeletal region (multiplies each primitive's own uptake).
#: Set so that each region's level against the lumbar spine matches the real scans of
#: the realism table (docs/phantom.md): the lumbar bodies are large, so their factor
#: is low; limb shafts take up little.
REGION_UPTAKE: dict[str, float] = {
    "skull": 0.78,
    "face": 0.6,
    "mandible": 0.9,
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


@dataclass(frozen=True)
class Offset:
    """A point on one side of the body, placed from an anchor.

    Attributes:
        anchor: The point it is measured from; each structure's builder names its
            anchors (``"sacrum"`` is the top of the sacrum on the midline, ``"hip"``
            the hip joint centre, ``"acromion"`` the acromion at the height of the
            top of the sternum ...).
        x_h: Lateral offset, away from the midline, fraction of stature.
        y_h: Downward offset, fraction of stature.
        wide: ``"pelvis"`` or ``"shoulder"``: the lateral offset also follows that
            width factor; None: only the stature.
    """

    anchor: str
    x_h: float
    y_h: float
    wide: str | None = None


# --- body thickness -----------------------------------------------------------------


@dataclass(frozen=True)
class Thickness:
    """The body's anterior-posterior thickness at one named level.

    Attributes:
        name: Level, e.g. ``"chest"`` (the key of :attr:`core.phantom.anatomy.Body.thickness`).
        fraction_h: Thickness of a lean body, fraction of stature.
        girth: How it grows with adiposity ``a``: ``"none"`` (bone-bound), ``"sqrt"``
            (``sqrt(a)``) or a power ``p`` (``a ** p``).
    """

    name: str
    fraction_h: float
    girth: str | float


#: AP thickness of each body level.
THICKNESS: tuple[Thickness, ...] = (
    Thickness("head", 0.11, "none"),
    Thickness("neck", 0.07, "none"),
    Thickness("chest", 0.125, 1.0),
    Thickness("abdomen", 0.13, 1.3),
    Thickness("pelvis", 0.13, 1.0),
    Thickness("thigh", 0.09, 1.0),
    Thickness("knee", 0.065, "none"),
    Thickness("shank", 0.06, "sqrt"),
    Thickness("ankle", 0.05, "none"),
    Thickness("foot", 0.07, "none"),
    Thickness("arm", 0.05, "sqrt"),
)

#: Midline thickness profile from vertex to sole: (height, fraction of stature; level
#: of :data:`THICKNESS`), linearly interpolated between.
THICKNESS_PROFILE: tuple[tuple[float, str], ...] = (
    (0.0, "head"),
    (0.13, "head"),
    (0.17, "neck"),
    (0.22, "chest"),
    (0.33, "chest"),
    (0.42, "abdomen"),
    (0.5, "pelvis"),
    (0.56, "thigh"),
    (0.72, "knee"),
    (0.9, "shank"),
    (1.0, "foot"),
)

# --- skull and face -----------------------------------------------------------------


@dataclass(frozen=True)
class SkullBone:
    """An ellipsoid of the skull or face.

    Attributes:
        name: Bone name (``"_<side>"`` appended when ``paired``).
        x_h: Centre's lateral offset (fraction of stature).
        y_h: Centre's height below the vertex.
        axes_h: Semi-axes (across, down, depth).
        depth_h: Depth of the centre; None: half the head's thickness.
        uptake: Relative uptake.
        shell_mm: Shell thickness (0: solid).
        bone_scaled: The shell follows the bone-calibre factor.
        paired: One per side, mirrored.
        region: Phantom region (``"face"``: the facial bones, whose uptake varies
            from person to person on its own, with teeth and sinuses).
    """

    name: str
    x_h: float
    y_h: float
    axes_h: tuple[float, float, float]
    depth_h: float | None
    uptake: float
    shell_mm: float = 0.0
    bone_scaled: bool = False
    paired: bool = False
    region: str = "skull"


#: Skull vault, base and face, in drawing order. The face is drawn as real anterior
#: views show it (the project's 17 real scans): bright orbital rims around darker
#: orbits, a hot nasal bridge and maxilla, the upper teeth's alveolar ridge as a bright
#: band, and the cheekbones; before these rows the face was one faint spot at the
#: skull's base, and the lesion scorer had never seen the facial uptake every real
#: scan shows.
SKULL: tuple[SkullBone, ...] = (
    SkullBone("cranium", 0.0, 0.054, (0.042, 0.05, 0.048), None, 1.0, 10.0, bone_scaled=True),
    SkullBone("skull_base", 0.0, 0.085, (0.034, 0.012, 0.035), None, 0.12),
    SkullBone(
        "orbit", 0.019, 0.07, (0.0115, 0.0105, 0.012), 0.025, 1.0, 4.0, paired=True, region="face"
    ),
    SkullBone("nasal", 0.0, 0.082, (0.0065, 0.013, 0.012), 0.02, 0.9, region="face"),
    SkullBone("zygoma", 0.03, 0.082, (0.008, 0.006, 0.01), 0.04, 0.8, paired=True, region="face"),
    SkullBone("maxilla", 0.0, 0.097, (0.022, 0.012, 0.016), 0.035, 0.75, region="face"),
    SkullBone("alveolar_ridge", 0.0, 0.108, (0.019, 0.0045, 0.012), 0.03, 1.1, region="face"),
)

#: Mandible polyline, right angle to left angle: (x, y) fractions of stature (signed
#: x: negative = patient's right) and depth as a fraction of the head's thickness.
MANDIBLE: tuple[tuple[float, float, float], ...] = (
    (-0.03, 0.082, 0.6),
    (-0.029, 0.1, 0.5),
    (-0.024, 0.117, 0.35),
    (-0.013, 0.127, 0.2),
    (0.0, 0.13, 0.12),
    (0.013, 0.127, 0.2),
    (0.024, 0.117, 0.35),
    (0.029, 0.1, 0.5),
    (0.03, 0.082, 0.6),
)
MANDIBLE_RADIUS_MM = 7.5
MANDIBLE_HALF_DEPTH_MM = 8.0
#: The chin landmark, fraction of stature below the vertex.
CHIN_H = 0.13

# --- spine --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpineSegment:
    """A run of vertebrae of equal height whose half-width grows level by level.

    Attributes:
        prefix: Level names are ``prefix + number`` (``"C1"`` ...).
        region: Skeletal region.
        count: Number of vertebrae.
        level_h: Height of one level (body plus disc), fraction of stature.
        half_width_mm: Half-width of the first vertebral body (bone-scaled).
        half_width_step_mm: Growth of the half-width per level.
    """

    prefix: str
    region: str
    count: int
    level_h: float
    half_width_mm: float
    half_width_step_mm: float


#: The spine, top to bottom.
SPINE: tuple[SpineSegment, ...] = (
    SpineSegment("C", "cervical_spine", 7, 0.0100, 9.0, 0.6),
    SpineSegment("T", "thoracic_spine", 12, 0.0135, 14.0, 0.8),
    SpineSegment("L", "lumbar_spine", 5, 0.0205, 23.0, 1.2),
)
#: Top of C1, fraction of stature.
SPINE_TOP_H = 0.108
#: Depth of the cervical and lumbar bodies (fraction of the local thickness); the
#: thoracic bodies lie deeper, by the kyphosis (see the builder).
CERVICAL_DEPTH_T = 0.55
THORACIC_DEPTH_T = 0.68
KYPHOSIS_DEPTH_T = 0.04
LUMBAR_DEPTH_T = 0.64
#: Scoliosis bends the spine between these heights (fractions of stature).
SCOLIOSIS_SPAN_H = (0.19, 0.45)
#: Kyphosis: thoracic depth follows a half sine from this height over this span.
KYPHOSIS_START_H = 0.19
KYPHOSIS_SPAN_H = 0.16
#: Vertebral body outline exponent: rounder than a box, so that the bodies blur
#: into a column as on real scans rather than into beads.
VERTEBRA_POWER = 2.5
#: Posterior arch (pedicles, laminae, spinous process): share of the level's height
#: it is shifted down, its half-height, its half-width over the body's, depth
#: half-axis (bone-scaled), uptake, and the clearances that place it behind the body.
ARCH_SHIFT = 0.1
ARCH_HALF_HEIGHT = 0.45
ARCH_WIDTH = 0.75
ARCH_HALF_DEPTH_MM = 10.0
ARCH_UPTAKE = 0.9
ARCH_GAP_MM = 14.0
ARCH_SKIN_MM = 12.0
#: Depth half-axis of a vertebral body over its half-width.
VERTEBRA_DEPTH_RATIO = 0.85

# --- sacrum and pelvis --------------------------------------------------------------


@dataclass(frozen=True)
class SacrumVertex:
    """One vertex of the sacrum's midline polyline.

    Attributes:
        dy_h: Below the top of the sacrum (the bottom of L5), fraction of stature.
        radius_h: Half-width.
        wide: The half-width follows the pelvis width factor.
        depth_t: Depth, fraction of the pelvis thickness.
        uptake: Relative uptake.
        half_depth_mm: Half extent in depth.
    """

    dy_h: float
    radius_h: float
    wide: bool
    depth_t: float
    uptake: float
    half_depth_mm: float


SACRUM: tuple[SacrumVertex, ...] = (
    SacrumVertex(0.004, 0.026, True, 0.72, 1.05, 14.0),
    SacrumVertex(0.04, 0.02, True, 0.75, 1.0, 12.0),
    SacrumVertex(0.075, 0.009, False, 0.8, 0.9, 9.0),
    SacrumVertex(0.095, 0.004, False, 0.82, 0.7, 6.0),
)
#: Pubic symphysis below the top of the sacrum (upper border of the bladder's bed).
SYMPHYSIS_DY_H = 0.062
#: Hip joint centre: lateral offset (pelvis-wide) and drop below the top of the sacrum.
HIP_X_H = 0.052
HIP_DY_H = 0.03

#: Iliac wing: a tilted plate (centre, semi-axes, tilt), uptake.
ILIUM_CENTRE = Offset("sacrum", 0.056, -0.004, "pelvis")
ILIUM_AXES = (0.038, 0.027)  # fractions of stature; the first pelvis-wide
ILIUM_HALF_DEPTH_MM = 14.0
ILIUM_TILT_DEG = -22.0
ILIUM_UPTAKE = 0.75
#: Iliac crest, the wing's brighter rim, medial to lateral: (point, depth as a
#: fraction of the pelvis thickness).
ILIAC_CREST: tuple[tuple[Offset, float], ...] = (
    (Offset("sacrum", 0.024, -0.012), 0.72),
    (Offset("sacrum", 0.045, -0.032, "pelvis"), 0.6),
    (Offset("sacrum", 0.072, -0.03, "pelvis"), 0.45),
    (Offset("sacrum", 0.088, -0.012, "pelvis"), 0.3),
    (Offset("sacrum", 0.086, 0.006, "pelvis"), 0.25),
)
ILIAC_CREST_RADIUS_MM = 6.5
ILIAC_CREST_HALF_DEPTH_MM = 12.0
#: Sacroiliac joint: a short oblique line beside the sacrum, normally brighter.
SI_JOINT: tuple[Offset, ...] = (
    Offset("sacrum", 0.02, 0.002, "pelvis"),
    Offset("sacrum", 0.017, 0.036, "pelvis"),
)
SI_JOINT_LANDMARK = Offset("sacrum", 0.019, 0.02, "pelvis")
SI_JOINT_RADIUS_MM = 6.0
SI_JOINT_HALF_DEPTH_MM = 16.0
SI_JOINT_DEPTH_T = 0.72
#: Acetabulum: a shell around the hip joint, shifted up and medially.
ACETABULUM_SHIFT_MM = 3.0
ACETABULUM_AXES = (0.017, 0.017, 0.02)
ACETABULUM_SHELL_MM = 6.0
ACETABULUM_UPTAKE = 0.7
#: Pubic and ischial rami: the obturator ring from the hip round to the hip, with
#: its depth (fraction of the pelvis thickness); ``"symphysis"`` points are from the
#: symphysis on the midline.
PUBIC_RING: tuple[tuple[Offset, float], ...] = (
    (Offset("hip", -0.006, 0.008), 0.45),
    (Offset("symphysis", 0.02, -0.006), 0.25),
    (Offset("symphysis", 0.007, 0.0), 0.18),
    (Offset("symphysis", 0.009, 0.018), 0.25),
    (Offset("symphysis", 0.028, 0.03), 0.55),
    (Offset("symphysis", 0.043, 0.024, "pelvis"), 0.62),
    (Offset("hip", -0.002, 0.018), 0.55),
)
PUBIC_RING_RADIUS_MM = 5.5
PUBIC_RING_HALF_DEPTH_MM = 8.0
PUBIC_RING_UPTAKE = 0.95

# --- ribs, sternum, shoulder girdle -------------------------------------------------

#: Per rib 1-12: half-width of the cage at that rib (fraction of stature,
#: shoulder-wide), how far its front end drops below its vertebra, and the angle
#: round the cage where it ends (degrees; 0 = at the spine, 180 = at the front).
RIB_HALF_WIDTH_H: tuple[float, ...] = (
    0.035, 0.05, 0.06, 0.067, 0.072, 0.075, 0.077, 0.077, 0.075, 0.071, 0.064, 0.056,
)  # fmt: skip
RIB_DROP_H: tuple[float, ...] = (
    0.02, 0.04, 0.057, 0.066, 0.073, 0.077, 0.079, 0.077, 0.07, 0.056, 0.034, 0.02,
)  # fmt: skip
RIB_END_DEG: tuple[float, ...] = (150, 155, 158, 158, 158, 158, 155, 148, 140, 130, 105, 80)
#: Where each rib starts round the cage, degrees, and how many vertices it has.
RIB_START_DEG = 14.0
RIB_VERTICES = 14
#: Angle round the cage where a rib starts to drop (degrees), the drop's exponent,
#: and how far it first rises from its vertebra (fraction of stature; the first
#: rib rises this fraction of that).
RIB_DROP_START_DEG = 15.0
RIB_DROP_POWER = 1.1
RIB_RISE_H = 0.003
FIRST_RIB_RISE = 0.3
RIB_RADIUS_MM = 4.2
RIB_HALF_DEPTH_MM = 5.0
RIB_UPTAKE = 0.85
#: The rib cage's depth: its centre and its AP semi-axis (fractions of the chest).
RIB_CAGE_CENTRE_T = 0.52
RIB_CAGE_DEPTH_T = 0.42
#: Xiphoid landmark, fraction of stature.
XIPHOID_H = 0.29


@dataclass(frozen=True)
class SternumVertex:
    """One vertex of the sternum, manubrium to xiphoid.

    Attributes:
        dy_h: Below the top of the sternum (level of T2), fraction of stature.
        radius_mm: Half-width.
        bone_scaled: The half-width follows the bone-calibre factor.
        uptake: Relative uptake.
    """

    dy_h: float
    radius_mm: float
    bone_scaled: bool
    uptake: float


STERNUM: tuple[SternumVertex, ...] = (
    SternumVertex(0.0, 13.0, True, 1.0),
    SternumVertex(0.028, 11.0, True, 0.95),
    SternumVertex(0.06, 9.0, True, 0.95),
    SternumVertex(0.1, 8.5, True, 0.95),
    SternumVertex(0.112, 4.0, False, 0.8),
)
STERNUM_DEPTH_MM = 18.0
STERNUM_HALF_DEPTH_MM = 7.0
#: Half the biacromial width, fraction of stature (shoulder-wide).
SHOULDER_HALF_WIDTH_H = 0.112

# Shoulder girdle points are measured from the top of the sternum ("sternum") or
# from the acromion at that height ("acromion").
#: Clavicle, sternal end to acromial end, with its depth at each vertex (mm).
CLAVICLE: tuple[Offset, ...] = (
    Offset("sternum", 0.013, 0.003),
    Offset("sternum", 0.035, -0.004),
    Offset("sternum", 0.06, -0.011, "shoulder"),
    Offset("acromion", -0.014, -0.015),
)
CLAVICLE_DEPTH_MM: tuple[float, ...] = (20.0, 30.0, 45.0, 55.0)
CLAVICLE_RADIUS_MM = 5.0
CLAVICLE_UPTAKE = 0.8
#: Acromion landmark.
ACROMION = Offset("acromion", 0.0, -0.006)
#: Scapula: a thin plate between its superior angle, inferior angle and glenoid,
#: with brighter borders and the spine of the scapula.
SCAPULA_SUPERIOR = Offset("sternum", 0.045, -0.002, "shoulder")
SCAPULA_INFERIOR = Offset("sternum", 0.058, 0.095, "shoulder")
SCAPULA_GLENOID = Offset("acromion", -0.022, 0.013)
SCAPULA_SPINE: tuple[Offset, ...] = (
    Offset("sternum", 0.05, 0.018, "shoulder"),
    Offset("acromion", -0.004, -0.004),
)
SCAPULA_AXES = (0.03, 0.021)  # fractions of stature
SCAPULA_HALF_DEPTH_MM = 8.0
#: Tilt of the plate's long axis (degrees: right, left) plus this many radians outwards.
SCAPULA_TILT_DEG = (95.0, 85.0)
SCAPULA_TILT_OUT = 0.2
SCAPULA_DEPTH_T = 0.84
SCAPULA_UPTAKE = 0.9
SCAPULA_BORDER_RADIUS_MM = 4.5
SCAPULA_BORDER_HALF_DEPTH_MM = 7.0
SCAPULA_BORDER_UPTAKE = 1.1
SCAPULA_SPINE_RADIUS_MM = 5.0
SCAPULA_SPINE_HALF_DEPTH_MM = 8.0
SCAPULA_SPINE_UPTAKE = 1.2
#: The spine of the scapula lies this much in front of the plate.
SCAPULA_SPINE_LIFT_MM = 10.0

# --- arms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmPose:
    """How the arms are drawn for one arm position.

    Angles are from the downward vertical, positive away from the midline, degrees.

    Attributes:
        upper_deg: Range of the upper arm's angle.
        forearm_deg: Range of the forearm's angle, added to the upper arm's when
            ``forearm_follows`` (else absolute), times ``forearm_sign``.
        forearm_follows: The forearm's angle is relative to the upper arm's.
        forearm_sign: +1, or -1 for forearms that point to the midline.
        hand_deg: Range of the hand's angle relative to the forearm's, times ``hand_sign``.
        hand_sign: +1 or -1.
    """

    upper_deg: tuple[float, float]
    forearm_deg: tuple[float, float]
    forearm_follows: bool
    forearm_sign: float
    hand_deg: tuple[float, float]
    hand_sign: float


ARM_POSES: dict[str, ArmPose] = {
    "sides": ArmPose((2, 9), (-6, 3), True, 1.0, (-8, 8), 1.0),
    "abducted": ArmPose((18, 38), (-5, 12), True, 1.0, (-5, 10), 1.0),
    # hands resting on the abdomen: elbows flexed, forearms point to the midline
    "abdomen": ArmPose((8, 16), (40, 65), False, -1.0, (-10, 15), -1.0),
}
#: Drawing probability of each arm position.
ARM_POSITION_P: dict[str, float] = {"sides": 0.70, "abdomen": 0.18, "abducted": 0.12}
#: Segment lengths, fractions of stature.
UPPER_ARM_H, FOREARM_H, HAND_H = 0.186, 0.146, 0.09
#: The shoulder joint, inward from the acromion and below the top of the sternum.
SHOULDER_JOINT = Offset("acromion", -0.017, 0.012)
#: Humerus: (fraction of the upper arm's length from the shoulder, radius mm
#: (bone-scaled), uptake); its thickness is the arm's, the forearm's at the elbow.
HUMERUS: tuple[tuple[float, float, float], ...] = (
    (0.0, 17.0, 1.3),
    (0.15, 11.0, 1.0),
    (0.85, 9.5, 0.85),
    (1.0, 14.0, 1.0),
)
SHOULDER_JOINT_MM = 15.0
SHOULDER_JOINT_UPTAKE = 0.8
#: Radius and ulna: (name, offset across the forearm mm, radius at the elbow mm);
#: the offset grows by this factor and the radius by this one at the wrist.
FOREARM_BONES: tuple[tuple[str, float, float], ...] = (("radius", 5.5, 4.3), ("ulna", -5.5, 4.0))
FOREARM_SPREAD_AT_WRIST = 1.3
FOREARM_WIDEN_AT_WRIST = 1.25
FOREARM_UPTAKE = (0.85, 1.05)
#: Forearm depth, fraction of the arm's thickness: beside the body, and on the abdomen.
FOREARM_DEPTH_T, FOREARM_ON_BODY_DEPTH_T = 0.5, 0.45
#: Carpus beyond the wrist (fraction of stature); semi-axes mm; uptake.
CARPUS_H = 0.02
CARPUS_AXES_MM = (13.0, 10.0, 10.0)
CARPUS_UPTAKE = 1.2
#: Hand rays: fan angles (degrees; narrower by this factor with the arms at the
#: sides), lengths of the outer and inner rays, their start beyond the carpus,
#: radii and uptakes (base, tip).
HAND_FAN_DEG: tuple[float, ...] = (-16, -8, 0, 8, 15)
HAND_FAN_AT_SIDES = 0.6
HAND_OUTER_RAY_H, HAND_INNER_RAY_H = 0.065, 0.078
HAND_RAY_START_MM = 6.0
HAND_RAY_RADIUS_MM = (4.5, 3.0)
HAND_RAY_UPTAKE = (1.0, 0.8)
#: Arm soft tissue at shoulder, elbow, wrist, fingertips: (half-width, half-depth)
#: fractions of stature, and whether they follow adiposity.
ARM_SOFT: tuple[tuple[float, float, bool], ...] = (
    (0.03, 0.028, True),
    (0.024, 0.022, True),
    (0.018, 0.015, False),
    (0.016, 0.01, False),
)

# --- legs ---------------------------------------------------------------------------

#: Knee and ankle joint heights, fractions of stature.
KNEE_H, ANKLE_H = 0.715, 0.955
#: Range of the legs' spread (fraction of stature): together or slightly apart.
LEG_SPREAD_H = (-0.006, 0.012)
#: Knee and ankle lateral offsets (fraction of stature), and how much of the spread
#: each takes.
KNEE_X_H, ANKLE_X_H = 0.047, 0.046
ANKLE_SPREAD = 1.4
#: Femoral head (semi-axis, fraction of stature) and the greater trochanter beside
#: the hip.
FEMORAL_HEAD_H = 0.013
FEMORAL_HEAD_UPTAKE = 0.75
TROCHANTER = Offset("hip", 0.03, 0.012, "pelvis")


@dataclass(frozen=True)
class LegVertex:
    """One vertex of a leg bone's polyline (bone-scaled radius).

    Attributes:
        at: Where it lies; anchors ``"hip"``, ``"trochanter"``, ``"knee"`` and
            ``"ankle"`` (the knee and ankle at their joint lines).
        radius: Half-width: mm, or a fraction of stature when ``radius_in_h``.
        radius_in_h: ``radius`` is a fraction of stature.
        level: Thickness level (:data:`THICKNESS`) of the body there.
        depth_t: Depth, fraction of that thickness.
        uptake: Relative uptake.
        half_depth_mm: Half extent in depth; None (on every vertex): the radius.
    """

    at: Offset
    radius: float
    radius_in_h: bool
    level: str
    depth_t: float
    uptake: float
    half_depth_mm: float | None


#: Femur, head to the knee joint line (all radii bone-scaled).
FEMUR: tuple[LegVertex, ...] = (
    LegVertex(Offset("hip", 0.004, 0.003), 10.0, False, "pelvis", 0.5, 1.0, 10.0),
    LegVertex(Offset("trochanter", 0.0, 0.0), 15.0, False, "pelvis", 0.5, 1.15, 18.0),
    LegVertex(Offset("hip", 0.024, 0.035, "pelvis"), 12.0, False, "thigh", 0.5, 0.9, 13.0),
    LegVertex(Offset("knee", 0.003, -0.07), 12.0, False, "thigh", 0.5, 0.85, 12.0),
    LegVertex(Offset("knee", 0.0, -0.018), 0.021, True, "knee", 0.5, 0.95, 17.0),
    LegVertex(Offset("knee", 0.0, -0.004), 0.022, True, "knee", 0.5, 1.0, 17.0),
)
#: Tibia, knee to ankle (all radii bone-scaled).
TIBIA: tuple[LegVertex, ...] = (
    LegVertex(Offset("knee", 0.0, 0.004), 0.022, True, "knee", 0.45, 1.05, 16.0),
    LegVertex(Offset("knee", 0.0, 0.025), 0.015, True, "knee", 0.4, 1.0, 14.0),
    LegVertex(Offset("knee", -0.003, 0.08), 10.5, False, "shank", 0.35, 0.85, 11.0),
    LegVertex(Offset("ankle", -0.004, -0.03), 10.0, False, "ankle", 0.4, 0.9, 10.0),
    LegVertex(Offset("ankle", -0.004, -0.002), 14.0, False, "ankle", 0.45, 1.05, 13.0),
)
#: Fibula, knee to ankle (all radii bone-scaled).
FIBULA: tuple[LegVertex, ...] = (
    LegVertex(Offset("knee", 0.019, 0.022), 6.0, False, "knee", 0.55, 0.9, None),
    LegVertex(Offset("knee", 0.017, 0.1), 4.0, False, "shank", 0.55, 0.75, None),
    LegVertex(Offset("ankle", 0.014, -0.01), 6.0, False, "ankle", 0.55, 0.95, None),
)
#: Patella above the knee joint line; semi-axes, depth mm.
PATELLA = Offset("knee", 0.0, -0.02)
PATELLA_AXES_MM = (13.0, 15.0, 9.0)
PATELLA_DEPTH_MM = 14.0
PATELLA_UPTAKE = 0.7
#: Feet point up at the detector: the tarsus is a compact, deep blob below the
#: ankle (offset, semi-axes: fractions of stature), the metatarsals short
#: foreshortened rays splayed outwards by a drawn turn (degrees) plus these offsets
#: (radians).
TARSUS = Offset("ankle", 0.004, 0.022)
TARSUS_AXES_H = (0.012, 0.014, 0.02)
TARSUS_UPTAKE = 0.9
FOOT_TURN_DEG = (5, 30)
METATARSAL_SPLAY: tuple[float, ...] = (-0.25, -0.08, 0.08, 0.25)
METATARSAL_BASE_MM = (6.0, 8.0)  # out from the tarsus centre (lateral, down)
METATARSAL_H = 0.045
METATARSAL_RADIUS_MM = (6.0, 4.5)
METATARSAL_HALF_DEPTH_MM = (12.0, 9.0)
METATARSAL_DEPTH_T = 0.35
METATARSAL_UPTAKE = 1.0

# --- joints -------------------------------------------------------------------------


@dataclass(frozen=True)
class LegJoint:
    """A normally brighter joint of the leg, an ellipsoid at a joint centre.

    Attributes:
        name: Joint name (``"_<side>"`` appended).
        region: Skeletal region it counts to.
        at: ``"knee"``, ``"ankle"`` or ``"hip"``.
        axes: Semi-axes; each in mm, or a fraction of stature where ``axes_in_h`` says.
        axes_in_h: Which semi-axes are fractions of stature.
        level: Thickness level there.
        uptake: Relative uptake.
    """

    name: str
    region: str
    at: str
    axes: tuple[float, float, float]
    axes_in_h: tuple[bool, bool, bool]
    level: str
    uptake: float


#: Leg joints, in drawing order (the shoulders and SI joints come with their bones).
LEG_JOINTS: tuple[LegJoint, ...] = (
    LegJoint("knee_joint", "tibia", "knee", (0.021, 9.0, 0.02), (True, False, True), "knee", 0.15),
    LegJoint("ankle_joint", "tibia", "ankle", (13.0, 9.0, 14.0), (False,) * 3, "ankle", 0.7),
    LegJoint("hip_joint", "femur", "hip", (14.0, 14.0, 14.0), (False,) * 3, "pelvis", 0.35),
)

# --- soft tissue and organs ---------------------------------------------------------

#: Head soft tissue: centre height, semi-axes (fractions of stature).
HEAD_SOFT_Y_H = 0.062
HEAD_SOFT_AXES_H = (0.05, 0.065, 0.055)
#: Neck: from and to (fractions of stature), half-width.
NECK_SOFT_H = (0.11, 0.185)
NECK_SOFT_HALF_WIDTH_H = 0.036


@dataclass(frozen=True)
class TrunkLevel:
    """One level of the trunk's outline (a flat-ended slab, half-width per level).

    Attributes:
        y_h: Height, fraction of stature.
        half_width_h: Half-width of a lean body of average build.
        wide: ``"shoulder"`` or ``"pelvis"``: follows that width factor;
            ``"acromion"``: this much beyond the acromion, times
            :data:`TRUNK_AT_SHOULDERS`; None: neither.
        girth: Power of the adiposity the half-width grows by (0: none).
    """

    y_h: float
    half_width_h: float
    wide: str | None
    girth: float


#: Trunk outline, base of the neck to the groin: fat widens the waist most.
TRUNK: tuple[TrunkLevel, ...] = (
    TrunkLevel(0.17, 0.045, None, 0.0),
    TrunkLevel(0.2, 0.006, "acromion", 0.0),
    TrunkLevel(0.23, 0.098, "shoulder", 0.5),
    TrunkLevel(0.28, 0.094, None, 0.6),
    TrunkLevel(0.35, 0.088, None, 0.9),
    TrunkLevel(0.42, 0.096, "pelvis", 0.8),
    TrunkLevel(0.47, 0.103, "pelvis", 0.6),
    TrunkLevel(0.52, 0.095, "pelvis", 0.5),
)
#: The outline at the shoulders lies just inside the acromia.
TRUNK_AT_SHOULDERS = 0.95
#: Leg soft tissue at the hip, knee, above the ankle and at the foot: the first
#: and third axis points, half-widths (fractions of stature) with their adiposity
#: power, and thickness levels.
LEG_SOFT_HIP = Offset("hip_level", 0.045, 0.0, "pelvis")
LEG_SOFT_ANKLE = Offset("ankle", 0.0, -0.03)
LEG_SOFT_WIDTH: tuple[tuple[float, float], ...] = (
    (0.05, 1.0),
    (0.032, 0.5),
    (0.022, 0.0),
    (0.024, 0.0),
)
LEG_SOFT_LEVELS: tuple[str, ...] = ("thigh", "knee", "ankle", "foot")
#: Kidneys: drop below L1 (right, left; fractions of stature: the right kidney
#: lies lower), lateral offset, semi-axes, tilt from vertical (degrees, lower poles
#: outwards), depth in the abdomen.
KIDNEY_DROP_H: tuple[float, float] = (0.012, 0.0)
KIDNEY_X_H = 0.038
KIDNEY_AXES_H = (0.034, 0.016, 0.018)
KIDNEY_TILT_DEG = 15.0
KIDNEY_DEPTH_T = 0.7
#: Lungs: lateral offset (shoulder-wide), height, semi-axes (long axis vertical).
LUNG_X_H = 0.045
LUNG_Y_H = 0.255
LUNG_AXES_H = (0.065, 0.034, 0.045)
