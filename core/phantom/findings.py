"""Metastases and the benign look-alikes a reader must not call metastases.

**Metastases** (:class:`Lesion`) sit on a bone of the body model, chosen by region
with the weights of :data:`LESION_REGION_WEIGHTS` (axial skeleton most often:
spine, pelvis, ribs, skull, proximal femora and humeri). A lesion's shape is the
union of one to four ellipses laid along its host bone, textured by a few random
low-frequency waves (irregular, reproducible from ``shape_seed``); it is 2 to 40 mm
long and no wider than its bone allows (rib lesions stay rib-shaped). Its
**uptake ratio** ``r`` (1.3 to 8) is the lesion's projected activity over the host
bone's projected activity at its centre, before attenuation, blur and pixelation:
the renderer adds ``(r - 1) * host_level * shape``.

**Benign findings** (:class:`Benign`) are drawn as ordinary activity and are never
in the metastasis mask; metastases keep :data:`BENIGN_CLEARANCE_MM` away from them.
Kinds: ``degenerative`` (knees, shoulders, lumbar facets, feet), ``rib_fracture``
(aligned spots on consecutive ribs), ``injection_site`` (antecubital soft tissue),
``urine_contamination`` (skin near the pelvis), ``catheter_bag`` (tube and bag along
a leg), ``post_operative`` (sternotomy, hip prosthesis, thoracotomy) and
``growth_plate`` (open physes of adolescents). For soft-tissue kinds the ratio is
relative to :data:`REFERENCE_BONE_LEVEL` (a lumbar vertebra's projected activity).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from core.phantom.anatomy import Body
from core.phantom.centres import CentreProfile, as_profile
from core.phantom.primitives import Blob, Primitive, Tube, make_tube

#: Relative frequency of metastasis sites by skeletal region.
LESION_REGION_WEIGHTS: dict[str, float] = {
    "thoracic_spine": 0.17,
    "lumbar_spine": 0.12,
    "cervical_spine": 0.025,
    "sacrum": 0.035,
    "pelvis": 0.19,
    "ribs": 0.18,
    "skull": 0.065,
    "femur": 0.075,
    "humerus": 0.045,
    "sternum": 0.03,
    "scapula": 0.03,
    "clavicle": 0.01,
    "tibia": 0.006,
    "mandible": 0.004,
}
#: Extent patterns of a metastatic scan and their lesion-count ranges (inclusive).
PATTERNS: dict[str, tuple[int, int]] = {
    "solitary": (1, 1),
    "oligo": (2, 4),
    "multiple": (5, 20),
    "extensive": (21, 45),
    "superscan": (45, 90),
}
#: Pattern probabilities per primary tumour (others use ``"default"``).
PATTERN_PROBS: dict[str, tuple[float, float, float, float, float]] = {
    "prostate": (0.15, 0.20, 0.30, 0.22, 0.13),
    "breast": (0.25, 0.25, 0.30, 0.15, 0.05),
    "lung": (0.30, 0.30, 0.28, 0.10, 0.02),
    "default": (0.35, 0.30, 0.25, 0.08, 0.02),
}
#: Metastases keep at least this far (mm, centre to centre plus half their size) from
#: every benign finding, so that benign uptake never lands in the metastasis mask.
BENIGN_CLEARANCE_MM = 28.0
#: Projected activity of a normal lumbar vertebra (uptake 1 x ~40 mm), the unit in
#: which soft-tissue findings' ratios are given.
REFERENCE_BONE_LEVEL = 40.0

BENIGN_KINDS: tuple[str, ...] = (
    "degenerative",
    "rib_fracture",
    "injection_site",
    "urine_contamination",
    "catheter_bag",
    "post_operative",
    "growth_plate",
)
#: Benign kinds redrawn at every scan (the rest belong to the patient).
PER_SCAN_KINDS: frozenset[str] = frozenset(
    {"injection_site", "urine_contamination", "catheter_bag"}
)
#: Benign kinds whose probability a centre's ``benign_rate`` multiplies (growth plates
#: are set by age, not by a rate).
RATE_KINDS: frozenset[str] = frozenset(BENIGN_KINDS) - {"growth_plate"}


@dataclass(frozen=True)
class Site:
    """A point on a bone where a finding can sit."""

    bone: str
    region: str
    side: str | None
    x: float
    y: float
    depth: float
    thickness: float
    host_level: float
    host_uptake: float
    half_depth: float
    angle: float
    max_along: float
    max_across: float


@dataclass(frozen=True)
class Lesion:
    """One metastasis (a persistent object; its uptake and size may change over a series).

    Attributes:
        lesion_id: Persistent id within the patient, e.g. ``"L03"``.
        region: Skeletal region (:data:`core.phantom.anatomy.REGIONS`).
        bone: Host bone name, e.g. ``"T7"``, ``"rib5_left"``.
        side: ``"right"``, ``"left"`` or None.
        centre_mm: (x, y) mm, patient coordinates.
        depth_mm: Depth from the anterior skin, mm.
        thickness_mm: Body AP thickness there, mm.
        size_mm: Longest extent, mm (2 to 40).
        width_mm: Extent across the longest axis, mm.
        angle: Direction of the longest axis, radians.
        uptake_ratio: Lesion over host bone projected activity (1.3 to 8; see module).
        host_level: Host bone projected activity at the centre (uptake x path, mm).
        shape_seed: Seed of the irregular shape.
    """

    lesion_id: str
    region: str
    bone: str
    side: str | None
    centre_mm: tuple[float, float]
    depth_mm: float
    thickness_mm: float
    size_mm: float
    width_mm: float
    angle: float
    uptake_ratio: float
    host_level: float
    shape_seed: int


@dataclass(frozen=True)
class Benign:
    """One benign finding, drawn as ordinary activity (never in the metastasis mask).

    Attributes:
        kind: One of :data:`BENIGN_KINDS`.
        site: Where, e.g. ``"knee_left"``, ``"rib6_right"``, ``"elbow_right"``.
        region: Skeletal region, or ``"soft"`` for soft tissue.
        side: ``"right"``, ``"left"`` or None.
        centre_mm: (x, y) mm of its centre.
        size_mm: Extent, mm.
        ratio: Uptake over host bone (bone kinds) or over the reference bone level
            (soft-tissue kinds); None for kinds with several parts.
        prims: What the renderer draws (uptake per mm of path; may be negative to
            remove bone replaced by a prosthesis).
        points_mm: Points the metastases keep clear of.
        detail: A short human-readable description.
    """

    kind: str
    site: str
    region: str
    side: str | None
    centre_mm: tuple[float, float]
    size_mm: float
    ratio: float | None
    prims: tuple[Primitive, ...] = field(default=())
    points_mm: tuple[tuple[float, float], ...] = field(default=())
    detail: str = ""


# --- sites -------------------------------------------------------------------------------


def _candidates(body: Body, region: str) -> list[tuple[Primitive, tuple[float, float], float]]:
    """Bones of ``region`` a metastasis may sit on: (bone, t range, weight)."""
    out: list[tuple[Primitive, tuple[float, float], float]] = []
    for b in body.bones:
        if b.region != region:
            continue
        t = (0.0, 1.0)
        w = 1.0
        if region in ("thoracic_spine", "lumbar_spine", "cervical_spine"):
            w = 0.15 if b.name.endswith("_arch") else 0.85
        elif region == "femur":
            if isinstance(b, Tube):
                t = (0.0, 0.3)
            w = 0.8 if isinstance(b, Tube) else 0.2
        elif region == "humerus":
            t = (0.0, 0.35)
        elif region == "tibia":
            t = (0.0, 0.3)
        elif region == "sacrum":
            t = (0.0, 0.7)
        elif region == "ribs":
            t = (0.05, 0.95)
        elif region == "skull" and b.name != "cranium":
            w = 0.08
        elif region == "pelvis":
            w = {"ilium": 0.45, "iliac": 0.2, "acetabulum": 0.15, "pubis": 0.2}[
                b.name.split("_")[0]
            ]
        elif region == "scapula":
            w = 0.6 if isinstance(b, Blob) else 0.2
        out.append((b, t, w))
    return out


def site_on(b: Primitive, rng: np.random.Generator, t_range: tuple[float, float] = (0, 1)) -> Site:
    """Return a random point on bone ``b`` with the host bone's level there.

    Args:
        b: The bone.
        rng: Random generator.
        t_range: For tubes, the arc-length fraction range to draw from.

    Returns:
        The :class:`Site`.
    """
    if isinstance(b, Tube):
        a = b.at(float(rng.uniform(*t_range)))
        depth = a["depth"] + float(rng.normal(0.0, 0.25)) * a["half_depth"]
        return Site(
            bone=b.name,
            region=b.region,
            side=b.side,
            x=a["x"],
            y=a["y"],
            depth=float(np.clip(depth, 0.0, a["thickness"])),
            thickness=a["thickness"],
            host_level=a["uptake"] * 2.0 * a["half_depth"],
            host_uptake=a["uptake"],
            half_depth=a["half_depth"],
            angle=a["angle"],
            max_along=40.0,
            max_across=max(3.0, 3.2 * a["radius"]),
        )
    ax, bx, cx = b.axes
    rho = math.sqrt(rng.uniform(0.0, 1.0)) * (0.45 if b.shell else 0.6)
    th = rng.uniform(0.0, 2.0 * math.pi)
    p, q = rho * ax * math.cos(th), rho * bx * math.sin(th)
    ca, sa = math.cos(b.angle), math.sin(b.angle)
    x = b.centre[0] + p * ca - q * sa
    y = b.centre[1] + p * sa + q * ca
    root = math.sqrt(max(1.0 - rho * rho, 0.0))
    if b.shell:
        # a skull lesion lies in the front or the back table: seen mainly on one view
        sign = -1.0 if rng.random() < 0.5 else 1.0
        depth = b.depth + sign * (cx - b.shell / 2) * root
        host_path = b.shell / max(root, 0.3)
        hd = b.shell
        max_along, max_across = 40.0, 40.0
        angle = float(th)
    else:
        depth = b.depth + float(rng.normal(0.0, 0.25)) * cx * root
        host_path = 2.0 * cx * root
        hd = cx
        max_along, max_across = 2.2 * ax, 2.6 * bx
        angle = b.angle
    return Site(
        bone=b.name,
        region=b.region,
        side=b.side,
        x=float(x),
        y=float(y),
        depth=float(np.clip(depth, 0.0, b.thickness)),
        thickness=b.thickness,
        host_level=b.uptake * host_path,
        host_uptake=b.uptake,
        half_depth=hd,
        angle=float(angle),
        max_along=max_along,
        max_across=max_across,
    )


def sample_site(rng: np.random.Generator, body: Body, region: str | None = None) -> Site:
    """Draw a metastasis site: a region by :data:`LESION_REGION_WEIGHTS`, then a bone.

    Args:
        rng: Random generator.
        body: The body.
        region: Force this region (one with bones in the body), or None to draw one.

    Returns:
        The :class:`Site`.

    Raises:
        ValueError: If ``region`` has no bone a lesion can sit on.
    """
    if region is None:
        regions = list(LESION_REGION_WEIGHTS)
        w = np.array([LESION_REGION_WEIGHTS[r] for r in regions])
        region = regions[int(rng.choice(len(regions), p=w / w.sum()))]
    cands = _candidates(body, region)
    if not cands:
        raise ValueError(f"region {region!r} has no bone for a lesion")
    sizes = np.array(
        [
            w
            * (
                b.length() * float(b.radius.mean())
                if isinstance(b, Tube)
                else b.axes[0] * b.axes[1]
            )
            for b, _, w in cands
        ]
    )
    b, t, _ = cands[int(rng.choice(len(cands), p=sizes / sizes.sum()))]
    return site_on(b, rng, t)


def make_lesion(
    rng: np.random.Generator,
    site: Site,
    lesion_id: str,
    *,
    size_mm: float | None = None,
    uptake_ratio: float | None = None,
) -> Lesion:
    """Draw a lesion's size, ratio and shape at ``site``.

    Args:
        rng: Random generator.
        site: Where it sits.
        lesion_id: Its id.
        size_mm: Longest extent (clipped to 2-40 and to the bone); drawn when None
            (log-normal, median 15 mm).
        uptake_ratio: Ratio to host bone (1.3-8); drawn when None (log-normal, median 3.2).

    Returns:
        The :class:`Lesion`.
    """
    size = float(np.exp(rng.normal(math.log(15.0), 0.5))) if size_mm is None else size_mm
    size = float(np.clip(size, 2.0, min(40.0, site.max_along)))
    width = float(np.clip(size * rng.uniform(0.55, 1.0), 2.0, site.max_across))
    ratio = float(np.exp(rng.normal(math.log(3.2), 0.45))) if uptake_ratio is None else uptake_ratio
    ratio = float(np.clip(ratio, 1.3, 8.0))
    return Lesion(
        lesion_id=lesion_id,
        region=site.region,
        bone=site.bone,
        side=site.side,
        centre_mm=(site.x, site.y),
        depth_mm=site.depth,
        thickness_mm=site.thickness,
        size_mm=round(size, 2),
        width_mm=round(width, 2),
        angle=site.angle + float(rng.normal(0.0, 0.15)),
        uptake_ratio=round(ratio, 3),
        host_level=site.host_level,
        shape_seed=int(rng.integers(0, 2**31 - 1)),
    )


def lesion_shape(lesion: Lesion, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """Evaluate a lesion's irregular shape at points (mm, patient coordinates).

    Returns:
        float64 array broadcast from x_mm and y_mm, in [0, 1]; 0 outside the lesion,
        peak 1 (before any pixel averaging).
    """
    r = np.random.default_rng(lesion.shape_seed)
    along, across = lesion.size_mm / 2.0, lesion.width_mm / 2.0
    dx, dy = x_mm - lesion.centre_mm[0], y_mm - lesion.centre_mm[1]
    ca, sa = math.cos(lesion.angle), math.sin(lesion.angle)
    p = dx * ca + dy * sa
    q = -dx * sa + dy * ca
    n = int(min(4, 1 + r.poisson(1.0)))
    # edge profile: 0.3 a plateau with a sharp rim, 1.5 an ill-defined, tapering focus
    # (real metastases are often ill-defined)
    edge = 0.3 if r.random() < 0.3 else float(r.uniform(0.5, 1.5))
    shape = np.zeros(np.broadcast(p, q).shape)
    for k in range(n):
        if k == 0:
            a, b, op, oq, rot = along, across * r.uniform(0.75, 1.0), 0.0, 0.0, 0.0
        else:
            a = along * r.uniform(0.35, 0.75)
            b = across * r.uniform(0.5, 1.0)
            op = r.uniform(-1.0, 1.0) * (along - a)
            oq = r.uniform(-1.0, 1.0) * max(across - b, 0.0)
            rot = r.normal(0.0, 0.3)
        cr, sr = math.cos(rot), math.sin(rot)
        pp = (p - op) * cr + (q - oq) * sr
        qq = -(p - op) * sr + (q - oq) * cr
        u2 = (pp / a) ** 2 + (qq / b) ** 2
        # a flat-topped profile: lesions are plateaus of uptake with a soft edge
        np.maximum(shape, np.clip(1.0 - u2, 0.0, None) ** edge, out=shape)
    tex = np.zeros_like(shape)
    for _ in range(3):
        wl = lesion.size_mm * r.uniform(0.5, 1.2)
        th = r.uniform(0.0, math.pi)
        tex += np.cos(
            2 * math.pi * (dx * math.cos(th) + dy * math.sin(th)) / wl + r.uniform(0, 6.3)
        )
    shape = shape * (1.0 + 0.12 * tex)
    shape = np.clip(shape, 0.0, None)
    peak = shape.max() if shape.size else 0.0
    return shape / peak if peak > 0 else shape


def sample_pattern(rng: np.random.Generator, primary: str) -> str:
    """Draw the extent pattern of a metastatic scan for a primary tumour."""
    probs = np.array(PATTERN_PROBS.get(primary, PATTERN_PROBS["default"]))
    return list(PATTERNS)[int(rng.choice(len(PATTERNS), p=probs / probs.sum()))]


def _clear(site: Site, size: float, avoid: Iterable[tuple[float, float]]) -> bool:
    return all(
        math.hypot(site.x - ax, site.y - ay) >= BENIGN_CLEARANCE_MM + size / 2 for ax, ay in avoid
    )


def sample_lesions(
    rng: np.random.Generator,
    body: Body,
    pattern: str,
    benign: list[Benign],
    *,
    first_id: int = 1,
    count: int | None = None,
) -> list[Lesion]:
    """Draw the metastases of a scan with the given extent pattern.

    The first lesion is an index lesion (>= 10 mm, ratio >= 2) so that a metastatic
    scan always shows at least one clearly visible lesion; superscan lesions are
    smaller, moderate (ratio 1.5-3.5) and axial.

    Args:
        rng: Random generator.
        body: The body.
        pattern: One of :data:`PATTERNS`.
        benign: Benign findings the lesions must keep clear of.
        first_id: Number of the first id (``L01`` ...).
        count: Number of lesions; drawn from the pattern's range when None.

    Returns:
        The lesions, ids ``L{first_id:02d}`` upwards.

    Raises:
        ValueError: If ``pattern`` is unknown.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {tuple(PATTERNS)}, got {pattern!r}")
    lo, hi = PATTERNS[pattern]
    n = int(rng.integers(lo, hi + 1)) if count is None else int(count)
    avoid = [p for b in benign for p in (b.points_mm or (b.centre_mm,))]
    out: list[Lesion] = []
    axial = (
        "thoracic_spine",
        "lumbar_spine",
        "pelvis",
        "ribs",
        "sacrum",
        "skull",
        "femur",
        "humerus",
        "sternum",
        "cervical_spine",
        "scapula",
    )
    axial_w = np.array([0.2, 0.15, 0.2, 0.18, 0.05, 0.05, 0.06, 0.04, 0.03, 0.02, 0.02])
    for i in range(n):
        for _ in range(30):
            if pattern == "superscan":
                region = axial[int(rng.choice(len(axial), p=axial_w / axial_w.sum()))]
                site = sample_site(rng, body, region)
                size = float(rng.uniform(12.0, 35.0))
                ratio = float(rng.uniform(1.5, 3.5))
            else:
                site = sample_site(rng, body)
                # real malignant boxes: contrast 1.8-7 (p10-p90), median 3.3, and
                # often faint; sizes from a few pixels to a large region
                size = float(np.exp(rng.normal(math.log(14.0), 0.65)))
                ratio = float(np.exp(rng.normal(math.log(2.8), 0.5)))
                if i == 0:
                    size, ratio = max(size, 10.0), max(ratio, 2.0)
            if _clear(site, size, avoid):
                break
        else:
            continue
        out.append(
            make_lesion(rng, site, f"L{first_id + len(out):02d}", size_mm=size, uptake_ratio=ratio)
        )
    return out


