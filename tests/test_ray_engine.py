"""The Ray engine analyses stored studies exactly as the plain path does, once each."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cli import main
from core.networks.models import load_models
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from db.queries import study_with_masks
from workflow import ray_engine
from workflow.demo import seed_demo_cohort
from workflow.ingest import analyze_stored
from workflow.ray_engine import analyze_stored_ray, ray_available, ray_session

needs_ray = pytest.mark.skipif(not ray_available(), reason="Ray is not installed")

#: Analysis columns that must be equal, not merely close, between the engines.
EXACT = (
    "quality", "metastasis_probability", "metastasis_threshold", "bladder_probability",
    "bstbi", "hotspots", "lesion_area_cm2", "model_version", "weights_sha256",
)  # fmt: skip


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray (2 CPUs) for the module, shut down after it."""
    if not ray_available():
        pytest.skip("Ray is not installed")
    with ray_session(num_cpus=2):
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two demo patients' studies (no analysis), to copy per test."""
    path = tmp_path_factory.mktemp("ray-store") / "template.sqlite"
    with open_db(path) as db:
        seed_demo_cohort(db, 2)
    return path


def _copy(template: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, to)
    return to


def _stored(path: Path) -> dict[int, dict]:
    with open_db(path) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM studies ORDER BY id").fetchall()]
        return {i: study_with_masks(db, i) for i in ids}


@needs_ray
def test_ray_results_equal_the_plain_path(
    local_ray: None, template: Path, untrained_model_dir: Path, tmp_path: Path
) -> None:
    plain = _copy(template, tmp_path / "plain.sqlite")
    on_ray = _copy(template, tmp_path / "ray.sqlite")
    with open_db(plain) as db:
        models = load_models(untrained_model_dir, device="cpu")
        plain_ids = analyze_stored(db, models, account="test", batch=2)
    ray_ids = analyze_stored_ray(
        on_ray, untrained_model_dir, account="test", workers=2, batch=2, device="cpu"
    )
    assert len(ray_ids) == len(plain_ids) > 4
    a, b = _stored(plain), _stored(on_ray)
    assert a.keys() == b.keys()
    for study_id in a:
        x, y = a[study_id], b[study_id]
        for column in EXACT:
            assert x["analysis"][column] == y["analysis"][column], (study_id, column)
        assert x["analysis"]["bstbi_images"] == y["analysis"]["bstbi_images"]
        assert x["masks"].keys() == y["masks"].keys() and x["masks"]
        for view, mask in x["masks"].items():
            assert np.array_equal(mask, y["masks"][view]), (study_id, view)
        keys = ("view", "component", "area_px", "skeletal_region")
        assert [[les[k] for k in keys] for les in x["lesions"]] == [
            [les[k] for k in keys] for les in y["lesions"]
        ]


@needs_ray
def test_a_restart_stores_the_rest_once(
    local_ray: None, template: Path, untrained_model_dir: Path, tmp_path: Path
) -> None:
    path = _copy(template, tmp_path / "restart.sqlite")
    seen: list[tuple[int, int]] = []
    first = analyze_stored_ray(
        path, untrained_model_dir, account="test", batch=2, limit=3, device="cpu",
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert len(first) == 3 and seen[-1] == (3, 3)
    rest = analyze_stored_ray(path, untrained_model_dir, account="test", batch=2, device="cpu")
    again = analyze_stored_ray(path, untrained_model_dir, account="test", device="cpu")
    assert again == [] and not set(first) & set(rest)
    with open_db(path) as db:
        studies = db["studies"].count
        assert len(first) + len(rest) == studies
        per_study = db.execute("SELECT count(*) FROM analyses GROUP BY study_id").fetchall()
        assert len(per_study) == studies and {r[0] for r in per_study} == {1}


@needs_ray
def test_cli_analyze_stored_and_analyze_on_ray(
    local_ray: None,
    template: Path,
    model_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _copy(template, tmp_path / "cli.sqlite")
    args = ["analyze-stored", "--db", str(path), "--engine", "ray", "--quiet", "--device", "cpu"]
    assert main(args) == 0
    assert "analysed 7 stored studies" in capsys.readouterr().out
    with open_db(path) as db:
        assert db["analyses"].count == db["studies"].count

    case = generate_case(3, 1, pattern="multiple")
    dicom = tmp_path / "case1.dcm"
    write_nm_dicom(dicom, to_scan(case), uid_seed=case.case_id)
    lines = []
    for engine in ("local", "ray"):
        argv = ["analyze", str(dicom), tmp_path / "missing.dcm", "--json", "--device", "cpu"]
        assert main([str(a) for a in argv] + ["--engine", engine]) == 2  # the missing file
        out = capsys.readouterr()
        assert "missing.dcm" in out.err
        (line,) = (json.loads(s) for s in out.out.splitlines())
        line.pop("seconds"), line.pop("device")  # threads differ per worker
        lines.append(line)
    assert lines[0] == lines[1]


def test_without_ray_the_commands_say_how_to_install_it(
    db_file: Path,
    model_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with open_db(db_file) as db:
        seed_demo_cohort(db, 1)
        studies = db["studies"].count
    monkeypatch.setattr(ray_engine, "ray", None)
    assert main(["analyze-stored", "--db", str(db_file), "--engine", "ray", "--quiet"]) == 2
    assert "pip install -r requirements-scale.txt" in capsys.readouterr().err
    assert main(["analyze", str(db_file), "--engine", "ray"]) == 2
    assert "pip install -r requirements-scale.txt" in capsys.readouterr().err
    with open_db(db_file) as db:
        assert db["analyses"].count == 0 and db["studies"].count == studies
    with pytest.raises(ray_engine.RayUnavailableError):
        analyze_stored_ray(db_file, model_env, account="test")
