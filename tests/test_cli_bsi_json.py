"""``python -m core analyze --json``: the Bone Scan Index and each lesion's side.

The skeleton network is stood in for by the phantom's exact maps
(:func:`core.phantom.skeleton_truth.case_label_maps`), the lesion networks by
:func:`tests.test_pipeline.fake_predict_batch`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli import main
from cli.scans import analysis_line
from core.analysis import REGION_FROM_PROPORTIONS, REGION_FROM_SKELETON, result_from_masks
from core.imaging.quality import QualityVerdict
from core.networks.models import LoadedModels, load_models
from core.phantom.generate import generate_case, to_scan
from core.phantom.skeleton_truth import case_label_maps
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from tests.test_pipeline import fake_predict_batch, save_untrained

SEED, INDEX = 3, 1
PROBABILITIES = {"metastasis": 0.9, "bladder": 0.9}
LESION_KEYS = {
    "view", "component", "region", "side", "region_source", "area_px", "area_cm2",
    "uptake_ratio", "centroid_row", "centroid_col",
}  # fmt: skip


@pytest.fixture(scope="module")
def phantom() -> tuple[Any, dict[str, np.ndarray]]:
    case = generate_case(SEED, INDEX, pattern="multiple")
    return case, case_label_maps(SEED, INDEX, pattern="multiple")


def _line(result: Any) -> dict[str, Any]:
    line = analysis_line([Path("case.dcm")], result)
    return dict(json.loads(json.dumps(line)))  # JSON-able as it is printed


def test_a_scan_with_maps_reports_the_bsi_and_its_regions(phantom: tuple[Any, dict]) -> None:
    case, maps = phantom
    result = result_from_masks(to_scan(case), case.masks, PROBABILITIES, skeletons=maps)
    line = _line(result)
    assert result.bsi is not None and line["bsi"] == round(result.bsi, 4) > 0
    assert line["bsi_regions"] == {r: round(p, 4) for r, p in result.bsi_regions.items()}
    assert sum(line["bsi_regions"].values()) == pytest.approx(line["bsi"], abs=1e-3)
    assert len(line["lesions"]) == len(result.lesions) > 0
    assert all(set(les) == LESION_KEYS for les in line["lesions"])
    on_bone = [les for les in line["lesions"] if les["region_source"] == REGION_FROM_SKELETON]
    assert on_bone and all(les["side"] in ("left", "right", "mid") for les in on_bone)


def test_a_refused_scan_has_no_bsi_but_keeps_its_lesions(phantom: tuple[Any, dict]) -> None:
    case, maps = phantom
    refused = QualityVerdict(ok=False, reason="no body in the field", code="no_body")
    result = result_from_masks(
        to_scan(case), case.masks, PROBABILITIES, skeletons=maps, verdict=refused
    )
    line = _line(result)
    assert result.raw_bsi is not None
    assert line["bsi"] is None and line["bsi_regions"] is None and line["bstbi"] is None
    assert len(line["lesions"]) == len(result.lesions) > 0


def test_without_a_skeleton_network_bsi_is_null(phantom: tuple[Any, dict]) -> None:
    case, _ = phantom
    line = _line(result_from_masks(to_scan(case), case.masks, PROBABILITIES))
    assert line["bsi"] is None and line["bsi_regions"] is None
    assert {les["region_source"] for les in line["lesions"]} == {REGION_FROM_PROPORTIONS}
    assert {les["side"] for les in line["lesions"]} == {None}


def test_analyze_prints_and_stores_the_bsi(
    tmp_path: Path,
    phantom: tuple[Any, dict],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case, maps = phantom
    dicom = tmp_path / "case1.dcm"
    write_nm_dicom(dicom, to_scan(case), uid_seed=case.case_id)
    model_dir = save_untrained(tmp_path / "models")

    def with_skeleton(*args: Any, **kwargs: Any) -> LoadedModels:
        models = load_models(*args, **kwargs)
        models.skeleton = (object(), None)  # type: ignore[assignment]
        models.skeleton_card = {"weights": {"sha256": "cd" * 32}}
        return models

    monkeypatch.setattr("cli.scans.load_models", with_skeleton)
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    monkeypatch.setattr("core.analysis.skeleton_labels", lambda _models, _views: maps)
    db_path = tmp_path / "s.sqlite"
    argv = ["analyze", str(dicom), "--model", str(model_dir), "--db", str(db_path)]
    assert main([*argv, "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["quality"] == "ok" and line["stored"] is True
    assert isinstance(line["bsi"], float) and line["bsi"] > 0 and line["bsi_regions"]
    assert any(les["region_source"] == REGION_FROM_SKELETON for les in line["lesions"])
    with open_db(db_path) as db:
        bsi, sha = db.execute("SELECT bsi, anatomy_sha256 FROM analyses").fetchone()
        (n_maps,) = db.execute("SELECT count(*) FROM skeleton_maps").fetchone()
        sides = db.execute(
            "SELECT count(*) FROM lesions WHERE region_source = 'skeleton' AND side IS NOT NULL"
        ).fetchone()[0]
    assert round(bsi, 4) == line["bsi"] and sha == "cd" * 32 and n_maps == 2
    assert sides == sum(les["region_source"] == REGION_FROM_SKELETON for les in line["lesions"])
    # text: the lesions as their number, the BSI as it is
    assert main(argv[:4]) == 0
    text = capsys.readouterr().out
    assert f"lesions={len(line['lesions'])}" in text and f"bsi={line['bsi']}" in text