# --- benign findings --------------------------------------------------------------------


def _spot(site: Site, size: float, ratio: float, name: str) -> Blob:
    """A round bone hot spot of ``ratio`` over its host, ``size`` mm across."""
    return Blob(
        name,
        site.region,
        site.side,
        (site.x, site.y),
        (size / 2, size / 2, site.half_depth),
        0.0,
        site.depth,
        site.thickness,
        (ratio - 1.0) * site.host_uptake,
    )


def _soft_spot(
    name: str, xy: tuple[float, float], size: float, ratio: float, depth: float, thick: float
) -> Blob:
    c = max(size / 2, 3.0)
    return Blob(
        name,
        "soft",
        None,
        xy,
        (size / 2, size / 2 * 0.8, c),
        0.3,
        depth,
        thick,
        ratio * REFERENCE_BONE_LEVEL / (2 * c),
    )


def _site_of(body: Body, name: str, t: float) -> Site:
    b = body.bone(name)
    if isinstance(b, Tube):
        a = b.at(t)
        return Site(
            name,
            b.region,
            b.side,
            a["x"],
            a["y"],
            a["depth"],
            a["thickness"],
            a["uptake"] * 2 * a["half_depth"],
            a["uptake"],
            a["half_depth"],
            a["angle"],
            40.0,
            3.2 * a["radius"],
        )
    return Site(
        name,
        b.region,
        b.side,
        b.centre[0],
        b.centre[1],
        b.depth,
        b.thickness,
        b.uptake * 2 * b.axes[2],
        b.uptake,
        b.axes[2],
        b.angle,
        40.0,
        40.0,
    )


