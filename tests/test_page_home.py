from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from db.connection import open_db
from tests.conftest import APP


def test_home_renders_on_an_empty_store(db_file: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Bone-scan tumour burden"
    assert [m.value for m in at.metric] == ["0", "0", "0"]
    assert db_file.is_file()


def test_home_counts_patients_and_flags_a_synthetic_store(db_file: Path) -> None:
    with open_db(db_file) as db:
        db.execute("INSERT INTO patients (pseudonym, synthetic) VALUES ('Demo 1', 1)")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.metric[0].value == "1"
    assert any("synthetic" in i.value for i in at.info)


def test_home_lists_patients_with_their_treatments(db_file: Path) -> None:
    from cli import main

    assert main(["demo-cohort", "--db", str(db_file), "--patients", "2"]) == 0
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["pseudonym"]) == ["Demo 001", "Demo 002"]
    assert frame["synthetic"].all()
    assert frame["treatments"].str.len().min() > 0
