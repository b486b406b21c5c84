"""The fine-tune job end to end on a few phantom scans: split, train, calibrate, compare,
register; a killed job carries on where it stopped; a failure leaves the model in use."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.evaluation.model_performance import ensure_demo_labelled
from core.networks.models import read_card
from core.networks.trainer import CHECKPOINT_NAME, PROGRESS_NAME
from db import jobs as job_store
from db.connection import open_db
from db.model_registry import active_version, list_models
from workflow import fine_tune
from workflow.model_versions import active_model_dir

#: A fine-tune of a few seconds: two classifier steps and one segmenter step on one small
#: crop each, on the CPU, validated and checkpointed only where a test needs it.
TINY: dict[str, Any] = {
    "steps": 2, "seg_steps": 1, "batch_size": 1, "val_every": 100, "val_cases": 0,
    "checkpoint_every": 100, "seg_crop_rows": 128, "device": "cpu", "amp": False,
}  # fmt: skip
#: Which phantom case (index of the 8 of seed 4242) goes to which split: the
#: calibration and test splits each hold a scan with and one without metastasis.
SPLIT = ["train"] * 4 + ["calibration", "calibration", "test", "test"]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_labelled(tmp_path_factory.mktemp("phantom") / "ds", cases=8)


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untrained_model_dir: Path, db_file: Path
) -> Path:
    """A store, a data folder and a copy of the untrained models as the shipped ones."""
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BONESCAN_MODELS", str(shutil.copytree(untrained_model_dir, tmp_path / "m")))
    return db_file


def fake_export(phantom: Path, split: list[str], calls: list[Path] | None = None) -> Any:
    """An ``export_reviewed`` that writes the phantom set and a split, as the export does."""

    def export(db: Any, out: Path, *, split_seed: int = 0) -> dict[str, Any]:
        if calls is not None:
            calls.append(out)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(phantom, out)
        with (out / "cases.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        with (out / "split.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["case_id", "patient_id", "split"])
            for row, which in zip(rows, split, strict=True):
                writer.writerow([row["case_id"], row["patient_id"], which])
        return {}

    return export


def _new_job(db_file: Path, budget: float = 120.0) -> int:
    with open_db(db_file) as db:
        version, folder = active_model_dir(db)
        return job_store.create_job(db, kind="fine-tune", out_root=db_file.parent / "jobs",
                                    account=None, args={
            "time_budget_s": budget, "parent": version, "init_from": str(folder),
            "overrides": TINY,
        })  # fmt: skip


@pytest.mark.slow
def test_a_killed_job_carries_on_and_registers_a_calibrated_compared_candidate(
    env: Path, phantom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports: list[Path] = []
    monkeypatch.setattr(fine_tune, "export_reviewed", fake_export(phantom, SPLIT, exports))
    real_train = fine_tune.train_from_folder
    sessions: list[dict[str, Any]] = []

    class Killed(BaseException):
        """What SIGKILL does to the runner: no except clause sees it."""

    def train(dataset: Path, out: Path, opts: Any, *, resume: bool) -> Any:
        sessions.append({"checkpoint": (out / CHECKPOINT_NAME).exists(),
                         "budget": opts.time_budget_s})  # fmt: skip
        if len(sessions) == 1:
            real_train(dataset, out, opts, resume=resume, stop_after=1)
            raise Killed
        return real_train(dataset, out, opts, resume=resume)

    monkeypatch.setattr(fine_tune, "train_from_folder", train)
    job_id = _new_job(env, budget=100.0)
    with open_db(env) as db:
        shipped = active_version(db)
    with pytest.raises(Killed):
        fine_tune.run_fine_tune_job(env, job_id)
    with open_db(env) as db:
        killed = job_store.job(db, job_id)
    assert killed.active and killed.message == "training"
    out = Path(killed.out_dir)
    progress = json.loads((out / "candidate" / PROGRESS_NAME).read_text())
    assert (progress["state"], progress["step"]) == ("stopped", 1)

    result = fine_tune.run_fine_tune_job(env, job_id)
    assert len(exports) == 1  # the export was not made again
    assert [s["checkpoint"] for s in sessions] == [False, True]
    # the second session got what the first left of the budget
    assert sessions[1]["budget"] == pytest.approx(100.0 - progress["elapsed_s"])
    assert not (out / "candidate" / CHECKPOINT_NAME).exists()

    with open_db(env) as db:
        done = job_store.job(db, job_id)
        assert done.state == "finished" and done.result == json.loads(json.dumps(result))
        assert active_version(db) == shipped  # a candidate is never promoted by the job
        models = {m["version"]: m for m in list_models(db)}
    candidate = models[result["candidate"]]
    assert (candidate["kind"], candidate["parent"]) == ("candidate", shipped)
    out = Path(done.out_dir)
    assert Path(candidate["path"]) == (out / "candidate").resolve()
    assert result["data"] == {
        "train": {"scans": 4, "with_metastasis": 3, "patients": 4},
        "calibration": {"scans": 2, "with_metastasis": 1, "patients": 2},
        "test": {"scans": 2, "with_metastasis": 1, "patients": 2},
    }
    # each split is a dataset of its own, its images linked inside its folder
    for name in fine_tune.SPLITS:
        text = (out / name / "cases.csv").read_text(encoding="utf-8")
        assert "dicom" not in text.splitlines()[0] and "../" not in text
    assert result["steps"]["classifier"] == 2 and result["steps"]["segmenter"] == 1
    # (d) the threshold chosen on the calibration split is in the candidate's card
    card = read_card(out / "candidate", "classifier")
    threshold = card["config"]["label_thresholds"][0]
    assert threshold == result["calibration"]["threshold"]
    assert "calibration" in card["calibration"]["metastasis_threshold"]["chosen_on"]
    # (e) both models on the test split: the paper's figures, by age, marks per negative
    comparison = result["comparison"]
    assert comparison["test_set"] == {"scans": 2, "with_metastasis": 1, "patients": 2}
    assert comparison["active"]["version"] == shipped
    for side in ("candidate", "active"):
        figures = comparison[side]
        for key in ("sensitivity", "specificity", "accuracy", "ppv", "npv", "auc_metastasis",
                    "dice_metastasis", "marks_per_negative_scan"):  # fmt: skip
            assert key in figures["overall"], key
        assert set(figures["by_age"]) == {"<50", "50-70", ">=70"}
        assert figures["overall"]["tp"] + figures["overall"]["fn"] == 1
        assert figures["overall"]["marks_per_negative_scan"] >= 0
    assert comparison["candidate"]["threshold"] == threshold
    # (f) the registry's card carries the comparison and where it came from
    assert candidate["card"]["fine_tune"]["comparison"] == comparison
    assert candidate["card"]["job"] == job_id
    assert set(candidate["card"]["figures"]) >= {"sensitivity", "specificity"}


def test_a_split_that_cannot_calibrate_fails_the_job_before_training(
    env: Path, phantom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # both calibration scans have metastasis: no threshold can be chosen
    split = ["calibration", "train", "test", "train", "train", "calibration", "test", "train"]
    monkeypatch.setattr(fine_tune, "export_reviewed", fake_export(phantom, split))
    monkeypatch.setattr(fine_tune, "train_from_folder", pytest.fail)
    job_id = _new_job(env)
    with open_db(env) as db:
        before = active_version(db)
    with pytest.raises(ValueError, match="the calibration split holds 2 scan"):
        fine_tune.run_fine_tune_job(env, job_id)
    with open_db(env) as db:
        failed = job_store.job(db, job_id)
        assert failed.state == "failed"
        assert failed.message.startswith("splitting them into train, calibration and test: ")
        assert "scans with and without metastasis" in failed.message
        assert active_version(db) == before
        assert [m["kind"] for m in list_models(db)] == ["shipped"]


def test_the_budget_counts_every_training_session_once(tmp_path: Path) -> None:
    (tmp_path / "candidate").mkdir()
    progress = tmp_path / "candidate" / PROGRESS_NAME
    assert fine_tune._seconds_spent(tmp_path) == 0.0
    progress.write_text(json.dumps({"state": "running", "step": 3, "elapsed_s": 40.0}))
    assert fine_tune._seconds_spent(tmp_path) == 40.0
    assert fine_tune._seconds_spent(tmp_path) == 40.0  # the same record is not added twice
    progress.write_text(json.dumps({"state": "running", "step": 5, "elapsed_s": 25.5}))
    assert fine_tune._seconds_spent(tmp_path) == 65.5


def test_only_known_settings_may_be_overridden() -> None:
    with pytest.raises(ValueError, match="overrides: lr_decay may not be set"):
        fine_tune.check_overrides({"lr_decay": 1})
    opts = fine_tune.training_options(30.0, init_from="m", overrides={"seg_crop_rows": 256})
    assert opts.segmenter.train_crop == (256, 256) and opts.time_budget_s == 30.0
    assert not opts.progress and opts.init_from == "m"
    with pytest.raises(ValueError, match="time_budget_s must be a finite number > 0"):
        fine_tune.training_options(0.0, init_from="m")