def _growth_plates(rng: np.random.Generator, body: Body) -> list[Benign]:
    out = []
    # (bone, arc fraction of the physis, site name)
    physes = [
        ("femur", 0.9, "distal_femur"),
        ("tibia", 0.07, "proximal_tibia"),
        ("tibia", 0.96, "distal_tibia"),
        ("fibula", 0.95, "distal_fibula"),
        ("radius", 0.93, "distal_radius"),
        ("ulna", 0.93, "distal_ulna"),
        ("humerus", 0.07, "proximal_humerus"),
    ]
    strength = float(np.clip(rng.normal(3.2, 0.4), 2.3, 4.0))
    if body.age >= 16:
        strength = 1.0 + (strength - 1.0) * 0.6  # closing physes are fainter
    for side in ("right", "left"):
        for bone, t, site_name in physes:
            b = body.bone(f"{bone}_{side}")
            assert isinstance(b, Tube)
            a = b.at(t)
            ratio = round(strength * float(rng.uniform(0.9, 1.1)), 3)
            # a thin band across the bone at the metaphysis
            blob = Blob(
                f"physis_{site_name}_{side}",
                b.region,
                b.side,
                (a["x"], a["y"]),
                (a["radius"] * 1.1, 3.5, a["half_depth"]),
                a["angle"] + math.pi / 2,
                a["depth"],
                a["thickness"],
                (ratio - 1.0) * a["uptake"],
            )
            out.append(
                Benign(
                    "growth_plate",
                    f"{site_name}_{side}",
                    b.region,
                    side,
                    (a["x"], a["y"]),
                    round(2 * a["radius"] * 1.1, 1),
                    ratio,
                    (blob,),
                    detail="open growth plate (physis)",
                )
            )
    return out


