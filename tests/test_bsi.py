"""Bone Scan Index from skeleton maps and metastasis masks (core.anatomy.bsi)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.anatomy.bsi import BoneScanIndex, bone_scan_index, view_involvement
from core.anatomy.regions import N_LABELS, REGIONS, index_of, region
from core.config import COLS, ROWS

FEMUR_L = "femur_left"
SKULL = "skull"


def empty_map() -> np.ndarray:
    return np.zeros((ROWS, COLS), dtype=np.uint8)


def empty_mask() -> np.ndarray:
    return np.zeros((ROWS, COLS), dtype=bool)


def one_region_case() -> tuple[np.ndarray, np.ndarray]:
    # femur_left: a 10 x 10 block = exactly 100 pixels; 25 of them (a 5 x 5 corner)
    # metastatic, plus 10 metastatic background pixels that must count nothing.
    skeleton = empty_map()
    skeleton[600:610, 100:110] = index_of(FEMUR_L)
    mask = empty_mask()
    mask[600:605, 100:105] = True
    mask[0, 0:10] = True
    return skeleton, mask


def test_one_region_quarter_involved() -> None:
    skeleton, mask = one_region_case()
    result = bone_scan_index(ant_skeleton=skeleton, ant_mask=mask)
    share = region(FEMUR_L).share
    assert result.involvement == {FEMUR_L: 0.25}
    assert result.bsi == pytest.approx(25.0 * share, rel=1e-12)
    assert dict(result.regions) == pytest.approx({FEMUR_L: 25.0 * share}, rel=1e-12)


def test_one_region_quarter_involved_hand_number() -> None:
    # femur share = 8.9 * 0.8 / 100.1 (table's per-side percent over its 100.1 total)
    skeleton, mask = one_region_case()
    result = bone_scan_index(post_skeleton=skeleton, post_mask=mask)
    assert result.bsi == pytest.approx(25.0 * 8.9 * 0.8 / 100.1, rel=1e-9)


def test_two_regions_add() -> None:
    skeleton, mask = one_region_case()
    # skull: 8 x 25 = 200 pixels
    skeleton[200:208, 100:125] = index_of(SKULL)
    mask[200:204, 100:125] = True  # 4 x 25 = 100 of 200 => 0.5
    result = bone_scan_index(ant_skeleton=skeleton, ant_mask=mask)
    expected = 25.0 * region(FEMUR_L).share + 50.0 * region(SKULL).share
    assert result.involvement == {FEMUR_L: 0.25, SKULL: 0.5}
    assert result.bsi == pytest.approx(expected, rel=1e-12)
    assert sum(result.regions.values()) == pytest.approx(result.bsi, rel=1e-12)


def test_two_views_take_the_larger_per_region() -> None:
    ant_skeleton, ant_mask = one_region_case()  # femur_left 0.25 on ANT
    ant_skeleton[200:208, 100:125] = index_of(SKULL)  # skull clear on ANT
    post_skeleton = empty_map()
    post_skeleton[600:610, 140:150] = index_of(FEMUR_L)  # femur_left 100 px on POST
    post_skeleton[100:110, 100:120] = index_of(SKULL)  # skull 200 px on POST
    post_mask = empty_mask()
    post_mask[600:601, 140:150] = True  # femur_left 10/100 = 0.1 on POST (< 0.25)
    post_mask[100:108, 100:120] = True  # skull 160/200 = 0.8 on POST (> 0 on ANT)
    result = bone_scan_index(
        ant_skeleton=ant_skeleton,
        ant_mask=ant_mask,
        post_skeleton=post_skeleton,
        post_mask=post_mask,
    )
    assert result.involvement == pytest.approx({FEMUR_L: 0.25, SKULL: 0.8})
    expected = 25.0 * region(FEMUR_L).share + 80.0 * region(SKULL).share
    assert result.bsi == pytest.approx(expected, rel=1e-12)


def test_worked_example_of_docs_bsi_md() -> None:
    # docs/bsi.md: every region 400 px (20 x 20) on each view
    ant, post = empty_map(), empty_map()
    ant_mask, post_mask = empty_mask(), empty_mask()
    for skeleton in (ant, post):
        skeleton[380:400, 118:138] = index_of("lumbar_spine")
    ant[250:270, 60:80] = index_of("ribs_right")
    post[250:270, 176:196] = index_of("ribs_right")
    ant[450:470, 150:170] = index_of("pelvis_left")
    post[450:470, 86:106] = index_of("pelvis_left")
    ant_mask[380:382, 118:138] = True  # lumbar 40/400 = 0.10 on ANT
    post_mask[380:385, 118:138] = True  # lumbar 100/400 = 0.25 on POST
    ant_mask[250:251, 60:80] = True  # ribs_right 20/400 = 0.05 on ANT, clear on POST
    ant_mask[450:460, 150:170] = True  # pelvis_left 0.5 on ANT
    post_mask[450:458, 86:106] = True  # pelvis_left 0.4 on POST
    result = bone_scan_index(
        ant_skeleton=ant, ant_mask=ant_mask, post_skeleton=post, post_mask=post_mask
    )
    assert result.involvement == {"lumbar_spine": 0.25, "ribs_right": 0.05, "pelvis_left": 0.5}
    assert dict(result.regions) == pytest.approx(
        {"lumbar_spine": 0.6841, "ribs_right": 0.1099, "pelvis_left": 1.8731}, abs=5e-5
    )
    assert result.bsi == pytest.approx(2.6671, abs=5e-5)


def test_no_metastasis_is_zero() -> None:
    skeleton, _ = one_region_case()
    result = bone_scan_index(ant_skeleton=skeleton, ant_mask=empty_mask())
    assert result.bsi == 0.0
    assert dict(result.regions) == {}
    assert result.involvement == {FEMUR_L: 0.0}


def test_metastasis_outside_every_region_counts_nothing() -> None:
    skeleton, _ = one_region_case()
    mask = empty_mask()
    mask[0:100, :] = True  # all background
    assert bone_scan_index(ant_skeleton=skeleton, ant_mask=mask).bsi == 0.0


def test_region_missing_from_the_map_contributes_nothing() -> None:
    skeleton, mask = one_region_case()
    mask[:] = True  # every pixel metastatic, but only femur_left exists on the map
    with np.errstate(all="raise"):  # no 0/0 for the 29 absent regions
        result = bone_scan_index(ant_skeleton=skeleton, ant_mask=mask)
    assert result.involvement == {FEMUR_L: 1.0}
    assert result.bsi == pytest.approx(100.0 * region(FEMUR_L).share)


def test_region_on_one_view_only_uses_that_view() -> None:
    skeleton, mask = one_region_case()
    result = bone_scan_index(
        ant_skeleton=empty_map(),
        ant_mask=empty_mask(),
        post_skeleton=skeleton,
        post_mask=mask,
    )
    assert result.involvement == {FEMUR_L: 0.25}


def test_result_is_frozen() -> None:
    skeleton, mask = one_region_case()
    result = bone_scan_index(ant_skeleton=skeleton, ant_mask=mask)
    assert isinstance(result, BoneScanIndex)
    with pytest.raises(AttributeError):
        result.bsi = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.regions[SKULL] = 1.0  # type: ignore[index]


def test_view_involvement() -> None:
    skeleton, mask = one_region_case()
    assert view_involvement(skeleton, mask) == {FEMUR_L: 0.25}


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({}, "ant_skeleton"),
        ({"ant_skeleton": empty_map()}, "ant_mask"),
        ({"post_mask": empty_mask()}, "post_skeleton"),
        (
            {"ant_skeleton": np.zeros((512, 256), np.uint8), "ant_mask": empty_mask()},
            "ant_skeleton",
        ),
        ({"ant_skeleton": empty_map().astype(np.int32), "ant_mask": empty_mask()}, "ant_skeleton"),
        ({"ant_skeleton": empty_map() + N_LABELS, "ant_mask": empty_mask()}, "ant_skeleton"),
        ({"ant_skeleton": [[0]], "ant_mask": empty_mask()}, "ant_skeleton"),
        ({"ant_skeleton": empty_map(), "ant_mask": empty_mask().astype(np.uint8)}, "ant_mask"),
        ({"post_skeleton": empty_map(), "post_mask": np.zeros((ROWS, 128), bool)}, "post_mask"),
    ],
)
def test_refusals_name_the_argument(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        bone_scan_index(**kwargs)  # type: ignore[arg-type]


# --- invariants ------------------------------------------------------------------

PATCH = (12, 16)
labels = hnp.arrays(np.uint8, PATCH, elements=st.integers(0, N_LABELS - 1))
masks = hnp.arrays(np.bool_, PATCH)


def placed(patch: np.ndarray, row: int) -> np.ndarray:
    full = np.zeros((ROWS, COLS), dtype=patch.dtype)
    full[row : row + PATCH[0], : PATCH[1]] = patch
    return full


@settings(max_examples=60, deadline=None)
@given(labels, masks, masks, labels, masks, masks)
def test_bounded_and_monotone(
    ant_patch: np.ndarray,
    ant_patch_mask: np.ndarray,
    ant_more: np.ndarray,
    post_patch: np.ndarray,
    post_patch_mask: np.ndarray,
    post_more: np.ndarray,
) -> None:
    ant, post = placed(ant_patch, 300), placed(post_patch, 700)
    before = bone_scan_index(
        ant_skeleton=ant,
        ant_mask=placed(ant_patch_mask, 300),
        post_skeleton=post,
        post_mask=placed(post_patch_mask, 700),
    )
    after = bone_scan_index(
        ant_skeleton=ant,
        ant_mask=placed(ant_patch_mask | ant_more, 300),
        post_skeleton=post,
        post_mask=placed(post_patch_mask | post_more, 700),
    )
    for result in (before, after):
        assert 0.0 <= result.bsi <= 100.0
        assert all(0.0 <= f <= 1.0 for f in result.involvement.values())
    assert after.bsi >= before.bsi
    assert all(after.involvement[n] >= f for n, f in before.involvement.items())


@settings(max_examples=30, deadline=None)
@given(labels, st.sampled_from(["ant", "post", "both"]))
def test_every_region_fully_involved_is_100(patch: np.ndarray, views: str) -> None:
    skeleton = placed(patch, 500)
    skeleton[0, : len(REGIONS)] = [r.index for r in REGIONS]  # every region present
    full = np.ones((ROWS, COLS), dtype=bool)
    kwargs: dict[str, np.ndarray] = {}
    if views in ("ant", "both"):
        kwargs.update(ant_skeleton=skeleton, ant_mask=full)
    if views in ("post", "both"):
        kwargs.update(post_skeleton=skeleton, post_mask=full)
    result = bone_scan_index(**kwargs)
    assert result.bsi == pytest.approx(100.0, abs=1e-9)
    assert set(result.regions) == {r.name for r in REGIONS}
