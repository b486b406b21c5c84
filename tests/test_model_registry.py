"""The model registry: register, list, the version in use, promote and roll back, audited."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlite_utils import Database

from core.analysis import model_identity
from core.auth import AccessDenied
from core.networks.models import ModelFileError, load_models, update_card
from db.accounts import create_account
from db.connection import open_db
from db.model_registry import (
    SYSTEM_ACCOUNT,
    active_version,
    get_model,
    list_models,
    promote,
    register_model,
    rollback,
)
from workflow.model_versions import card_summary, figures_line, folder_identity

SHA_S, SHA_A, SHA_B = "a" * 64, "b" * 64, "c" * 64


def model_copy(source: Path, to: Path) -> Path:
    """A model folder: the cards copied (they get written), the weights linked (90 MB)."""
    to.mkdir(parents=True)
    for name in ("classifier", "segmenter"):
        shutil.copyfile(source / f"{name}.json", to / f"{name}.json")
        (to / f"{name}.safetensors").symlink_to((source / f"{name}.safetensors").resolve())
    return to


def _register(db: Database, version: str, kind: str = "candidate", parent: str | None = None,
              sha: str = SHA_A, account: str = "boss") -> int:  # fmt: skip
    return register_model(db, version=version, path=f"/models/{version}", kind=kind,
                          parent=parent, weights_sha256=sha, card={"steps": 3},
                          account=account)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store without accounts, the shipped folder "S" registered."""
    path = tmp_path / "store.sqlite"
    with open_db(path) as db:
        _register(db, "S", kind="shipped", sha=SHA_S, account=SYSTEM_ACCOUNT)
    return path


