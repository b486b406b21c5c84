from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.burden.indices import bstbi_images, hotspot_count, scan_bstbi
from core.burden.lesion_review import ComponentStats, lesion_components, recompute_burden

K = 5.0


def _scene() -> tuple[dict[tuple[str, int], np.ndarray], dict[str, np.ndarray]]:
    """4x4 views. ANT: lesion 1 at (0,0) heat 100, lesion 2 at (3,3) heat 50, a
    background pixel (1,2) of heat 20, a bladder pixel (2,0) of heat 60. POST: blank."""
    ant = np.full((4, 4), 255, np.uint8)
    ant[0, 0], ant[3, 3], ant[1, 2], ant[2, 0] = 155, 205, 235, 195
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[3, 3] = 1
    mask[2, 0] = 2
    post = np.full((4, 4), 255, np.uint8)
    displays = {("ANT", 1): ant, ("ANT", 2): ant, ("POST", 1): post, ("POST", 2): post}
    return displays, {"ANT": mask, "POST": np.zeros((4, 4), np.uint8)}


def _components(masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {view: lesion_components(m)[0] for view, m in masks.items()}


def test_lesion_components_numbers_8_connected_metastasis_only() -> None:
    m = np.zeros((5, 5), np.uint8)
    m[0, 0] = m[1, 1] = 1  # touch by a corner: one lesion, as one hotspot
    m[4, 3] = m[4, 4] = 1
    m[2, 4] = 2  # bladder is not a lesion
    labels, stats = lesion_components(m)
    assert labels.dtype == np.int32 and labels.shape == (5, 5)
    assert stats == [ComponentStats(1, 2, 0.5, 0.5), ComponentStats(2, 2, 4.0, 3.5)]
    assert labels[0, 0] == labels[1, 1] == 1 and labels[4, 4] == 2 and labels[2, 4] == 0
    assert lesion_components(np.zeros((3, 3), np.uint8))[1] == []


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, (9, 7), elements=st.integers(0, 2)))
def test_one_lesion_is_one_hotspot(mask: np.ndarray) -> None:
    labels, stats = lesion_components(mask)
    assert len(stats) == hotspot_count(mask == 1) == labels.max(initial=0)
    assert sum(s.area_px for s in stats) == np.count_nonzero(mask == 1)


def test_lesion_components_refuses_non_label_masks() -> None:
    with pytest.raises(ValueError, match="uint8"):
        lesion_components(np.zeros((3, 3), np.int64))
    with pytest.raises(ValueError, match="labels 0, 1, 2"):
        lesion_components(np.full((3, 3), 3, np.uint8))


def test_removing_a_lesion_gives_the_hand_computed_bstbi() -> None:
    displays, masks = _scene()
    original = masks["ANT"].copy()
    comps = _components(masks)
    # S_R - S_B = 100 + 50 + 20 = 170 (the bladder's 60 is left out).
    full = recompute_burden(displays, masks, comps, set(), pixel_spacing_mm=(2.0, 3.0))
    assert full.per_image[("ANT", 1)] == pytest.approx(K * 150 / ((K - 1) * 150 + 170))
    assert full.per_image[("POST", 1)] == 0.0
    assert full.scan_bstbi == pytest.approx(K * 150 / ((K - 1) * 150 + 170) / 2)
    assert full.hotspots == 2
    assert full.lesion_area_cm2 == pytest.approx(2 * 0.06)

    no_second = recompute_burden(displays, masks, comps, {("ANT", 2)}, pixel_spacing_mm=(2.0, 3.0))
    assert no_second.per_image[("ANT", 1)] == pytest.approx(K * 100 / ((K - 1) * 100 + 170))
    assert no_second.scan_bstbi < full.scan_bstbi
    assert no_second.hotspots == 1
    assert no_second.lesion_area_cm2 == pytest.approx(0.06)
    assert no_second.masks["ANT"][3, 3] == 0 and no_second.masks["ANT"][0, 0] == 1
    # The model's own mask is kept as it was.
    assert np.array_equal(masks["ANT"], original)

    restored = recompute_burden(displays, masks, comps, set(), pixel_spacing_mm=(2.0, 3.0))
    assert restored.scan_bstbi == full.scan_bstbi
    assert restored.per_image == full.per_image


def test_an_added_lesion_counts_but_the_bladder_stays_bladder() -> None:
    displays, masks = _scene()
    drawn = np.zeros((4, 4), bool)
    drawn[1, 2] = drawn[2, 0] = True  # a background pixel and the bladder pixel
    out = recompute_burden(
        displays, masks, _components(masks), set(), {"ANT": drawn}, pixel_spacing_mm=(1.0, 1.0)
    )
    assert out.masks["ANT"][1, 2] == 1 and out.masks["ANT"][2, 0] == 2
    # S_L = 170, S_R - S_B = 170
    assert out.per_image[("ANT", 1)] == pytest.approx(K * 170 / ((K - 1) * 170 + 170))
    assert out.hotspots == 3


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.uint8, (8, 6), elements=st.integers(0, 2)),
    arrays(np.uint8, (8, 6)),
    st.data(),
)
def test_recompute_equals_core_burden_on_the_edited_mask(
    mask: np.ndarray, display: np.ndarray, data: st.DataObject
) -> None:
    labels, stats = lesion_components(mask)
    chosen = data.draw(st.sets(st.sampled_from([s.component for s in stats]))) if stats else set()
    displays = {("ANT", 1): display, ("ANT", 2): 255 - display}
    out = recompute_burden(
        displays, {"ANT": mask}, {"ANT": labels}, {("ANT", c) for c in chosen},
        pixel_spacing_mm=(1.0, 1.0),
    )  # fmt: skip
    edited = mask.copy()
    edited[np.isin(labels, list(chosen))] = 0
    expected = bstbi_images(displays, {"ANT": edited})
    assert out.per_image == expected
    assert out.scan_bstbi == scan_bstbi(expected)
    assert out.hotspots == len(stats) - len(chosen)
    before = bstbi_images(displays, {"ANT": mask})
    assert all(out.per_image[k] <= before[k] + 1e-12 for k in before)


def test_recompute_refuses_unknown_lesions() -> None:
    displays, masks = _scene()
    comps = _components(masks)
    with pytest.raises(ValueError, match="no component"):
        recompute_burden(displays, masks, comps, {("ANT", 3)}, pixel_spacing_mm=(1.0, 1.0))
    with pytest.raises(ValueError, match="no lesion component image"):
        recompute_burden(displays, masks, {}, {("ANT", 1)}, pixel_spacing_mm=(1.0, 1.0))
    with pytest.raises(ValueError, match="no model mask"):
        recompute_burden(
            displays, {"ANT": masks["ANT"]}, comps, {("POST", 1)}, pixel_spacing_mm=(1.0, 1.0)
        )
    with pytest.raises(ValueError, match="shape"):
        recompute_burden(
            displays, masks, comps, set(), {"ANT": np.ones((2, 2), bool)},
            pixel_spacing_mm=(1.0, 1.0),
        )  # fmt: skip
