"""The phantom's face: bones that show, a gain of their own, and normal focal uptake."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.phantom import generate_case
from core.phantom.anatomy import build_body
from core.phantom.centres import TRAINING
from core.phantom.findings import FACIAL_KIND, FACIAL_PREVALENCE, sample_facial
from core.phantom.generate import draw_physiology
from core.phantom.skeleton_truth import label_of_part


def _bodies(age: int, n: int) -> list:
    return [build_body(np.random.default_rng([age, i]), "M", age) for i in range(n)]


def test_face_bones_are_their_own_region_and_count_as_skull() -> None:
    body = _bodies(60, 1)[0]
    face = {b.name for b in body.bones if b.region == "face"}
    assert {"maxilla", "alveolar_ridge", "nasal", "orbit_left", "orbit_right"} <= face
    assert label_of_part("face", None, "maxilla") == "skull"


def test_the_face_gain_is_drawn_apart_from_every_other_draw() -> None:
    body = _bodies(60, 1)[0]
    a = draw_physiology(np.random.default_rng(5), body)
    b = draw_physiology(np.random.default_rng(5), body)
    assert a == b
    # the face's gain spreads wider than any other region's (0.64-1.57)
    gains = [
        draw_physiology(np.random.default_rng(k), body).region_gain["face"] for k in range(300)
    ]
    assert np.exp(-0.5) - 1e-9 <= min(gains) and max(gains) <= np.exp(0.9) + 1e-9
    assert np.percentile(gains, 90) > 1.4 and np.percentile(gains, 10) < 0.75


def test_children_have_no_focal_facial_uptake() -> None:
    for i, body in enumerate(_bodies(12, 40)):
        assert sample_facial(np.random.default_rng(i), body) == []


def test_facial_uptake_grows_common_with_age() -> None:
    def share(age: int) -> float:
        bodies = _bodies(age, 400)
        return float(
            np.mean(
                [
                    bool(sample_facial(np.random.default_rng([age, i]), b))
                    for i, b in enumerate(bodies)
                ]
            )
        )

    young, old = share(20), share(70)
    lo, hi = FACIAL_PREVALENCE
    assert abs(young - lo) < 0.07 and abs(old - hi) < 0.07


def test_a_centres_benign_rate_scales_the_chance() -> None:
    bodies = _bodies(40, 300)
    quiet = replace(TRAINING, benign_rate=0.0)
    assert all(
        sample_facial(np.random.default_rng(i), b, centre=quiet) == [] for i, b in enumerate(bodies)
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), age=st.integers(16, 95))
def test_facial_spots_are_hot_spots_on_face_bones(seed: int, age: int) -> None:
    body = build_body(np.random.default_rng(seed), "F", age)
    chin = body.landmarks["chin"][1]
    for f in sample_facial(np.random.default_rng(seed + 1), body):
        assert f.kind == FACIAL_KIND
        assert f.region in ("face", "mandible")
        assert f.ratio is not None and 1.6 <= f.ratio <= 5.0
        assert 7.0 <= f.size_mm <= 22.0
        # between the orbits' floor and the chin, within the head's width
        assert chin * 0.5 < f.centre_mm[1] <= chin + 1.0
        assert abs(f.centre_mm[0]) < 0.035 * body.height_mm
        assert all(p.uptake > 0 for p in f.prims)


def test_facial_uptake_never_enters_the_metastasis_mask() -> None:
    seen = 0
    for index in range(6):
        case = generate_case(41, index, metastasis=True, age=70, pattern="multiple")
        for spot in (b for b in case.truth["benign"] if b["kind"] == FACIAL_KIND):
            seen += 1
            for view, (row, col) in spot["centre_px"].items():
                r, c = round(row), round(col)
                assert case.masks[view][r - 2 : r + 3, c - 2 : c + 3].max() != 1
    assert seen >= 3
