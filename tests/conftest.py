from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from core.networks.models import LoadedModels


@pytest.fixture(autouse=True)
def _page_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages re-raise unexpected errors after logging them, so AppTest sees the exception.

    In production a page shows a short message with an error id instead of a trace;
    without this, ``assert not at.exception`` could not catch a crashing page.
    """
    monkeypatch.setenv("BONESCAN_DEBUG_ERRORS", "1")


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite path that the app and core.config use for this test."""
    path = tmp_path / "store" / "test.sqlite"
    monkeypatch.setenv("BONESCAN_DB", str(path))
    return path


#: The dashboard's entry script, for Streamlit's AppTest.
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="session")
def untrained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with random weights (valid cards and hashes), written once per run."""
    from workflow.speed_bench import write_untrained_models

    return write_untrained_models(tmp_path_factory.mktemp("untrained-models"))


@pytest.fixture(scope="session")
def untrained_models(untrained_model_dir: Path) -> LoadedModels:
    """The untrained models, loaded once per run on the CPU (do not mutate them)."""
    from core.networks.models import load_models

    return load_models(untrained_model_dir, "cpu")


def body_view(seed: int) -> np.ndarray:
    """A (1024, 256) Poisson view: background 2, a body of 30 and one hot spot of 400."""
    rng = np.random.default_rng(seed)
    lam = np.full((1024, 256), 2.0)
    lam[100:900, 70:190] = 30.0
    lam[550:590, 100:160] = 400.0
    return rng.poisson(lam).astype(np.float32)


@pytest.fixture
def model_env(untrained_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app and the CLI (``$BONESCAN_MODELS``) at the untrained model folder."""
    monkeypatch.setenv("BONESCAN_MODELS", str(untrained_model_dir))
    return untrained_model_dir


@pytest.fixture(scope="session")
def truth_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five demo patients with analyses from phantom truth, built once per run."""
    from tests.store_fixtures import build_truth_store

    return build_truth_store(tmp_path_factory.mktemp("truth-store") / "store.sqlite")


@pytest.fixture
def truth_store(truth_store_template: Path, db_file: Path) -> Path:
    """A private copy of the truth store, set as the app's store ($BONESCAN_DB)."""
    import sqlite3

    db_file.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(truth_store_template)
    dst = sqlite3.connect(db_file)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return db_file
