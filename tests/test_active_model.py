"""The version in use is the model everywhere: registry folders, dashboard, listener, CLI."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pydicom
import pytest
from argon2 import PasswordHasher

from cli import main
from core.analysis import model_identity
from core.auth import AccessDenied
from core.networks.models import ModelFileError, read_card, update_card
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.accounts import create_account
from db.connection import open_db
from db.model_registry import active_version, get_model, list_models, register_model, rollback
from tests import orthanc
from tests.test_model_registry import model_copy
from tests.test_pacs_listener import OUR_AE, SENDER, send, with_new_uid
from tests.test_pipeline import fake_predict_batch
from ui import common
from workflow.model_versions import (
    ActiveModels,
    active_model_dir,
    default_name,
    ensure_shipped,
    folder_identity,
    promote_version,
    register_candidate,
)
from workflow.pacs import listener as listener_module
from workflow.pacs.listener import serve
from workflow.pacs.settings import PacsSettings

CANDIDATE = "centre-test"


@pytest.fixture
def store(db_file: Path, model_env: Path) -> Path:
    """A fresh store ($BONESCAN_DB) beside the untrained shipped folder ($BONESCAN_MODELS)."""
    with open_db(db_file):
        pass
    return db_file


@pytest.fixture
def candidate(store: Path, model_env: Path, tmp_path: Path) -> Path:
    """A candidate folder (the shipped weights, named CANDIDATE) registered in the store."""
    folder = model_copy(model_env, tmp_path / "candidate")
    with open_db(store) as db:
        parent = ensure_shipped(db)
        assert register_candidate(db, folder, parent=parent, card_extra={"job": 1},
                                  account="boss", name=CANDIDATE) == CANDIDATE  # fmt: skip
    return folder


@pytest.fixture
def fake_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)


def versions_stored(path: Path) -> list[str]:
    with open_db(path) as db:
        return [r[0] for r in db.execute("SELECT model_version FROM analyses ORDER BY id")]


def test_the_shipped_folder_is_registered_once_and_in_use(store: Path, model_env: Path) -> None:
    with open_db(store) as db:
        version, folder = active_model_dir(db)
        assert (version, folder) == (folder_identity(model_env)[0], model_env)
        assert active_model_dir(db) == (version, folder)
        (row,) = list_models(db)
    assert (row["kind"], row["active"], row["path"]) == ("shipped", True, str(model_env.resolve()))
    assert row["card"]["training_data"] == "untrained (random weights, for timing only)"


def test_a_read_only_lookup_registers_nothing(store: Path, model_env: Path) -> None:
    with open_db(store) as db:
        assert active_model_dir(db, register_shipped=False)[1] == model_env
        assert list_models(db) == []


def test_a_new_shipped_release_is_registered_and_used(
    store: Path, model_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_db(store) as db:
        old = ensure_shipped(db)
    release = model_copy(model_env, tmp_path / "release")
    for name in ("classifier", "segmenter"):
        update_card(release, name, version="release-2")
    monkeypatch.setenv("BONESCAN_MODELS", str(release))
    with open_db(store) as db:
        assert active_model_dir(db) == ("release-2", release)
        assert [m["version"] for m in list_models(db)] == [old, "release-2"]
        assert active_version(db) == "release-2"


def test_a_missing_shipped_folder_is_a_model_file_error(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BONESCAN_MODELS", str(tmp_path / "nowhere"))
    with open_db(store) as db, pytest.raises(ModelFileError, match="model folder not found"):
        active_model_dir(db)


def test_a_candidate_is_named_in_both_cards_and_registered(candidate: Path, store: Path) -> None:
    assert read_card(candidate, "classifier")["version"] == CANDIDATE
    assert read_card(candidate, "segmenter")["version"] == CANDIDATE
    with open_db(store) as db:
        row = get_model(db, CANDIDATE)
        shipped = ensure_shipped(db)
    assert row is not None
    assert (row["kind"], row["parent"], row["active"]) == ("candidate", shipped, False)
    assert (row["version"], row["weights_sha256"]) == folder_identity(candidate)
    assert row["card"]["job"] == 1 and row["card"]["parent"] == shipped


def test_the_default_name_is_readable_and_unused(store: Path) -> None:
    at = dt.datetime(2026, 12, 7, 9, 31)
    with open_db(store) as db:
        assert default_name(db, at) == "centre-20261207-0931"
        register_model(db, version="centre-20261207-0931", path="/m", kind="candidate",
                       parent=None, weights_sha256="a" * 64, card={}, account="boss")  # fmt: skip
        assert default_name(db, at) == "centre-20261207-0931-2"


def test_register_candidate_refuses_bad_folders_names_and_parents(
    candidate: Path, store: Path, model_env: Path, tmp_path: Path
) -> None:
    fresh = model_copy(model_env, tmp_path / "fresh")
    with open_db(store) as db:
        parent = ensure_shipped(db)

        def register(folder: Path, **kw: Any) -> str:
            args = {"parent": parent, "card_extra": None, "account": "boss", **kw}
            return register_candidate(db, folder, **args)

        with pytest.raises(ValueError, match="does not exist"):
            register(tmp_path / "missing")
        with pytest.raises(ValueError, match="name must be"):
            register(fresh, name="has space")
        with pytest.raises(ValueError, match="registered already"):
            register(fresh, name=CANDIDATE)
        with pytest.raises(ValueError, match="parent 'nobody'"):
            register(fresh, parent="nobody")
        with pytest.raises(ValueError, match="registered already, as 'centre-test'"):
            register(candidate, name="again")
        weights = fresh / "classifier.safetensors"
        weights.unlink()
        weights.write_bytes(b"not the weights")
        with pytest.raises(ModelFileError, match=r"classifier\.safetensors: sha256"):
            register(fresh, name="broken")
        assert "version" not in read_card(fresh, "segmenter")  # nothing written


def test_only_an_admin_registers_and_the_cards_stay_untouched(
    store: Path, model_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.auth._HASHER", PasswordHasher(time_cost=1, memory_cost=8192))
    folder = model_copy(model_env, tmp_path / "c")
    with open_db(store) as db:
        create_account(db, username="boss", password="boss-password", role="admin")
        create_account(db, username="dr.lee", password="clinician-pw", role="clinician")
        parent = ensure_shipped(db)  # no role needed
        with pytest.raises(AccessDenied):
            register_candidate(db, folder, parent=parent, card_extra=None, account="dr.lee")
        assert "version" not in read_card(folder, "classifier")
        name = register_candidate(db, folder, parent=parent, card_extra=None, account="boss")
    assert name.startswith("centre-")


def test_promotion_checks_the_folder_on_disk(candidate: Path, store: Path) -> None:
    update_card(candidate, "classifier", version="renamed")
    with open_db(store) as db:
        with pytest.raises(ModelFileError, match="no longer name version 'centre-test'"):
            promote_version(db, CANDIDATE, "boss")
        update_card(candidate, "classifier", version=CANDIDATE)
        shutil.rmtree(candidate)
        with pytest.raises(ModelFileError, match="is missing"):
            promote_version(db, CANDIDATE, "boss")
        assert active_version(db) != CANDIDATE


def test_active_models_reload_only_when_the_version_changes(candidate: Path, store: Path) -> None:
    holder = ActiveModels(device="cpu")
    with open_db(store) as db:
        shipped = holder.get(db)
        assert holder.get(db) is shipped
        promote_version(db, CANDIDATE, "boss")
        new = holder.get(db)
        assert model_identity(new)[0] == CANDIDATE == holder.version
        assert holder.get(db) is new
        rollback(db, "boss")
        assert model_identity(holder.get(db))[0] == model_identity(shipped)[0]


@pytest.fixture
def fresh_model_cache() -> Iterator[None]:
    common._load_models.clear()
    yield
    common._load_models.clear()


def test_the_dashboard_loads_the_version_in_use_at_its_next_run(
    candidate: Path, store: Path, fresh_model_cache: None
) -> None:
    first = common.models()
    assert common.models() is first  # cached per folder and weights
    with open_db(store) as db:
        shipped = active_version(db)
        promote_version(db, CANDIDATE, "boss")
    second = common.models()
    assert model_identity(second)[0] == CANDIDATE and second is not first
    with open_db(store) as db:
        assert rollback(db, "boss") == shipped
    assert common.models() is first  # both versions stay cached


def test_the_dashboard_refuses_a_folder_changed_after_registration(
    candidate: Path, store: Path, fresh_model_cache: None
) -> None:
    with open_db(store) as db:
        promote_version(db, CANDIDATE, "boss")
    for name in ("classifier", "segmenter"):
        update_card(candidate, name, version="edited")
    with pytest.raises(ModelFileError, match="registered it as 'centre-test'"):
        common.models()


@pytest.fixture(scope="module")
def nm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nm") / "scan.dcm"
    write_nm_dicom(path, to_scan(generate_case(5, 0)), uid_seed="active-model-test")
    return path


def test_the_cli_analyses_with_the_version_in_use_unless_given_a_folder(
    candidate: Path, store: Path, model_env: Path, nm_file: Path, tmp_path: Path,
    fake_networks: None,
) -> None:  # fmt: skip
    with open_db(store) as db:
        shipped = ensure_shipped(db)
        promote_version(db, CANDIDATE, "boss")
    second = tmp_path / "second.dcm"
    with_new_uid(pydicom.dcmread(nm_file)).save_as(second)
    assert main(["analyze", str(nm_file), "--db", str(store), "--json"]) == 0
    assert main(["analyze", str(second), "--db", str(store), "--model", str(model_env)]) == 0
    assert versions_stored(store) == [CANDIDATE, shipped]


def test_the_listener_switches_at_the_next_study_and_keeps_the_one_in_flight(
    candidate: Path, store: Path, nm_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, fake_networks: None,
) -> None:  # fmt: skip
    with open_db(store) as db:
        shipped = ensure_shipped(db)
    real = listener_module.analyze
    calls: list[str] = []

    def promote_while_analysing(scans: Sequence[Any], models: Any, **kw: Any) -> Any:
        if not calls:  # the first study: a promotion lands while it is being analysed
            with open_db(store) as other:
                promote_version(other, CANDIDATE, "boss")
        calls.append(model_identity(models)[0])
        return real(scans, models, **kw)

    monkeypatch.setattr(listener_module, "analyze", promote_while_analysing)
    settings = PacsSettings(ae_title=OUR_AE, listen_port=orthanc.free_port(),
                            allowed_ae=(SENDER,), quarantine_dir=tmp_path / "q")  # fmt: skip
    running = serve(settings, db_path=store, block=False, host="127.0.0.1",
                    spool_dir=tmp_path / "spool")  # fmt: skip
    try:
        ds = pydicom.dcmread(nm_file)
        for _ in range(2):
            assert send(running.port, [with_new_uid(ds)]) == [0]
            assert running.wait_idle(120)
        with open_db(store) as db:
            rollback(db, "boss")
        assert send(running.port, [with_new_uid(ds)]) == [0]
        assert running.wait_idle(120)
    finally:
        running.stop()
    assert calls == [shipped, CANDIDATE, shipped]
    assert versions_stored(store) == [shipped, CANDIDATE, shipped]
    assert not (tmp_path / "q").exists()


def test_a_listener_given_a_folder_keeps_it(
    candidate: Path, store: Path, model_env: Path, nm_file: Path, tmp_path: Path,
    fake_networks: None,
) -> None:  # fmt: skip
    with open_db(store) as db:
        shipped = ensure_shipped(db)
        promote_version(db, CANDIDATE, "boss")
    settings = PacsSettings(ae_title=OUR_AE, listen_port=orthanc.free_port(),
                            allowed_ae=(SENDER,), quarantine_dir=tmp_path / "q")  # fmt: skip
    running = serve(settings, db_path=store, model_dir=model_env, block=False,
                    host="127.0.0.1", spool_dir=tmp_path / "spool")  # fmt: skip
    try:
        assert send(running.port, [pydicom.dcmread(nm_file)]) == [0]
        assert running.wait_idle(120)
    finally:
        running.stop()
    assert versions_stored(store) == [shipped]


def test_the_listen_command_follows_the_store_without_model(
    monkeypatch: pytest.MonkeyPatch, store: Path
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("cli.pacs.serve", lambda settings, **kw: seen.update(kw))
    monkeypatch.setenv("BONESCAN_PACS_ALLOWED_AE", SENDER)
    assert main(["listen", "--db", str(store)]) == 0
    assert seen["model_dir"] is None
    assert main(["listen", "--db", str(store), "--model", "/m"]) == 0
    assert seen["model_dir"] == Path("/m")
