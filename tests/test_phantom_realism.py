"""The phantom varies like a clinic's patients: benign findings, per-patient uptake."""

from __future__ import annotations

import numpy as np

from core.phantom import generate_case, generate_series
from core.phantom.anatomy import build_body
from core.phantom.findings import FACIAL_KIND, lesion_shape, make_lesion, sample_site


def test_benign_findings_are_the_rule_in_older_negative_patients() -> None:
    # real negative scans: a median of 2 boxed benign findings (p90 6); physicians do not
    # box the face's normal uptake (skull: 2 % of benign boxes), so it is not counted
    counts = [
        sum(
            b["kind"] != FACIAL_KIND
            for b in generate_case(31, i, metastasis=False, age=66).truth["benign"]
        )
        for i in range(30)
    ]
    assert np.mean([c >= 1 for c in counts]) >= 0.8
    assert 2 <= np.median(counts) <= 4


def test_regional_and_joint_uptake_differ_between_patients() -> None:
    a = generate_case(32, 0).truth["uptake_factors"]
    b = generate_case(32, 1).truth["uptake_factors"]
    assert set(a["regions"]) == set(b["regions"]) and "pelvis" in a["regions"]
    assert set(a["joints"]) == {
        "si_joint",
        "shoulder_joint",
        "hip_joint",
        "knee_joint",
        "ankle_joint",
    }
    assert a["regions"] != b["regions"] and a["joints"] != b["joints"]
    factors = [
        f
        for t in (a, b)
        for r, f in (*t["regions"].items(), *t["joints"].items())
        if r != "face"  # teeth and sinuses: the face varies most (generate.FACE_SPREAD)
    ]
    assert all(0.4 <= f <= 1.6 for f in factors)
    assert all(0.6 <= t["regions"]["face"] <= 2.5 for t in (a, b))


def test_a_series_keeps_the_patients_uptake_and_camera() -> None:
    series = generate_series(33, 2, metastasis=True)
    assert len(series) >= 2
    first = series[0].truth
    for case in series[1:]:
        assert case.truth["uptake_factors"] == first["uptake_factors"]
        assert case.truth["acquisition"]["blur_scale"] == first["acquisition"]["blur_scale"]


def test_metastases_range_from_sharp_plateaus_to_ill_defined_foci() -> None:
    rng = np.random.default_rng(4)
    body = build_body(rng, "M", 60)
    x = np.linspace(-30.0, 30.0, 121)
    plateau_share = []
    for i in range(40):
        les = make_lesion(rng, sample_site(rng, body, "pelvis"), f"L{i}", size_mm=30.0)
        x_grid, y_grid = np.meshgrid(x + les.centre_mm[0], x + les.centre_mm[1])
        shape = lesion_shape(les, x_grid, y_grid)
        inside = shape > 0.05
        plateau_share.append(float((shape[inside] > 0.8).mean()))
    # a flat-topped lesion is mostly plateau, an ill-defined one mostly slope
    # (a (1 - u^2)^0.3 profile is above 0.8 over half its ellipse, a ^1.5 one over 14 %)
    assert min(plateau_share) < 0.25 and max(plateau_share) > 0.4
