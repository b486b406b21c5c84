"""The Upload and analyse page, driven through Streamlit's AppTest (real uploads, untrained models).

The untrained models' figures mean nothing, so these tests check what is stored and what
is shown, never the values.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from db.store import add_patient
from ui.common import Keys
from workflow.model_versions import ensure_shipped

PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "upload.py")
TABLES = ("patients", "studies", "views", "analyses", "masks", "audit_log")


@pytest.fixture(scope="module")
def dicom(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dt.date]:
    """A generated whole-body NM DICOM (phantom case) and its study date."""
    case = generate_case(11, 3)
    path = tmp_path_factory.mktemp("upload") / "case.dcm"
    write_nm_dicom(path, to_scan(case), uid_seed="upload-page")
    return path.read_bytes(), case.scan_date


def _counts(db_file: Path) -> dict[str, int]:
    with open_db(db_file) as db:
        return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}


def _open(content: bytes | None = None, name: str = "scan.dcm") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception
    if content is not None:
        at.file_uploader[0].set_value((name, content, "application/dicom")).run()
        assert not at.exception
    return at


def _analyse(at: AppTest) -> AppTest:
    at.button[0].click().run()
    assert not at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def test_renders_on_an_empty_store(db_file: Path, model_env: Path) -> None:
    at = _open()
    assert at.title[0].value == "Upload and analyse"
    assert len(at.file_uploader) == 1
    assert "Drop a file" in at.info[0].value
    assert not at.error


def test_offers_the_stored_patients_and_stores_the_study_under_the_one_chosen(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    with open_db(db_file) as db:
        add_patient(
            db, pseudonym="Alpha", sex="F", birth_year=1950, primary_tumour="breast", synthetic=True
        )
        beta = add_patient(db, pseudonym="Beta", sex="M", synthetic=True)
    at = _open(dicom[0])
    at.radio[0].set_value("An existing patient").run()
    options = at.selectbox[0].options
    assert len(options) == 2
    assert options[0].startswith("Alpha · F · born 1950 · breast · 0 scans")
    at.selectbox[0].set_value(beta).run()
    _analyse(at)
    with open_db(db_file) as db:
        rows = db.execute("SELECT patient_id FROM studies").fetchall()
    assert rows == [(beta,)]
    assert _counts(db_file)["patients"] == 2
    assert at.session_state[Keys.PATIENT_ID] == beta


def test_a_generated_dicom_is_stored_once_with_one_analysis_and_shown(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    at = _analyse(_open(dicom[0]))
    assert not at.error
    counts = _counts(db_file)
    assert counts == {
        "patients": 1,
        "studies": 1,
        "views": 2,
        "analyses": 1,
        "masks": 2,
        "audit_log": counts["audit_log"],
    }
    assert counts["audit_log"] >= 1
    with open_db(db_file) as db:
        study_id, date = db.execute("SELECT id, study_date FROM studies").fetchone()
    assert date == dicom[1].isoformat()
    assert at.session_state[Keys.STUDY_ID] == study_id
    assert "Stored as study" in at.success[0].value
    assert _metric(at, "BSTBI")  # a number, or "not reported" for an unreliable verdict
    assert len(at.get("image")) == 4
    assert at.table[0].value.shape == (2, 3)  # ANT/POST x (name, grey level 1, grey level 2)


def test_the_opacity_slider_keeps_the_result_without_storing_again(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    at = _analyse(_open(dicom[0]))
    before = _counts(db_file)
    bstbi = _metric(at, "BSTBI")
    at.slider(key=Keys.UPLOAD_OPACITY).set_value(0.9).run()
    assert not at.exception
    assert _metric(at, "BSTBI") == bstbi
    assert len(at.get("image")) == 4
    assert at.button[0].disabled  # stored: the button does not offer it again
    assert _counts(db_file) == before


def test_the_study_date_entered_is_the_one_stored(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    at = _open(dicom[0])
    assert at.date_input[0].value == dicom[1]
    at.date_input[0].set_value(dt.date(2021, 3, 4)).run()
    _analyse(at)
    with open_db(db_file) as db:
        assert db.execute("SELECT study_date FROM studies").fetchone()[0] == "2021-03-04"


def test_a_new_patient_is_created_with_the_fields_entered(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    at = _open(dicom[0])
    at.radio[0].set_value("A new patient").run()
    assert at.button[0].disabled  # no pseudonym yet
    at.text_input[0].input("Zed").run()
    at.selectbox[0].set_value("F").run()
    at.number_input[0].set_value(1961).run()
    at.selectbox[1].set_value("lung").run()
    assert at.checkbox[0].value  # a phantom file: synthetic by default
    _analyse(at)
    with open_db(db_file) as db:
        row = db.execute(
            "SELECT p.pseudonym, p.sex, p.birth_year, p.primary_tumour, p.synthetic "
            "FROM studies s JOIN patients p ON p.id = s.patient_id"
        ).fetchone()
    assert tuple(row) == ("Zed", "F", 1961, "lung", 1)


def test_the_same_file_again_is_not_stored_twice(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    _analyse(_open(dicom[0]))
    before = _counts(db_file)
    at = _analyse(_open(dicom[0], name="renamed.dcm"))
    assert not at.error
    assert "stored before" in at.info[0].value
    assert "not analysed again" in at.info[0].value
    assert _metric(at, "BSTBI")
    assert _counts(db_file) == before


def test_a_text_file_named_dcm_is_refused_and_nothing_is_stored(
    db_file: Path, model_env: Path
) -> None:
    with open_db(db_file) as db:
        add_patient(db, pseudonym="Alpha", synthetic=True)
        ensure_shipped(db)  # the page registers the shipped model (audited) when it loads it
    before = _counts(db_file)
    at = _open(b"just some text\n" * 20, name="notes.dcm")
    assert "notes.dcm" in at.error[0].value
    assert "not an image or DICOM" in at.error[0].value
    assert not at.button
    assert _counts(db_file) == before


def test_an_unreadable_quality_scan_reports_no_burden(db_file: Path, model_env: Path) -> None:
    noise = np.random.default_rng(0).poisson(0.05, size=(1024, 256)).astype(np.uint8) * 40
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    at = _open()
    at.file_uploader[0].set_value(("noise_ANT.png", buf.getvalue(), "image/png")).run()
    at.date_input[0].set_value(dt.date(2020, 1, 2)).run()
    _analyse(at)
    assert "no burden is reported as reliable" in at.warning[0].value
    assert _metric(at, "BSTBI") == "not reported"
    # the probability is shown for inspection, but no positive/negative call is made
    metastasis = next(m for m in at.metric if m.label == "Metastasis probability")
    assert not metastasis.delta
    assert _counts(db_file)["analyses"] == 1


def test_without_a_model_folder_the_page_says_so(
    db_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("BONESCAN_MODELS", str(empty))
    at = _open()
    assert "No usable model" in at.error[0].value
    assert at.title[0].value == "Upload and analyse"
    assert not at.file_uploader


def test_inside_the_app_it_links_to_the_review_and_patient_pages(
    db_file: Path, model_env: Path, dicom: tuple[bytes, dt.date]
) -> None:
    from tests.conftest import APP

    at = AppTest.from_file(APP, default_timeout=180).run()  # registers the pages
    at.switch_page("app_pages/upload.py").run()
    assert not at.exception
    at.file_uploader[0].set_value(("scan.dcm", dicom[0], "application/dicom")).run()
    _analyse(at)
    links = {getattr(link, "label", None) for link in at.get("page_link")}
    assert {"Review the lesions", "Follow the patient"} <= links
