"""Accounts: argon2id hashes (never plaintext), sign-in, roles, duplicates, the CLI."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlite_utils import Database

from cli import main
from core.auth import AccessDenied, hash_password, verify_password
from db.access import get_account, list_accounts, role_of
from db.accounts import (
    authenticate,
    create_account,
    remove_account,
    set_disabled,
    set_password,
    set_role,
)
from db.connection import open_db

PASSWORD = "correct horse battery"


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters, for tests about accounts rather than about hashing."""
    monkeypatch.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                            parallelism=1))  # fmt: skip


def test_production_hashing_is_argon2id_with_rfc9106_parameters() -> None:
    import core.auth

    hasher = core.auth._HASHER
    assert hasher.type.name == "ID"
    assert hasher.time_cost >= 3 and hasher.memory_cost >= 64 * 1024


def _hash_of(db: Database, name: str) -> str:
    return str(db.execute("SELECT password_hash FROM accounts WHERE username = ?",
                          [name]).fetchone()[0])  # fmt: skip


def _audit(db: Database) -> list[tuple[str, str, str | None, str | None]]:
    return db.execute(
        "SELECT account, action, before_json, after_json FROM audit_log ORDER BY id"
    ).fetchall()


def test_the_password_is_stored_as_an_argon2id_hash(db_file: Path) -> None:
    with open_db(db_file) as db:
        create_account(db, username="boss", password=PASSWORD, role="admin")
        create_account(db, username="dr.lee", password=PASSWORD, role="clinician")
        first, second = _hash_of(db, "boss"), _hash_of(db, "dr.lee")
        audit = _audit(db)
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert PASSWORD not in first and PASSWORD.encode().hex() not in first
    assert first != second, "same password, same hash: no salt"
    assert verify_password(first, PASSWORD) and not verify_password(first, PASSWORD + "x")
    assert [(a, act) for a, act, _, _ in audit] == [("console", "create_account")] * 2
    assert all("argon2" not in str(row) and PASSWORD not in str(row) for row in audit)


def test_the_schema_refuses_a_plaintext_password(db_file: Path) -> None:
    with open_db(db_file) as db, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("INSERT INTO accounts (username, role, password_hash) VALUES (?, ?, ?)",
                   ["eve", "admin", PASSWORD])  # fmt: skip


@pytest.mark.usefixtures("fast_hashing")
def test_sign_in_needs_the_right_password(db_file: Path) -> None:
    with open_db(db_file) as db:
        create_account(db, username="Dr.Lee", password=PASSWORD, role="admin")
        ok = authenticate(db, "dr.lee", PASSWORD)  # usernames match without case
        assert ok is not None and ok.username == "Dr.Lee" and ok.role == "admin"
        assert authenticate(db, "Dr.Lee", "correct horse battery ") is None
        assert authenticate(db, "Dr.Lee", "") is None
        assert authenticate(db, "nobody", PASSWORD) is None
        assert authenticate(db, "'; DROP TABLE accounts; --", PASSWORD) is None
        set_disabled(db, "Dr.Lee", True)
        assert authenticate(db, "Dr.Lee", PASSWORD) is None
        set_disabled(db, "Dr.Lee", False)
        set_password(db, "Dr.Lee", "a new passphrase")
        assert authenticate(db, "Dr.Lee", PASSWORD) is None
        assert authenticate(db, "Dr.Lee", "a new passphrase") is not None


def test_an_old_weaker_hash_is_upgraded_at_sign_in(db_file: Path) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with open_db(db_file) as db:
        create_account(db, username="boss", password=PASSWORD, role="admin")
        db.execute("UPDATE accounts SET password_hash = ? WHERE username = 'boss'", [weak])
        assert authenticate(db, "boss", PASSWORD) is not None
        upgraded = _hash_of(db, "boss")
    assert upgraded != weak and "m=1024," not in upgraded
    assert verify_password(upgraded, PASSWORD)


@pytest.mark.usefixtures("fast_hashing")
def test_roles_are_stored_and_changed(db_file: Path) -> None:
    with open_db(db_file) as db:
        create_account(db, username="boss", password=PASSWORD, role="admin")
        create_account(db, username="dr.lee", password=PASSWORD, role="clinician")
        create_account(db, username="student", password=PASSWORD, role="viewer")
        assert [(a.username, a.role) for a in list_accounts(db)] == [
            ("boss", "admin"), ("dr.lee", "clinician"), ("student", "viewer")]  # fmt: skip
        set_role(db, "student", "clinician", by="boss")
        assert role_of(db, "student") == "clinician"
        set_disabled(db, "student", True, by="boss")
        assert role_of(db, "student") is None and get_account(db, "student") is not None
        with pytest.raises(ValueError, match="role must be one of"):
            create_account(db, username="x", password=PASSWORD, role="superuser")


@pytest.mark.usefixtures("fast_hashing")
def test_a_duplicate_username_is_refused_and_changes_nothing(db_file: Path) -> None:
    with open_db(db_file) as db:
        create_account(db, username="boss", password=PASSWORD, role="admin")
        before = _hash_of(db, "boss")
        for name in ("boss", "BOSS", " boss "):
            with pytest.raises(ValueError, match="already exists"):
                create_account(db, username=name, password="another password", role="viewer")
        assert _hash_of(db, "boss") == before
        assert len(list_accounts(db)) == 1 and len(_audit(db)) == 1