#: Focal facial uptake that readers see in most adults and call normal: inflamed gums
#: and teeth (periodontal disease) along the alveolar ridges, maxillary sinusitis, and
#: arthritic temporomandibular joints. The project's 17 real scans show it on most
#: adult faces, and physicians box it almost never (skull: 2 % of benign boxes,
#: ../shared/real-stats.md), so it is the look-alike a lesion scorer must learn.
FACIAL_KIND = "facial"
#: Chance of any facial uptake: 0.25 at 20 years rising to 0.75 from 60.
FACIAL_PREVALENCE: tuple[float, float] = (0.25, 0.75)
#: (where, share, size range mm, uptake ratio range): dental spots on the upper or lower
#: ridge, maxillary sinus, jaw joints. Ratios are drawn log-uniform. (The nasal cavity,
#: where the real scans' remaining face marks cluster, is not drawn yet.)
FACIAL_WHERE: tuple[tuple[str, float, tuple[float, float], tuple[float, float]], ...] = (
    ("dental_upper", 0.3, (7.0, 16.0), (2.0, 5.0)),
    ("dental_lower", 0.25, (7.0, 16.0), (2.0, 5.0)),
    ("sinus", 0.2, (12.0, 22.0), (1.6, 3.0)),
    ("tmj", 0.25, (8.0, 13.0), (1.6, 3.0)),
)


