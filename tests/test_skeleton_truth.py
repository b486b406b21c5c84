from __future__ import annotations

import numpy as np
import pytest

import core.phantom.render as rd
from core.anatomy.regions import LABELS, N_LABELS, index_of
from core.config import COLS, ROWS
from core.phantom.generate import CaseScene, draw_scene, generate_case
from core.phantom.primitives import Blob, Primitive
from core.phantom.skeleton_truth import (
    _parts,
    case_label_maps,
    contributions,
    label_maps,
    label_names,
    label_of_part,
)

SEED, INDEX = 5, 2  # an abducted-arm patient: arms clear of the trunk


@pytest.fixture(scope="module")
def scene() -> CaseScene:
    return draw_scene(SEED, INDEX)


@pytest.fixture(scope="module")
def maps(scene: CaseScene) -> dict[str, np.ndarray]:
    return label_maps(scene.body, scene.physiology, scene.placement)


def _centre(b: Primitive) -> tuple[float, float]:
    if isinstance(b, Blob):
        return b.centre
    mid = b.at(0.5)
    return mid["x"], mid["y"]


def _mean_col(m: np.ndarray, name: str) -> float:
    cols = np.nonzero(m == index_of(name))[1]
    assert cols.size > 20, name
    return float(cols.mean())


def test_maps_are_uint8_views_with_every_region(maps: dict[str, np.ndarray]) -> None:
    for m in maps.values():
        assert m.shape == (ROWS, COLS) and m.dtype == np.uint8
        assert int(m.max()) < N_LABELS
    assert label_names(maps) == set(LABELS[1:])


def test_patient_left_is_viewer_right_on_ant_and_viewer_left_on_post(
    maps: dict[str, np.ndarray],
) -> None:
    for base in ("humerus", "pelvis", "femur", "foot", "clavicle", "ribs"):
        ant_l, ant_r = (
            _mean_col(maps["ANT"], f"{base}_left"),
            _mean_col(maps["ANT"], f"{base}_right"),
        )
        post_l, post_r = (_mean_col(maps["POST"], f"{base}_{s}") for s in ("left", "right"))
        assert ant_l > COLS / 2 > ant_r, base
        assert post_l < COLS / 2 < post_r, base


def test_scene_is_the_generated_case(scene: CaseScene) -> None:
    case = generate_case(SEED, INDEX, noise=False)
    assert case.case_id == scene.case_id
    assert case.truth["body"]["vertex_row"] == round(scene.placement.vertex_row, 2)
    assert case.truth["body"]["arm_position"] == scene.body.arm_position


def test_labels_sit_on_the_views_bone(scene: CaseScene, maps: dict[str, np.ndarray]) -> None:
    case = generate_case(SEED, INDEX, noise=False)
    for view in ("ANT", "POST"):
        counts = case.views[view]
        labelled = maps[view] > 0
        # the skeleton is where the counts are: far brighter inside the map than outside
        assert counts[labelled].mean() > 4 * counts[~labelled & (counts > 0)].mean()
        # bright pixels (not bladder or lesion) are almost all labelled
        bright = (counts > 0.3 * np.percentile(counts, 99)) & (case.masks[view] == 0)
        assert (labelled[bright]).mean() > 0.85


def test_every_bone_centre_is_labelled_with_a_bone(
    scene: CaseScene, maps: dict[str, np.ndarray]
) -> None:
    canvas = rd.Canvas(scene.placement)
    checked = 0
    for b in scene.body.bones:
        r, c = (round(v) for v in canvas.to_px(*_centre(b)))
        if not (0 <= r < ROWS and 0 <= c < COLS):
            continue
        checked += 1
        assert maps["ANT"][r, c] > 0, b.name
        assert maps["POST"][r, COLS - 1 - c] > 0, b.name
    assert checked > 100


def test_own_region_wins_at_the_limb_centres(scene: CaseScene, maps: dict[str, np.ndarray]) -> None:
    canvas = rd.Canvas(scene.placement)
    for bone, name in (
        ("humerus_left", "humerus_left"),
        ("humerus_right", "humerus_right"),
        ("femur_left", "femur_left"),
        ("tibia_right", "lower_leg_right"),
        ("patella_left", "knee_left"),
    ):
        r, c = (round(v) for v in canvas.to_px(*_centre(scene.body.bone(bone))))
        assert LABELS[maps["ANT"][r, c]] == name
        assert LABELS[maps["POST"][r, COLS - 1 - c]] == name


def test_views_mirror_each_other(maps: dict[str, np.ndarray]) -> None:
    ant, post = maps["ANT"], maps["POST"][:, ::-1]
    # the same pixels are bone on both views up to depth-dependent blur ...
    assert ((ant > 0) == (post > 0)).mean() > 0.96
    # ... and the same region where both are bone (front/back overlaps differ)
    both = (ant > 0) & (post > 0)
    assert (ant == post)[both].mean() > 0.9
    for name in ("skull", "pelvis_left", "femur_right", "humerus_left", "lower_leg_left"):
        a, p = ant == index_of(name), post == index_of(name)
        assert (a & p).sum() / (a | p).sum() > 0.6, name


def test_contributions_blur_like_the_renderer(scene: CaseScene) -> None:
    # the per-part crops must give exactly the renderer's whole-field blur
    c = contributions(scene.body, scene.physiology, scene.placement)
    canvas = rd.Canvas(scene.placement)
    for prim, gain in _parts(scene.body, scene.physiology)["humerus_left"]:
        rd.draw(canvas, [prim], gain=gain)
    ant, post = rd._blur_layers(canvas)
    np.testing.assert_allclose(c["humerus_left"][0], ant, atol=1e-9)
    np.testing.assert_allclose(c["humerus_left"][1], post[:, ::-1], atol=1e-9)


def test_case_label_maps_follow_forcing() -> None:
    a = case_label_maps(SEED, 3, arm_position="abdomen")
    scene = draw_scene(SEED, 3, arm_position="abdomen")
    b = label_maps(scene.body, scene.physiology, scene.placement)
    for v in a:
        np.testing.assert_array_equal(a[v], b[v])


def test_label_of_part() -> None:
    assert label_of_part("mandible", None, "mandible") == "skull"
    assert label_of_part("hand", "left", "hand1_left") == "forearm_left"
    assert label_of_part("tibia", "right", "knee_joint_right") == "knee_right"
    assert label_of_part("tibia", "right", "ankle_joint_right") == "lower_leg_right"
    assert label_of_part("fibula", "left", "fibula_left") == "lower_leg_left"
    with pytest.raises(ValueError):
        label_of_part("humerus", None, "humerus")
    with pytest.raises(ValueError):
        label_of_part("soft", "left", "kidney_left")
