"""The one real-browser test: Chromium (via Playwright) against a running dashboard.

On a fresh temporary store it reads a file, uploads a generated DICOM, waits for the
overlays and the BSTBI, and follows the new patient's trajectory; screenshots land in
``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydicom.data import get_testdata_file

from tests.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_path, running_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def _phantom_dicom(folder: Path) -> Path:
    from core.phantom.generate import generate_case, to_scan
    from core.reading.dicom import write_nm_dicom

    path = folder / "phantom-scan.dcm"
    write_nm_dicom(path, to_scan(generate_case(77, 3, metastasis=True)), uid_seed="browser")
    return path


def _tall_screenshot(page: Page, path: Path) -> None:
    """Screenshot the whole page (Streamlit scrolls inside its own container, not the page)."""
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.wait_for_timeout(1500)  # let images and the plot re-layout
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_upload_a_scan_and_follow_the_patient_in_chromium(db_file: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    scan_file = _phantom_dicom(tmp_path)
    with running_app(db_file) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            expect(page.get_by_role("heading", name="Bone-scan tumour burden")).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("Inference device: CPU")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

            # Read the NEMA NM1 whole-body study on the "Read a scan" page.
            page.get_by_role("link", name="Read a scan").click()
            expect(page.get_by_role("heading", name="Read a scan")).to_be_visible(timeout=60_000)
            page.locator("input[type=file]").set_input_files(get_testdata_file("JPEG2000.dcm"))
            expect(page.get_by_text("ANT, grey level 2")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("GE Medical Systems")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "read_scan.png"), full_page=True)

            # Upload a generated DICOM: analysed, stored, shown with overlays and BSTBI.
            page.get_by_role("link", name="Upload and analyse").click()
            # wait for the new page, or the previous page's uploader may take the file
            expect(page.get_by_role("heading", name="Upload and analyse")).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("Drop a file to analyse it.")).to_be_visible(timeout=180_000)
            page.locator("input[type=file]").set_input_files(str(scan_file))
            analyse = page.get_by_role("button", name="Analyse and store")
            expect(analyse).to_be_enabled(timeout=60_000)
            analyse.click()
            expect(page.get_by_text("Stored as study 1")).to_be_visible(timeout=180_000)
            expect(page.get_by_test_id("stMetric").filter(has_text="BSTBI")).to_be_visible()
            expect(page.get_by_text("ANT, grey level 1").first).to_be_visible()
            expect(page.locator("[data-testid=stImage] img").first).to_be_visible()
            _tall_screenshot(page, ARTIFACTS / "upload.png")

            # The patient page opens on the new patient with its trajectory.
            page.get_by_role("link", name="Follow the patient").click()
            expect(page.get_by_text("BSTBI over time")).to_be_visible(timeout=60_000)
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            expect(page.get_by_text("Synthetic patient")).to_be_visible()
            _tall_screenshot(page, ARTIFACTS / "patient.png")
        finally:
            browser.close()
