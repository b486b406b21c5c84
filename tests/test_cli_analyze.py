"""``python -m core analyze``: JSON lines, storing, masks, bad files, no model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli import main
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from tests.test_pipeline import fake_predict_batch, save_untrained

KEYS = {
    "file", "quality", "metastasis_probability", "bladder_probability", "metastasis", "bstbi",
    "bstbi_images", "hotspots", "lesion_area_cm2", "seconds", "device",
}  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_untrained(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def dicom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = generate_case(3, 1, pattern="multiple")
    path = tmp_path_factory.mktemp("scans") / "case1.dcm"
    write_nm_dicom(path, to_scan(case), uid_seed=case.case_id)
    return path


def test_json_lines_store_and_masks(
    tmp_path: Path,
    model_dir: Path,
    dicom: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not a scan at all")
    db_path, masks = tmp_path / "s.sqlite", tmp_path / "masks"
    argv = ["analyze", str(bad), str(dicom), "--json", "--model", str(model_dir)]
    code = main([*argv, "--db", str(db_path), "--masks", str(masks)])
    out, err = capsys.readouterr()
    assert code == 2  # the bad file, reported at the end
    assert "bad.dcm" in err
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert set(line) >= KEYS
    assert line["quality"] == "ok" and line["file"].endswith("case1.dcm")
    assert set(line["bstbi_images"]) == {"ANT_1", "ANT_2", "POST_1", "POST_2"}
    assert line["hotspots"] > 0 and line["seconds"] > 0 and line["stored"] is True
    with open_db(db_path) as db:
        names = [r[0] for r in db.execute("SELECT source_name FROM studies").fetchall()]
        assert names == ["case1.dcm"]  # nothing stored for the bad file
        assert db.execute("SELECT count(*) FROM analyses").fetchone()[0] == 1
    for view in ("ANT", "POST"):
        png = np.asarray(Image.open(masks / f"case1_{view}_mask.png"))
        assert png.shape == (1024, 256) and png.dtype == np.uint8
        assert set(np.unique(png)) <= {0, 1, 2} and (png == 1).any()
    # the same file again: recognised, not stored twice
    assert main([*argv[:1], str(dicom), "--json", "--model", str(model_dir), "--db",
                 str(db_path)]) == 0  # fmt: skip
    again = json.loads(capsys.readouterr().out)
    assert again["stored"] is False and again["study_id"] == line["study_id"]


def test_no_model_says_how_to_train(
    tmp_path: Path, dicom: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["analyze", str(dicom), "--model", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no usable model" in err and "python -m core train" in err


def test_no_input_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze"]) == 2
    assert "no scan given" in capsys.readouterr().err


def test_a_scan_refused_by_the_quality_gate_gets_no_call(
    tmp_path: Path,
    model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    scan = to_scan(generate_case(3, 1))
    rng = np.random.default_rng(0)
    noise = {v: rng.poisson(3.0, a.shape).astype(np.float32) for v, a in scan.views.items()}
    path = tmp_path / "noise.dcm"
    write_nm_dicom(path, dataclasses.replace(scan, views=noise), uid_seed="noise")
    assert main(["analyze", str(path), "--json", "--model", str(model_dir)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["quality"] != "ok" and "noise" in line["quality"]
    # the networks' probability is printed, but neither a call nor a burden is made
    assert 0.0 <= line["metastasis_probability"] <= 1.0
    assert line["metastasis"] is None and line["bstbi"] is None and line["hotspots"] is None
