"""The anatomy tables are consistent with one another and with the builder that walks them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import core.phantom.anatomy_tables as tables
from core.phantom.anatomy import ARM_POSITIONS, REGIONS, build_body
from core.phantom.primitives import Blob, Tube

LEVELS = {row.name for row in tables.THICKNESS}


def test_every_level_named_is_a_thickness_level() -> None:
    named = [level for _, level in tables.THICKNESS_PROFILE]
    named += [v.level for v in (*tables.FEMUR, *tables.TIBIA, *tables.FIBULA)]
    named += [joint.level for joint in tables.LEG_JOINTS]
    named += list(tables.LEG_SOFT_LEVELS)
    assert set(named) <= LEVELS
    assert len(LEVELS) == len(tables.THICKNESS)  # no level twice


def test_thickness_profile_runs_vertex_to_sole() -> None:
    heights = [h for h, _ in tables.THICKNESS_PROFILE]
    assert heights[0] == 0.0 and heights[-1] == 1.0
    assert heights == sorted(heights)


def test_region_uptake_covers_every_skeletal_region() -> None:
    assert set(tables.REGION_UPTAKE) == set(REGIONS)
    assert all(k > 0 for k in tables.REGION_UPTAKE.values())


def test_arm_tables_match_the_arm_positions() -> None:
    assert set(tables.ARM_POSES) == set(ARM_POSITIONS) == set(tables.ARM_POSITION_P)
    assert math.isclose(sum(tables.ARM_POSITION_P.values()), 1.0)
    fractions = [f for f, _, _ in tables.HUMERUS]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)


@pytest.mark.parametrize("rows", [tables.FEMUR, tables.TIBIA, tables.FIBULA])
def test_leg_bones_give_all_or_no_half_depths(rows: tuple[tables.LegVertex, ...]) -> None:
    given = [v.half_depth_mm is not None for v in rows]
    assert all(given) or not any(given)


def test_offsets_use_known_widths() -> None:
    offsets = [
        tables.ILIUM_CENTRE,
        *(p for p, _ in tables.ILIAC_CREST),
        *tables.SI_JOINT,
        *(p for p, _ in tables.PUBIC_RING),
        *tables.CLAVICLE,
        *tables.SCAPULA_SPINE,
        tables.TROCHANTER,
        *(v.at for v in (*tables.FEMUR, *tables.TIBIA, *tables.FIBULA)),
    ]
    assert {o.wide for o in offsets} <= {None, "pelvis", "shoulder"}


def test_the_body_has_one_primitive_per_table_row() -> None:
    body = build_body(np.random.default_rng(0), "F", 40, arm_position="sides")
    names = [b.name for b in body.bones]
    assert len(names) == len(set(names))
    spine = sum(seg.count for seg in tables.SPINE)
    assert (
        sum(isinstance(b, Blob) and b.name[0] in "CTL" and b.name[1:].isdigit() for b in body.bones)
        == spine
    )
    assert sum(b.name.startswith("rib") for b in body.bones) == 2 * len(tables.RIB_END_DEG)
    femur = body.bone("femur_left")
    assert isinstance(femur, Tube) and len(femur.xy) == len(tables.FEMUR)
    assert [j.name for j in body.joints][-3:] == [f"{j.name}_left" for j in tables.LEG_JOINTS]
    assert set(body.thickness) == LEVELS