def _facial_sites(
    rng: np.random.Generator, body: Body, where: str
) -> list[tuple[Site, str | None]]:
    """Where one facial finding sits: its host points and their sides (None: mid-line)."""
    side = "left" if rng.random() < 0.5 else "right"
    sgn = 1.0 if side == "left" else -1.0
    if where == "dental_upper":
        host = _site_of(body, "alveolar_ridge", 0.0)
        along = float(rng.uniform(-0.8, 0.8)) * body.height_mm * 0.019
        return [(replace(host, x=host.x + along), None if abs(along) < 8 else side)]
    if where == "dental_lower":
        t = float(rng.uniform(0.25, 0.75))
        mid = abs(t - 0.5) < 0.06
        return [(_site_of(body, "mandible", t), None if mid else ("right" if t < 0.5 else "left"))]
    if where == "sinus":
        host = _site_of(body, "maxilla", 0.0)
        dx, y = sgn * body.height_mm * 0.011, host.y - body.height_mm * 0.004
        sites: list[tuple[Site, str | None]] = [(replace(host, x=host.x + dx, y=y), side)]
        if rng.random() < 0.4:  # both sinuses
            other = "right" if side == "left" else "left"
            sites.append((replace(host, x=host.x - dx, y=y), other))
        return sites
    # the jaw joints sit at the mandible's two ends
    ends = [(0.02, "right"), (0.98, "left")]
    chosen: list[tuple[float, str | None]] = (
        list(ends) if rng.random() < 0.7 else [ends[0 if sgn < 0 else 1]]
    )
    return [(_site_of(body, "mandible", t), s) for t, s in chosen]


def sample_facial(
    rng: np.random.Generator,
    body: Body,
    *,
    avoid: tuple[tuple[float, float], ...] = (),
    centre: CentreProfile | None = None,
) -> list[Benign]:
    """Draw a patient's focal facial uptake (kind :data:`FACIAL_KIND`).

    Kept apart from :func:`sample_benign` and drawn from a stream of its own, so that
    every draw that function makes, and so every dataset's patients, lesions and other
    findings, stay as they were before the face had them.

    Args:
        rng: Random generator (its own stream).
        body: The body (its age sets the chance; its face bones host the spots).
        avoid: Points (x, y mm) of metastases the spots keep
            :data:`BENIGN_CLEARANCE_MM` away from.
        centre: The centre (its ``benign_rate`` multiplies the chance, capped at 1).

    Returns:
        One to four findings (a pair of sinuses or jaw joints counts as one), or none
        (children under 16 have none).
    """
    lo, hi = FACIAL_PREVALENCE
    chance = float(np.clip(lo + (hi - lo) * (body.age - 20) / 40, lo, hi))
    chance = min(1.0, chance * as_profile(centre).benign_rate)
    draw = float(rng.random())
    if body.age < 16 or draw >= chance:
        return []
    count = 1 + min(int(rng.poisson(1.0)), 3)
    shares = np.array([row[1] for row in FACIAL_WHERE])
    out: list[Benign] = []
    for _ in range(count):
        where, _, size_range, ratio_range = FACIAL_WHERE[
            int(rng.choice(len(FACIAL_WHERE), p=shares / shares.sum()))
        ]
        sites = _facial_sites(rng, body, where)
        size = float(rng.uniform(*size_range))
        ratio = math.exp(rng.uniform(math.log(ratio_range[0]), math.log(ratio_range[1])))
        for site, s_side in sites:
            if not _clear(site, size, avoid):
                continue
            name = f"{where}_{s_side}" if s_side else where
            out.append(
                Benign(
                    FACIAL_KIND,
                    name,
                    site.region,
                    s_side,
                    (site.x, site.y),
                    round(size, 1),
                    round(ratio, 3),
                    (_spot(site, size, ratio, f"facial_{name}"),),
                    detail=f"facial uptake ({where.replace('_', ' ')})",
                )
            )
    return out


#: Degenerative sites that come in left-right pairs, and how often the other side is
#: affected too. Wear and tear is mostly bilateral (both knees, both acromioclavicular
#: joints, both sacroiliac joints), which is what separates it from a metastasis on a
#: real scan; the spine's osteophytes and end plates are not paired.
PAIRED_DEGENERATIVE: dict[str, float] = {
    "knee": 0.6,
    "shoulder": 0.6,
    "sternoclavicular": 0.6,
    "hip": 0.5,
    "si_joint": 0.6,
    "trochanter": 0.4,
    "foot": 0.5,
    "lumbar_facet": 0.4,
    "rib_costochondral": 0.3,
}


