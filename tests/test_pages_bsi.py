"""The BSI on the pages: the patient trajectory's switch, review, cohort and upload."""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from db.queries import patient_id_by_pseudonym, patient_time_series
from tests.bsi_fixtures import add_bsi_analyses
from tests.conftest import APP
from ui.common import Keys

PAGE = str(Path(APP).parent / "app_pages" / "patient.py")
PATIENT = "Demo 001"


@pytest.fixture
def bsi_store(truth_store: Path) -> Path:
    """The truth store with Demo 001's studies analysed again with skeleton maps."""
    add_bsi_analyses(truth_store, 0)
    return truth_store


def _open(db_file: Path) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    with open_db(db_file) as db:
        at.session_state[Keys.PATIENT_ID] = patient_id_by_pseudonym(db, PATIENT)
    at.run()
    assert not at.exception, at.exception
    return at


def _figure(at: AppTest) -> dict[str, Any]:
    (chart,) = at.get("plotly_chart")
    return json.loads(chart.proto.spec)


def _stored_bsi(db_file: Path) -> list[float]:
    with open_db(db_file) as db:
        pid = patient_id_by_pseudonym(db, PATIENT)
        assert pid is not None
        return [float(r["bsi"]) for r in patient_time_series(db, pid)]


def test_switching_to_bsi_shows_the_bsi_and_back(bsi_store: Path) -> None:
    at = _open(bsi_store)
    switch = at.segmented_control(key=Keys.PATIENT_METRIC)
    assert switch.value == "bstbi" and switch.options == ["BSTBI", "BSI"]
    assert "BSTBI" in {t["name"] for t in _figure(at)["data"]}

    switch.set_value("bsi").run()
    assert not at.exception, at.exception
    fig = _figure(at)
    traces = {t["name"]: t for t in fig["data"]}
    assert "BSTBI" not in traces
    assert traces["BSI"]["y"] == pytest.approx(_stored_bsi(bsi_store))
    assert fig["layout"]["title"]["text"] == f"BSI over time: {PATIENT}"
    assert "%" in fig["layout"]["yaxis"]["title"]["text"]
    labels = [m.label for m in at.metric]
    assert "Baseline BSI" in labels and "Latest BSI" in labels
    (steps,) = [d.value for d in at.dataframe if "change" in d.value.columns]
    (words,) = steps["change"].tolist()
    assert words.startswith("BSI ") and "least significant change" in words
    assert any(t["name"].endswith("least significant change") for t in fig["data"])
    studies = at.dataframe[-1].value
    assert studies["bsi"].tolist() == pytest.approx(_stored_bsi(bsi_store))

    at.segmented_control(key=Keys.PATIENT_METRIC).set_value("bstbi").run()
    assert not at.exception, at.exception
    traces = {t["name"]: t for t in _figure(at)["data"]}
    assert "BSTBI" in traces and "BSI" not in traces
    assert "Latest BSTBI" in [m.label for m in at.metric]


def test_a_patient_without_a_bsi_says_why_under_bsi(truth_store: Path) -> None:
    at = _open(truth_store)
    at.segmented_control(key=Keys.PATIENT_METRIC).set_value("bsi").run()
    assert not at.exception, at.exception
    traces = {t["name"]: t for t in _figure(at)["data"]}
    assert "No BSI" in traces and not traces["BSI"]["x"]
    assert any("No study of this patient has a BSI" in i.value for i in at.info)


REVIEW = str(Path(APP).parent / "app_pages" / "review.py")
COHORT = str(Path(APP).parent / "app_pages" / "cohort.py")
UPLOAD = str(Path(APP).parent / "app_pages" / "upload.py")


