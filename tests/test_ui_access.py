"""Roles, idle expiry, hidden names and error ids in the dashboard (AppTest on app.py)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.burden.patient_record import patient_info
from db.accounts import set_disabled
from db.connection import open_db
from db.queries import patient_overview
from tests.conftest import APP
from tests.test_page_login import PATIENT, add_account, all_text, sign_in
from ui.auth import DEBUG_ERRORS_ENV
from ui.common import Keys
from workflow.patients import load_patient
from workflow.report import build_patient_report

#: The truth store's first patient's name (cli demo-cohort stores one per patient).
NAME = "Synthetic patient 001"


def _as(db_file: Path, username: str, role: str) -> AppTest:
    add_account(db_file, username, role)
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), username)
    assert not at.exception
    assert at.session_state[Keys.ROLE] == role
    return at


@pytest.mark.parametrize("role", ["viewer", "clinician"])
def test_a_viewer_has_no_upload_page_and_a_read_only_review(truth_store: Path, role: str) -> None:
    at = _as(truth_store, "kim", role)
    if role == "viewer":
        with pytest.raises(ValueError, match="navigation page"):
            at.switch_page("app_pages/upload.py")
    else:
        at.switch_page("app_pages/upload.py").run()
        assert at.title[0].value == "Upload and analyse"
    at.switch_page("app_pages/review.py").run()
    assert not at.exception
    editor = at.data_editor[0]
    reason = next(s for s in at.selectbox if s.label == "Reason for excluding a lesion")
    read_only = [c.value for c in at.caption if c.value.startswith("Read only")]
    if role == "viewer":
        assert editor.proto.disabled and reason.disabled
        assert read_only == [
            "Read only: you are signed in as a viewer, who may not review lesions; "
            "an admin or a clinician may."
        ]
    else:
        assert not editor.proto.disabled and not reason.disabled and not read_only


def test_a_viewer_sees_no_treatment_form(truth_store: Path) -> None:
    at = _as(truth_store, "kim", "viewer")
    at.switch_page("app_pages/patient.py").run()
    assert not at.exception
    assert at.header[0].value == PATIENT
    assert not [b for b in at.button if b.label == "Add treatment"]
    assert any("may not record treatments" in c.value for c in at.caption)

    at = _as(truth_store, "sam", "clinician")
    at.switch_page("app_pages/patient.py").run()
    assert [b.label for b in at.button if b.label == "Add treatment"] == ["Add treatment"]


def test_an_idle_session_goes_back_to_login(
    truth_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BONESCAN_IDLE_MINUTES", "10")
    at = _as(truth_store, "lee", "admin")
    now = dt.datetime.now(dt.UTC)
    at.session_state[Keys.LAST_ACTIVITY] = now - dt.timedelta(minutes=9)
    at.run()
    assert PATIENT in all_text(at)  # 9 idle minutes of 10: still signed in
    assert at.session_state[Keys.LAST_ACTIVITY] > now  # this run was activity

    at.session_state[Keys.LAST_ACTIVITY] = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert [i.value for i in at.info] == ["You were signed out after 10 minutes without activity."]
    assert PATIENT not in all_text(at)
    assert Keys.ACCOUNT not in at.session_state


def test_a_disabled_account_is_signed_out_at_its_next_click(truth_store: Path) -> None:
    at = _as(truth_store, "sam", "clinician")
    with open_db(truth_store) as db:
        set_disabled(db, "sam", True)
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "disabled or removed" in at.info[0].value
    assert PATIENT not in all_text(at)


def test_hiding_names_shows_the_pseudonym_and_showing_them_the_name(truth_store: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()  # demo mode
    at.switch_page("app_pages/patient.py").run()
    assert not at.exception
    switch = next(t for t in at.sidebar.toggle if t.label == "Hide patient names")
    assert switch.value  # on by default
    assert at.header[0].value == PATIENT
    assert NAME not in all_text(at)

    switch.set_value(False).run()
    assert not at.exception
    assert at.header[0].value == NAME
    assert f"Pseudonym {PATIENT}" in [c.value for c in at.caption]


def test_the_report_leaves_the_name_out_when_hidden(truth_store: Path) -> None:
    import plotly.graph_objects as go

    with open_db(truth_store) as db:
        row = next(p for p in patient_overview(db) if p["pseudonym"] == PATIENT)
        record = load_patient(db, patient_info(row))
        hidden = build_patient_report(db, record, go.Figure())
        shown = build_patient_report(db, record, go.Figure(), name=NAME)
    assert NAME not in hidden and PATIENT in hidden
    assert f"name {NAME}" in shown


def test_an_unexpected_error_shows_an_error_id_not_a_trace(
    db_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(db: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("db.queries.store_summary", broken)  # the home page's first query
    monkeypatch.delenv(DEBUG_ERRORS_ENV, raising=False)
    with caplog.at_level(logging.ERROR, logger="bonescan"):
        at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception  # no stack trace on the page
    message = at.error[0].value
    assert message.startswith("Something went wrong while showing this page.")
    assert "disk on fire" not in message and "Traceback" not in all_text(at)
    error_id = message.split("error id ")[1].split(";")[0]
    assert error_id.startswith("E-")
    assert error_id in caplog.text and "RuntimeError: disk on fire" in caplog.text

    monkeypatch.setenv(DEBUG_ERRORS_ENV, "1")  # developers get Streamlit's trace as well
    assert "disk on fire" in at.run().exception[0].message


def test_a_page_run_without_the_app_still_asks_for_a_sign_in(truth_store: Path) -> None:
    # a page script run without app.py (started by itself) is stopped by its own guard
    add_account(truth_store, "lee", "admin")
    at = AppTest.from_file(str(Path(APP).parent / "app_pages" / "patient.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.warning[0].value.startswith("Sign in first")
    assert PATIENT not in all_text(at) and not at.header


@pytest.mark.parametrize("role", ["viewer", "clinician"])
def test_a_lesion_edit_is_saved_under_a_clinician_and_ignored_for_a_viewer(
    truth_store: Path, role: str
) -> None:
    at = _as(truth_store, "kim", role)
    at.switch_page("app_pages/review.py").run()
    key = at.data_editor[0].key
    assert key is not None
    # what a browser would send; a viewer's disabled table cannot, but a forged one might
    at.session_state[key] = {
        "edited_rows": {0: {"include": False}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    with open_db(truth_store) as db:
        who = [r[0] for r in db.execute("SELECT account FROM audit_log WHERE entity = 'lesion'")]
    assert who == ([] if role == "viewer" else ["kim"])