def _degenerative_site(
    body: Body, where: str, side: str, size: float, level: str, rib: int, along: float
) -> tuple[Site, str, str, float]:
    """Return (site, site name, side, size) of one degenerative spot at ``where``.

    ``level`` names the vertebra (spine and facet sites), ``rib`` and ``along`` (0-1
    along the rib) place a costochondral spot; the other sites ignore them.
    """
    sgn = -1.0 if side == "right" else 1.0
    if where in ("spine_osteophyte", "vertebral_endplate"):
        b = body.bone(level)
        assert isinstance(b, Blob)
        s = _site_of(body, level, 0.0)
        if where == "spine_osteophyte":  # bridging osteophyte at the body's lateral edge
            s = replace(s, side=side, x=s.x + sgn * b.axes[0] * 0.9, y=s.y + b.axes[1])
            size = min(size, 14.0)
        else:  # compression fracture or Schmorl node: a band across the body
            s = replace(s, side=None, y=s.y - 0.5 * b.axes[1])
            side = "midline"
        s = replace(s, angle=0.0, max_along=40, max_across=40)
        site_name = f"{where}_{level}"
    elif where == "sternoclavicular":
        s = _site_of(body, f"clavicle_{side}", 0.0)
        site_name = f"sternoclavicular_{side}"
    elif where == "trochanter":
        s = _site_of(body, f"femur_{side}", 0.03)
        s = replace(s, x=s.x + sgn * 0.012 * body.height_mm)
        site_name = f"trochanter_{side}"
    elif where == "hip":
        hx, hy = body.landmarks[f"hip_{side}"]
        s = replace(_site_of(body, f"acetabulum_{side}", 0.0), x=hx, y=hy - 8.0)
        site_name = f"hip_{side}"
    elif where == "si_joint":
        sx_, sy_ = body.landmarks[f"si_{side}"]
        s = replace(_site_of(body, f"ilium_{side}", 0.0), x=sx_, y=sy_)
        site_name = f"si_{side}"
    elif where == "rib_costochondral":
        s = _site_of(body, f"rib{rib}_{side}", along)
        size = min(size, 12.0)
        site_name = f"costochondral{rib}_{side}"
    elif where == "knee":
        s = _site_of(body, f"tibia_{side}", 0.0)
        kx, ky = body.landmarks[f"knee_{side}"]
        # the medial compartment wears first
        s = replace(
            s,
            side=side,
            x=kx - sgn * 0.01 * body.height_mm,
            y=ky,
            angle=0.0,
            max_along=40,
            max_across=40,
        )
        site_name = f"knee_{side}"
    elif where == "shoulder":
        s = _site_of(body, f"clavicle_{side}", 1.0)  # acromioclavicular joint
        site_name = f"acromioclavicular_{side}"
    elif where == "lumbar_facet":
        s = _site_of(body, f"{level}_arch", 0.0)
        b = body.bone(f"{level}_arch")
        assert isinstance(b, Blob)
        s = replace(
            s,
            region="lumbar_spine",
            side=side,
            x=s.x + sgn * b.axes[0] * 0.8,
            angle=0.0,
            max_along=40,
            max_across=40,
        )
        size = min(size, 14.0)
        site_name = f"facet_{level}_{side}"
    else:
        s = _site_of(body, f"metatarsal1_{side}", 1.0)
        site_name = f"foot_{side}"
    return s, site_name, side, size


def _degenerative_finding(
    body: Body,
    where: str,
    side: str,
    size: float,
    ratio: float,
    level: str = "",
    rib: int = 0,
    along: float = 0.0,
) -> Benign:
    s, site_name, side, size = _degenerative_site(body, where, side, size, level, rib, along)
    return Benign(
        "degenerative",
        site_name,
        s.region,
        side,
        (s.x, s.y),
        round(size, 1),
        ratio,
        (_spot(s, size, ratio, f"degen_{site_name}"),),
        detail=f"degenerative uptake ({where.replace('_', ' ')})",
    )


def _degenerative(rng: np.random.Generator, body: Body) -> list[Benign]:
    out: list[Benign] = []
    # Where real benign boxes sit (../shared/real-stats.md): thorax and spine first,
    # then lumbar, femora, shoulders; nearly as hot as metastases (contrast median 2.6).
    sites = [
        "knee",
        "shoulder",
        "lumbar_facet",
        "foot",
        "spine_osteophyte",
        "vertebral_endplate",
        "sternoclavicular",
        "trochanter",
        "hip",
        "si_joint",
        "rib_costochondral",
    ]
    weights = np.array([0.1, 0.1, 0.1, 0.04, 0.2, 0.08, 0.08, 0.1, 0.05, 0.05, 0.1])
    n = int(rng.integers(1, 6))
    drawn = []
    for where in rng.choice(sites, size=n, replace=True, p=weights / weights.sum()):
        side = "right" if rng.random() < 0.5 else "left"
        size = float(rng.uniform(8.0, 24.0))
        ratio = round(float(np.clip(np.exp(rng.normal(math.log(2.3), 0.35)), 1.4, 5.0)), 3)
        level, rib, along = "", 0, 0.0
        if where in ("spine_osteophyte", "vertebral_endplate"):
            level = str(rng.choice([f"T{i}" for i in range(4, 13)] + ["L1", "L2", "L3", "L4"]))
        elif where == "rib_costochondral":
            rib = int(rng.integers(2, 8))
            along = float(rng.uniform(0.75, 0.95))
        elif where == "lumbar_facet":
            level = str(rng.choice(["L3", "L4", "L5"]))
        drawn.append((str(where), side, size, ratio, level, rib, along))
        out.append(_degenerative_finding(body, str(where), side, size, ratio, level, rib, along))
    # The partners are drawn after every site, so a patient's first-side findings are
    # those of the unpaired generator; a partner is about as hot and as big.
    have = {f.site for f in out}
    for where, side, size, ratio, level, rib, along in drawn:
        if rng.random() >= PAIRED_DEGENERATIVE.get(where, 0.0):
            continue
        other = "left" if side == "right" else "right"
        size2 = size * float(rng.uniform(0.85, 1.15))
        ratio2 = round(float(np.clip(ratio * np.exp(rng.normal(0.0, 0.15)), 1.4, 5.0)), 3)
        partner = _degenerative_finding(body, where, other, size2, ratio2, level, rib, along)
        if partner.site not in have:
            have.add(partner.site)
            out.append(partner)
    return out


