"""Longitudinal phantom series: persistent lesion ids, increasing dates, treatments, courses."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from core.phantom import generate_series
from core.phantom.anatomy import build_body
from core.phantom.cohort import COURSES, LesionState, evolve
from core.phantom.findings import sample_lesions

STATUSES = {"baseline", "new", "stable", "responding", "progressing", "flare", "resolved"}


@pytest.mark.parametrize("index", range(4))
def test_series_keeps_ids_and_dates_increase(index: int) -> None:
    series = generate_series(31, index, metastasis=True)
    assert 2 <= len(series) <= 6
    dates = [c.scan_date for c in series]
    assert all(b > a for a, b in itertools.pairwise(dates))
    assert len({c.patient.patient_id for c in series}) == 1
    assert [c.patient.age for c in series] == sorted(c.patient.age for c in series)
    seen: list[str] = []
    for k, c in enumerate(series):
        ids = [les["id"] for les in c.truth["lesions"]]
        assert ids[: len(seen)] == seen  # earlier lesions keep their ids and order
        seen = ids
        info = c.truth["series"]
        assert info["scan_number"] == k + 1 and info["n_scans"] == len(series)
        assert info["course"] in COURSES["metastasis"]
        assert info["treatments"] and all(
            {"agent", "start", "end", "dose"} <= set(t) for t in info["treatments"]
        )
        assert {les["status"] for les in c.truth["lesions"]} <= STATUSES
        assert 1.0 <= c.injection_delay_h <= 5.0
    assert all(les["status"] == "baseline" for les in series[0].truth["lesions"])


def test_treatments_follow_the_primary() -> None:
    agents = {}
    for primary in ("prostate", "breast", "lung"):
        s = generate_series(32, 0, n_scans=2, metastasis=True, primary=primary)
        agents[primary] = {t["agent"] for t in s[0].truth["series"]["treatments"]}
        start = dt.date.fromisoformat(s[0].truth["series"]["treatments"][0]["start"])
        assert start > s[0].scan_date  # baseline scan before treatment
    assert "androgen_deprivation" in agents["prostate"]
    assert "zoledronic_acid" in agents["breast"]
    assert "chemotherapy" in agents["lung"]


@pytest.mark.parametrize("course", ["response", "stable", "progression", "flare"])
def test_courses_change_uptake_as_described(course: str) -> None:
    rng = np.random.default_rng(5)
    body = build_body(rng, "M", 70)
    states = [LesionState(les, "baseline") for les in sample_lesions(rng, body, "multiple", [])]
    before = {st.lesion.lesion_id: st.lesion.uptake_ratio for st in states}
    after, next_id = evolve(rng, body, [], states, course, 1, 8.0, 60, len(states) + 1)
    old = [st for st in after if st.lesion.lesion_id in before]
    new = [st for st in after if st.status == "new"]
    change = np.mean([st.lesion.uptake_ratio - before[st.lesion.lesion_id] for st in old])
    assert [st.lesion.lesion_id for st in old] == list(before)
    assert next_id == len(states) + 1 + len(new)
    if course == "response":
        assert change < 0 and not new
        assert {st.status for st in old} <= {"responding", "resolved"}
    elif course == "stable":
        assert abs(change) < 0.3 and not new
    elif course == "progression":
        assert change > 0 and new
    else:  # an early scan shows the flare: brighter, and faint lesions newly seen
        assert change > 0 and new
        assert {st.status for st in old} == {"flare"}
