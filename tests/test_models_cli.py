"""``python -m core models list|promote VERSION|rollback``."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from cli import main
from core.networks.models import update_card
from db.accounts import create_account
from db.connection import open_db
from db.model_registry import active_version
from tests.test_model_registry import model_copy
from workflow.model_versions import ensure_shipped, folder_identity, register_candidate

CANDIDATE = "centre-20261207-0931"


@pytest.fixture
def store(db_file: Path, model_env: Path, tmp_path: Path) -> Path:
    """A store with the untrained shipped folder and one candidate with held-out figures."""
    folder = model_copy(model_env, tmp_path / "candidate")
    overall = {"sensitivity": 0.8125, "specificity": 0.9, "auc_metastasis": 0.875}
    update_card(folder, "classifier", metrics={"overall": overall})
    with open_db(db_file) as db:
        parent = ensure_shipped(db)
        register_candidate(db, folder, parent=parent, card_extra=None, account="cli",
                           name=CANDIDATE)  # fmt: skip
    return db_file


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_marks_the_version_in_use_with_parent_and_figures(
    store: Path, model_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = folder_identity(model_env)[0]
    code, out, _ = run(capsys, "list", "--db", str(store))
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith(f"* {shipped}  shipped  parent -  created 20")
    assert first.endswith("no figures recorded")
    assert second.startswith(f"  {CANDIDATE}  candidate  parent {shipped}  created 20")
    assert second.endswith("sensitivity 0.812, specificity 0.900, AUC 0.875")


def test_list_registers_the_shipped_folder_of_a_new_store(
    db_file: Path, model_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list", "--db", str(db_file))
    assert code == 0 and out.startswith(f"* {folder_identity(model_env)[0]}  shipped")


def test_promote_then_rollback(
    store: Path, model_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "promote", CANDIDATE, "--db", str(store))
    assert code == 0 and out == f"promoted {CANDIDATE}: in use from the next analysis\n"
    assert run(capsys, "list", "--db", str(store))[1].splitlines()[1].startswith(f"* {CANDIDATE}")
    code, out, err = run(capsys, "promote", CANDIDATE, "--db", str(store))
    assert code == 2 and "in use already" in err
    shipped = folder_identity(model_env)[0]
    code, out, _ = run(capsys, "rollback", "--db", str(store))
    assert code == 0 and out == f"rolled back to {shipped}: in use from the next analysis\n"
    code, _, err = run(capsys, "rollback", "--db", str(store))
    assert code == 2 and "no earlier version" in err
    with open_db(store) as db:
        assert active_version(db) == shipped


def test_promote_refuses_an_unknown_version(
    store: Path, model_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "promote", "centre-nope", "--db", str(store))
    assert code == 2 and out == ""
    shipped = folder_identity(model_env)[0]
    assert err == f"error: unknown version 'centre-nope'; registered: {shipped}, {CANDIDATE}\n"
    with open_db(store) as db:
        assert db.execute("SELECT count(*) FROM model_activations").fetchone()[0] == 0


def test_the_account_is_user_by_default_and_must_be_an_admin(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192))
    with open_db(store) as db:
        create_account(db, username="boss", password="boss-password", role="admin")
        create_account(db, username="dr.lee", password="clinician-pw", role="clinician")
    monkeypatch.setenv("USER", "dr.lee")
    code, _, err = run(capsys, "promote", CANDIDATE, "--db", str(store))
    assert code == 2 and "'dr.lee' is a clinician" in err
    code, _, _ = run(capsys, "promote", CANDIDATE, "--db", str(store), "--account", "boss")
    assert code == 0
    code, _, err = run(capsys, "rollback", "--db", str(store))
    assert code == 2 and "may not fine-tune, promote or roll back models" in err
    with open_db(store) as db:
        who = db.execute(
            "SELECT account FROM audit_log WHERE entity = 'model_activation'"
        ).fetchall()
    assert who == [("boss",)]


def test_a_store_without_a_usable_shipped_folder_still_lists(
    db_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BONESCAN_MODELS", str(tmp_path / "none"))
    code, out, err = run(capsys, "list", "--db", str(db_file))
    assert code == 0 and out == "no model version registered\n"
    assert "the shipped folder is not registered" in err