def _rib_fractures(rng: np.random.Generator, body: Body) -> list[Benign]:
    side = "right" if rng.random() < 0.5 else "left"
    first = int(rng.integers(4, 9))
    n = int(rng.integers(2, 5))
    # posterolateral (best seen posteriorly) or anterolateral (anteriorly)
    t = float(rng.uniform(0.12, 0.32) if rng.random() < 0.5 else rng.uniform(0.7, 0.9))
    ratio = float(rng.uniform(6.0, 10.0))  # healing fractures are intensely hot
    out = []
    for k in range(first, min(first + n, 13)):
        s = _site_of(body, f"rib{k}_{side}", t + float(rng.normal(0, 0.015)))
        size = float(rng.uniform(10.0, 15.0))
        r = round(ratio * float(rng.uniform(0.85, 1.1)), 3)
        out.append(
            Benign(
                "rib_fracture",
                f"rib{k}_{side}",
                "ribs",
                side,
                (s.x, s.y),
                round(size, 1),
                r,
                (_spot(s, size, r, f"fracture_rib{k}_{side}"),),
                detail="healing rib fracture (one of a row)",
            )
        )
    return out


def _injection_site(rng: np.random.Generator, body: Body) -> Benign:
    side = "right" if rng.random() < 0.5 else "left"
    ex, ey = body.landmarks[f"elbow_{side}"]
    wx, wy = body.landmarks[f"wrist_{side}"]
    f = float(rng.uniform(0.0, 0.2))
    xy = (ex + f * (wx - ex), ey + f * (wy - ey))
    size = float(rng.uniform(8.0, 28.0))
    ratio = round(float(np.exp(rng.normal(math.log(2.5), 0.6))), 3)
    arm_t = body.thickness["arm"]
    blob = _soft_spot(f"injection_{side}", xy, size, ratio, 0.25 * arm_t, arm_t)
    return Benign(
        "injection_site",
        f"elbow_{side}",
        "soft",
        side,
        xy,
        round(size, 1),
        ratio,
        (blob,),
        detail="extravasation at the injection site (antecubital)",
    )


def _contamination(rng: np.random.Generator, body: Body) -> Benign:
    sx, sy = body.landmarks["symphysis"]
    height = body.height_mm
    n = int(rng.integers(1, 4))
    cx = sx + float(rng.uniform(-0.06, 0.06)) * height
    cy = sy + float(rng.uniform(0.01, 0.09)) * height
    thigh = body.thickness["thigh"]
    front = rng.random() < 0.6
    prims = []
    pts = []
    for i in range(n):
        xy = (cx + float(rng.normal(0, 12)), cy + float(rng.normal(0, 15)))
        size = float(rng.uniform(4.0, 14.0))
        ratio = float(np.exp(rng.normal(math.log(1.2), 0.6)))
        prims.append(_soft_spot(f"urine_{i}", xy, size, ratio, 0.0 if front else thigh, thigh))
        pts.append(xy)
    return Benign(
        "urine_contamination",
        "perineum" if abs(cx) < 0.03 * height else "thigh",
        "soft",
        None,
        (cx, cy),
        30.0,
        None,
        tuple(prims),
        tuple(pts),
        detail=f"urine contamination on the skin ({'front' if front else 'back'})",
    )


def _catheter_bag(rng: np.random.Generator, body: Body) -> Benign:
    side = "right" if rng.random() < 0.5 else "left"
    sgn = -1.0 if side == "right" else 1.0
    height = body.height_mm
    sx, sy = body.landmarks["symphysis"]
    kx, ky = body.landmarks[f"knee_{side}"]
    on_shin = rng.random() < 0.6
    bag_len = float(rng.uniform(90.0, 170.0))
    bag_w = float(rng.uniform(22.0, 34.0))
    by = ky + (
        float(rng.uniform(0.03, 0.1)) * height
        if on_shin
        else -float(rng.uniform(0.05, 0.12)) * height
    )
    bx = kx + sgn * float(rng.uniform(0.005, 0.03)) * height
    leg = body.thickness["shank" if on_shin else "thigh"]
    conc = float(rng.uniform(0.5, 1.6))  # urine activity per mm, like a full bladder
    # the bag lies against the side of the leg: about as deep for both detectors
    bag = Blob(
        "urine_bag",
        "soft",
        side,
        (bx, by + bag_len / 2),
        (bag_len / 2, bag_w / 2, 15.0),
        math.pi / 2 + float(rng.normal(0, 0.1)),
        leg / 2,
        leg,
        conc,
    )
    wiggle = float(rng.uniform(0.02, 0.06)) * height
    path = [
        (sx + sgn * 5.0, sy + 12.0),
        (sx + sgn * 0.02 * height, sy + 0.04 * height),
        (bx - sgn * wiggle, (sy + by) / 2),
        (bx + sgn * wiggle * 0.5, by - 0.03 * height),
        (bx, by),
    ]
    tube = make_tube("catheter", "soft", side, path, 3.0, leg / 3, leg, conc * 0.8, half_depth=3.0)
    pts = (*path, (bx, by + bag_len / 2), (bx, by + bag_len))
    return Benign(
        "catheter_bag",
        f"{'shin' if on_shin else 'thigh'}_{side}",
        "soft",
        side,
        (bx, by + bag_len / 2),
        round(bag_len, 1),
        None,
        (bag, tube),
        pts,
        detail="urinary catheter and collection bag",
    )


