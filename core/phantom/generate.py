"""Generate phantom scans: one case, or a longitudinal series of one patient.

Determinism: case ``i`` of seed ``s`` draws from ``numpy.random.SeedSequence([s, 0,
i])`` (series patient ``j``: ``[s, 1, j]``, its scan ``k``: ``[s, 1, j, 1000 + k]``),
split into one child stream per stage (patient, body, benign findings, lesions,
physiology, noise). So case ``i`` is the same whatever the number of cases, and
forcing one attribute (e.g. ``age=``) leaves the draws of the other stages alone.

Every case is drawn at a centre (:mod:`core.phantom.centres`; None is the training
centre, whose cases are exactly those made before centres existed). A centre with
``seed_stream`` ``c > 0`` draws from streams ``[s, 2c, i]`` and ``[s, 2c + 1, j, ...]``
instead (other patients for the same seed), and its ids carry its name.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import core.phantom.render as rd
from core.config import LABEL_METASTASIS, VIEWS
from core.phantom.anatomy import AXIAL_REGIONS, Body, build_body
from core.phantom.anatomy_tables import REGION_UPTAKE
from core.phantom.centres import TRAINING, CentreProfile, as_profile
from core.phantom.cohort import (
    LesionState,
    PatientInfo,
    age_at,
    evolve,
    plan_series,
    sample_patient,
    weeks_between,
)
from core.phantom.findings import (
    PATTERNS,
    PER_SCAN_KINDS,
    Benign,
    Lesion,
    lesion_shape,
    sample_benign,
    sample_facial,
    sample_lesions,
    sample_pattern,
)
from core.phantom.primitives import Blob
from core.phantom.truth import TRUTH_SCHEMA, jsonable, true_bstbi
from core.scan import Scan, ScanMeta

#: Manufacturer written into every phantom scan's metadata.
PHANTOM_MANUFACTURER = "bonescan-phantom"
#: Source format of a phantom scan's metadata.
PHANTOM_SOURCE_FORMAT = "phantom"
#: Pixel spacing (row, column) of every view, mm.
PIXEL_SPACING_MM: tuple[float, float] = (rd.PIXEL_MM, rd.PIXEL_MM)

_STREAM_CASE, _STREAM_SERIES = 0, 1
_MASK_RULE = (
    f"lesion: added blurred counts >= max({rd.MASK_LOCAL_FRACTION} x local level without "
    f"lesions/bladder at the lesion centre, {rd.MASK_PEAK_FRACTION} x the lesion's peak), "
    f"none where the peak < {rd.MASK_LOCAL_FRACTION} x local; bladder: >= "
    f"{rd.BLADDER_MASK_FRACTION} x its peak when the peak >= {rd.BLADDER_VISIBLE_FRACTION} x "
    "the view's 99th-percentile background; bladder wins overlaps"
)


@dataclass(frozen=True)
class PhantomCase:
    """One generated scan with its exact ground truth.

    Attributes:
        case_id: Unique id, safe as a file name (e.g. ``"phantom-s7-00012"``).
        patient: Who (:class:`core.phantom.cohort.PatientInfo`; age at this scan).
        scan_date: Date of the scan.
        views: ``{"ANT", "POST"}`` float32 (1024, 256) counts (hot = high, head at row
            0; the posterior view mirrored: patient's right on the image right).
        masks: ``{"ANT", "POST"}`` uint8 (1024, 256) labels: 0 background,
            1 metastasis, 2 bladder (bladder wins overlaps).
        truth: JSON-able truth record (layout in :mod:`core.phantom.truth`).
        pixel_spacing_mm: (row, column) spacing, mm.
        injection_delay_h: Hours from injection to the scan.
        centre: The centre it was drawn at (how :mod:`core.phantom.export` writes it).
    """

    case_id: str
    patient: PatientInfo
    scan_date: dt.date
    views: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    truth: dict[str, Any]
    pixel_spacing_mm: tuple[float, float]
    injection_delay_h: float
    centre: CentreProfile = TRAINING

    @property
    def has_metastasis(self) -> bool:
        """True when the scan shows a metastasis (any metastasis pixel in a mask)."""
        return bool(self.truth.get("metastasis_visible", False))


@dataclass(frozen=True)
class Physiology:
    """Per-scan biology and acquisition (activities per mm of path, relative to bone 1.0)."""

    soft_per_mm: float
    kidney_per_mm: float
    bladder_volume_ml: float
    bladder_per_mm: float
    bone_gain: float
    axial_gain: float
    joint_gain: float
    injected_mbq: float
    injection_delay_h: float
    total_counts_ant: float
    blur_scale: float
    region_gain: dict[str, float] = field(default_factory=dict)
    joint_gains: dict[str, float] = field(default_factory=dict)


#: Per-patient spread (log-normal sigma) of each skeletal region's uptake: real scans
#: differ from one person to the next far more than one global bone gain gives.
REGION_SPREAD = 0.18
#: Per-patient spread (log-normal sigma) of the facial bones' uptake: teeth, gums and
#: sinuses make the face the most variable part of a normal skeleton, often hotter than
#: the vault. Drawn from a stream of its own (see :func:`draw_physiology`).
FACE_SPREAD = 0.35
#: Joint groups whose uptake varies on its own (degeneration, activity, age).
JOINT_GROUPS: tuple[str, ...] = (
    "si_joint",
    "shoulder_joint",
    "hip_joint",
    "knee_joint",
    "ankle_joint",
)


def draw_physiology(
    rng: np.random.Generator,
    body: Body,
    *,
    superscan: bool = False,
    catheter: bool = False,
    centre: CentreProfile | None = None,
) -> Physiology:
    """Draw one scan's physiology and acquisition.

    Soft tissue and kidneys fade with a longer injection-to-scan delay while the
    bladder fills; a superscan takes the tracer from soft tissue, kidneys and bladder;
    a catheter keeps the bladder nearly empty.

    Args:
        rng: Random generator.
        body: The body (age raises bone uptake in adolescents).
        superscan: The scan is a superscan.
        catheter: A urinary catheter drains the bladder.
        centre: The centre (its counts and blur ranges); None is the training centre.

    Returns:
        The :class:`Physiology`.
    """
    prof = as_profile(centre)
    u = rng.random(12)
    delay = 2.0 + 1.2 * u[0] if u[1] < 0.9 else 1.5 + 3.0 * u[2]
    late = math.exp(-0.3 * (delay - 2.5))
    # real exports show a faint body outline and kidneys in most patients (realism table)
    soft = 0.04 * late * (0.6 + 0.8 * u[3])
    kidney = 0.5 * late * (0.3 + 1.4 * u[4])
    if u[5] < 0.04:  # poor renal clearance: kidneys and soft tissue stay bright
        kidney *= 3.0
        soft *= 1.5
    if u[6] < 0.08:  # voided just before the scan
        volume = 5.0 + 20.0 * u[7]
    else:
        volume = float(np.clip(math.exp(math.log(110.0) + 0.6 * rng.normal()), 30.0, 650.0))
    bladder = 1.5 * (0.35 + 1.6 * u[8]) / late
    bone_gain = float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.25))
    if body.age < 20:
        bone_gain *= 1.3
    axial_gain = 1.0
    if superscan:
        # diffuse marrow involvement: the axial skeleton takes up much more tracer
        axial_gain = float(rng.uniform(1.5, 2.1))
        soft *= 0.45
        kidney *= 0.12
        bladder *= 0.15
        volume = min(volume, 80.0)
    if catheter:
        volume = 4.0 + 8.0 * u[9]
        bladder *= 0.5
    mbq = 370.0 + 370.0 * u[10]
    # log-uniform within the centre's range (training: 0.3-1.5 M a view)
    counts_lo, counts_hi = prof.counts_range
    counts = math.exp(rng.uniform(math.log(counts_lo), math.log(counts_hi)))
    region_gain = {
        r: float(np.exp(np.clip(rng.normal(0.0, REGION_SPREAD), -0.45, 0.45)))
        for r in sorted(REGION_UPTAKE)
        if r != "face"
    }
    # a spawned stream leaves every other draw as it was before the face had its own gain,
    # so a dataset seed still gives the same patients, lesions and benign findings
    face_rng = rng.spawn(1)[0]
    region_gain["face"] = float(np.exp(np.clip(face_rng.normal(0.0, FACE_SPREAD), -0.5, 0.9)))
    joint_gains = {
        j: float(np.exp(rng.uniform(math.log(0.45), math.log(1.6)))) for j in JOINT_GROUPS
    }
    return Physiology(
        soft_per_mm=soft,
        kidney_per_mm=kidney,
        bladder_volume_ml=volume,
        bladder_per_mm=bladder,
        bone_gain=bone_gain,
        axial_gain=axial_gain,
        joint_gain=float(rng.uniform(0.7, 1.4)),
        injected_mbq=round(mbq, 1),
        injection_delay_h=round(delay, 2),
        total_counts_ant=float(counts),
        blur_scale=float(rng.uniform(*prof.blur_range)),
        region_gain=region_gain,
        joint_gains=joint_gains,
    )


def bone_gain(phys: Physiology, region: str) -> float:
    """Return the gain a bone of skeletal ``region`` is drawn with in this scan.

    Shared by the renderer and :mod:`core.phantom.skeleton_truth`, so that the skeleton
    labels weigh each bone exactly as the image does.
    """
    gain = phys.bone_gain * phys.region_gain.get(region, 1.0)
    if region in AXIAL_REGIONS:
        gain *= phys.axial_gain
    return gain


def joint_gain(phys: Physiology, joint_name: str) -> float:
    """Return the gain the normal joint ``joint_name`` is drawn with in this scan."""
    group = next((g for g in JOINT_GROUPS if joint_name.startswith(g)), "")
    return phys.bone_gain * phys.joint_gain * phys.joint_gains.get(group, 1.0)


def draw_placement(rng: np.random.Generator, body: Body, blur_scale: float) -> rd.Placement:
    """Draw where the body lies in the field (head 8-40 rows from the top, feet inside)."""
    length_rows = body.height_mm / rd.PIXEL_MM
    top = float(rng.uniform(8.0, 40.0))
    top = min(top, 1020.0 - length_rows)
    return rd.Placement(
        vertex_row=max(top, 2.0),
        centre_col=float(128.0 + np.clip(rng.normal(0.0, 5.0), -14.0, 14.0)),
        blur_scale=blur_scale,
    )


def _bladder_hotspot(body: Body, phys: Physiology, canvas: rd.Canvas) -> rd.Hotspot | None:
    sx, sy = body.landmarks["symphysis"]
    radius = (3.0 * phys.bladder_volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    a, b = 1.2 * radius, 0.8 * radius
    c = radius / 0.96
    pelvis = body.thickness["pelvis"]
    blob = Blob(
        "bladder", "soft", None, (sx, sy - b + 10.0), (a, b, c), 0.0, 0.4 * pelvis, pelvis, 1.0
    )
    bf = rd.blob_field(blob, canvas)
    if bf is None:
        return None
    r0, c0, path = bf
    activity = phys.bladder_per_mm * path
    return rd.Hotspot("bladder", blob.centre, blob.depth, pelvis, activity, (r0, c0))


def _lesion_hotspot(les: Lesion, bone_gain: float, canvas: rd.Canvas) -> rd.Hotspot | None:
    half = les.size_mm / 2.0 + 3.0
    x, y = les.centre_mm
    g = canvas.grid(x - half, x + half, y - half, y + half)
    if g is None:
        return None
    r0, c0, x_mm, y_mm = g
    # 3 x 3 sub-pixel samples: small lesions lose contrast to partial volume, as they should
    offs = (np.arange(3) - 1.0) * rd.PIXEL_MM / 3.0
    shape = np.zeros((y_mm.shape[0], x_mm.shape[1]))
    for dy in offs:
        for dx in offs:
            shape += lesion_shape(les, x_mm + dx, y_mm + dy)
    shape /= 9.0
    act = (les.uptake_ratio - 1.0) * les.host_level * bone_gain * shape
    return rd.Hotspot(les.lesion_id, les.centre_mm, les.depth_mm, les.thickness_mm, act, (r0, c0))


def _render(
    body: Body,
    lesions: list[Lesion],
    benign: list[Benign],
    phys: Physiology,
    placement: rd.Placement,
    noise_rng: np.random.Generator | None,
    count_limits: tuple[float, float],
) -> tuple[dict[str, np.ndarray], rd.RenderResult, rd.Canvas]:
    canvas = rd.Canvas(placement)
    rd.draw_soft(canvas, body, phys.soft_per_mm)
    for region in sorted({b.region for b in body.bones}):
        gain = bone_gain(phys, region)
        rd.draw(canvas, [b for b in body.bones if b.region == region], gain=gain)
    for j in body.joints:
        rd.draw(canvas, [j], gain=joint_gain(phys, j.name))
    rd.draw(canvas, [replace(k, uptake=phys.kidney_per_mm) for k in body.kidneys])
    for b in benign:
        rd.draw(canvas, b.prims, gain=phys.bone_gain)
    hot = []
    for les in lesions:
        gain = phys.bone_gain * (phys.axial_gain if les.region in AXIAL_REGIONS else 1.0)
        gain *= phys.region_gain.get(les.region, 1.0)  # the ratio is to the host bone
        h = _lesion_hotspot(les, gain, canvas)
        if h is not None:
            hot.append(h)
    views, result = rd.render(
        canvas,
        hot,
        _bladder_hotspot(body, phys, canvas),
        total_counts_ant=phys.total_counts_ant,
        rng=noise_rng,
        count_limits=count_limits,
    )
    return views, result, canvas


def _px(canvas: rd.Canvas, x: float, y: float) -> dict[str, list[float]]:
    r, c = canvas.to_px(x, y)
    return {"ANT": [round(r, 2), round(c, 2)], "POST": [round(r, 2), round(rd.COLS - 1 - c, 2)]}


def _truth(
    case_id: str,
    patient: PatientInfo,
    scan_date: dt.date,
    body: Body,
    states: list[LesionState],
    benign: list[Benign],
    phys: Physiology,
    pattern: str,
    canvas: rd.Canvas,
    views: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    result: rd.RenderResult,
    centre: CentreProfile,
) -> dict[str, Any]:
    lesions = []
    for st in states:
        les = st.lesion
        drawn = st.status != "resolved"
        lesions.append(
            {
                "id": les.lesion_id,
                "region": les.region,
                "bone": les.bone,
                "side": les.side,
                "centre_mm": [
                    round(les.centre_mm[0], 2),
                    round(les.centre_mm[1], 2),
                    round(les.depth_mm, 2),
                ],
                "size_mm": les.size_mm,
                "width_mm": les.width_mm,
                "uptake_ratio": les.uptake_ratio if drawn else 1.0,
                "status": st.status,
                "centre_px": _px(canvas, *les.centre_mm),
                "mask_pixels": result.lesion_pixels.get(les.lesion_id, {"ANT": 0, "POST": 0}),
                "peak_contrast": result.lesion_contrast.get(
                    les.lesion_id, {"ANT": 0.0, "POST": 0.0}
                ),
            }
        )
    ben = [
        {
            "kind": b.kind,
            "site": b.site,
            "region": b.region,
            "side": b.side,
            "centre_mm": [round(b.centre_mm[0], 2), round(b.centre_mm[1], 2)],
            "size_mm": b.size_mm,
            "ratio": b.ratio,
            "detail": b.detail,
            "centre_px": _px(canvas, *b.centre_mm),
        }
        for b in benign
    ]
    visible = any(int((m == LABEL_METASTASIS).sum()) > 0 for m in masks.values())
    truth = {
        "schema": TRUTH_SCHEMA,
        "case_id": case_id,
        "patient": {
            "patient_id": patient.patient_id,
            "sex": patient.sex,
            "age": patient.age,
            "primary": patient.primary,
            "birth_year": patient.birth_year,
            "birth_date": patient.birth_date,
            "metastasis_group": patient.metastasis,
        },
        "scan_date": scan_date,
        "injection_delay_h": phys.injection_delay_h,
        "injected_mbq": phys.injected_mbq,
        "pixel_spacing_mm": list(PIXEL_SPACING_MM),
        "metastasis": any(st.status != "resolved" for st in states),
        "metastasis_visible": visible,
        "pattern": pattern,
        "lesions": lesions,
        "benign": ben,
        "bladder": {
            "volume_ml": round(phys.bladder_volume_ml, 1),
            "activity_per_mm": round(phys.bladder_per_mm, 4),
            "mask_pixels": result.bladder_pixels,
            "peak_to_bone": result.bladder_peak_ratio,
        },
        "kidneys": {"activity_per_mm": round(phys.kidney_per_mm, 4)},
        "soft_tissue_per_mm": round(phys.soft_per_mm, 5),
        "uptake_factors": {
            "regions": {k: round(v, 4) for k, v in phys.region_gain.items()},
            "joints": {k: round(v, 4) for k, v in phys.joint_gains.items()},
        },
        "body": {
            "height_mm": round(body.height_mm, 1),
            "arm_position": body.arm_position,
            "vertex_row": round(canvas.p.vertex_row, 2),
            "centre_col": round(canvas.p.centre_col, 2),
            **{k: round(v, 4) for k, v in body.params.items()},
        },
        "acquisition": {
            "total_counts": {v: float(views[v].sum()) for v in VIEWS},
            "blur_scale": round(phys.blur_scale, 4),
            "fwhm_mm_at_10cm": round(float(rd.fwhm_mm(100.0)) * phys.blur_scale, 2),
        },
        "mask_rule": _MASK_RULE,
        "bstbi": true_bstbi(views, masks),
    }
    if not centre.is_training:
        # absent for the training centre, so that its truth files stay as they were
        truth["centre"] = centre.as_dict()
    out: dict[str, Any] = jsonable(truth)
    return out


def _children(*key: int) -> list[np.random.Generator]:
    ss = np.random.SeedSequence(list(key))
    return [np.random.default_rng(s) for s in ss.spawn(8)]


def _stream(kind: int, centre: CentreProfile) -> int:
    """Return the stream number of ``kind`` (case or series) at ``centre``.

    The training centre's streams are 0 (cases) and 1 (series), as before centres;
    another centre's seed_stream ``c`` shifts them to ``2c`` and ``2c + 1``.
    """
    return kind + 2 * centre.seed_stream


def _id_tags(centre: CentreProfile) -> tuple[str, str]:
    """Return the (case id, patient id) tags of ``centre``: empty for the training centre.

    Another centre's ids carry its name, so that its cases never share an id with the
    training centre's (its patients are other people).
    """
    if centre.is_training:
        return "", ""
    return f"{centre.name}-", f"{centre.name.upper()}-"


def _check_seed(seed: int, index: int, what: str) -> None:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(index, int | np.integer) or index < 0:
        raise ValueError(f"{what} must be an integer >= 0, got {index!r}")


def generate_case(
    seed: int,
    index: int,
    *,
    metastasis: bool | None = None,
    age: int | None = None,
    sex: str | None = None,
    primary: str | None = None,
    pattern: str | None = None,
    benign: tuple[str, ...] = (),
    arm_position: str | None = None,
    uptake_scale: float = 1.0,
    noise: bool = True,
    centre: CentreProfile | None = None,
) -> PhantomCase:
    """Generate one phantom scan (a patient of the paper's cohort) with its truth.

    Args:
        seed: Dataset seed (integer >= 0).
        index: Case index (integer >= 0); case ``index`` is the same for any dataset size.
        metastasis: Force the metastasis group (True/False); None draws it (45 %).
        age: Force the age (12-100).
        sex: Force ``"M"`` or ``"F"``.
        primary: Force the primary tumour (:data:`core.phantom.cohort.PRIMARIES`).
        pattern: Force the metastatic extent (:data:`core.phantom.findings.PATTERNS`);
            implies ``metastasis=True``.
        benign: Benign kinds to include whatever the draw says
            (:data:`core.phantom.findings.BENIGN_KINDS`).
        arm_position: Force ``"sides"``, ``"abdomen"`` or ``"abducted"``.
        uptake_scale: Multiplies every lesion's excess uptake ``ratio - 1`` (ratios
            stay within 1.3-8); 1 leaves the drawn lesions as they are. The same
            patient with a larger scale has hotter lesions and nothing else changed.
        noise: False returns the noise-free expected counts (for tests and checks).
        centre: The centre it is scanned at (:mod:`core.phantom.centres`: counts, blur,
            benign rates, export, random streams and ids); None is the training
            centre (every case as it was before centres).

    Returns:
        The :class:`PhantomCase`.

    Raises:
        ValueError: If ``seed`` or ``index`` is not an integer >= 0, or a forced value
            is unknown or contradictory (``pattern`` with ``metastasis=False``).
    """
    # the draws live in draw_scene, so that the skeleton truth redraws the same scene
    scene = draw_scene(
        seed,
        index,
        metastasis=metastasis,
        age=age,
        sex=sex,
        primary=primary,
        pattern=pattern,
        benign=benign,
        arm_position=arm_position,
        uptake_scale=uptake_scale,
        centre=centre,
    )
    prof = as_profile(centre)
    body, ben, lesions, phys, placement = (
        scene.body,
        scene.benign,
        scene.lesions,
        scene.physiology,
        scene.placement,
    )
    g_noise = _children(int(seed), _stream(_STREAM_CASE, prof), int(index))[5]
    views, result, canvas = _render(
        body, lesions, ben, phys, placement, g_noise if noise else None, prof.count_limits
    )
    states = [LesionState(les, "baseline") for les in lesions]
    truth = _truth(
        scene.case_id,
        scene.patient,
        scene.scan_date,
        body,
        states,
        ben,
        phys,
        scene.pattern,
        canvas,
        views,
        result.masks,
        result,
        prof,
    )
    return PhantomCase(
        case_id=scene.case_id,
        patient=scene.patient,
        scan_date=scene.scan_date,
        views=views,
        masks=result.masks,
        truth=truth,
        pixel_spacing_mm=PIXEL_SPACING_MM,
        injection_delay_h=phys.injection_delay_h,
        centre=prof,
    )


@dataclass(frozen=True)
class CaseScene:
    """Everything :func:`generate_case` draws before rendering (no noise, no image).

    Attributes:
        case_id: As in :class:`PhantomCase`.
        patient: Who.
        scan_date: Date of the scan.
        body: The anatomy.
        benign: Benign findings drawn.
        lesions: Metastases drawn (empty without metastasis).
        pattern: Metastatic extent (``"none"`` without metastasis).
        physiology: Per-scan uptake gains, blur and counts.
        placement: Where the body lies in the field (the pixel geometry of both views).
    """

    case_id: str
    patient: PatientInfo
    scan_date: dt.date
    body: Body
    benign: list[Benign]
    lesions: list[Lesion]
    pattern: str
    physiology: Physiology
    placement: rd.Placement


def draw_scene(
    seed: int,
    index: int,
    *,
    metastasis: bool | None = None,
    age: int | None = None,
    sex: str | None = None,
    primary: str | None = None,
    pattern: str | None = None,
    benign: tuple[str, ...] = (),
    arm_position: str | None = None,
    uptake_scale: float = 1.0,
    centre: CentreProfile | None = None,
) -> CaseScene:
    """Draw case ``index`` of ``seed`` up to the rendering: the scene it is a picture of.

    Same arguments and the same draws as :func:`generate_case` (which renders this
    scene), so that anatomy-level truth (e.g. :mod:`core.phantom.skeleton_truth`) can be
    made for any case without rendering its image twice or copying the draws.

    Raises:
        ValueError: As :func:`generate_case`.
    """
    _check_seed(seed, index, "index")
    if not (math.isfinite(uptake_scale) and uptake_scale > 0):
        raise ValueError(f"uptake_scale must be a finite number > 0, got {uptake_scale!r}")
    if pattern is not None:
        if pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {tuple(PATTERNS)}, got {pattern!r}")
        if metastasis is False:
            raise ValueError("pattern needs metastasis=True (or None)")
        metastasis = True
    prof = as_profile(centre)
    g_pat, g_body, g_ben, g_les, g_phys, g_face, g_place, _ = _children(
        int(seed), _stream(_STREAM_CASE, prof), int(index)
    )
    case_tag, patient_tag = _id_tags(prof)
    case_id = f"phantom-{case_tag}s{seed}-{index:05d}"
    patient, date = sample_patient(
        g_pat,
        f"PH{seed}-{patient_tag}{index:05d}",
        metastasis=metastasis,
        primary=primary,
        sex=sex,
        age=age,
    )
    body = build_body(g_body, patient.sex, patient.age, arm_position=arm_position)
    ben = sample_benign(g_ben, body, force=tuple(benign), centre=prof)
    pat_drawn = sample_pattern(g_les, patient.primary)
    if patient.metastasis:
        pat = pattern or pat_drawn
        lesions = sample_lesions(g_les, body, pat, ben)
        if uptake_scale != 1.0:
            lesions = [
                replace(
                    les,
                    uptake_ratio=round(
                        float(np.clip(1.0 + (les.uptake_ratio - 1.0) * uptake_scale, 1.3, 8.0)), 3
                    ),
                )
                for les in lesions
            ]
    else:
        pat, lesions = "none", []
    # drawn after the lesions, from a stream of its own: every earlier draw is unchanged
    ben = ben + sample_facial(
        g_face, body, avoid=tuple(les.centre_mm for les in lesions), centre=prof
    )
    phys = draw_physiology(
        g_phys,
        body,
        superscan=pat == "superscan",
        catheter=any(b.kind == "catheter_bag" for b in ben),
        centre=prof,
    )
    placement = draw_placement(g_place, body, phys.blur_scale)
    return CaseScene(case_id, patient, date, body, ben, lesions, pat, phys, placement)


def generate_series(
    seed: int,
    patient_index: int,
    n_scans: int | None = None,
    *,
    metastasis: bool | None = None,
    primary: str | None = None,
    noise: bool = True,
    centre: CentreProfile | None = None,
) -> list[PhantomCase]:
    """Generate a longitudinal series: 2-6 scans of one patient under treatment.

    The body and the patient-level benign findings stay; placement, physiology,
    per-scan benign findings (injection site, contamination, catheter) and noise are
    redrawn at each scan. Lesions keep their ids; the truth of each scan holds
    ``series`` = ``{patient_index, scan_number, n_scans, course, days_since_first,
    treatments: [{agent, start, end, dose}], days_on_treatment}`` and every lesion's
    status (baseline, new, stable, responding, progressing, flare, resolved).

    Args:
        seed: Dataset seed (integer >= 0).
        patient_index: Series patient index (integer >= 0), independent of case indices.
        n_scans: Number of scans (2-6); drawn when None.
        metastasis: Force the metastasis group at baseline; None draws it.
        primary: Force the primary tumour.
        noise: False returns noise-free expected counts.
        centre: The centre every scan is made at (as in :func:`generate_case`); None
            is the training centre.

    Returns:
        The scans in date order.

    Raises:
        ValueError: If an argument is out of range.
    """
    _check_seed(seed, patient_index, "patient_index")
    if n_scans is not None and not 2 <= n_scans <= 6:
        raise ValueError(f"n_scans must be within 2-6, got {n_scans!r}")
    prof = as_profile(centre)
    stream = _stream(_STREAM_SERIES, prof)
    g_pat, g_body, g_ben, g_les, g_plan, g_face, _, _ = _children(
        int(seed), stream, int(patient_index)
    )
    case_tag, patient_tag = _id_tags(prof)
    patient0, first = sample_patient(
        g_pat,
        f"PH{seed}-{patient_tag}P{patient_index:04d}",
        metastasis=metastasis,
        primary=primary,
    )
    body = build_body(g_body, patient0.sex, patient0.age)
    ben_patient = [
        b for b in sample_benign(g_ben, body, centre=prof) if b.kind not in PER_SCAN_KINDS
    ]
    plan = plan_series(g_plan, patient0, first, n_scans)
    if patient0.metastasis:
        pat = sample_pattern(g_les, patient0.primary)
        if pat == "superscan":
            pat = "extensive"  # a superscan series would hide the course in saturation
        lesions = sample_lesions(g_les, body, pat, ben_patient)
    else:
        pat, lesions = "none", []
    avoid = tuple(les.centre_mm for les in lesions)
    ben_patient += sample_facial(g_face, body, avoid=avoid, centre=prof)
    states = [LesionState(les, "baseline") for les in lesions]
    next_id = len(lesions) + 1
    start = min(t.start for t in plan.treatments)
    out: list[PhantomCase] = []
    for k, date in enumerate(plan.dates):
        g_ben_k, g_evo, g_phys, g_noise, g_place, _, _, _ = _children(
            int(seed), stream, int(patient_index), 1000 + k
        )
        ben_scan = ben_patient + sample_benign(g_ben_k, body, per_scan_only=True, centre=prof)
        if k > 0:
            states, next_id = evolve(
                g_evo,
                body,
                ben_scan,
                states,
                plan.course,
                k,
                weeks_between(plan.dates[k - 1], date),
                (date - start).days,
                next_id,
            )
        drawn = [st.lesion for st in states if st.status != "resolved"]
        age_k = age_at(patient0, date)
        patient = replace(patient0, age=age_k)
        phys = draw_physiology(
            g_phys,
            body,
            catheter=any(b.kind == "catheter_bag" for b in ben_scan),
            centre=prof,
        )
        if k == 0:
            first_phys = phys
        else:
            # regional and joint uptake belong to the patient, and follow-ups are made on
            # the same camera with the same protocol (collimator blur)
            phys = replace(
                phys,
                region_gain=first_phys.region_gain,
                joint_gains=first_phys.joint_gains,
                blur_scale=first_phys.blur_scale,
            )
        placement = draw_placement(g_place, body, phys.blur_scale)
        views, result, canvas = _render(
            body, drawn, ben_scan, phys, placement, g_noise if noise else None, prof.count_limits
        )
        case_id = f"phantom-{case_tag}s{seed}-p{patient_index:04d}-{k + 1}"
        pattern_k = pat if drawn or k == 0 else "none"
        if drawn and pattern_k == "none":
            pattern_k = (
                "solitary" if len(drawn) == 1 else "oligo" if len(drawn) <= 4 else "multiple"
            )
        truth = _truth(
            case_id,
            patient,
            date,
            body,
            states,
            ben_scan,
            phys,
            pattern_k,
            canvas,
            views,
            result.masks,
            result,
            prof,
        )
        truth["series"] = jsonable(
            {
                "patient_index": patient_index,
                "scan_number": k + 1,
                "n_scans": len(plan.dates),
                "course": plan.course,
                "days_since_first": (date - plan.dates[0]).days,
                "days_on_treatment": max(0, (date - start).days),
                "treatments": [t.as_dict() for t in plan.treatments],
            }
        )
        out.append(
            PhantomCase(
                case_id=case_id,
                patient=patient,
                scan_date=date,
                views=views,
                masks=result.masks,
                truth=truth,
                pixel_spacing_mm=PIXEL_SPACING_MM,
                injection_delay_h=phys.injection_delay_h,
                centre=prof,
            )
        )
    return out


def to_scan(case: PhantomCase) -> Scan:
    """Return the case as a :class:`core.scan.Scan` (what a reader of its files would give).

    Args:
        case: The phantom case.

    Returns:
        A Scan with the case's float32 views and metadata: patient id, a synthetic
        name (``"PHANTOM^<id>"``), sex, age, birth date, study date, pixel spacing,
        manufacturer ``"bonescan-phantom"`` and source format ``"phantom"``.
    """
    p = case.patient
    meta = ScanMeta(
        patient_id=p.patient_id,
        patient_name=f"PHANTOM^{p.patient_id}",
        sex=p.sex,
        age=float(p.age),
        birth_date=p.birth_date,
        study_date=case.scan_date,
        pixel_spacing_mm=case.pixel_spacing_mm,
        manufacturer=PHANTOM_MANUFACTURER,
        source_format=PHANTOM_SOURCE_FORMAT,
        notes=("synthetic phantom scan, not a patient",),
    )
    return Scan(views={v: case.views[v] for v in VIEWS}, meta=meta)
