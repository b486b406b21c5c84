from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.anatomy.regions import (
    BACKGROUND,
    LABELS,
    N_LABELS,
    REGIONS,
    index_of,
    mirror_lut,
    mirror_name,
    region,
    shares,
)
from tests.import_rules import all_imports

REQUIRED = (
    "skull",
    "cervical_spine",
    "thoracic_spine",
    "lumbar_spine",
    "sacrum",
    "sternum",
    *(
        f"{base}_{side}"
        for base in (
            "pelvis",
            "ribs",
            "clavicle",
            "scapula",
            "humerus",
            "forearm",
            "femur",
            "knee",
            "lower_leg",
            "foot",
        )
        for side in ("left", "right")
    ),
)


def test_background_is_zero_and_indices_follow_the_table() -> None:
    assert BACKGROUND == 0 and LABELS[0] == "background"
    assert [r.index for r in REGIONS] == list(range(1, N_LABELS))
    assert all(LABELS[r.index] == r.name == region(r.name).name for r in REGIONS)
    assert len(set(LABELS)) == N_LABELS
    assert set(REQUIRED) <= set(LABELS)


def test_shares_sum_to_one_and_are_positive() -> None:
    assert math.isclose(sum(shares().values()), 1.0, abs_tol=1e-12)
    assert all(r.share > 0 for r in REGIONS)
    # the skull is the heaviest region of Reference Man, the sternum the lightest
    assert max(REGIONS, key=lambda r: r.share).name == "skull"
    assert min(REGIONS, key=lambda r: r.share).name == "sternum"


def test_sides_pair_up_with_equal_shares() -> None:
    for r in REGIONS:
        assert r.side in ("left", "right", "mid")
        if r.side == "mid":
            assert r.name == r.base and mirror_name(r.name) == r.name
            continue
        assert r.name == f"{r.base}_{r.side}"
        other = region(mirror_name(r.name))
        assert other.base == r.base and other.side != r.side and other.side != "mid"
        assert other.share == r.share


def test_mirror_lut_swaps_sides_and_is_its_own_inverse() -> None:
    lut = mirror_lut()
    assert len(lut) == N_LABELS and lut[0] == 0
    assert all(lut[lut[k]] == k for k in range(N_LABELS))
    assert lut[index_of("humerus_left")] == index_of("humerus_right")
    assert lut[index_of("skull")] == index_of("skull")


def test_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError):
        region("tail")
    with pytest.raises(KeyError):
        index_of("tail")


def test_the_table_is_pure_and_anatomy_does_not_lean_on_the_phantom() -> None:
    root = Path(__file__).resolve().parent.parent
    imports = [imp for imp in all_imports(root) if imp.module.startswith("core.anatomy")]
    table = {imp.target.split(".")[0] for imp in imports if imp.module == "core.anatomy.regions"}
    # the one table every stage reads loads nothing heavy (no numpy arrays, no torch)
    assert table <= {"__future__", "dataclasses", "types", "typing"}
    assert not [imp for imp in imports if imp.target.startswith("core.phantom")]
