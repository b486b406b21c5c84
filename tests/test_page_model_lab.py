"""The Model lab page: reviewed scans, a fine-tune started and followed, the candidate
beside the active model, promote and roll back (confirmed, audited), viewers read only."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.evaluation.model_performance import paper_figures
from db import jobs as job_store
from db.annotations import mark_reviewed
from db.connection import open_db
from db.model_registry import active_version
from tests.conftest import APP
from tests.test_page_login import add_account, all_text, sign_in
from ui.model_lab import LabKeys
from workflow import jobs
from workflow.model_versions import ensure_shipped, register_candidate
from workflow.speed_bench import write_untrained_models

PAGE = "app_pages/model_lab.py"


@pytest.fixture
def lab(
    truth_store: Path, model_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The truth store, every analysis marked reviewed; jobs under a private data folder."""
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(tmp_path / "data"))
    with open_db(truth_store) as db:
        rows = db.execute("SELECT id, metastasis_probability FROM analyses ORDER BY id").fetchall()
        for analysis_id, probability in rows:
            mark_reviewed(db, analysis_id, metastasis=probability > 0.5, account="dr.lee")
    return truth_store


def _open(at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def _figures(marks: float) -> dict[str, Any]:
    figures = copy.deepcopy(paper_figures())
    figures["overall"]["marks_per_negative_scan"] = marks
    for group in figures["by_age"].values():
        group["marks_per_negative_scan"] = marks
    return figures


def _finished_fine_tune(db_file: Path, tmp_path: Path, account: str | None) -> tuple[str, str]:
    """A registered candidate (other random weights) and the finished job that made it."""
    folder = write_untrained_models(tmp_path / "candidate", seed=1)
    with open_db(db_file) as db:
        shipped = ensure_shipped(db)
        comparison = {
            "test_set": {"scans": 123, "with_metastasis": 54, "patients": 123},
            "candidate": _figures(0.25),
            "active": {"version": shipped, **_figures(1.5)},
        }
        result = {"parent": shipped, "comparison": comparison,
                  "calibration": {"threshold": 0.71, "scans": 40},
                  "data": {"train": {"scans": 300}}, "steps": {"classifier": 400,
                                                                "segmenter": 400}}  # fmt: skip
        version = register_candidate(
            db, folder, parent=shipped, account=account or "demo", name="centre-1",
            card_extra={"figures": {"sensitivity": 0.93, "specificity": 0.86}},
        )  # fmt: skip
        job_id = job_store.create_job(
            db, kind="fine-tune", args={}, out_root=tmp_path / "jobs", account=account
        )
        job_store.finish(db, job_id, {"candidate": version, **result})
    return shipped, version


def test_the_reviewed_scans_and_the_split_they_would_make(lab: Path) -> None:
    at = _open()
    metrics = {m.label: m.value for m in at.metric}
    with open_db(lab) as db:
        reviewed = db.execute("SELECT count(*) FROM analyses").fetchone()[0]
        positive = db.execute(
            "SELECT count(*) FROM analyses WHERE reviewed_metastasis = 1"
        ).fetchone()[0]
    assert metrics["Reviewed scans"] == str(reviewed)
    assert metrics["With metastasis"] == str(positive)
    assert metrics["Patients"] == "5"
    split = next(d.value for d in at.dataframe if "split" in d.value.columns)
    assert split["split"].tolist() == ["train", "calibration", "test"]
    assert split["scans"].sum() == reviewed
    assert "No job has run yet." in [c.value for c in at.caption]
    assert "Fine-tune the active model" in _labels(at)  # demo mode: every control shows


def test_an_admin_starts_a_fine_tune_and_follows_its_progress(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[int] = []

    def spawn(db_path: Path, job: job_store.Job) -> int:
        launched.append(job.id)
        return os.getpid()  # a live pid: the job counts as just launched

    monkeypatch.setattr(jobs, "_spawn", spawn)
    at = _open()
    next(n for n in at.number_input if n.key == LabKeys.BUDGET).set_value(5)
    _button(at, "Fine-tune the active model").click().run()
    assert not at.exception
    with open_db(lab) as db:
        job = job_store.active_job(db)
    assert job is not None and launched == [job.id]
    assert job.args["time_budget_s"] == 300.0 and job.started_by == "demo"
    assert [s.value for s in at.success] == [
        f"Fine-tune job {job.id} started (5 minutes of training)."
    ]
    assert _button(at, "Fine-tune the active model").disabled  # one job at a time
    assert _button(at, "Re-analyse the cohort with the active model").disabled

    progress = Path(job.out_dir) / "candidate" / "progress.json"
    progress.parent.mkdir(parents=True)
    history = [{"step": 100.0, "auc_metastasis": 0.8, "dice_metastasis": 0.5},
               {"step": 200.0, "auc_metastasis": 0.85, "dice_metastasis": 0.55}]  # fmt: skip
    progress.write_text(json.dumps({
        "state": "running", "step": 200, "total": 400, "elapsed_s": 600.0, "eta_s": 600.0,
        "loss": {"loss_c": 0.2}, "validation_history": history, "notes": ["time budget: cut"],
    }))  # fmt: skip
    with open_db(lab) as db:
        job_store.set_message(db, job.id, "training")
    _button(at, "Refresh").click().run()
    assert not at.exception
    text = all_text(at)
    assert f"Fine-tune, job {job.id}" in text and "training" in text
    assert "200 of 400 steps" in text
    assert {m.label: m.value for m in at.metric}["Time left (estimate)"] == "10 min"
    curve = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(curve) == 1 and "AUC metastasis" in curve[0] and "Dice metastasis" in curve[0]

    # the job fails: the page says why, and that the model in use did not change
    with open_db(lab) as db:
        job_store.fail(db, job.id, "calibrating the candidate's threshold: no scan")
    at.run()
    error = " ".join(e.value for e in at.error)
    assert "failed: calibrating the candidate's threshold: no scan" in error
    assert "The model in use did not change" in error
    assert not _button(at, "Fine-tune the active model").disabled


def test_the_candidate_beside_the_active_model_then_promote_and_roll_back(
    lab: Path, tmp_path: Path
) -> None:
    shipped, candidate = _finished_fine_tune(lab, tmp_path, None)
    at = _open()
    table = next(d.value for d in at.dataframe if "model" in d.value.columns)
    assert table["model"].tolist()[:2] == [f"candidate {candidate}", f"active {shipped}"]
    assert table["group"].tolist() == ["<50"] * 2 + ["50-70"] * 2 + [">=70"] * 2 + ["all"] * 2
    assert table["Marks per negative scan"].tolist()[-2:] == ["0.25", "1.50"]
    versions = next(d.value for d in at.dataframe if "weights hash" in d.value.columns)
    assert versions["version"].tolist() == [candidate, shipped]
    assert versions["active"].tolist() == ["", "in use"]
    assert versions["figures"].tolist()[0] == "sensitivity 0.930, specificity 0.860"

    promote = _button(at, "Promote")
    assert promote.disabled  # until the confirmation is ticked
    next(c for c in at.checkbox if c.key == LabKeys.PROMOTE_CONFIRM).check().run()
    _button(at, "Promote").click().run()
    assert not at.exception
    with open_db(lab) as db:
        assert active_version(db) == candidate
        audit = db.execute(
            "SELECT account, after_json FROM audit_log WHERE action = 'promote_model'"
        ).fetchall()
    assert audit == [("demo", json.dumps({"version": candidate}))]
    assert f"{candidate} is now the model in use" in at.success[0].value

    assert _button(at, "Roll back").disabled
    next(c for c in at.checkbox if c.key == LabKeys.ROLLBACK_CONFIRM).check().run()
    _button(at, "Roll back").click().run()
    with open_db(lab) as db:
        assert active_version(db) == shipped
    assert f"Rolled back: {shipped} is the model in use again." == at.success[0].value

    # a candidate whose folder is gone is refused with the reason
    shutil.rmtree(tmp_path / "candidate")
    next(c for c in at.checkbox if c.key == LabKeys.PROMOTE_CONFIRM).check().run()
    _button(at, "Promote").click().run()
    assert not at.exception
    assert f"{candidate} was not promoted" in at.error[0].value
    assert "missing" in at.error[0].value
    with open_db(lab) as db:
        assert active_version(db) == shipped


def test_a_viewer_sees_everything_read_only(lab: Path, tmp_path: Path) -> None:
    add_account(lab, "lee", "admin")
    add_account(lab, "kim", "viewer")
    _, candidate = _finished_fine_tune(lab, tmp_path, "lee")
    at = sign_in(AppTest.from_file(APP, default_timeout=120).run(), "kim")
    at = _open(at)
    assert [s.value for s in at.subheader][:2] == [
        "The centre's reviewed scans",
        "Fine-tune the active model",
    ]
    assert any(d.value.columns[0] == "model" for d in at.dataframe)  # the comparison
    versions = next(d.value for d in at.dataframe if "weights hash" in d.value.columns)
    assert candidate in versions["version"].tolist()
    labels = _labels(at)
    for action in ("Fine-tune the active model", "Promote", "Roll back",
                   "Re-analyse the cohort with the active model"):  # fmt: skip
        assert action not in labels
    read_only = [c.value for c in at.caption if c.value.startswith("Read only")]
    assert len(read_only) == 3
    assert "may not fine-tune, promote or roll back models" in read_only[0]


def test_opening_the_page_relaunches_a_job_whose_process_died(
    lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[int] = []

    def spawn(db_path: Path, job: job_store.Job) -> int:
        launched.append(job.id)
        return os.getpid()

    monkeypatch.setattr(jobs, "_spawn", spawn)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with open_db(lab) as db:
        job_id = job_store.create_job(db, kind="fine-tune", args={}, account=None,
                                      out_root=tmp_path / "jobs", pid=dead.pid)  # fmt: skip
        job_store.mark_running(db, job_id, dead.pid)
    at = _open()
    assert launched == [job_id]
    assert any(f"Job {job_id} had stopped" in i.value for i in at.info)
    at.run()  # the relaunched process counts as alive: not launched twice
    assert launched == [job_id]