def test_the_review_shows_the_bsi_before_and_after_a_change(bsi_store: Path) -> None:
    with open_db(bsi_store) as db:
        pid = patient_id_by_pseudonym(db, PATIENT)
        assert pid is not None
        study_id = int(patient_time_series(db, pid)[-1]["study_id"])
    at = AppTest.from_file(REVIEW, default_timeout=120)
    at.session_state[Keys.STUDY_ID] = study_id
    at.run()
    assert not at.exception, at.exception
    shown = next(m for m in at.metric if m.label == "BSI, reviewed")
    assert str(shown.value).endswith(" %")
    key = at.data_editor[0].key
    assert key is not None
    at.session_state[key] = {
        "edited_rows": {0: {"include": False}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception, at.exception
    (notice,) = [s.value for s in at.success]
    assert "BSTBI " in notice and ", BSI " in notice and " % -> " in notice


def _recording_downloads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Keep the data of every download button the page makes, in order."""
    exports: list[Any] = []
    original = DeltaGenerator.download_button

    def recording(self: DeltaGenerator, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        exports.append(data)
        return original(self, label, data, *args, **kwargs)

    # st.download_button is the main area's bound method; a column's is the class's
    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    monkeypatch.setattr(st, "download_button", functools.partial(recording, st._main))
    return exports


def test_the_cohort_has_a_bsi_column_beside_the_bstbi(
    bsi_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports = _recording_downloads(monkeypatch)
    at = AppTest.from_file(COHORT, default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("pseudonym")
    assert table.loc[PATIENT, "bsi"] == pytest.approx(_stored_bsi(bsi_store)[-1])
    assert table["bsi"].isna().sum() == len(table) - 1  # the others have no skeleton map
    exported = pd.read_csv(io.BytesIO(exports[-1])).set_index("Patient")
    columns = list(exported.columns)
    assert columns.index("Latest BSI (%)") == columns.index("Latest BSTBI") + 1
    assert exported.loc[PATIENT, "Latest BSI (%)"] == pytest.approx(_stored_bsi(bsi_store)[-1])


def test_the_patient_csv_holds_the_bsi(bsi_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exports = _recording_downloads(monkeypatch)
    _open(bsi_store)
    rows = list(csv.DictReader(io.StringIO(exports[-1])))
    assert [float(r["bsi"]) for r in rows] == pytest.approx(_stored_bsi(bsi_store))


def test_the_upload_result_gives_the_bsi_or_says_why_not(
    db_file: Path, model_env: Path, tmp_path: Path
) -> None:
    path = tmp_path / "case.dcm"
    write_nm_dicom(path, to_scan(generate_case(11, 3)), uid_seed="upload-bsi")
    at = AppTest.from_file(UPLOAD, default_timeout=300).run()
    at.file_uploader[0].set_value(("scan.dcm", path.read_bytes(), "application/dicom")).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert labels.index("BSI") == labels.index("BSTBI") + 1  # beside it
    assert any(s.value == "Bone Scan Index by region" for s in at.subheader)
    bsi = str(next(m for m in at.metric if m.label == "BSI").value)
    if bsi == "not reported":
        assert any("BSI" in i.value for i in at.info)
    else:
        assert bsi.endswith(" %")
        assert len(at.get("plotly_chart")) == 1  # the body map


def test_two_studies_side_by_side_each_show_their_bsi_and_regions(bsi_store: Path) -> None:
    at = _open(bsi_store)
    with open_db(bsi_store) as db:
        pid = patient_id_by_pseudonym(db, PATIENT)
        assert pid is not None
        series = patient_time_series(db, pid)
    captions = [c.value for c in at.caption if c.value.startswith("BSI ")]
    # one line under each picture, with the study's own stored BSI
    assert captions == [
        f"BSI {r['bsi']:.2f} % of the skeleton"
        + (
            ", by region:"
            if r["bsi_regions"] and any(v["involvement"] > 0 for v in r["bsi_regions"].values())
            else ": no region involved."
        )
        for r in series
    ]
    tables = [d.value for d in at.dataframe if "involvement_pct" in d.value.columns]
    involved = [r for r in series if any(v["involvement"] > 0 for v in r["bsi_regions"].values())]
    assert len(tables) == len(involved) >= 1
    for table, r in zip(tables, involved, strict=True):
        # the contributions add up to the study's BSI (rounded in the table)
        assert table["bsi_pct"].sum() == pytest.approx(r["bsi"], abs=0.02)
