"""The From PACS page, driven through Streamlit's AppTest against a real Orthanc.

The networks are replaced by :func:`tests.test_pipeline.fake_predict_batch` (the
untrained models' figures mean nothing): these tests check what is found, stored and
shown, never the values.
"""

from __future__ import annotations

import datetime as dt
import io
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from streamlit.testing.v1 import AppTest

from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from tests import orthanc
from tests.conftest import APP
from tests.test_page_login import add_account, sign_in
from tests.test_pipeline import fake_predict_batch
from ui.common import Keys
from ui.pacs_panel import NOT_CONFIGURED
from workflow.pacs.settings import CONFIG_ENV, ENV_NAMES

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "pacs.py")
PATIENT_PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "patient.py")
#: The generated study's PACS identifiers.
PATIENT_ID = "PACS-PAGE-001"
ACCESSION = "ACC4711"
DESCRIPTION = "NM whole body bone scan"
PATIENT_NAME = "Testpatient^Pacs"

needs_orthanc = pytest.mark.skipif(not orthanc.available(), reason="Orthanc is not installed")


def _nm_study(folder: Path) -> pydicom.Dataset:
    """A generated whole-body NM instance with known patient and accession."""
    path = folder / "case.dcm"
    write_nm_dicom(path, to_scan(generate_case(12, 2)), uid_seed="pacs-page")
    ds = pydicom.dcmread(path)
    ds.PatientID = PATIENT_ID
    ds.PatientName = PATIENT_NAME
    ds.AccessionNumber = ACCESSION
    ds.StudyDescription = DESCRIPTION
    return ds


def _upload(server: orthanc.OrthancServer, ds: pydicom.Dataset) -> None:
    """Store one instance in Orthanc through its REST API (raw DICOM POST)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    request = urllib.request.Request(
        server.url + "/instances",
        data=buffer.getvalue(),
        method="POST",
        headers={"Content-Type": "application/dicom"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[orthanc.OrthancServer, str]]:
    """A running Orthanc holding one NM study; yields it and the study's UID."""
    folder = tmp_path_factory.mktemp("orthanc")
    ds = _nm_study(folder)
    with orthanc.running_orthanc(folder / "server") as server:
        _upload(server, ds)
        yield server, str(ds.StudyInstanceUID)


