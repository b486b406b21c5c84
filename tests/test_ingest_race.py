"""Two uploads of one file racing each other store one study and one analysis.

The "stored before?" check runs before the (slow) analysis and again inside the write
transaction; the second check is what stops the race.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import workflow.ingest as ingest_module
from core.networks.models import LoadedModels, load_models
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from core.scan import Scan
from db.connection import open_db
from tests.test_pipeline import fake_predict_batch
from workflow.ingest import ingest
from workflow.speed_bench import write_untrained_models


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LoadedModels:
    return load_models(write_untrained_models(tmp_path_factory.mktemp("models")), device="cpu")


def _count(db: object, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[attr-defined]


def test_an_upload_stored_meanwhile_is_not_stored_twice(
    tmp_path: Path, models: LoadedModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    path = tmp_path / "a.dcm"
    write_nm_dicom(path, to_scan(generate_case(3, 1, pattern="multiple")), uid_seed="a")
    files = [("a.dcm", path.read_bytes())]
    store = tmp_path / "s.sqlite"
    real_read = ingest_module.read_uploaded
    other: list[object] = []
    started: list[bool] = []

    def read_while_another_upload_lands(given: list[tuple[str, bytes]]) -> Scan:
        # The first upload has passed its first check; the same file now arrives
        # through another connection and is stored completely.
        if not started:
            started.append(True)
            with open_db(store) as second:
                other.append(ingest(second, given, models=models, account="other"))
        return real_read(given)

    monkeypatch.setattr(ingest_module, "read_uploaded", read_while_another_upload_lands)
    with open_db(store) as db:
        first = ingest(db, files, models=models, account="test")
        (winner,) = other
        assert winner.created  # type: ignore[attr-defined]
        assert not first.created and first.result is None
        assert (first.study_id, first.analysis_id) == (
            winner.study_id,  # type: ignore[attr-defined]
            winner.analysis_id,  # type: ignore[attr-defined]
        )
        for table in ("patients", "studies", "analyses"):
            assert _count(db, table) == 1, table