@pytest.mark.usefixtures("fast_hashing")
def test_bad_usernames_and_passwords_are_refused(db_file: Path) -> None:
    with open_db(db_file) as db:
        for name in ("", "   ", "a b", "dr/lee", "x" * 65, "é"):
            with pytest.raises(ValueError, match="username"):
                create_account(db, username=name, password=PASSWORD, role="admin")
        for password in ("short", "       ", "        \t"):
            with pytest.raises(ValueError, match="password"):
                create_account(db, username="boss", password=password, role="admin")
        assert list_accounts(db) == []
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("1234567")


@pytest.mark.usefixtures("fast_hashing")
def test_the_first_account_is_an_admin_and_the_last_admin_stays(db_file: Path) -> None:
    with open_db(db_file) as db:
        with pytest.raises(ValueError, match="first account must be an admin"):
            create_account(db, username="dr.lee", password=PASSWORD, role="clinician")
        create_account(db, username="boss", password=PASSWORD, role="admin")
        create_account(db, username="dr.lee", password=PASSWORD, role="clinician")
        for change in (lambda: remove_account(db, "boss"),
                       lambda: set_disabled(db, "boss", True),
                       lambda: set_role(db, "boss", "viewer")):  # fmt: skip
            with pytest.raises(ValueError, match="last enabled admin"):
                change()
        assert role_of(db, "boss") == "admin"
        remove_account(db, "dr.lee")
        remove_account(db, "boss")  # the only account left: back to no accounts
        assert list_accounts(db) == []


@pytest.mark.usefixtures("fast_hashing")
def test_only_an_admin_manages_accounts_but_anyone_changes_their_own_password(
    db_file: Path,
) -> None:
    with open_db(db_file) as db:
        create_account(db, username="boss", password=PASSWORD, role="admin")
        create_account(db, username="dr.lee", password=PASSWORD, role="clinician", by="boss")
        create_account(db, username="student", password=PASSWORD, role="viewer", by="boss")
        for by in ("dr.lee", "student", "ghost"):
            with pytest.raises(AccessDenied, match="manage accounts"):
                create_account(db, username="new", password=PASSWORD, role="viewer", by=by)
            with pytest.raises(AccessDenied):
                set_role(db, "student", "admin", by=by)
        with pytest.raises(AccessDenied, match="manage accounts"):
            set_password(db, "boss", "taken over!", by="student")
        set_password(db, "student", "my own new one", by="student")
        assert authenticate(db, "student", "my own new one") is not None
        assert authenticate(db, "boss", PASSWORD) is not None
        assert [a.username for a in list_accounts(db)] == ["boss", "dr.lee", "student"]
        assert role_of(db, "student") == "viewer"


# --- the command line ------------------------------------------------------------------


def _cli(monkeypatch: pytest.MonkeyPatch, db: Path, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main([*args, "--db", str(db)])


@pytest.mark.usefixtures("fast_hashing")
def test_cli_user_add_passwd_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.sqlite"
    assert _cli(monkeypatch, db, "user", "add", "boss", "--role", "admin", "--password-stdin",
                stdin=PASSWORD + "\n") == 0  # fmt: skip
    assert "created (admin)" in capsys.readouterr().out
    answers = iter(["clinician pw 1", "clinician pw 1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert _cli(monkeypatch, db, "user", "add", "dr.lee", "--role", "clinician") == 0
    assert _cli(monkeypatch, db, "user", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(a["username"], a["role"]) for a in listed] == [("boss", "admin"),
                                                            ("dr.lee", "clinician")]  # fmt: skip
    with open_db(db) as store:
        assert authenticate(store, "dr.lee", "clinician pw 1") is not None
        assert authenticate(store, "boss", PASSWORD) is not None

    assert _cli(monkeypatch, db, "user", "passwd", "dr.lee", "--password-stdin",
                stdin="changed password\n") == 0  # fmt: skip
    answers = iter(["one password", "another one"])
    assert _cli(monkeypatch, db, "user", "passwd", "boss") == 2
    assert "differ" in capsys.readouterr().err
    assert _cli(monkeypatch, db, "user", "passwd", "ghost", "--password-stdin",
                stdin="whatever pw\n") == 2  # fmt: skip
    assert "no account named 'ghost'" in capsys.readouterr().err
    with open_db(db) as store:
        assert authenticate(store, "dr.lee", "changed password") is not None
        assert authenticate(store, "boss", PASSWORD) is not None

    assert _cli(monkeypatch, db, "user", "add", "DR.LEE", "--role", "viewer",
                "--password-stdin", stdin="some password\n") == 2  # fmt: skip
    assert "already exists" in capsys.readouterr().err
    assert _cli(monkeypatch, db, "user", "remove", "boss") == 2
    assert "last enabled admin" in capsys.readouterr().err
    assert _cli(monkeypatch, db, "user", "remove", "dr.lee") == 0
    assert _cli(monkeypatch, db, "user", "list") == 0
    out = capsys.readouterr().out
    assert "boss" in out and "dr.lee" not in out.splitlines()[-1]
    with open_db(db) as store:
        assert [a.username for a in list_accounts(store)] == ["boss"]
        actions = [r[1] for r in _audit(store)]
    assert actions == ["create_account", "create_account", "set_password", "remove_account"]
