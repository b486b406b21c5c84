"""The upload, review and patient pages show a stored quality caution as a warning.

The review and patient pages open a store holding one generated scan stored with a
verdict that passed with cautions
(:func:`tests.test_quality_cautions_stored.store_case_with_cautions`); the upload page
analyses a scan with the gate passing it with cautions. Each page reads the cautions
from the stored analysis.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.imaging.quality import QualityVerdict, assess
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from core.scan import Scan
from tests.conftest import APP
from tests.test_quality_cautions_stored import CAUTIONS, store_case_with_cautions

PAGES = Path(APP).parent / "app_pages"


@pytest.fixture
def store(db_file: Path, tmp_path: Path) -> Path:
    store_case_with_cautions(tmp_path, db_file)
    return db_file


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=120).run()
    assert not at.exception, at.exception
    assert not at.error
    return at


def test_the_review_page_warns_with_each_caution(store: Path) -> None:
    at = _open("review.py")
    warnings = [w.value for w in at.warning]
    assert warnings == list(CAUTIONS)


def test_the_patient_page_shows_them_in_the_table_and_under_the_study(store: Path) -> None:
    at = _open("patient.py")
    assert [w.value for w in at.warning] == list(CAUTIONS)  # under the study's picture
    (row,) = at.dataframe[-1].value.to_dict("records")
    assert row["quality"] == "ok"
    assert row["quality_cautions"] == " ".join(CAUTIONS)


def test_the_upload_result_warns_with_each_caution_once(
    db_file: Path, model_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the gate passes the generated scan with the cautions; the page reads them back from
    # the analysis it stored (untrained models: their figures are not checked)
    def gate(scan: Scan) -> QualityVerdict:
        return QualityVerdict(True, "ok", "ok", assess(scan).measures, CAUTIONS)

    monkeypatch.setattr("core.analysis.assess", gate)
    path = tmp_path / "case.dcm"
    write_nm_dicom(path, to_scan(generate_case(11, 3)), uid_seed="upload-cautions")
    at = AppTest.from_file(str(PAGES / "upload.py"), default_timeout=180).run()
    at.file_uploader[0].set_value((path.name, path.read_bytes(), "application/dicom")).run()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Quality: a diagnostic") for s in at.success)
    assert [w.value for w in at.warning] == list(CAUTIONS)
    # the analysis' notes repeat them ("quality: ..."): not shown a second time
    assert not [c.value for c in at.caption if any(x in c.value for x in CAUTIONS)]
