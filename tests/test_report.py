"""The per-patient report: a self-contained HTML file and the studies CSV."""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.burden.charts import trajectory_figure
from core.burden.patient_record import (
    PatientInfo,
    PatientRecord,
    StudyPoint,
    Treatment,
    patient_info,
)
from core.burden.pcwg3 import FLAG_PENDING
from db.connection import open_db
from db.queries import patient_id_by_pseudonym, patient_overview
from workflow.patients import load_patient
from workflow.report import (
    CSV_COLUMNS,
    Picture,
    build_patient_report,
    patient_report_html,
    png_bytes,
    studies_csv,
)

GENERATED = dt.datetime(2025, 3, 4, 5, 6, 7)
STUDIES = (
    StudyPoint(11, dt.date(2024, 1, 10), "ok", 0.1, 3, 7.5, 0.9, 2.0, "a.dcm", in_followup=True),
    StudyPoint(12, dt.date(2024, 2, 1), "too few counts", None, None, None, 0.2, 2.0, "b.dcm"),
    StudyPoint(
        13,
        dt.date(2024, 3, 10),
        "ok",
        0.15,
        5,
        9.0,
        0.95,
        4.0,
        "c.dcm",
        in_followup=True,
        new_vs_baseline=2,
        new_vs_previous=2,
        bstbi_change_baseline=0.05,
        bstbi_change_previous=0.05,
        pcwg3=FLAG_PENDING,
        warnings=("delays differ by 2.0 h",),
    ),
)


def record(*, synthetic: bool = True) -> PatientRecord:
    info = PatientInfo(7, "Demo <007>", "M", 1950, "prostate", synthetic)
    treatments = (Treatment("zoledronic acid", dt.date(2024, 1, 20), None, "4 mg IV q4w"),)
    return PatientRecord(info, STUDIES, treatments, None, dt.date(2024, 1, 20))


def report(*, synthetic: bool = True, pictures: int = 2) -> str:
    rec = record(synthetic=synthetic)
    pics = [Picture(f"picture {i}", np.full((8, 6, 3), 40 * i, np.uint8)) for i in range(pictures)]
    fig = trajectory_figure(rec.studies, rec.treatments)
    return patient_report_html(rec, fig, pics, generated=GENERATED)


def test_report_names_the_patient_every_study_and_when_it_was_made() -> None:
    text = report()
    assert "Demo &lt;007&gt;" in text and "Demo <007>" not in text  # escaped
    for s in STUDIES:
        assert s.date is not None and s.date.isoformat() in text
    assert "Generated 2025-03-04 05:06:07" in text
    assert "zoledronic acid" in text and "ongoing" in text
    assert "delays differ by 2.0 h" in text


def test_report_flags_a_synthetic_patient_only() -> None:
    assert "Synthetic patient" in report(synthetic=True)
    assert "Synthetic patient" not in report(synthetic=False)


def test_one_embedded_png_per_picture() -> None:
    text = report(pictures=2)
    sources = re.findall(r'<img[^>]*src="([^"]+)"', text)
    assert len(sources) == 2
    for i, src in enumerate(sources):
        assert src.startswith("data:image/png;base64,")
        png = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert png.size == (6, 8)
        assert np.asarray(png)[0, 0, 0] == 40 * i
    assert "<img" not in report(pictures=0)


def test_report_needs_no_network() -> None:
    text = report()
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert not re.search(r"<link[^>]*\bhref=\"?https?:", text)
    assert "Plotly.newPlot" in text  # the plot itself
    assert len(text) > 1_000_000  # plotly.js inlined


def test_unreliable_burden_is_not_in_the_study_table() -> None:
    text = report()
    row = re.search(r'<tr class="unreliable">(.*?)</tr>', text)
    assert row is not None
    assert "not diagnostic: too few counts" in row.group(1)
    assert "2024-02-01" in row.group(1)
    assert '<td class="num">2.0</td>' in row.group(1)  # its delay stays
    # no BSTBI, changes, BSI, hotspots, area, new-lesion counts or flag
    assert len(re.findall(r"<td[^>]*></td>", row.group(1))) == 9


def test_notes_file_names_and_captions_are_escaped() -> None:
    attack = '<script>alert("x")</script>'
    rec = record()
    rec = dataclasses.replace(
        rec,
        studies=(dataclasses.replace(STUDIES[0], source_name=f"{attack}.dcm"), *STUDIES[1:]),
        treatments=(Treatment("agent <b>", dt.date(2024, 1, 20), None, None, f"note {attack}"),),
    )
    pics = [Picture(f"caption {attack}", np.zeros((4, 4, 3), np.uint8))]
    text = patient_report_html(
        rec, trajectory_figure(rec.studies, rec.treatments), pics, name=f"Jo {attack}"
    )
    assert attack not in text and "<b>" not in text
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert f"<td>{escaped}.dcm</td>" in text  # the file name
    assert f"<td>note {escaped}</td>" in text  # the treatment note
    assert f"<figcaption>caption {escaped}</figcaption>" in text
    assert f'alt="caption {escaped}"' in text
    assert f"name Jo {escaped}" in text
    assert "<td>agent &lt;b&gt;</td>" in text


def test_csv_has_one_row_per_study_with_its_figures() -> None:
    rows = list(csv.DictReader(io.StringIO(studies_csv(STUDIES))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [r["study_date"] for r in rows] == ["2024-01-10", "2024-02-01", "2024-03-10"]
    assert rows[0]["bstbi"] == "0.1" and rows[0]["new_vs_baseline"] == ""
    assert rows[1]["reliable"] == "False" and rows[1]["bstbi"] == rows[1]["hotspots"] == ""
    assert rows[1]["quality"] == "not diagnostic: too few counts"
    assert rows[2]["new_vs_baseline"] == "2" and rows[2]["pcwg3"] == FLAG_PENDING
    assert float(rows[2]["bstbi_change_baseline"]) == 0.05
    assert studies_csv(()).strip() == ",".join(CSV_COLUMNS)


def test_png_bytes_refuses_other_arrays() -> None:
    with pytest.raises(ValueError, match="rgb"):
        png_bytes(np.zeros((4, 4, 3), np.float32))


def test_report_of_a_stored_patient_shows_baseline_and_latest(truth_store: Path) -> None:
    with open_db(truth_store) as db:
        pid = patient_id_by_pseudonym(db, "Demo 002")
        row = next(r for r in patient_overview(db) if r["id"] == pid)
        rec = load_patient(db, patient_info(row))
        text = build_patient_report(db, rec, trajectory_figure(rec.studies, rec.treatments))
    assert len(rec.studies) == 5
    for s in rec.studies:
        assert s.date is not None and s.date.isoformat() in text
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", text)
    assert len(captions) == 2
    assert captions[0].startswith("Baseline ") and captions[1].startswith("Latest ")
    assert "new lesion(s) against baseline ringed" in captions[1]
    src = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', text)[1]
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(src))))
    assert png.shape == (1024, 2 * 256 + 8, 3)
    # the latest study's new lesions are ringed in yellow (and it has metastasis in red)
    assert ((png == (250, 200, 0)).all(axis=2)).any()
    assert ((png == (220, 30, 30)).all(axis=2)).any()
