from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.queries import store_summary, study_views
from db.store import add_patient, add_treatment, decode_counts, encode_counts, store_study


def _scan(seed: int, integral: bool = True) -> Scan:
    rng = np.random.default_rng(seed)
    views = {}
    for view in ("ANT", "POST"):
        a = rng.poisson(3.0, size=(ROWS, COLS)).astype(np.float32)
        views[view] = a if integral else a * np.float32(0.37)
    return Scan(views=views, meta=ScanMeta(source_format="dicom", study_date=dt.date(2024, 5, 1)))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, (7, 5), elements=st.floats(0, 70000, width=32)))
def test_counts_round_trip_losslessly(a: np.ndarray) -> None:
    dtype, blob = encode_counts(a)
    assert np.array_equal(decode_counts(dtype, blob, 7, 5), a)


def test_integral_counts_are_stored_as_uint16() -> None:
    assert encode_counts(np.array([[0.0, 3.0], [65535.0, 7.0]], np.float32))[0] == "uint16"
    assert encode_counts(np.array([[0.5, 3.0]], np.float32))[0] == "float32"
    assert encode_counts(np.array([[65536.0, 3.0]], np.float32))[0] == "float32"


def test_a_study_and_its_views_are_stored_and_read_back(db_file: Path) -> None:
    scan = _scan(1, integral=False)
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P-001", sex="F", birth_year=1958)
        stored = store_study(db, patient_id=pid, scan=scan, source_name="a.dcm",
                             source_sha256=_sha("a"))  # fmt: skip
        assert stored.created
        views = study_views(db, stored.study_id)
    assert set(views) == {"ANT", "POST"}
    for view in views:
        assert np.array_equal(views[view], scan.views[view])


def test_the_same_file_twice_is_one_study(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P-001")
        first = store_study(db, patient_id=pid, scan=_scan(1), source_name="a.dcm",
                            source_sha256=_sha("a"))  # fmt: skip
        again = store_study(db, patient_id=pid, scan=_scan(1), source_name="copy.dcm",
                            source_sha256=_sha("a"))  # fmt: skip
        assert (again.study_id, again.created) == (first.study_id, False)
        assert store_summary(db).studies == 1


def test_a_failing_view_insert_leaves_no_partial_study(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P-001")
        store_study(db, patient_id=pid, scan=_scan(2), source_name="ok.dcm",
                    source_sha256=_sha("ok"))  # fmt: skip
        # A trigger makes the second view's insert fail after the study row is written.
        db.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON views WHEN NEW.view = 'POST' "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="disk full"):
            store_study(db, patient_id=pid, scan=_scan(3), source_name="bad.dcm",
                        source_sha256=_sha("bad"))  # fmt: skip
        assert store_summary(db).studies == 1
        assert db.execute("SELECT count(*) FROM views").fetchone()[0] == 2


def test_a_study_needs_an_existing_patient(db_file: Path) -> None:
    with open_db(db_file) as db, pytest.raises(sqlite3.IntegrityError):
        store_study(db, patient_id=42, scan=_scan(1), source_name="a.dcm",
                    source_sha256=_sha("a"))  # fmt: skip


def test_treatment_dates_are_checked(db_file: Path) -> None:
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P-001")
        add_treatment(db, patient_id=pid, agent="zoledronic acid", start=dt.date(2024, 1, 1),
                      end=dt.date(2024, 6, 1), dose="4 mg every 4 weeks")  # fmt: skip
        with pytest.raises(ValueError, match="end"):
            add_treatment(db, patient_id=pid, agent="radium-223", start=dt.date(2024, 6, 1),
                          end=dt.date(2024, 1, 1))  # fmt: skip
        with pytest.raises(ValueError, match="agent"):
            add_treatment(db, patient_id=pid, agent=" ", start=dt.date(2024, 6, 1))
        assert db.execute("SELECT count(*) FROM treatments").fetchone()[0] == 1


def test_patient_fields_are_validated(db_file: Path) -> None:
    with open_db(db_file) as db:
        with pytest.raises(ValueError, match="pseudonym"):
            add_patient(db, pseudonym="")
        with pytest.raises(ValueError, match="sex"):
            add_patient(db, pseudonym="X", sex="male")
        assert store_summary(db).patients == 0
