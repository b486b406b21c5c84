"""Seeding the demo cohort: whole patients, each once, and no demo data where unwelcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.phantom.demo_cohort import demo_patient
from db.accounts import create_account
from db.connection import open_db
from workflow.demo import reason_to_skip, seed_demo_cohort


def test_seeding_reports_progress_and_skips_stored_patients(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    with open_db(tmp_path / "s.sqlite") as db:
        assert reason_to_skip(db) is None
        first = seed_demo_cohort(db, 1, progress=lambda done, total: calls.append((done, total)))
        assert (first.patients, first.already_stored) == (1, 0)
        assert first.studies == len(demo_patient(0).cases)
        assert calls == [(1, 1)]
        again = seed_demo_cohort(db, 1)
        assert (again.patients, again.studies, again.already_stored) == (0, 0, 1)
        assert reason_to_skip(db) == "the store already holds patients"


def test_a_store_with_accounts_gets_no_demo_unasked(tmp_path: Path) -> None:
    with open_db(tmp_path / "s.sqlite") as db:
        create_account(db, username="boss", password="a long enough password", role="admin")
        assert reason_to_skip(db) == "the store has accounts"


def test_a_cohort_without_patients_is_refused(tmp_path: Path) -> None:
    with open_db(tmp_path / "s.sqlite") as db, pytest.raises(ValueError, match="n_patients"):
        seed_demo_cohort(db, 0)
