"""The cohort page: the table, its filters, paging, the CSV export and opening a patient."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from db.connection import open_db
from tests.conftest import APP
from ui.common import Keys

PAGE = "app_pages/cohort.py"
ROOT = Path(APP).parent


def _open() -> AppTest:
    # Through the app once it routes the page (the lead adds it to app.py), else alone.
    if PAGE in Path(APP).read_text(encoding="utf-8"):
        at = AppTest.from_file(APP, default_timeout=60).run()
        at.switch_page(PAGE)
    else:
        at = AppTest.from_file(str(ROOT / PAGE), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def _multiselect(at: AppTest, label: str) -> Any:
    return next(m for m in at.multiselect if m.label.startswith(label))


def _caption_texts(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_cohort_renders_every_patient_of_the_truth_store(truth_store: Path) -> None:
    at = _open()
    frame = _table(at)
    assert frame["pseudonym"].tolist() == [f"Demo 00{i}" for i in range(1, 6)]
    assert frame["synthetic"].all()
    assert any("synthetic" in i.value for i in at.info)
    assert "Rows 1-5 of 5" in _caption_texts(at)
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(titles) == 3
    assert any("Latest BSTBI by primary tumour" in t for t in titles)
    assert any("Responders vs progressors" in t for t in titles)


def test_cohort_on_an_empty_store_says_so(db_file: Path) -> None:
    at = _open()
    assert not at.dataframe
    assert "no patient" in at.info[0].value


def test_choosing_a_primary_tumour_narrows_the_rows(truth_store: Path) -> None:
    at = _open()
    everyone = _table(at)
    prostate = everyone[everyone["primary_tumour"] == "prostate"]["pseudonym"].tolist()
    assert 0 < len(prostate) < len(everyone)
    _multiselect(at, "Primary tumour").set_value(["prostate"]).run()
    assert not at.exception
    assert _table(at)["pseudonym"].tolist() == prostate
    assert f"Rows 1-{len(prostate)} of {len(prostate)}" in _caption_texts(at)


def test_the_response_rule_follows_the_threshold(truth_store: Path) -> None:
    at = _open()
    frame = _table(at).set_index("pseudonym")
    # Demo 001 rose by 0.061 over 2 scans, Demo 002 by 0.095 over 5; Demo 005 has 1 scan.
    assert frame.loc["Demo 001", "bstbi_change"] == pytest.approx(0.0605, abs=1e-3)
    assert frame.loc["Demo 002", "bstbi_change"] == pytest.approx(0.0945, abs=1e-3)
    assert frame.loc[["Demo 001", "Demo 002", "Demo 005"], "response"].tolist() == [
        "progressor",
        "progressor",
        "single scan",
    ]
    at.number_input[0].set_value(0.08).run()
    frame = _table(at).set_index("pseudonym")
    assert frame.loc[["Demo 001", "Demo 002"], "response"].tolist() == ["stable", "progressor"]
    _multiselect(at, "Response").set_value(["progressor"]).run()
    assert _table(at)["pseudonym"].tolist() == ["Demo 002"]


def test_the_csv_holds_exactly_the_filtered_rows(
    truth_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports: list[bytes] = []
    original = st.download_button

    def recording(label: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        exports.append(data)
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    at = _open()
    _multiselect(at, "Sex").set_value(["M"]).run()
    shown = _table(at)
    csv = pd.read_csv(io.BytesIO(exports[-1]))
    assert 0 < len(csv) < 5
    assert csv["Patient"].tolist() == shown["pseudonym"].tolist()
    assert (csv["Sex"] == "M").all() and csv["Synthetic"].all()
    assert csv["Latest BSTBI"].tolist() == pytest.approx(shown["latest_bstbi"].tolist())


def test_a_large_cohort_is_paged(db_file: Path) -> None:
    with open_db(db_file) as db:
        db.conn.executemany(
            "INSERT INTO patients (pseudonym, primary_tumour, synthetic) VALUES (?, ?, 1)",
            [(f"P{i:03d}", "breast" if i % 12 == 0 else "lung") for i in range(120)],
        )
        db.conn.commit()
    at = _open()
    assert len(_table(at)) == 50 and "Rows 1-50 of 120" in _caption_texts(at)
    at.number_input(key=Keys.COHORT_PAGE).set_value(3).run()
    assert _table(at)["pseudonym"].tolist() == [f"P{i:03d}" for i in range(100, 120)]
    assert "Rows 101-120 of 120" in _caption_texts(at)
    # a narrower filter brings a page past the end back to the last one
    _multiselect(at, "Primary tumour").set_value(["breast"]).run()
    assert not at.exception
    assert at.number_input(key=Keys.COHORT_PAGE).value == 1
    assert "Rows 1-10 of 10" in _caption_texts(at)


def test_choosing_a_row_chooses_the_patient(truth_store: Path) -> None:
    at = _open()
    second = _table(at).iloc[1]
    at.session_state[Keys.COHORT_TABLE] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.session_state[Keys.PATIENT_ID] == int(second["patient_id"])
    if "app_pages/patient.py" in Path(APP).read_text(encoding="utf-8"):
        assert at.title[0].value == "Patient"  # the app routes it: the patient page opened
        assert second["pseudonym"] in str([e.value for e in at.main if hasattr(e, "value")])
