"""A study read from an export in the paper's display is shown the same after storing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.imaging.display import display_images, grey_level_1, stored_display_images
from core.reading.readers import read_scan
from db.connection import open_db
from db.queries import stored_scan, study_with_masks
from db.store import add_patient, store_study
from tests.readers_helpers import phantom_counts


def _store(db_file: Path, png: Path) -> tuple[int, np.ndarray]:
    scan = read_scan(png)
    with open_db(db_file) as db:
        pid = add_patient(db, pseudonym="P1")
        sid = store_study(db, patient_id=pid, scan=scan, source_name=png.name,
                          source_sha256="a" * 64).study_id  # fmt: skip
    return sid, display_images(scan)[("ANT", 1)]


def test_a_paper_display_export_keeps_its_own_grey_level_1(db_file: Path, tmp_path: Path) -> None:
    dark = 255 - phantom_counts(top=120).astype(np.uint8)  # white background, hot = dark
    Image.fromarray(dark).save(tmp_path / "scan.png")
    sid, at_upload = _store(db_file, tmp_path / "scan.png")
    assert np.array_equal(at_upload, dark)
    with open_db(db_file) as db:
        data = study_with_masks(db, sid)
        scan = stored_scan(db, sid)
    assert data["study"]["display_grey_level_1"] == 1 and scan.meta.display_is_grey_level_1
    again = stored_display_images(data["views"], bool(data["study"]["display_grey_level_1"]))
    assert np.array_equal(again[("ANT", 1)], dark)
    assert np.array_equal(display_images(scan)[("ANT", 1)], dark)
    # re-windowing the stored counts instead would not give the file's display back
    assert not np.array_equal(grey_level_1(data["views"]["ANT"]), dark)


def test_a_black_background_export_is_windowed_as_counts(db_file: Path, tmp_path: Path) -> None:
    bright = phantom_counts(top=120).astype(np.uint8)
    Image.fromarray(bright).save(tmp_path / "scan.png")
    sid, at_upload = _store(db_file, tmp_path / "scan.png")
    with open_db(db_file) as db:
        data = study_with_masks(db, sid)
    assert data["study"]["display_grey_level_1"] == 0
    again = stored_display_images(data["views"], False)
    assert np.array_equal(again[("ANT", 1)], at_upload)
