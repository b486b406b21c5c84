"""A lesion's bone and side come from the skeleton map; body proportions are the fallback."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import REGION_FROM_PROPORTIONS, REGION_FROM_SKELETON, result_from_masks
from core.anatomy.placement import (
    MAX_DISTANCE_PX,
    MIN_PELVIS_PX,
    MIN_SPINE_PX,
    component_regions,
    unreadable_reason,
)
from core.anatomy.regions import index_of
from core.config import COLS, LABEL_METASTASIS, ROWS
from core.phantom.generate import generate_case, to_scan
from core.phantom.skeleton_truth import case_label_maps


def _map() -> np.ndarray:
    """A tiny readable map: spine column, pelvis block, a left and a right rib."""
    sk = np.zeros((ROWS, COLS), np.uint8)
    sk[200:500, 124:132] = index_of("thoracic_spine")  # 2400 px
    sk[550:600, 90:170] = index_of("pelvis_right")  # 4000 px
    sk[250:260, 60:100] = index_of("ribs_right")
    sk[250:260, 160:200] = index_of("ribs_left")
    return sk


def test_majority_region_wins() -> None:
    sk = _map()
    comps = np.zeros_like(sk, dtype=np.int32)
    comps[250:260, 95:110] = 1  # 5 columns on the rib, 10 beside it (within reach)
    comps[252:256, 165:168] = 2  # wholly on the left rib
    regions = component_regions(sk, comps, 2)
    assert [r.name if r else None for r in regions] == ["ribs_right", "ribs_left"]
    assert regions[1] is not None and regions[1].side == "left"


def test_pixels_beside_the_bone_vote_for_it_within_reach() -> None:
    sk = _map()
    comps = np.zeros_like(sk, dtype=np.int32)
    # Just below the right rib (rows 260..): distance 1..3 px.
    comps[261:263, 70:75] = 1
    # Far from every bone: soft tissue.
    far = 100
    comps[far : far + 3, 10:13] = 2
    regions = component_regions(sk, comps, 2)
    assert regions[0] is not None and regions[0].name == "ribs_right"
    assert regions[1] is None
    assert MAX_DISTANCE_PX < 100  # the "far" case above is really out of reach


def test_no_components_and_empty_map() -> None:
    sk = _map()
    assert component_regions(sk, np.zeros_like(sk, dtype=np.int32), 0) == []
    comps = np.zeros_like(sk, dtype=np.int32)
    comps[10, 10] = 1
    assert component_regions(np.zeros_like(sk), comps, 1) == [None]


def test_bad_arguments_are_named() -> None:
    sk = _map()
    with pytest.raises(ValueError, match="components"):
        component_regions(sk, np.zeros((4, 4), np.int32), 0)
    with pytest.raises(ValueError, match="n_components"):
        component_regions(sk, np.zeros_like(sk, dtype=np.int32), -1)


def test_readable_needs_spine_and_pelvis() -> None:
    sk = _map()
    assert unreadable_reason(sk) is None
    no_pelvis = sk.copy()
    no_pelvis[no_pelvis == index_of("pelvis_right")] = 0
    assert unreadable_reason(no_pelvis) == "no pelvis found"
    empty = np.zeros_like(sk)
    assert unreadable_reason(empty) == "no spine and no pelvis found"
    assert MIN_SPINE_PX <= 2400 and MIN_PELVIS_PX <= 4000


def _phantom(seed: int = 11, index: int = 3) -> tuple[object, dict[str, np.ndarray]]:
    case = generate_case(seed, index, pattern="multiple")
    return case, case_label_maps(seed, index, pattern="multiple")


def test_analysis_places_lesions_on_the_map_and_gives_a_bsi() -> None:
    case, maps = _phantom()
    scan = to_scan(case)  # type: ignore[arg-type]
    masks = case.masks  # type: ignore[attr-defined]
    probs = {"metastasis": 0.9, "bladder": 0.9}
    with_map = result_from_masks(scan, masks, probs, skeletons=maps, anatomy_sha256="ab")
    without = result_from_masks(scan, masks, probs)
    assert with_map.lesions and len(with_map.lesions) == len(without.lesions)
    on_bone = [les for les in with_map.lesions if les.region_source == REGION_FROM_SKELETON]
    # The phantom's metastases sit in bone: nearly all are placed by the map.
    assert len(on_bone) >= 0.8 * len(with_map.lesions)
    assert all(les.side in ("left", "right", "mid") for les in on_bone)
    assert all(les.region_source == REGION_FROM_PROPORTIONS for les in without.lesions)
    assert all(les.side == "" for les in without.lesions)
    assert with_map.raw_bsi is not None and with_map.raw_bsi > 0
    assert with_map.bsi == (with_map.raw_bsi if with_map.reliable else None)
    assert sum(with_map.bsi_regions.values()) == pytest.approx(with_map.raw_bsi)
    assert set(with_map.skeletons) == set(maps)
    assert with_map.anatomy_sha256 == "ab"
    assert without.bsi is None and without.raw_bsi is None and without.skeletons == {}


def test_an_unreadable_view_is_set_aside_with_a_note() -> None:
    case, maps = _phantom()
    scan = to_scan(case)  # type: ignore[arg-type]
    blank = {"ANT": maps["ANT"], "POST": np.zeros_like(maps["POST"])}
    result = result_from_masks(
        scan,
        case.masks,  # type: ignore[attr-defined]
        {"metastasis": 0.9, "bladder": 0.9},
        skeletons=blank,
    )
    assert set(result.skeletons) == {"ANT"}
    assert any("POST: the skeleton network could not read" in n for n in result.notes)
    post = [les for les in result.lesions if les.view == "POST"]
    assert all(les.region_source == REGION_FROM_PROPORTIONS for les in post)


def test_skeleton_of_the_wrong_shape_is_refused() -> None:
    case, maps = _phantom()
    scan = to_scan(case)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="skeletons"):
        result_from_masks(
            scan,
            case.masks,  # type: ignore[attr-defined]
            {"metastasis": 0.9, "bladder": 0.9},
            skeletons={"ANT": maps["ANT"][:10]},
        )


def test_mask_only_on_background_gives_zero_bsi() -> None:
    case, maps = _phantom()
    scan = to_scan(case)  # type: ignore[arg-type]
    masks = {v: np.zeros_like(m) for v, m in case.masks.items()}  # type: ignore[attr-defined]
    off_bone = maps["ANT"] == 0
    masks["ANT"][off_bone & (np.arange(ROWS)[:, None] < 40)] = LABEL_METASTASIS
    result = result_from_masks(scan, masks, {"metastasis": 0.9, "bladder": 0.1}, skeletons=maps)
    assert result.raw_bsi == 0.0
