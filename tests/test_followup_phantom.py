"""Follow-up on generated longitudinal phantom series with known truth.

StudyFindings are built from the TRUE masks' 8-connected components and the count
images; the new-lesion counts of :func:`core.burden.pcwg3.followup` are checked against the
truth: lesions with status ``"new"`` that show (>= 1 mask pixel on a view) in a scan.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from core.burden.lesion_matching import lesion_points
from core.burden.pcwg3 import StudyFindings, followup
from core.config import VIEWS
from core.phantom import generate_series
from core.phantom.generate import PhantomCase

SEED, N_SERIES = 5, 10


def visible(les: dict[str, Any]) -> bool:
    return any(v > 0 for v in les["mask_pixels"].values())


def findings(case: PhantomCase) -> StudyFindings:
    lesions = tuple(p for v in VIEWS for p in lesion_points(case.masks[v], v))
    return StudyFindings(
        case.scan_date,
        case.injection_delay_h,
        case.truth["bstbi"]["mean"],
        lesions,
        case.views,
        case.case_id,
    )


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """One row per follow-up scan: truth and measured counts, offsets."""
    out = []
    for i in range(N_SERIES):
        series = generate_series(SEED, i, metastasis=True)
        info = series[0].truth["series"]
        start = min(dt.date.fromisoformat(t["start"]) for t in info["treatments"])
        fu = followup([findings(c) for c in series], treatment_start=start)
        base_ids = {les["id"] for les in series[0].truth["lesions"]}
        for k, (case, res) in enumerate(zip(series[1:], fu.studies, strict=True), start=1):
            les = case.truth["lesions"]
            prev_body, body = series[k - 1].truth["body"], case.truth["body"]
            out.append(
                {
                    "course": info["course"],
                    "true_prev": sum(x["status"] == "new" and visible(x) for x in les),
                    "true_base": sum(x["id"] not in base_ids and visible(x) for x in les),
                    "prev": res.vs_previous.n_new,
                    "base": res.vs_baseline.n_new,
                    "true_shift": (
                        body["vertex_row"] - prev_body["vertex_row"],
                        body["centre_col"] - prev_body["centre_col"],
                    ),
                    "offset": res.vs_previous.offsets,
                    "delay_diff": abs(case.injection_delay_h - series[k - 1].injection_delay_h),
                    "warned": any("differ" in w for w in res.warnings),
                    "bstbi_change": res.vs_baseline.bstbi_change,
                    "true_bstbi_change": case.truth["bstbi"]["mean"]
                    - series[0].truth["bstbi"]["mean"],
                }
            )
    return out


def test_registration_recovers_the_placement(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        dr, dc = r["true_shift"]
        ant, post = r["offset"]["ANT"], r["offset"]["POST"]
        assert abs(ant.d_row - dr) <= 2 and abs(ant.d_col - dc) <= 2
        assert abs(post.d_row - dr) <= 2 and abs(post.d_col + dc) <= 2  # mirrored


def test_new_lesion_counts_agree_with_truth(rows: list[dict[str, Any]]) -> None:
    n = len(rows)
    exact_prev = sum(r["prev"] == r["true_prev"] for r in rows) / n
    exact_base = sum(r["base"] == r["true_base"] for r in rows) / n
    # the decision PCWG3 rests on: >= 2 new lesions or not
    pcwg_prev = sum((r["prev"] >= 2) == (r["true_prev"] >= 2) for r in rows) / n
    pcwg_base = sum((r["base"] >= 2) == (r["true_base"] >= 2) for r in rows) / n
    within_one = sum(abs(r["prev"] - r["true_prev"]) <= 1 for r in rows) / n
    print(
        f"\n{n} scans: exact vs previous {exact_prev:.2f}, vs baseline {exact_base:.2f}; "
        f">=2 decision {pcwg_prev:.2f} / {pcwg_base:.2f}; within 1 {within_one:.2f}"
    )
    # measured 0.64 / 0.80 / 0.92 / 1.00 / 0.92 on seed 5 (25 scans) with the first
    # phantom; 0.68 / 0.64 / 0.88 / 0.92 / 1.00 with issue 13's (fainter, ill-defined
    # metastases whose visibility changes with the count level): the exact count
    # against the baseline is harder, the >= 2 decision holds
    assert exact_prev >= 0.6 and exact_base >= 0.6
    assert pcwg_prev >= 0.85 and pcwg_base >= 0.9
    assert within_one >= 0.85


def test_no_progression_flag_without_new_lesions(rows: list[dict[str, Any]]) -> None:
    quiet = [r for r in rows if r["course"] in ("response", "stable")]
    assert quiet and all(r["prev"] <= 1 and r["base"] <= 1 for r in quiet)


def test_delay_warning_and_bstbi_change_follow_the_truth(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["delay_diff"] > 1.0:  # vs previous; a warning may also come from the baseline
            assert r["warned"]
        assert r["bstbi_change"] == pytest.approx(r["true_bstbi_change"], abs=1e-9)
    assert any(not r["warned"] for r in rows) and any(r["warned"] for r in rows)
    assert np.isfinite([r["bstbi_change"] for r in rows]).all()