@pytest.fixture
def accounts_store(store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The same store with an admin "boss" and a clinician "dr.lee"."""
    monkeypatch.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192))
    with open_db(store) as db:
        create_account(db, username="boss", password="boss-password", role="admin")
        create_account(db, username="dr.lee", password="clinician-pw", role="clinician")
    return store


def test_an_empty_store_has_no_version_in_use(tmp_path: Path) -> None:
    with open_db(tmp_path / "empty.sqlite") as db:
        assert active_version(db) is None and list_models(db) == []


def test_the_shipped_folder_is_in_use_until_a_promotion(store: Path) -> None:
    with open_db(store) as db:
        _register(db, "A", parent="S")
        assert active_version(db) == "S"
        (s, a) = list_models(db)
    assert (s["version"], s["kind"], s["active"], s["created_by"]) == ("S", "shipped", True,
                                                                      SYSTEM_ACCOUNT)  # fmt: skip
    assert (a["version"], a["parent"], a["active"], a["card"]) == ("A", "S", False, {"steps": 3})


def test_registering_the_shipped_folder_again_writes_nothing(store: Path) -> None:
    with open_db(store) as db:
        first = get_model(db, "S")
        assert first is not None
        assert _register(db, "S", kind="shipped", sha=SHA_S, account="anyone") == first["id"]
        assert db.execute("SELECT count(*) FROM model_versions").fetchone()[0] == 1
        with pytest.raises(ValueError, match="registered already"):
            _register(db, "S", kind="shipped", sha=SHA_B)  # other weights, same name


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"version": " "}, "version"),
        ({"kind": "released"}, "kind"),
        ({"sha": "ABC"}, "weights_sha256"),
        ({"parent": "nobody"}, "parent"),
        ({"account": ""}, "account"),
    ],
)
def test_a_bad_registration_is_refused_naming_the_argument(
    store: Path, changes: dict, words: str
) -> None:
    args = {"version": "A", "kind": "candidate", "parent": "S", "sha": SHA_A, "account": "x"}
    with open_db(store) as db, pytest.raises(ValueError, match=words):
        _register(db, **{**args, **changes})


def test_a_candidate_needs_an_admin_but_the_shipped_folder_anyone(accounts_store: Path) -> None:
    with open_db(accounts_store) as db:
        with pytest.raises(AccessDenied, match=r"dr\.lee"):
            _register(db, "A", parent="S", account="dr.lee")
        assert get_model(db, "A") is None
        _register(db, "S2", kind="shipped", sha=SHA_B, account=SYSTEM_ACCOUNT)
        _register(db, "A", parent="S", account="boss")
        rows = db.execute(
            "SELECT account, action, entity, after_json FROM audit_log "
            "WHERE action = 'register_model' ORDER BY id"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (SYSTEM_ACCOUNT, "register_model", "model_version"),
        (SYSTEM_ACCOUNT, "register_model", "model_version"),
        ("boss", "register_model", "model_version"),
    ]
    assert json.loads(rows[-1][3])["parent"] == "S"


def test_promote_and_rollback_walk_the_versions_in_use_back(store: Path) -> None:
    with open_db(store) as db:
        _register(db, "A", parent="S")
        _register(db, "B", parent="A", sha=SHA_B)
        promote(db, "A", "boss")
        promote(db, "B", "boss")
        assert active_version(db) == "B"
        assert rollback(db, "boss") == "A"
        assert active_version(db) == "A"
        assert rollback(db, "boss") == "S"
        assert [m["active"] for m in list_models(db)] == [True, False, False]
        with pytest.raises(ValueError, match="no earlier version"):
            rollback(db, "boss")
        promote(db, "B", "boss")
        promote(db, "A", "boss")
        assert rollback(db, "boss") == "B"  # the one in use before A, not A's parent
        actions = db.execute("SELECT version, action FROM model_activations ORDER BY id").fetchall()
    assert actions == [("A", "promote"), ("B", "promote"), ("A", "rollback"), ("S", "rollback"),
                       ("B", "promote"), ("A", "promote"), ("B", "rollback")]  # fmt: skip


def test_nothing_promoted_cannot_be_rolled_back(store: Path) -> None:
    with open_db(store) as db, pytest.raises(ValueError, match="no earlier version"):
        rollback(db, "boss")


def test_promote_refuses_an_unknown_version_and_the_one_in_use(store: Path) -> None:
    with open_db(store) as db:
        with pytest.raises(ValueError, match=r"'Z' is not registered; known: S"):
            promote(db, "Z", "boss")
        with pytest.raises(ValueError, match="in use already"):
            promote(db, "S", "boss")
        assert db.execute("SELECT count(*) FROM model_activations").fetchone()[0] == 0


def test_only_an_admin_promotes_or_rolls_back_and_each_switch_is_audited(
    accounts_store: Path,
) -> None:
    with open_db(accounts_store) as db:
        _register(db, "A", parent="S")
        for who in ("dr.lee", None, "nobody"):
            with pytest.raises(AccessDenied):
                promote(db, "A", str(who))
        assert active_version(db) == "S"
        promote(db, "A", "boss")
        with pytest.raises(AccessDenied):
            rollback(db, "dr.lee")
        assert rollback(db, "boss") == "S"
        rows = db.execute(
            "SELECT account, action, before_json, after_json FROM audit_log "
            "WHERE entity = 'model_activation' ORDER BY id"
        ).fetchall()
    assert [(a, act, json.loads(b), json.loads(c)) for a, act, b, c in rows] == [
        ("boss", "promote_model", {"version": "S"}, {"version": "A"}),
        ("boss", "rollback_model", {"version": "A"}, {"version": "S"}),
    ]


def test_folder_identity_is_model_identity_without_loading(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    folder = model_copy(untrained_model_dir, tmp_path / "m")
    unnamed = folder_identity(folder)
    assert unnamed == model_identity(load_models(folder, "cpu"))
    assert unnamed[0].startswith("classifier:") and " segmenter:" in unnamed[0]
    for name in ("classifier", "segmenter"):
        update_card(folder, name, version="centre-1")
    named = folder_identity(folder)
    assert named == model_identity(load_models(folder, "cpu"))
    assert named == ("centre-1", unnamed[1])  # the name changes, the weights hash does not


def test_a_folder_without_cards_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"classifier\.json: model card not found"):
        folder_identity(tmp_path)


def test_the_card_summary_keeps_parent_data_steps_figures_and_hashes(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    folder = model_copy(untrained_model_dir, tmp_path / "m")
    overall = {"sensitivity": 0.75, "specificity": 0.5, "auc_metastasis": 0.8, "tp": 3}
    update_card(folder, "classifier", metrics={"overall": overall, "dataset": {"n_cases": 8}},
                training={"steps": 40})  # fmt: skip
    summary = card_summary(folder, parent="S", extra={"job": 7})
    assert summary["parent"] == "S" and summary["job"] == 7
    assert summary["steps"] == {"classifier": 40, "segmenter": None}
    assert summary["figures"] == {"sensitivity": 0.75, "specificity": 0.5, "auc_metastasis": 0.8}
    assert summary["figures_dataset"] == {"n_cases": 8}
    assert summary["training_data"] == "untrained (random weights, for timing only)"
    assert set(summary["weights"]) == {"classifier", "segmenter"}
    assert figures_line(summary) == "sensitivity 0.750, specificity 0.500, AUC 0.800"
    assert figures_line({"figures": {}}) == "no figures recorded"
