"""The BSTBI trajectory figure: bands per treatment, PCWG3 markers, hover text."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.burden.charts import (
    AGENT_COLOURS,
    OTHER_AGENT_COLOUR,
    PCWG3_MARKERS,
    agent_colour,
    band_range,
    canonical_agent,
    hover_text,
    trajectory_figure,
)
from core.burden.patient_record import StudyPoint, Treatment
from core.burden.pcwg3 import FLAG_CONFIRMED, FLAG_NONE, FLAG_PENDING

D0 = dt.date(2024, 1, 10)
TODAY = dt.date(2025, 6, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def studies() -> list[StudyPoint]:
    """Baseline, an early scan with 2 new lesions, its confirmation 8 weeks later."""
    return [
        StudyPoint(1, day(0), "ok", 0.10, hotspots=3, in_followup=True),
        StudyPoint(
            2,
            day(60),
            "ok",
            0.15,
            hotspots=5,
            in_followup=True,
            new_vs_baseline=2,
            new_vs_previous=2,
            bstbi_change_baseline=0.05,
            bstbi_change_previous=0.05,
            pcwg3=FLAG_PENDING,
            warnings=("injection-to-scan delays differ by 1.5 h",),
        ),
        StudyPoint(
            3,
            day(120),
            "ok",
            0.25,
            hotspots=8,
            in_followup=True,
            new_vs_baseline=4,
            new_vs_previous=2,
            bstbi_change_baseline=0.15,
            bstbi_change_previous=0.10,
            pcwg3=FLAG_CONFIRMED,
        ),
    ]


def shapes(fig) -> list:  # type: ignore[no-untyped-def]
    return [s for s in fig.layout.shapes if s.type == "rect"]


def test_one_band_per_treatment_spanning_its_dates() -> None:
    treatments = [
        Treatment("zoledronic acid", day(10), day(40)),
        Treatment("androgen deprivation", day(5)),  # ongoing: runs to the last study
    ]
    fig = trajectory_figure(studies(), treatments, today=TODAY)
    bands = shapes(fig)
    assert len(bands) == 2
    assert (bands[0].x0, bands[0].x1) == (day(10).isoformat(), day(40).isoformat())
    assert (bands[1].x0, bands[1].x1) == (day(5).isoformat(), day(120).isoformat())
    assert bands[0].fillcolor == AGENT_COLOURS["zoledronic acid"]
    assert bands[1].fillcolor == AGENT_COLOURS["androgen deprivation"]
    assert bands[0].yref == "paper" and (bands[0].y0, bands[0].y1) == (0, 1)


def test_no_treatment_no_band() -> None:
    assert shapes(trajectory_figure(studies(), [], today=TODAY)) == []


def test_an_ongoing_treatment_after_the_last_study_runs_to_today() -> None:
    t = Treatment("radium-223", day(200))
    assert band_range(t, studies(), today=TODAY) == (day(200), TODAY)


def test_a_one_day_treatment_still_has_a_band() -> None:
    t = Treatment("zoledronic acid", day(30), day(30))
    assert band_range(t, studies(), today=TODAY) == (day(30), day(31))


def test_one_legend_entry_per_agent() -> None:
    treatments = [
        Treatment("zoledronic acid", day(0), day(20)),
        Treatment("Zometa", day(60), day(80)),
    ]
    bands = shapes(trajectory_figure(studies(), treatments, today=TODAY))
    assert [b.showlegend for b in bands] == [True, False]
    assert bands[0].fillcolor == bands[1].fillcolor == AGENT_COLOURS["zoledronic acid"]


def test_agent_colours_are_consistent_and_others_share_one() -> None:
    assert agent_colour("  Zoledronic   ACID ") == AGENT_COLOURS["zoledronic acid"]
    assert agent_colour("Xofigo") == AGENT_COLOURS["radium-223"]
    assert agent_colour("denosumab") == agent_colour("enzalutamide") == OTHER_AGENT_COLOUR
    assert len(set(AGENT_COLOURS.values()) | {OTHER_AGENT_COLOUR}) == len(AGENT_COLOURS) + 1
    with pytest.raises(ValueError, match="agent"):
        canonical_agent("   ")


def test_markers_sit_on_the_flagged_studies() -> None:
    fig = trajectory_figure(studies(), today=TODAY)
    by_name = {t.name: t for t in fig.data}
    pending = by_name[PCWG3_MARKERS[FLAG_PENDING][0]]
    confirmed = by_name[PCWG3_MARKERS[FLAG_CONFIRMED][0]]
    assert list(pending.x) == [day(60).isoformat()] and list(pending.y) == [0.15]
    assert list(confirmed.x) == [day(120).isoformat()] and list(confirmed.y) == [0.25]
    assert PCWG3_MARKERS[FLAG_PENDING][0] != PCWG3_MARKERS[FLAG_CONFIRMED][0]


def test_no_marker_without_a_flag() -> None:
    points = [StudyPoint(1, day(0), "ok", 0.1, in_followup=True)]
    points.append(StudyPoint(2, day(90), "ok", 0.1, in_followup=True, pcwg3=FLAG_NONE))
    fig = trajectory_figure(points)
    assert [t.name for t in fig.data] == ["BSTBI"]


def test_hover_text_names_date_bstbi_hotspots_and_new_lesions() -> None:
    fig = trajectory_figure(studies(), today=TODAY)
    line = next(t for t in fig.data if t.name == "BSTBI")
    assert list(line.x) == [day(n).isoformat() for n in (0, 60, 120)]
    text = line.text[1]
    assert "2024-03-10" in text
    assert "BSTBI 0.150" in text
    assert "Hotspots 5" in text
    assert "New lesions 2 vs baseline, 2 vs previous" in text
    assert "+0.050 vs baseline" in text
    assert "PCWG3: progression pending confirmation" in text
    assert "delays differ by 1.5 h" in text
    assert "Baseline of follow-up" in line.text[0]
    assert line.hovertemplate == "%{text}<extra></extra>"


def test_unreliable_studies_are_crosses_on_the_axis_not_on_the_line() -> None:
    points = [
        *studies()[:2],
        StudyPoint(9, day(90), "only noise: no body in the field", None, hotspots=None),
        StudyPoint(10, None, "ok", 0.3),  # no date: cannot be placed in time
    ]
    fig = trajectory_figure(points, today=TODAY)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["BSTBI"].x) == [day(0).isoformat(), day(60).isoformat()]
    crosses = by_name["No reliable BSTBI"]
    assert list(crosses.x) == [day(90).isoformat()] and list(crosses.y) == [0.0]
    assert "not diagnostic: only noise" in crosses.text[0]
    assert "BSTBI not reliable" in hover_text(points[2])


def test_title_and_axis_units() -> None:
    fig = trajectory_figure(studies(), title="BSTBI over time: Demo 001")
    assert fig.layout.title.text == "BSTBI over time: Demo 001"
    assert fig.layout.xaxis.title.text == "Study date"
    assert "0-1" in fig.layout.yaxis.title.text
    assert fig.layout.yaxis.range[1] >= 0.25


@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.one_of(st.none(), st.integers(0, 200))),
        max_size=6,
    )
)
def test_every_band_lies_within_its_treatment_or_up_to_the_axis_end(
    spans: list[tuple[int, int | None]],
) -> None:
    treatments = [
        Treatment("chemotherapy", day(s), None if n is None else day(s + n)) for s, n in spans
    ]
    bands = shapes(trajectory_figure(studies(), treatments, today=TODAY))
    assert len(bands) == len(treatments)
    for band, t in zip(bands, treatments, strict=True):
        x0, x1 = dt.date.fromisoformat(band.x0), dt.date.fromisoformat(band.x1)
        assert x0 == t.start < x1
        if t.end is not None:
            assert x1 == max(t.end, t.start + dt.timedelta(days=1))
        else:
            assert x1 in (day(120), TODAY)


def test_a_single_study_gets_a_readable_time_axis() -> None:
    from core.burden.charts import MIN_SPAN_DAYS

    only = StudyPoint(1, day(0), "ok", 0.1, hotspots=1, in_followup=True)
    fig = trajectory_figure([only])
    lo, hi = (dt.date.fromisoformat(x) for x in fig.layout.xaxis.range)
    assert (hi - lo).days == MIN_SPAN_DAYS and lo < day(0) < hi
