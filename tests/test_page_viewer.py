from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.data import get_testdata_file
from streamlit.testing.v1 import AppTest

from db.connection import open_db
from db.queries import store_summary
from tests.conftest import APP


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _export(hot_value: int) -> np.ndarray:
    """A tiny black-background export: a body stripe with one hot spot."""
    a = np.zeros((512, 128), np.uint8)
    a[40:480, 40:88] = 12
    a[200:210, 60:70] = hot_value
    return a


def _open_viewer(db_file: Path) -> AppTest:
    # run once first: st.navigation registers the pages that switch_page looks up
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/viewer.py").run()
    assert not at.exception
    return at


def test_viewer_reads_the_nema_nm1_dicom_study(db_file: Path) -> None:
    at = _open_viewer(db_file)
    content = Path(get_testdata_file("JPEG2000.dcm")).read_bytes()
    at.file_uploader[0].set_value(("JPEG2000.dcm", content, "application/dicom")).run()
    assert not at.exception
    assert not at.error
    table = at.table[0].value
    assert table["format"].iloc[0] == "dicom"
    assert table["views"].iloc[0] == "ANT"
    assert table["manufacturer"].iloc[0] == "GE Medical Systems"
    assert len(at.get("image")) == 2  # ANT at grey levels 1 and 2
    assert "diagnostic whole-body" in at.success[0].value


def test_viewer_reads_an_ant_post_pair_given_in_any_order(db_file: Path) -> None:
    at = _open_viewer(db_file)
    files = [
        ("case_POST.png", _png(_export(90)), "image/png"),
        ("case_ANT.png", _png(_export(60)), "image/png"),
    ]
    at.file_uploader[0].set_value(files).run()
    assert not at.exception
    assert not at.error
    table = at.table[0].value
    assert table["views"].iloc[0] == "ANT, POST"
    assert table["polarity"].iloc[0] == "hot-bright"
    assert len(at.get("image")) == 4


def test_viewer_refuses_a_text_file_by_name_and_stores_nothing(db_file: Path) -> None:
    at = _open_viewer(db_file)
    at.file_uploader[0].set_value(("notes.dcm", b"just some text\n" * 20, "text/plain")).run()
    assert not at.exception
    assert "notes.dcm" in at.error[0].value
    assert "not an image or DICOM" in at.error[0].value
    with open_db(db_file) as db:
        assert store_summary(db).studies == 0


def test_viewer_warns_about_a_noise_only_acquisition(db_file: Path) -> None:
    at = _open_viewer(db_file)
    noise = np.random.default_rng(0).poisson(0.05, size=(1024, 256)).astype(np.uint8) * 40
    at.file_uploader[0].set_value(("noise_ANT.png", _png(noise), "image/png")).run()
    assert not at.exception
    assert not at.error
    assert "No burden would be reported" in at.warning[0].value
