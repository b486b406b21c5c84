"""Access control at the store: roles on every write, the demo-mode rule, idle expiry."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from argon2 import PasswordHasher
from sqlite_utils import Database

from core.auth import ACTIONS, AccessDenied, allowed, idle_minutes, is_demo_mode, session_expired
from db.access import demo_mode, require_role
from db.accounts import create_account, remove_account, set_disabled, set_password, set_role
from db.connection import open_db
from db.store import (
    add_drawn_lesion,
    add_patient,
    add_treatment,
    set_lesion_status,
    store_analysis,
    store_study,
    update_analysis_burden,
)
from tests.trust_workers import (
    RECORD,
    dump_tables,
    lesions_for,
    masks_for,
    scan_for,
    sha_for,
    store_one,
)

PASSWORD = "a long enough password"
Write = Callable[[Database, str | None], object]


def _drawn() -> np.ndarray:
    d = np.zeros((1024, 256), np.uint8)
    d[500:505, 10:15] = 1
    return d


#: Every write of db/store.py, called as ``account``.
STORE_WRITES: dict[str, Write] = {
    "add_patient": lambda db, a: add_patient(db, pseudonym="P-new", account=a),
    "store_study": lambda db, a: store_study(db, patient_id=1, scan=scan_for(77),
                                             source_name="new.dcm", source_sha256=sha_for("new"),
                                             account=a),
    "add_treatment": lambda db, a: add_treatment(db, patient_id=1, agent="radium-223",
                                                 start=dt.date(2024, 3, 1), account=a),
    "store_analysis": lambda db, a: store_analysis(db, study_id=1, analysis=RECORD,
                                                   masks=masks_for(0),
                                                   lesions=lesions_for(masks_for(0)),
                                                   account=a or ""),
    "add_drawn_lesion": lambda db, a: add_drawn_lesion(db, analysis_id=1, view="ANT",
                                                       drawn=_drawn(), account=a or ""),
    "set_lesion_status": lambda db, a: set_lesion_status(db, 1, "removed", a or "", "fracture"),
    "update_analysis_burden": lambda db, a: update_analysis_burden(
        db, 1, {("ANT", 1): 0.5}, 0.5, 9, 3.0, a or ""),
}  # fmt: skip
#: Every write of db/accounts.py, called as ``by``.
ACCOUNT_WRITES: dict[str, Write] = {
    "create_account": lambda db, a: create_account(db, username="new", password=PASSWORD,
                                                   role="viewer", by=a),
    "remove_account": lambda db, a: remove_account(db, "dr.lee", by=a),
    "set_password": lambda db, a: set_password(db, "boss", "taken over!!", by=a),
    "set_disabled": lambda db, a: set_disabled(db, "dr.lee", True, by=a),
    "set_role": lambda db, a: set_role(db, "student", "admin", by=a),
}  # fmt: skip


def _build(path: Path, *, accounts: bool) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                       parallelism=1))  # fmt: skip
        with open_db(path) as db:
            store_one(db, 0, "seed", None)  # patient 1, study 1, analysis 1, lesions 1-4
            if accounts:
                for name, role in (
                    ("boss", "admin"),
                    ("dr.lee", "clinician"),
                    ("student", "viewer"),
                    ("gone", "clinician"),
                ):
                    create_account(db, username=name, password=PASSWORD, role=role)
                set_disabled(db, "gone", True)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    folder = tmp_path_factory.mktemp("access")
    return {flag: _build(folder / f"{flag}.sqlite", accounts=flag) for flag in (True, False)}


@pytest.fixture
def store(templates: dict[bool, Path], tmp_path: Path) -> Path:
    """A private copy of the store with accounts boss, dr.lee, student, gone (disabled)."""
    return Path(shutil.copy(templates[True], tmp_path / "store.sqlite"))


@pytest.fixture
def demo_store(templates: dict[bool, Path], tmp_path: Path) -> Path:
    """A private copy of the same store without any account."""
    return Path(shutil.copy(templates[False], tmp_path / "demo.sqlite"))


#: The writes whose account is optional (None while the store has no accounts).
OPTIONAL_ACCOUNT = ("add_patient", "store_study", "add_treatment")
REFUSALS = [
    (write, who, words)
    for write in sorted(STORE_WRITES)
    for who, words in [("student", "is a viewer"), ("gone", "is disabled"),
                       ("mallory", "no account named"), (None, "Sign in first")]
    if who is not None or write in OPTIONAL_ACCOUNT
]  # fmt: skip


@pytest.mark.parametrize(("write", "who", "words"), REFUSALS)
def test_a_store_write_is_refused_and_changes_nothing(
    store: Path, write: str, who: str | None, words: str
) -> None:
    before = dump_tables(store)
    with open_db(store) as db, pytest.raises(AccessDenied, match=words):
        STORE_WRITES[write](db, who)
    assert dump_tables(store) == before


@pytest.mark.parametrize("write", sorted(STORE_WRITES))
@pytest.mark.parametrize("who", ["dr.lee", "DR.LEE", "boss"])
def test_a_clinician_or_admin_may_write_and_is_audited(store: Path, write: str, who: str) -> None:
    with open_db(store) as db:
        audits = db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        STORE_WRITES[write](db, who)
        after = db.execute("SELECT account FROM audit_log WHERE id > ? ORDER BY id",
                           [audits]).fetchall()  # fmt: skip
    assert [a for (a,) in after] == [who]


@pytest.mark.parametrize("write", sorted(ACCOUNT_WRITES))
@pytest.mark.parametrize("who", ["dr.lee", "student", "gone", "mallory"])
def test_only_an_admin_changes_accounts(store: Path, write: str, who: str) -> None:
    before = dump_tables(store)
    with open_db(store) as db, pytest.raises(AccessDenied):
        ACCOUNT_WRITES[write](db, who)
    assert dump_tables(store) == before
    with open_db(store) as db:
        ACCOUNT_WRITES[write](db, "boss")
    assert dump_tables(store) != before


@pytest.mark.parametrize("write", sorted(STORE_WRITES))
def test_without_accounts_every_write_is_allowed_as_before(demo_store: Path, write: str) -> None:
    before = dump_tables(demo_store)
    with open_db(demo_store) as db:
        assert require_role(db, None, "upload") is None
        STORE_WRITES[write](db, None if write in OPTIONAL_ACCOUNT else "cli")
    assert dump_tables(demo_store) != before


def test_the_refusal_says_who_what_and_which_roles_may(store: Path) -> None:
    assert issubclass(AccessDenied, PermissionError)
    with open_db(store) as db:
        with pytest.raises(AccessDenied) as info:
            require_role(db, "student", "upload")
        assert str(info.value) == (
            "The account 'student' is a viewer, and a viewer may not upload or analyse scans "
            "(only an admin or a clinician may)."
        )
        with pytest.raises(AccessDenied) as info:
            require_role(db, None, "accounts")
        assert str(info.value) == (
            "Sign in first: this store has accounts, so only an admin, signed in, may "
            "manage accounts."
        )
        assert require_role(db, "student", "browse") == "viewer"
        assert require_role(db, "Dr.Lee", "review") == "clinician"
        with pytest.raises(ValueError, match="action must be one of"):
            require_role(db, "boss", "delete everything")


def test_what_each_role_may_do() -> None:
    may = {role: {a for a in ACTIONS if allowed(role, a)} for role in ("admin", "clinician",
                                                                        "viewer")}  # fmt: skip
    assert may == {
        "viewer": {"browse"},
        "clinician": {"browse", "upload", "review", "treatments"},
        "admin": {"browse", "upload", "review", "treatments", "accounts", "models"},
    }
    with pytest.raises(ValueError, match="role"):
        allowed("root", "browse")


# --- demo mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accounts", "real_patients", "demo"),
    [(0, 0, True), (1, 0, False), (0, 1, False), (3, 5, False)],
)
def test_the_demo_mode_rule(accounts: int, real_patients: int, demo: bool) -> None:
    assert is_demo_mode(accounts, real_patients) is demo


def test_demo_mode_ends_with_a_real_patient_or_an_account(db_file: Path) -> None:
    with open_db(db_file) as db:
        assert demo_mode(db)  # empty store
        add_patient(db, pseudonym="SYN-1", synthetic=True)
        assert demo_mode(db)  # only synthetic patients
        add_patient(db, pseudonym="P-1", synthetic=False)
        assert not demo_mode(db)  # a real patient: login required
        db.execute("DELETE FROM patients WHERE synthetic = 0")
        assert demo_mode(db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                       parallelism=1))  # fmt: skip
        with open_db(db_file) as db:
            create_account(db, username="boss", password=PASSWORD, role="admin")
            assert not demo_mode(db)  # any account: login required
    with pytest.raises(ValueError, match="counts"):
        is_demo_mode(-1, 0)


# --- idle sessions --------------------------------------------------------------------

T0 = dt.datetime(2025, 3, 1, 9, 0, 0)


@pytest.mark.parametrize(
    ("idle", "expired"),
    [
        (dt.timedelta(0), False),
        (dt.timedelta(minutes=29, seconds=59), False),
        (dt.timedelta(minutes=30), True),
        (dt.timedelta(hours=5), True),
        (dt.timedelta(minutes=-10), False),  # the clock went back
    ],
)
def test_a_session_expires_after_the_idle_time(idle: dt.timedelta, expired: bool) -> None:
    assert session_expired(T0, T0 + idle, 30) is expired


def test_idle_time_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BONESCAN_IDLE_MINUTES", raising=False)
    assert idle_minutes() == 30
    monkeypatch.setenv("BONESCAN_IDLE_MINUTES", "5")
    assert idle_minutes() == 5
    assert session_expired(T0, T0 + dt.timedelta(minutes=5), idle_minutes())
    assert not session_expired(T0, T0 + dt.timedelta(minutes=4.9), idle_minutes())
    for bad in ("0", "-3", "soon", "inf"):
        monkeypatch.setenv("BONESCAN_IDLE_MINUTES", bad)
        with pytest.raises(ValueError, match="BONESCAN_IDLE_MINUTES"):
            idle_minutes()
    with pytest.raises(ValueError, match="idle_minutes"):
        session_expired(T0, T0, 0)