def _post_operative(rng: np.random.Generator, body: Body) -> list[Benign]:
    kind = str(rng.choice(["sternotomy", "hip_prosthesis", "thoracotomy"], p=[0.35, 0.4, 0.25]))
    side = "right" if rng.random() < 0.5 else "left"
    if kind == "sternotomy":
        st = body.bone("sternum")
        assert isinstance(st, Tube)
        ratio = round(float(rng.uniform(1.5, 2.5)), 3)
        line = Tube(
            "sternotomy",
            "sternum",
            None,
            st.xy.copy(),
            st.radius * 0.6,
            st.half_depth,
            st.depth,
            st.thickness,
            st.uptake * (ratio - 1.0),
        )
        a = st.at(0.5)
        pts = tuple((float(x), float(y)) for x, y in st.xy)
        return [
            Benign(
                "post_operative",
                "sternum",
                "sternum",
                None,
                (a["x"], a["y"]),
                round(st.length(), 1),
                ratio,
                (line,),
                pts,
                detail="median sternotomy",
            )
        ]
    if kind == "thoracotomy":
        k = int(rng.integers(4, 8))
        rib = body.bone(f"rib{k}_{side}")
        assert isinstance(rib, Tube)
        ts = np.linspace(0.25, 0.6, 6)
        pts_ = [rib.at(float(t)) for t in ts]
        ratio = round(float(rng.uniform(1.6, 2.6)), 3)
        seg = make_tube(
            "thoracotomy",
            "ribs",
            rib.side,
            [(p["x"], p["y"]) for p in pts_],
            [p["radius"] for p in pts_],
            [p["depth"] for p in pts_],
            [p["thickness"] for p in pts_],
            [p["uptake"] * (ratio - 1.0) for p in pts_],
            half_depth=[p["half_depth"] for p in pts_],
        )
        mid = pts_[3]
        return [
            Benign(
                "post_operative",
                f"rib{k}_{side}",
                "ribs",
                side,
                (mid["x"], mid["y"]),
                round(seg.length(), 1),
                ratio,
                (seg,),
                tuple((p["x"], p["y"]) for p in pts_),
                detail="thoracotomy (healing rib)",
            )
        ]
    # hip prosthesis: metal replaces the femoral head (cold), bone around the stem is warm
    head = body.bone(f"femoral_head_{side}")
    fem = body.bone(f"femur_{side}")
    assert isinstance(head, Blob) and isinstance(fem, Tube)
    cold = Blob(
        "prosthesis_head",
        "femur",
        side,
        head.centre,
        head.axes,
        0.0,
        head.depth,
        head.thickness,
        -0.85 * head.uptake,
    )
    a = fem.at(0.2)
    ratio = round(float(rng.uniform(1.3, 2.0)), 3)
    rim = Blob(
        "prosthesis_rim",
        "femur",
        side,
        (a["x"], a["y"]),
        (0.05 * body.height_mm, 17.0, 17.0),
        a["angle"],
        a["depth"],
        a["thickness"],
        0.5 * (ratio - 1.0),
        shell=6.0,
    )
    b = fem.at(0.35)
    return [
        Benign(
            "post_operative",
            f"hip_{side}",
            "femur",
            side,
            head.centre,
            round(0.1 * body.height_mm, 1),
            ratio,
            (cold, rim),
            (head.centre, (a["x"], a["y"]), (b["x"], b["y"])),
            detail="total hip arthroplasty",
        )
    ]


def sample_benign(
    rng: np.random.Generator,
    body: Body,
    *,
    force: tuple[str, ...] = (),
    per_scan_only: bool = False,
    centre: CentreProfile | None = None,
) -> list[Benign]:
    """Draw the benign findings of a patient (or only the per-scan ones).

    Probabilities: growth plates always below 16 years (boys 17), degenerative uptake
    (1-5 sites: spine osteophytes and end plates, facets, knees, shoulders,
    sternoclavicular, hips, trochanters, sacroiliac joints, costochondral junctions,
    feet) rising with age (0.15 under 26 to 0.9 from 56), rib fractures 12 %, injection site
    7 %, urine contamination 5 %, catheter and bag 3 %, post-operative uptake 6 %: those
    of the training centre. Another centre multiplies each but growth plates
    (:data:`RATE_KINDS`) by its ``benign_rate``, capped at 1; the draws stay the same, so
    with the same generator a higher rate only adds findings.

    Args:
        rng: Random generator.
        body: The body (its age decides growth plates and degenerative changes).
        force: Kinds to include whatever the draw says (from :data:`BENIGN_KINDS`).
        per_scan_only: Only the kinds of :data:`PER_SCAN_KINDS` (a follow-up scan of
            the same patient redraws those).
        centre: The centre (its benign rate); None is the training centre.

    Returns:
        The findings, in :data:`BENIGN_KINDS` order.

    Raises:
        ValueError: If ``force`` names an unknown kind, or ``centre`` is not a profile.
    """
    rate = as_profile(centre).benign_rate
    bad = [k for k in force if k not in BENIGN_KINDS]
    if bad:
        raise ValueError(f"force: unknown benign kinds {bad}, expected from {BENIGN_KINDS}")
    age = body.age
    plate_age = 17 if body.sex == "M" else 16
    p = {
        "degenerative": float(np.clip((age - 20) / 40, 0.15, 0.9)),
        "rib_fracture": 0.12,
        "injection_site": 0.07,
        "urine_contamination": 0.05,
        "catheter_bag": 0.03,
        "post_operative": 0.06 if age >= 30 else 0.0,
        "growth_plate": 1.0 if age <= plate_age else 0.0,
    }
    if rate != 1.0:  # the training centre keeps its probabilities to the last bit
        p = {k: min(1.0, v * rate) if k in RATE_KINDS else v for k, v in p.items()}
    # one draw per kind, always, so that forcing one kind leaves the others unchanged
    draws = {k: float(rng.random()) for k in BENIGN_KINDS}
    seeds = {k: int(rng.integers(0, 2**63 - 1)) for k in BENIGN_KINDS}
    out: list[Benign] = []
    for kind in BENIGN_KINDS:
        if per_scan_only and kind not in PER_SCAN_KINDS:
            continue
        if not (draws[kind] < p[kind] or kind in force):
            continue
        sub = np.random.default_rng(seeds[kind])
        if kind == "growth_plate":
            out += _growth_plates(sub, body)
        elif kind == "degenerative":
            out += _degenerative(sub, body)
        elif kind == "rib_fracture":
            out += _rib_fractures(sub, body)
        elif kind == "injection_site":
            out.append(_injection_site(sub, body))
        elif kind == "urine_contamination":
            out.append(_contamination(sub, body))
        elif kind == "catheter_bag":
            out.append(_catheter_bag(sub, body))
        else:
            out += _post_operative(sub, body)
    return out
