from __future__ import annotations

from pathlib import Path

import numpy as np

from cli import main
from core.phantom.demo_cohort import case_sha256, demo_patient
from db.connection import open_db
from db.queries import store_summary, study_views


def test_demo_patients_are_deterministic_and_ordered() -> None:
    a, b = demo_patient(0), demo_patient(0)
    assert a.pseudonym == "Demo 001"
    assert [c.case_id for c in a.cases] == [c.case_id for c in b.cases]
    assert np.array_equal(a.cases[0].views["ANT"], b.cases[0].views["ANT"])
    dates = [c.scan_date for c in a.cases]
    assert dates == sorted(dates) and len(a.cases) >= 2
    assert a.treatments, "a longitudinal demo patient is treated"
    assert len(demo_patient(4).cases) == 1  # one in five has a single diagnostic scan


def test_demo_cohort_is_stored_synthetic_with_treatments_once(tmp_path: Path) -> None:
    db_file = tmp_path / "demo.sqlite"
    assert main(["demo-cohort", "--db", str(db_file), "--patients", "3"]) == 0
    with open_db(db_file) as db:
        summary = store_summary(db)
        assert summary.patients == summary.synthetic_patients == 3
        expected = sum(len(demo_patient(i).cases) for i in range(3))
        assert summary.studies == expected
        assert db.execute("SELECT count(*) FROM treatments").fetchone()[0] > 0
        study_id, sha = db.execute(
            "SELECT id, source_sha256 FROM studies ORDER BY id LIMIT 1"
        ).fetchone()
        views = study_views(db, study_id)
    case = demo_patient(0).cases[0]
    assert sha == case_sha256(case)
    assert set(views) == {"ANT", "POST"}
    assert np.array_equal(views["ANT"], case.views["ANT"])  # stored losslessly
    # A second run adds nothing: --if-empty, and without it existing patients are kept.
    assert main(["demo-cohort", "--db", str(db_file), "--patients", "3", "--if-empty"]) == 0
    assert main(["demo-cohort", "--db", str(db_file), "--patients", "3"]) == 0
    with open_db(db_file) as db:
        assert store_summary(db).studies == expected


def test_treatments_are_named_for_physicians() -> None:
    agents = {t.agent for i in range(10) for t in demo_patient(i).treatments}
    assert agents and all("_" not in a for a in agents)
    assert agents <= {"androgen deprivation", "radium-223", "zoledronic acid", "chemotherapy"}
