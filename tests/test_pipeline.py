"""The analysis pipeline: analyze() end to end, records, and ingest's one transaction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from core.analysis import STAGES, analyze, pseudonym_for
from core.config import COLS, LABEL_METASTASIS, ROWS, VIEWS
from core.networks.inference import Prediction
from core.networks.models import (
    LoadedModels,
    load_models,
)
from core.phantom.generate import generate_case, to_scan
from core.scan import Scan, ScanMeta
from db.connection import open_db
from workflow.ingest import ingest, to_records
from workflow.speed_bench import write_untrained_models


def save_untrained(folder: Path) -> Path:
    """Write untrained models (fixed seed) into ``folder``."""
    return write_untrained_models(folder)


def fake_predict_batch(
    models: LoadedModels, scans: Sequence[Mapping[str, np.ndarray]], *_: object, **__: object
) -> list[Prediction]:
    """Stand-in for the networks: metastasis = pixels above the view's 99.7th percentile."""
    out = []
    for views in scans:
        masks = {
            v: (np.asarray(a) > np.percentile(a, 99.7)).astype(np.uint8) * LABEL_METASTASIS
            for v, a in views.items()
        }
        out.append(
            Prediction(
                probabilities={"metastasis": 0.9, "bladder": 0.2},
                positive={"metastasis": True, "bladder": False},
                thresholds={"metastasis": 0.5, "bladder": 0.5},
                crop_origins=(),
                crop_probabilities={},
                masks=masks,
                masks_ungated=masks,
            )
        )
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LoadedModels:
    return load_models(save_untrained(tmp_path_factory.mktemp("models")), device="cpu")


@pytest.fixture(scope="module")
def phantom() -> Scan:
    return to_scan(generate_case(3, 1, pattern="multiple"))


def noise_scan() -> Scan:
    rng = np.random.default_rng(0)
    views = {v: rng.poisson(3.0, (ROWS, COLS)).astype(np.float32) for v in VIEWS}
    return Scan(views=views, meta=ScanMeta(source_format="phantom"))


def test_analyze_with_untrained_models_end_to_end(models: LoadedModels, phantom: Scan) -> None:
    (r,) = analyze([phantom], models, read_seconds=[0.01])
    assert r.quality.ok and r.reliable
    assert set(r.probabilities) == {"metastasis", "bladder"}
    assert all(0.0 <= p <= 1.0 for p in r.probabilities.values())
    for view in VIEWS:
        m = r.masks[view]
        assert m.shape == (ROWS, COLS) and m.dtype == np.uint8
        assert set(np.unique(m)) <= {0, 1, 2}
    assert set(r.timings) == set(STAGES) - {"store"}
    assert all(t >= 0 for t in r.timings.values()) and r.seconds > 0
    assert r.timings["read"] == 0.01
    assert r.bstbi is not None and 0.0 <= r.bstbi <= 1.0
    assert set(r.bstbi_images or {}) == {(v, lvl) for v in VIEWS for lvl in (1, 2)}
    assert r.device.startswith("CPU")
    assert len(r.weights_sha256) == 64 and r.model_version


