"""The Model lab page: an admin cancels the running fine-tune; its process stops and the
page says the model in use did not change."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from db import jobs as job_store
from db.connection import open_db
from tests.conftest import APP
from tests.test_page_login import all_text
from tests.test_page_model_lab import PAGE, _button, _labels, lab  # noqa: F401 (fixture)
from workflow import jobs


def test_an_admin_cancels_the_running_fine_tune(
    lab: Path,  # noqa: F811 (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runners: list[subprocess.Popen[bytes]] = []

    def spawn(db_path: Path, job: job_store.Job) -> int:
        # a stand-in runner in a session of its own, as jobs._spawn starts the real one
        Path(job.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(job.out_dir) / jobs.LAUNCH_NAME).write_text("{}")
        runners.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
        return runners[-1].pid

    monkeypatch.setattr(jobs, "_spawn", spawn)
    try:
        at = AppTest.from_file(APP, default_timeout=120).run()
        at.switch_page(PAGE).run()
        _button(at, "Fine-tune the active model").click().run()
        assert not at.exception
        assert "Cancel this job" in _labels(at)
        with open_db(lab) as db:
            job = job_store.active_job(db)
        assert job is not None and job.pid == runners[0].pid

        _button(at, "Cancel this job").click().run()
        assert not at.exception
        assert runners[0].wait(timeout=10) == -signal.SIGTERM
        with open_db(lab) as db:
            ended = job_store.job(db, job.id)
            assert job_store.active_job(db) is None
        assert (ended.state, ended.message) == ("failed", "cancelled by demo")
        text = all_text(at) + " ".join(e.value for e in at.error)
        assert "cancelled by demo" in text
        assert "The model in use did not change" in text
        assert "Cancel this job" not in _labels(at)
        assert not _button(at, "Fine-tune the active model").disabled
    finally:
        for runner in runners:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
