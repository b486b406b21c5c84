"""The one real-browser test: Chromium (via Playwright) against a running dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from tests.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_path, running_app

pytestmark = pytest.mark.browser


def test_dashboard_serves_its_home_page_in_chromium(db_file: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    ARTIFACTS.mkdir(exist_ok=True)
    with running_app(db_file) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            expect(page.get_by_role("heading", name="Bone-scan tumour burden")).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("Inference device: CPU")).to_be_visible()
            expect(page.get_by_text("Patients", exact=True)).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)

            # Read the NEMA NM1 whole-body study on the "Read a scan" page.
            page.get_by_role("link", name="Read a scan").click()
            page.locator("input[type=file]").set_input_files(get_testdata_file("JPEG2000.dcm"))
            expect(page.get_by_text("ANT, grey level 2")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("GE Medical Systems")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "read_scan.png"), full_page=True)
        finally:
            browser.close()