def test_lesions_regions_and_burden(
    models: LoadedModels, phantom: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    (r,) = analyze([phantom], models)
    assert r.lesions and r.hotspots == len(r.lesions)
    spacing = phantom.meta.pixel_spacing_mm
    assert spacing is not None
    px_cm2 = spacing[0] * spacing[1] / 100.0
    total_px = sum(int((r.masks[v] == LABEL_METASTASIS).sum()) for v in VIEWS)
    assert r.lesion_area_cm2 == pytest.approx(total_px * px_cm2)
    assert sum(les.area_px for les in r.lesions) == total_px
    for les in r.lesions:
        assert les.area_cm2 == pytest.approx(les.area_px * px_cm2)
        assert les.uptake_ratio is None or les.uptake_ratio > 0
        assert isinstance(les.region, str) and les.region
    assert r.bstbi is not None and r.bstbi > 0
    assert r.bstbi == pytest.approx(np.mean(list((r.bstbi_images or {}).values())))


def test_default_spacing_is_used_and_said(
    models: LoadedModels, phantom: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    bare = Scan(views=phantom.views, meta=ScanMeta(source_format="png"))
    (r,) = analyze([bare], models, pixel_spacing_default=(2.0, 3.0))
    assert r.pixel_spacing_mm == (2.0, 3.0)
    assert any("pixel spacing" in n for n in r.notes)
    px = sum(les.area_px for les in r.lesions)
    assert r.lesion_area_cm2 == pytest.approx(px * 0.06)


def test_unreliable_scan_keeps_raw_burden_only(
    models: LoadedModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    (r,) = analyze([noise_scan()], models)
    assert not r.quality.ok and not r.reliable
    assert r.bstbi is None and r.bstbi_images is None
    assert r.hotspots is None and r.lesion_area_cm2 is None
    assert math.isfinite(r.raw_bstbi) and set(r.raw_bstbi_images)
    record, masks, lesions = to_records(r)
    assert record.bstbi is None and dict(record.bstbi_images) == {}
    assert record.quality == r.quality.reason != "ok"
    assert set(masks) == set(VIEWS) and len(lesions) == len(r.lesions)


def test_bad_arguments_are_refused(models: LoadedModels, phantom: Scan) -> None:
    with pytest.raises(ValueError, match="pixel_spacing_default"):
        analyze([phantom], models, pixel_spacing_default=(0.0, 1.0))
    with pytest.raises(ValueError, match="read_seconds"):
        analyze([phantom], models, read_seconds=[1.0, 2.0])
    assert analyze([], models) == []


def _dicom_bytes(tmp_path: Path, scan: Scan, name: str) -> tuple[str, bytes]:
    from core.reading.dicom import write_nm_dicom

    path = tmp_path / name
    write_nm_dicom(path, scan, uid_seed=name)
    return name, path.read_bytes()


def _count(db: object, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[attr-defined]


def test_ingest_stores_everything_and_deduplicates(
    tmp_path: Path, models: LoadedModels, phantom: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    files = [_dicom_bytes(tmp_path, phantom, "a.dcm")]
    with open_db(tmp_path / "s.sqlite") as db:
        first = ingest(db, files, models=models, account="test")
        assert first.created and first.result is not None
        n_lesions = len(first.result.lesions)
        assert n_lesions > 0
        assert _count(db, "lesions") == n_lesions and _count(db, "masks") == 2
        row = db.execute("SELECT pseudonym, synthetic FROM patients").fetchone()
        assert row[0] == pseudonym_for(phantom.meta.patient_id, "0" * 64)
        assert row[1] == 1  # the phantom's DICOM names the phantom as manufacturer
        again = ingest(db, files, models=models, account="test")
        assert not again.created and again.result is None
        assert (again.study_id, again.analysis_id) == (first.study_id, first.analysis_id)
        assert _count(db, "studies") == 1 and _count(db, "analyses") == 1


def test_ingest_failure_leaves_nothing(
    tmp_path: Path, models: LoadedModels, phantom: Scan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("workflow.ingest.store_analysis", broken)
    files = [_dicom_bytes(tmp_path, phantom, "b.dcm")]
    with open_db(tmp_path / "s.sqlite") as db:
        with pytest.raises(RuntimeError, match="disk full"):
            ingest(db, files, models=models, account="test")
        for table in ("patients", "studies", "views", "analyses", "lesions"):
            assert _count(db, table) == 0, table


def test_pseudonym_never_holds_the_id() -> None:
    p = pseudonym_for("12345678", "ab" * 32)
    assert p.startswith("P-") and "12345678" not in p
    assert p == pseudonym_for(" 12345678 ", "cd" * 32)
    assert pseudonym_for(None, "ab" * 32) == "F-" + "ab" * 6
