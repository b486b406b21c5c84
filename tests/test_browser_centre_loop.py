"""The centre's loop in a real browser: draw a missed lesion, mark the study reviewed,
export it, fine-tune, promote; the pages then show the new version.

The store is a small synthetic cohort analysed by the shipped models, all but one study
already marked reviewed (as a centre's physicians would have done), so that the split
has training, calibration and test patients. The browser does the rest on the one
study left: it opens the review page by its address on a freshly started server (no
"Page not found"), draws a lesion on the canvas, saves it (BSTBI changes), marks the
study reviewed, and on the Model lab page runs a two-step fine-tune and promotes it.
Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from db.annotations import mark_reviewed
from db.connection import open_db
from db.model_registry import active_version
from tests.browser import ARTIFACTS, CHROMIUM_ARGS, ROOT, chromium_path, running_app
from workflow.centre_dataset import case_id_of, export_reviewed
from workflow.demo import seed_demo_cohort

pytestmark = pytest.mark.browser

#: Synthetic patients in the store (each has 2 to 4 studies).
PATIENTS = 8


def _reviewed_store(db_file: Path) -> int:
    """Fill and analyse a store, mark every study reviewed but one; return that study."""
    with open_db(db_file) as db:
        seed_demo_cohort(db, PATIENTS)
    subprocess.run(
        [sys.executable, "-m", "core", "analyze-stored", "--account", "demo-setup", "--quiet"],
        cwd=ROOT, check=True, env={**os.environ, "BONESCAN_DB": str(db_file)},
    )  # fmt: skip
    with open_db(db_file) as db:
        rows = db.execute(
            "SELECT a.id, a.study_id, s.patient_id FROM analyses a "
            "JOIN studies s ON s.id = a.study_id ORDER BY a.id"
        ).fetchall()
        first_patient = min(r[2] for r in rows)
        left = max(r[1] for r in rows if r[2] == first_patient)  # its latest study
        for analysis_id, study_id, _ in rows:
            # the labels only need both kinds within a patient's series (every split must
            # hold scans with and without metastasis); what the models learn is not tested
            if study_id != left:
                mark_reviewed(db, analysis_id, metastasis=study_id % 2 == 0, account="demo")
    return int(left)


@pytest.mark.slow
def test_draw_review_fine_tune_and_promote_in_chromium(
    db_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(tmp_path / "data"))
    left = _reviewed_store(db_file)
    with open_db(db_file) as db:
        shipped = active_version(db)
    with running_app(db_file) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 3300})
        try:
            # the first request of a fresh server is a deep link
            page.goto(f"{url}/review-lesions")
            expect(page.get_by_role("heading", name="Review lesions")).to_be_visible(timeout=90_000)
            expect(page.get_by_text("Page not found")).to_have_count(0)

            # 1. draw a missed lesion on the right ribs of the anterior view (the canvas
            # shows its top 820 pixels, head to thighs, and scrolls); BSTBI changes
            canvas = page.locator("canvas.upper-canvas")
            canvas.wait_for(timeout=90_000)
            page.wait_for_timeout(3000)  # the canvas loads its background
            box = canvas.bounding_box()
            assert box is not None
            corners = [(0.62, 300), (0.72, 300), (0.72, 360), (0.62, 360), (0.62, 300)]
            for fx, y in corners:
                page.mouse.click(box["x"] + fx * box["width"], box["y"] + y)
                page.wait_for_timeout(400)
            expect(page.get_by_text(re.compile(r"Drawn: \d+ scan pixels on ANT"))).to_be_visible(
                timeout=60_000
            )
            save = page.get_by_role("button", name="Save: draw a missed lesion")
            expect(save).to_be_enabled(timeout=60_000)
            save.click()
            notice = page.get_by_text(re.compile(r"Drew ANT lesion \d+: BSTBI"))
            expect(notice).to_be_visible(timeout=60_000)
            before, after = map(
                float, re.findall(r"BSTBI (\d+\.\d+) (?:->|→) (\d+\.\d+)", notice.inner_text())[0]
            )
            assert after > before
            page.screenshot(path=str(ARTIFACTS / "centre_drawn.png"), full_page=True)

            # 2. mark it reviewed (the physician's label: metastasis)
            page.get_by_text("Metastasis", exact=True).click()
            page.get_by_role("button", name="Mark this study reviewed").click()
            expect(page.get_by_text(re.compile("Marked reviewed by demo"))).to_be_visible(
                timeout=60_000
            )
            with open_db(db_file) as db:
                summary = export_reviewed(db, tmp_path / "export")
            cases = (tmp_path / "export" / "cases.csv").read_text()
            assert f"{case_id_of(left)}," in cases, summary

            # 3. a small fine-tune from the Model lab page
            page.get_by_role("link", name="Model lab").click()
            expect(page.get_by_role("heading", name="Model lab")).to_be_visible(timeout=60_000)
            page.get_by_text("Advanced").click()
            steps = page.get_by_role(
                "spinbutton", name=re.compile("At most this many training steps")
            )
            steps.fill("2")
            steps.press("Enter")
            budget = page.get_by_role("spinbutton", name="Training time budget (minutes)")
            budget.fill("2")
            budget.press("Enter")
            page.get_by_role("button", name="Fine-tune the active model").click()
            expect(
                page.get_by_text(re.compile(r"The last fine-tune \(job \d+\) finished"))
            ).to_be_visible(timeout=600_000)
            page.screenshot(path=str(ARTIFACTS / "centre_finished.png"), full_page=True)

            # 4. promote it; the page and the store show the new version
            page.get_by_text(re.compile("I have compared .* with the model in use")).click()
            page.get_by_role("button", name="Promote").click()
            expect(page.get_by_text(re.compile(r"is now the model in use"))).to_be_visible(
                timeout=60_000
            )
            with open_db(db_file) as db:
                promoted = active_version(db)
            assert promoted and promoted != shipped
            page.get_by_role("link", name="Model performance").click()
            expect(page.get_by_text(promoted).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "centre_promoted.png"), full_page=True)
        finally:
            page.screenshot(path=str(ARTIFACTS / "centre_last.png"), full_page=True)
            browser.close()
