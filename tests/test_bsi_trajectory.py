"""The BSI beside the BSTBI: the trajectory's metric, its steps against the LSC, the report."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import re

import numpy as np
import pytest
from PIL import Image

from core.anatomy.regions import index_of
from core.burden.body_map import body_map_pair
from core.burden.charts import (
    MODEL_CHANGE_MARKER,
    NO_SKELETON,
    STEP_BEYOND_MARKERS,
    STEP_WITHIN_MARKER,
    bsi_region_rows,
    hover_text,
    metric_values,
    step_changes,
    trajectory_figure,
)
from core.burden.patient_record import PatientInfo, PatientRecord, StudyPoint, Treatment
from core.burden.repeatability import REFERENCE_COUNTS_PER_VIEW, least_significant_change
from workflow.report import (
    RegionTable,
    bsi_by_study,
    patient_report_html,
    studies_csv,
)

D0 = dt.date(2024, 1, 10)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


STUDIES = (
    StudyPoint(1, day(0), "ok", 0.10, hotspots=3, in_followup=True),
    StudyPoint(2, day(60), "ok", 0.15, hotspots=5, in_followup=True),
    StudyPoint(3, day(90), "too few counts", None),
    StudyPoint(4, day(120), "ok", 0.12, hotspots=4, in_followup=True),
    StudyPoint(5, day(180), "ok", 0.20, hotspots=9, in_followup=True),
)
#: Study 4 passed the gate but had no skeleton map; study 3 failed the gate.
BSI = {1: 1.0, 2: 3.5, 3: 2.0, 4: None, 5: 3.5}


def test_the_bsi_of_a_study_is_kept_only_where_its_burden_is_reliable() -> None:
    values = metric_values(STUDIES, "bsi", BSI)
    assert values == {1: 1.0, 2: 3.5, 3: None, 4: None, 5: 3.5}
    assert metric_values(STUDIES, "bstbi")[2] == 0.15
    with pytest.raises(ValueError, match="metric"):
        metric_values(STUDIES, "psa")


def test_the_bsi_chart_joins_the_studies_with_a_bsi_and_crosses_the_others() -> None:
    treatment = Treatment("radium-223", day(30), day(100))
    fig = trajectory_figure(STUDIES, [treatment], metric_key="bsi", values=BSI, title="BSI")
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["BSI"].x) == [day(n).isoformat() for n in (0, 60, 180)]
    assert list(by_name["BSI"].y) == [1.0, 3.5, 3.5]
    crosses = by_name["No BSI"]
    assert list(crosses.x) == [day(90).isoformat(), day(120).isoformat()]
    assert "BSI not reported (not diagnostic: too few counts)" in crosses.text[0]
    assert f"BSI not reported ({NO_SKELETON})" in crosses.text[1]
    assert "BSI 3.50 %" in by_name["BSI"].text[1] and "BSTBI 0.150" in by_name["BSI"].text[1]
    assert "%" in fig.layout.yaxis.title.text and fig.layout.yaxis.range[1] >= 3.5
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 1  # the band stays
    assert "BSTBI" not in by_name  # one metric at a time


def test_model_changes_are_ringed_on_the_bsi_line_too() -> None:
    versions = {1: "v1", 2: "v1", 4: "v1", 5: "v2"}
    fig = trajectory_figure(STUDIES, metric_key="bsi", values=BSI, model_versions=versions)
    ring = next(t for t in fig.data if t.name == MODEL_CHANGE_MARKER[0])
    assert list(ring.x) == [day(180).isoformat()] and list(ring.y) == [3.5]


def test_each_step_is_judged_against_the_least_significant_change() -> None:
    limit = least_significant_change("bsi", REFERENCE_COUNTS_PER_VIEW)
    steps = step_changes(STUDIES, "bsi", BSI)
    assert [(s.before.study_id, s.after.study_id) for s in steps] == [(1, 2), (2, 5)]
    rise, flat = steps
    assert rise.verdict.delta == pytest.approx(2.5) and rise.verdict.limit == limit
    assert rise.verdict.beyond == (limit < 2.5) and not flat.verdict.beyond
    side = "beyond" if rise.verdict.beyond else "within"
    assert rise.words() == f"BSI +2.50 %, {side} the least significant change {limit:.2f} %"
    assert rise.caption().startswith("2024-01-10 to 2024-03-10: BSI +2.50 %")
    # the BSTBI line has its own steps, over the reliable studies
    assert len(step_changes(STUDIES, "bstbi")) == 3


def test_the_noisier_study_sets_the_limit() -> None:
    counts = {1: 2.0e6, 2: 0.6e6, 5: 4.0e6}
    rise, flat = step_changes(STUDIES, "bsi", BSI, counts)
    assert rise.verdict.limit == least_significant_change("bsi", 0.6e6)
    assert flat.verdict.limit == least_significant_change("bsi", 0.6e6)


def test_the_chart_marks_each_step_half_way_along_it() -> None:
    plain = trajectory_figure(STUDIES, metric_key="bsi", values=BSI)
    assert not any("least significant" in str(t.name) for t in plain.data)
    fig = trajectory_figure(STUDIES, metric_key="bsi", values=BSI, mark_changes=True)
    marks = [t for t in fig.data if "least significant" in str(t.name)]
    assert sum(len(t.x) for t in marks) == 2
    steps = step_changes(STUDIES, "bsi", BSI)
    names = {
        STEP_BEYOND_MARKERS[s.verdict.delta > 0][0] if s.verdict.beyond else STEP_WITHIN_MARKER[0]
        for s in steps
    }
    assert {t.name for t in marks} == names
    xs = [x for t in marks for x in t.x]
    assert day(30).isoformat() in xs  # half-way between day 0 and day 60
    texts = [x for t in marks for x in t.text]
    assert any("BSI +2.50 %" in x for x in texts)


def test_hover_text_of_the_bstbi_chart_is_unchanged_by_the_bsi() -> None:
    text = hover_text(STUDIES[1])
    assert "BSI" not in text.replace("BSTBI", "") and "BSTBI 0.150" in text


def record() -> PatientRecord:
    info = PatientInfo(7, "Demo 007", "M", 1950, "prostate", True)
    return PatientRecord(info, STUDIES, (), None, None)


def test_the_csv_and_the_report_carry_the_bsi() -> None:
    rows = list(csv.DictReader(io.StringIO(studies_csv(STUDIES, bsi=BSI))))
    assert [r["bsi"] for r in rows] == ["1.0", "3.5", "", "", "3.5"]  # study 3 unreliable
    regions = RegionTable(
        STUDIES[4],
        3.5,
        tuple(bsi_region_rows({"ribs_left": {"involvement": 0.4, "percent": 0.879}})),
    )
    fig = trajectory_figure(STUDIES, metric_key="bsi", values=BSI)
    text = patient_report_html(record(), fig, bsi=BSI, regions=regions)
    assert "<th>BSI (%)</th>" in text
    assert '<td class="num">3.50</td>' in text
    assert "BSI 1.00 % of the skeleton at the first study with one (2024-01-10)" in text
    assert "2024-07-08: BSI 3.50 % of the skeleton." in text
    table = re.search(r"Bone Scan Index by region</h2>(.*?)</table>", text, re.S)
    assert table is not None
    assert "<td>ribs</td><td>left</td>" in table.group(1)
    assert '<td class="num">40.0</td><td class="num">0.88</td>' in table.group(1)
    without = patient_report_html(record(), fig)
    assert "No study has a Bone Scan Index" in without
    # no stored skeleton map: no body map picture
    assert "Body map" not in text


def test_the_report_draws_the_body_map_of_the_regions_study() -> None:
    labels = np.zeros((1024, 256), np.uint8)
    labels[300:340, 150:170] = index_of("ribs_left")
    picture = body_map_pair({"ANT": labels, "POST": labels}, {"ribs_left": 0.4})
    regions = RegionTable(
        STUDIES[4],
        3.5,
        tuple(bsi_region_rows({"ribs_left": {"involvement": 0.4, "percent": 0.879}})),
        picture,
    )
    fig = trajectory_figure(STUDIES, metric_key="bsi", values=BSI)
    text = patient_report_html(record(), fig, bsi=BSI, regions=regions)
    found = re.search(r'<img alt="Body map[^"]*" src="data:image/png;base64,([^"]+)"', text)
    assert found is not None
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(found.group(1)))).convert("RGB"))
    np.testing.assert_array_equal(decoded, picture)


def test_the_bsi_of_the_series_rows() -> None:
    assert bsi_by_study([{"study_id": 3, "bsi": 1.5}, {"study_id": 4}]) == {3: 1.5, 4: None}
