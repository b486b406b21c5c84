"""The one table of skeletal regions: label index, the patient's side, share of bone mass.

Every part that names a skeletal region reads this table: the skeleton-segmentation
network (its output channels are :data:`LABELS`, index 0 background), the phantom's
exact label maps (:mod:`core.phantom.skeleton_truth`), and later the Bone Scan Index,
lesion records, the structured report and the pages.

**Sides** are the *patient's*: ``"left"`` is the patient's left whichever view shows
it (the viewer's right on an anterior view, the viewer's left on a posterior one);
``"mid"`` regions are unpaired.

**Shares of skeletal mass** (the weights of the Bone Scan Index, BSI = sum over
regions of the involved fraction times the region's share) come from the weights of
the bones of Reference Man, ICRP Publication 23 (International Commission on
Radiological Protection, *Report of the Task Group on Reference Man*, Pergamon 1975),
as tabulated per bone for the BSI by Imbriaco et al. 1998 (*Clin Cancer Res*
4:1765-1772) and used by the automated BSI (EXINI, Ulmert et al. 2012, *Eur Urol*
62:78-84). The per-bone percentages (:data:`BONE_PERCENT`) sum to 100.1 (rounding in
the source); the shares are normalised to sum to exactly 1, and a pair's total is
split equally between left and right.

Two splits are this project's, not the source's, and are marked as such:

* the source gives the vertebral column with the sacrum as one figure (8.3 %); it is
  split over cervical, thoracic, lumbar spine and sacrum in :data:`SPINE_SPLIT`
  (roughly the segments' relative masses: 7 small cervical, 12 thoracic, 5 large lumbar
  vertebrae and the sacrum);
* the knee (patella and the femoral and tibial ends inside the joint, a region a
  reader names on a bone scan) takes :data:`KNEE_FRACTION` of the femur and of the
  tibia; the patella has no entry of its own in the source.

Check both against the primary tables before any clinical use of an absolute BSI.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Side = Literal["left", "right", "mid"]

#: Percent of total skeletal weight per bone (ICRP 23 via Imbriaco et al. 1998); a
#: paired bone's figure is for ONE side.
BONE_PERCENT: MappingProxyType[str, float] = MappingProxyType(
    {
        "skull_without_mandible": 16.6,
        "mandible": 1.8,
        "clavicle": 0.5,
        "scapula": 1.5,
        "sternum": 0.3,
        "humerus": 3.3,
        "ulna": 1.5,
        "radius": 1.2,
        "hand_and_wrist": 1.5,
        "ribs_all_24": 4.4,
        "spine_and_sacrum": 8.3,
        "pelvis": 7.5,
        "femur": 8.9,
        "tibia": 5.1,
        "fibula": 1.3,
        "foot": 5.8,
    }
)
#: This project's split of ``spine_and_sacrum`` (fractions summing to 1; see above).
SPINE_SPLIT: MappingProxyType[str, float] = MappingProxyType(
    {"cervical_spine": 0.14, "thoracic_spine": 0.37, "lumbar_spine": 0.33, "sacrum": 0.16}
)
#: Fraction of the femur and of the tibia counted in the knee region (this project's).
KNEE_FRACTION = 0.2

_PAIRED_COUNT = 2  # bones listed once per side in BONE_PERCENT


def _percent_per_side() -> dict[str, float]:
    """Percent of skeletal weight of each table region on one side (or the midline)."""
    b = BONE_PERCENT
    spine = b["spine_and_sacrum"]
    return {
        "skull": b["skull_without_mandible"] + b["mandible"],
        **{name: spine * frac for name, frac in SPINE_SPLIT.items()},
        "sternum": b["sternum"],
        # pelvis and ribs are given for both sides together
        "pelvis": b["pelvis"] / _PAIRED_COUNT,
        "ribs": b["ribs_all_24"] / _PAIRED_COUNT,
        "clavicle": b["clavicle"],
        "scapula": b["scapula"],
        "humerus": b["humerus"],
        "forearm": b["ulna"] + b["radius"] + b["hand_and_wrist"],
        "femur": b["femur"] * (1.0 - KNEE_FRACTION),
        "knee": (b["femur"] + b["tibia"]) * KNEE_FRACTION,
        "lower_leg": b["tibia"] * (1.0 - KNEE_FRACTION) + b["fibula"],
        "foot": b["foot"],
    }


@dataclass(frozen=True)
class Region:
    """One skeletal region of the label table.

    Attributes:
        index: Its label value in every skeleton map (1..; 0 is background).
        name: Unique name, e.g. ``"humerus_left"``; a paired region ends in its side.
        base: The name without the side (``"humerus"``); equal to ``name`` when mid.
        side: The patient's side: ``"left"``, ``"right"`` or ``"mid"``.
        share: Share of total skeletal mass, in (0, 1); all shares sum to 1.
        axial: True for the axial skeleton (skull, spine, sacrum, pelvis, ribs, sternum).
    """

    index: int
    name: str
    base: str
    side: Side
    share: float
    axial: bool


#: Regions in label order after background: (base name, paired, axial).
_ORDER: tuple[tuple[str, bool, bool], ...] = (
    ("skull", False, True),
    ("cervical_spine", False, True),
    ("thoracic_spine", False, True),
    ("lumbar_spine", False, True),
    ("sacrum", False, True),
    ("pelvis", True, True),
    ("sternum", False, True),
    ("ribs", True, True),
    ("clavicle", True, False),
    ("scapula", True, False),
    ("humerus", True, False),
    ("forearm", True, False),
    ("femur", True, False),
    ("knee", True, False),
    ("lower_leg", True, False),
    ("foot", True, False),
)
#: Paired sides in label order: the patient's right first, as a radiologist lists them.
_PAIR_SIDES: tuple[Side, Side] = ("right", "left")


def _build_table() -> tuple[Region, ...]:
    pct = _percent_per_side()
    total = sum(pct[base] * (_PAIRED_COUNT if paired else 1) for base, paired, _ in _ORDER)
    out: list[Region] = []
    for base, paired, axial in _ORDER:
        sides: tuple[Side, ...] = _PAIR_SIDES if paired else ("mid",)
        for side in sides:
            name = base if side == "mid" else f"{base}_{side}"
            out.append(Region(len(out) + 1, name, base, side, pct[base] / total, axial))
    return tuple(out)


#: Label value of background in every skeleton map.
BACKGROUND = 0
#: The regions, index 1.. in order (index 0, background, is not a region).
REGIONS: tuple[Region, ...] = _build_table()
#: Label names by value: ``LABELS[0] == "background"``, ``LABELS[r.index] == r.name``.
LABELS: tuple[str, ...] = ("background", *(r.name for r in REGIONS))
#: Number of labels including background (the network's output channels).
N_LABELS = len(LABELS)
_BY_NAME: MappingProxyType[str, Region] = MappingProxyType({r.name: r for r in REGIONS})


def region(name: str) -> Region:
    """Return the region called ``name``.

    Raises:
        KeyError: If no region has that name.
    """
    return _BY_NAME[name]


def index_of(name: str) -> int:
    """Return the label value of region ``name`` (``"background"`` is 0).

    Raises:
        KeyError: If no label has that name.
    """
    return BACKGROUND if name == "background" else _BY_NAME[name].index


def mirror_name(name: str) -> str:
    """Return the name of the region on the other side (a mid region is its own mirror)."""
    r = _BY_NAME.get(name)
    if r is None or r.side == "mid":
        return name
    other = "left" if r.side == "right" else "right"
    return f"{r.base}_{other}"


def mirror_lut() -> tuple[int, ...]:
    """Return the label swap of a left-right flip: ``lut[label]`` is its mirror's label.

    A picture flipped left-right shows each structure on the other side, so its labels
    must swap left and right; index with this table (``np.asarray(lut)[labels]``).
    """
    return tuple(index_of(mirror_name(name)) for name in LABELS)


def shares() -> dict[str, float]:
    """Return ``{region name: share of skeletal mass}``; the values sum to 1."""
    return {r.name: r.share for r in REGIONS}
