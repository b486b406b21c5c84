"""The Patient page on the truth store: trajectory, treatments, two studies, downloads."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from core.analysis import result_from_masks
from core.burden.charts import AGENT_COLOURS
from core.scan import Scan
from db.connection import open_db
from db.queries import patient_id_by_pseudonym, patient_time_series, study_views
from db.store import store_analysis
from db.treatments import patient_treatments
from tests.conftest import APP
from ui.common import Keys
from workflow.ingest import to_records

PAGE = str(Path(APP).parent / "app_pages" / "patient.py")


def open_page(patient: str | None = None, db_file: Path | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if patient is not None:
        assert db_file is not None
        with open_db(db_file) as db:
            at.session_state[Keys.PATIENT_ID] = patient_id_by_pseudonym(db, patient)
    at.run()
    assert not at.exception, at.exception
    return at


def labelled(elements: Any, label: str) -> Any:
    """The one widget of ``elements`` with this label."""
    (widget,) = [e for e in elements if e.label == label]
    return widget


def figure(at: AppTest) -> dict[str, Any]:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def traces(fig: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in fig["data"]}


def bands(fig: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in fig["layout"].get("shapes", []) if s["type"] == "rect"]


def test_page_renders_the_first_patient_with_every_part(truth_store: Path) -> None:
    at = open_page()
    assert at.selectbox(key=Keys.PATIENT_PICK).value is not None
    assert at.header[0].value == "Demo 001"
    assert any("Synthetic patient" in m.value for m in at.markdown)  # the badge
    fig = figure(at)
    line = traces(fig)["BSTBI"]
    assert line["x"] == ["2016-12-25", "2017-02-28"]
    assert "BSTBI 0.145" in line["text"][0] and "Hotspots 31" in line["text"][0]
    assert "New lesions" in line["text"][1]
    assert len(bands(fig)) == 1  # androgen deprivation, ongoing
    assert bands(fig)[0]["x0"] == "2017-01-08" and bands(fig)[0]["x1"] == "2017-02-28"
    assert len(at.get("image")) == 2  # baseline | latest
    # the steps of the line, treatments, studies
    assert [d.value.shape[0] for d in at.dataframe] == [1, 1, 2]
    assert [b.label for b in at.get("download_button")] == ["Report (HTML)", "Studies (CSV)"]


def test_the_patient_opened_on_another_page_is_shown(truth_store: Path) -> None:
    at = open_page("Demo 003", truth_store)
    assert at.header[0].value == "Demo 003"
    assert at.selectbox(key=Keys.PATIENT_PICK).value == at.session_state[Keys.PATIENT_ID]


def test_choosing_another_patient_redraws_the_page(truth_store: Path) -> None:
    at = open_page()
    with open_db(truth_store) as db:
        pid = patient_id_by_pseudonym(db, "Demo 002")
    at.selectbox(key=Keys.PATIENT_PICK).set_value(pid).run()
    assert not at.exception
    assert at.header[0].value == "Demo 002"
    assert at.session_state[Keys.PATIENT_ID] == pid
    fig = figure(at)
    assert len(traces(fig)["BSTBI"]["x"]) == 5
    assert len(bands(fig)) == 2  # androgen deprivation, radium-223
    assert any(name.startswith("PCWG3") for name in traces(fig))


def test_adding_a_treatment_stores_it_and_draws_its_band(truth_store: Path) -> None:
    at = open_page("Demo 002", truth_store)
    assert len(bands(figure(at))) == 2
    labelled(at.selectbox, "Agent").set_value("zoledronic acid")
    labelled(at.date_input, "Start").set_value(dt.date(2018, 2, 1))
    labelled(at.date_input, "End (leave empty while ongoing)").set_value(dt.date(2018, 9, 1))
    labelled(at.text_input, "Dose and schedule").set_value("4 mg IV every 4 weeks")
    at.button[0].click().run()
    assert not at.exception
    assert not at.error
    with open_db(truth_store) as db:
        pid = patient_id_by_pseudonym(db, "Demo 002")
        stored = patient_treatments(db, pid)
    assert pid is not None
    zol = [t for t in stored if t["agent"] == "zoledronic acid"]
    assert len(stored) == 3 and len(zol) == 1
    assert (zol[0]["start_date"], zol[0]["end_date"]) == ("2018-02-01", "2018-09-01")
    assert zol[0]["dose"] == "4 mg IV every 4 weeks"
    new_bands = bands(figure(at))
    assert len(new_bands) == 3
    band = next(b for b in new_bands if b["x0"] == "2018-02-01")
    assert band["x1"] == "2018-09-01"
    assert band["fillcolor"] == AGENT_COLOURS["zoledronic acid"]
    listed = next(d.value for d in at.dataframe if "agent" in d.value.columns)
    assert listed.shape[0] == 3


def test_another_agent_is_typed_and_an_end_before_the_start_is_refused(truth_store: Path) -> None:
    at = open_page("Demo 005", truth_store)
    labelled(at.selectbox, "Agent").set_value("another agent (type it below)")
    labelled(at.text_input, "Other agent").set_value("denosumab")
    labelled(at.date_input, "Start").set_value(dt.date(2017, 6, 1))
    labelled(at.date_input, "End (leave empty while ongoing)").set_value(dt.date(2017, 5, 1))
    at.button[0].click().run()
    assert not at.exception
    assert "before the start" in at.error[0].value
    with open_db(truth_store) as db:
        assert patient_treatments(db, patient_id_by_pseudonym(db, "Demo 005") or 0) == []
    assert bands(figure(at)) == []


def test_a_patient_with_one_study(truth_store: Path) -> None:
    at = open_page("Demo 005", truth_store)
    assert at.header[0].value == "Demo 005"
    fig = figure(at)
    assert traces(fig)["BSTBI"]["x"] == ["2017-06-26"]
    assert bands(fig) == []
    assert len(at.get("image")) == 1
    assert not [s for s in at.selectbox if s.label in ("Left", "Right")]
    assert at.dataframe[-1].value.shape[0] == 1
    assert any("one study" in c.value for c in at.caption)


def test_a_non_diagnostic_study_is_marked_and_left_off_the_line(truth_store: Path) -> None:
    with open_db(truth_store) as db:
        pid = patient_id_by_pseudonym(db, "Demo 002")
        assert pid is not None
        third = patient_time_series(db, pid)[2]
        views = study_views(db, third["study_id"])
        masks = {v: np.zeros(a.shape, np.uint8) for v, a in views.items()}
        result = result_from_masks(Scan(views=views), masks, {"metastasis": 0.1, "bladder": 0.1})
        ok, stored_masks, lesions = to_records(result)
        # a later analysis found the scan non-diagnostic: no burden is stored for it
        record = replace(
            ok,
            quality="too few counts",
            bstbi_images={},
            bstbi=None,
            hotspots=None,
            lesion_area_cm2=None,
        )
        store_analysis(
            db,
            study_id=third["study_id"],
            analysis=record,
            masks=stored_masks,
            lesions=lesions,
            account="test",
        )
    at = open_page("Demo 002", truth_store)
    by_name = traces(figure(at))
    assert third["study_date"] not in by_name["BSTBI"]["x"]
    assert by_name["No reliable BSTBI"]["x"] == [third["study_date"]]
    assert any("too few counts" in w.value for w in at.warning)
    studies = at.dataframe[-1].value
    row = studies[studies["study_date"] == third["study_date"]].iloc[0]
    assert not row["reliable"] and row["quality"] == "not diagnostic: too few counts"


def test_empty_store_says_how_to_fill_it(db_file: Path) -> None:
    at = open_page()
    assert "demo-cohort" in at.info[0].value
    assert not at.get("plotly_chart")
