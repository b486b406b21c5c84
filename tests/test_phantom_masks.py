"""Masks agree with the images: metastases are hot where masked, benign findings never are."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.config import LABEL_BLADDER, LABEL_METASTASIS, VIEWS
from core.phantom import generate_case
from core.phantom.findings import BENIGN_KINDS


def _component_at(mask: np.ndarray, rc: list[float]) -> np.ndarray | None:
    lab, _ = ndimage.label(mask)
    r, c = round(rc[0]), round(rc[1])
    window = lab[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3]
    ids = window[window > 0]
    return None if ids.size == 0 else lab == np.bincount(ids).argmax()


@pytest.mark.parametrize("index", range(3))
def test_metastasis_mask_is_hotter_than_the_bone_around_it(index: int) -> None:
    c = generate_case(21, index, pattern="solitary", noise=False)
    (lesion,) = c.truth["lesions"]
    seen = 0
    for v in VIEWS:
        met = c.masks[v] == LABEL_METASTASIS
        assert met.sum() >= lesion["mask_pixels"][v]  # filling holes only adds
        if lesion["mask_pixels"][v] == 0:
            assert not met.any()
            continue
        seen += 1
        comp = _component_at(met, lesion["centre_px"][v])
        assert comp is not None, f"{v}: mask not at the lesion centre (mirroring?)"
        ring = ndimage.binary_dilation(comp, iterations=3) & ~comp
        assert c.views[v][comp].mean() > 1.1 * c.views[v][ring].mean()
    assert seen >= 1  # the index lesion of a metastatic scan is always visible


def test_mask_sits_on_the_mirrored_lesion_in_the_posterior_view() -> None:
    c = generate_case(22, 0, pattern="multiple", noise=False)
    for les in c.truth["lesions"]:
        ra, ca = les["centre_px"]["ANT"]
        rp, cp = les["centre_px"]["POST"]
        assert ra == rp and ca + cp == pytest.approx(255.0)
        for v in VIEWS:
            if les["mask_pixels"][v] > 0:
                assert (
                    _component_at(c.masks[v] == LABEL_METASTASIS, les["centre_px"][v]) is not None
                )


def test_noise_free_counts_rise_where_lesions_are_masked() -> None:
    with_mets = generate_case(23, 1, pattern="extensive", noise=False)
    assert with_mets.truth["metastasis_visible"]
    assert any((with_mets.masks[v] == LABEL_METASTASIS).sum() > 100 for v in VIEWS)
    assert with_mets.has_metastasis


def test_bladder_mask_covers_the_bladder_maximum() -> None:
    checked = 0
    for i in range(6):
        c = generate_case(24, i, metastasis=False, noise=False)
        for v in VIEWS:
            bl = c.masks[v] == LABEL_BLADDER
            if not bl.any():
                assert c.truth["bladder"]["mask_pixels"][v] == 0
                continue
            near = ndimage.binary_dilation(bl, iterations=10)
            img = np.where(near, c.views[v], -1.0)
            r, col = np.unravel_index(np.argmax(img), img.shape)
            assert bl[r, col]
            checked += 1
    assert checked >= 6


def test_no_metastasis_group_has_no_metastasis_pixels() -> None:
    for i in range(3):
        c = generate_case(25, i, metastasis=False)
        assert c.truth["lesions"] == [] and not c.truth["metastasis"]
        assert all(not (c.masks[v] == LABEL_METASTASIS).any() for v in VIEWS)
        assert c.truth["bstbi"]["mean"] == 0.0


def test_benign_findings_are_never_in_the_metastasis_mask() -> None:
    kinds = tuple(k for k in BENIGN_KINDS if k != "growth_plate")
    for i in range(3):
        c = generate_case(26, i, pattern="extensive", benign=kinds, noise=False)
        assert {b["kind"] for b in c.truth["benign"]} >= set(kinds)
        for b in c.truth["benign"]:
            for v in VIEWS:
                r, col = (round(x) for x in b["centre_px"][v])
                if 0 <= r < c.masks[v].shape[0] and 0 <= col < c.masks[v].shape[1]:
                    assert c.masks[v][r, col] != LABEL_METASTASIS, (b["kind"], b["site"], v)


def test_growth_plates_in_adolescents_only() -> None:
    young = generate_case(27, 0, age=13, primary="bone", metastasis=False)
    old = generate_case(27, 1, age=60, metastasis=False)
    assert sum(b["kind"] == "growth_plate" for b in young.truth["benign"]) >= 10
    assert not any(b["kind"] == "growth_plate" for b in old.truth["benign"])
    assert all(not (young.masks[v] == LABEL_METASTASIS).any() for v in VIEWS)


def test_superscan_fades_kidneys_and_bladder() -> None:
    normal = generate_case(28, 0, pattern="multiple")
    superscan = generate_case(28, 0, pattern="superscan")
    assert superscan.truth["pattern"] == "superscan"
    assert len(superscan.truth["lesions"]) >= 45
    assert (
        superscan.truth["kidneys"]["activity_per_mm"] < normal.truth["kidneys"]["activity_per_mm"]
    )
    assert superscan.truth["bstbi"]["mean"] > normal.truth["bstbi"]["mean"]


def test_lesion_truth_is_within_the_documented_ranges() -> None:
    c = generate_case(29, 0, pattern="extensive")
    for les in c.truth["lesions"]:
        assert 2.0 <= les["size_mm"] <= 40.0
        assert 1.3 <= les["uptake_ratio"] <= 8.0
        assert les["region"] in {
            "skull", "mandible", "cervical_spine", "thoracic_spine", "lumbar_spine", "sacrum",
            "ribs", "sternum", "clavicle", "scapula", "humerus", "pelvis", "femur", "tibia",
        }  # fmt: skip
    assert len({les["id"] for les in c.truth["lesions"]}) == len(c.truth["lesions"])