@pytest.fixture
def no_pacs_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PACS setting from the environment of whoever runs the tests."""
    for name in (CONFIG_ENV, *ENV_NAMES.values()):
        monkeypatch.delenv(name, raising=False)


def _button(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception
    return at


def _search(at: AppTest, patient_id: str) -> AppTest:
    next(t for t in at.text_input if t.label == "Patient ID").set_value(patient_id).run()
    return _button(at, "Search")


def test_without_a_pacs_the_page_says_how_to_configure_one(
    db_file: Path, no_pacs_settings: None
) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "From PACS"
    assert [i.value for i in at.info] == [NOT_CONFIGURED]
    assert ENV_NAMES["dicomweb_url"] in NOT_CONFIGURED and CONFIG_ENV in NOT_CONFIGURED
    assert not [b for b in at.button if b.label == "Search"]


def test_an_unreachable_pacs_is_an_error_message_and_nothing_is_stored(
    db_file: Path, no_pacs_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = orthanc.free_port()  # nothing listens there
    monkeypatch.setenv(ENV_NAMES["dicomweb_url"], f"http://127.0.0.1:{closed}/dicom-web")
    at = _search(AppTest.from_file(PAGE, default_timeout=60).run(), PATIENT_ID)
    assert len(at.error) == 1
    assert "did not answer the search" in at.error[0].value
    assert not at.dataframe and not at.multiselect
    with open_db(db_file) as db:
        assert db.execute("SELECT count(*) FROM studies").fetchone()[0] == 0


@needs_orthanc
def test_a_search_by_patient_id_or_dates_lists_the_study_without_the_name(
    db_file: Path,
    no_pacs_settings: None,
    monkeypatch: pytest.MonkeyPatch,
    pacs: tuple[orthanc.OrthancServer, str],
) -> None:
    server, _ = pacs
    monkeypatch.setenv(ENV_NAMES["dicomweb_url"], server.dicomweb_url)
    at = _search(AppTest.from_file(PAGE, default_timeout=60).run(), PATIENT_ID)
    table = at.dataframe[0].value
    assert list(table.columns) == ["Date", "Description", "Accession", "Instances"]
    assert table.to_dict("records") == [
        {
            "Date": table["Date"][0],
            "Description": DESCRIPTION,
            "Accession": ACCESSION,
            "Instances": 1,
        }
    ]
    assert PATIENT_NAME.split("^")[0] not in str(at.multiselect[0].options)

    day = dt.date.fromisoformat(str(table["Date"][0]))
    at.radio[0].set_value("Study dates").run()
    at.date_input[0].set_value((day, day)).run()
    _button(at, "Search")
    assert len(at.dataframe[0].value) == 1
    at.date_input[0].set_value((day + dt.timedelta(days=1), day + dt.timedelta(days=2))).run()
    _button(at, "Search")
    assert "no NM study" in at.info[0].value

    at.radio[0].set_value("Patient ID").run()
    _search(at, "NOBODY-HERE")
    assert "no NM study" in at.info[0].value


@needs_orthanc
def test_importing_stores_the_study_with_its_source_and_sends_results_back(
    db_file: Path,
    model_env: Path,
    no_pacs_settings: None,
    monkeypatch: pytest.MonkeyPatch,
    pacs: tuple[orthanc.OrthancServer, str],
) -> None:
    server, study_uid = pacs
    monkeypatch.setenv(ENV_NAMES["dicomweb_url"], server.dicomweb_url)
    monkeypatch.setenv(ENV_NAMES["pacs_ae"], server.ae_title)
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    at = _search(AppTest.from_file(PAGE, default_timeout=180).run(), PATIENT_ID)
    at.multiselect[0].set_value([study_uid]).run()
    _button(at, "Import and analyse")
    assert not at.error
    assert "stored and analysed as study" in at.success[0].value
    with open_db(db_file) as db:
        rows = db.execute(
            "SELECT s.id, s.study_instance_uid, s.accession_number, s.source_ae, "
            "(SELECT count(*) FROM analyses a WHERE a.study_id = s.id) FROM studies s"
        ).fetchall()
    assert len(rows) == 1
    study_id, uid, accession, source_ae, n_analyses = rows[0]
    assert (uid, accession, source_ae, n_analyses) == (study_uid, ACCESSION, "ORTHANC", 1)
    assert at.session_state[Keys.STUDY_ID] == study_id
    patient = AppTest.from_file(PATIENT_PAGE, default_timeout=120).run()
    assert not patient.exception
    studies = next(d.value for d in patient.dataframe if "source_ae" in d.value.columns)
    assert list(studies["source_ae"]) == ["ORTHANC"]  # the patient page's "Source" column

    _button(at, "Import and analyse")  # the same study again: stored once
    assert "stored before" in at.info[0].value
    with open_db(db_file) as db:
        assert db.execute("SELECT count(*) FROM studies").fetchone()[0] == 1

    before = _instances(server, study_uid)
    _button(at, "Send results to PACS")
    assert not at.error
    sent = [s.value for s in at.success if s.value.startswith("Sent ")]
    assert len(sent) == 1 and study_uid in sent[0]
    assert _instances(server, study_uid) > before


def _instances(server: orthanc.OrthancServer, study_uid: str) -> int:
    """How many instances Orthanc holds in a study."""
    query = {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}
    found = server.post("/tools/find", query)
    assert isinstance(found, list)
    return len(found)


@pytest.mark.parametrize("role", ["viewer", "clinician"])
def test_only_a_role_that_may_upload_sees_the_page(
    db_file: Path, no_pacs_settings: None, role: str
) -> None:
    add_account(db_file, "kim", role)
    at = sign_in(AppTest.from_file(APP, default_timeout=60).run(), "kim")
    assert not at.exception
    if role == "viewer":
        with pytest.raises(ValueError, match="navigation page"):
            at.switch_page("app_pages/pacs.py")
    else:
        at.switch_page("app_pages/pacs.py").run()
        assert not at.exception
        assert at.title[0].value == "From PACS"
