"""The labelled dataset format (core.reading.dataset)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import COLS, ROWS
from core.reading.dataset import (
    CASES_FILE,
    Case,
    load_case_masks,
    load_case_views,
    patient_lesion_pixels,
    read_dataset,
    write_cases_csv,
)
from core.reading.labelme import write_labelme

HEADER = "case_id,patient_id,age,sex,scan_date,primary,metastasis,anterior,posterior"


def _view_png(path: Path, seed: int) -> None:
    """A 64 x 256 (width x height) view in the paper's display: white, a dark body."""
    rng = np.random.default_rng(seed)
    img = np.full((256, 64), 255, np.uint8)
    img[20:240, 16:48] = 200 - rng.integers(0, 40, (220, 32))
    img[60:64, 30:34] = 10  # a hot spot
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def _dataset(root: Path, rows: list[str] | None = None) -> Path:
    for seed, (case, view) in enumerate(
        [("0001", "ANT"), ("0001", "POST"), ("0002", "ANT"), ("0002", "POST")]
    ):
        _view_png(root / "images" / f"{case}_{view}.png", seed)
    rows = rows or [
        "0001,P1,66,M,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png",
        "0002,P2,45.5,f,2020-04-02,,0,images/0002_ANT.png,images/0002_POST.png",
    ]
    (root / CASES_FILE).write_text("\n".join([HEADER, *rows]) + "\n")
    return root


def test_read_dataset(tmp_path: Path) -> None:
    cases = read_dataset(_dataset(tmp_path))
    assert [c.case_id for c in cases] == ["0001", "0002"]
    first, second = cases
    assert first == Case(
        case_id="0001",
        patient_id="P1",
        age=66.0,
        sex="M",
        scan_date=dt.date(2020, 3, 1),
        primary="lung",
        metastasis=True,
        anterior=(tmp_path / "images/0001_ANT.png").resolve(),
        posterior=(tmp_path / "images/0001_POST.png").resolve(),
    )
    assert second.sex == "F" and second.age == 45.5 and second.primary == ""
    assert not second.metastasis and second.dicom is None


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    (root / "dicom").mkdir()
    (root / "dicom" / "1.dcm").write_bytes(b"x")
    cases = read_dataset(root)
    cases[0] = Case(**{**cases[0].__dict__, "dicom": root / "dicom" / "1.dcm"})
    write_cases_csv(root, cases)
    text = (root / CASES_FILE).read_text()
    assert text.splitlines()[0] == HEADER + ",dicom"
    assert "images/0001_ANT.png" in text and str(root) not in text
    assert read_dataset(root) == cases


def test_write_refuses_files_outside(tmp_path: Path) -> None:
    cases = read_dataset(_dataset(tmp_path / "ds"))
    (tmp_path / "ds" / "images" / "sub").mkdir()
    with pytest.raises(ValueError, match="outside"):
        write_cases_csv(tmp_path / "ds" / "images" / "sub", cases)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (",P1,66,M,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png", "case_id"),
        ("0001,,66,M,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png", "patient_id"),
        ("0001,P1,old,M,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png", "age"),
        ("0001,P1,-1,M,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png", "age"),
        ("0001,P1,66,X,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png", "sex"),
        ("0001,P1,66,M,01/03/2020,lung,1,images/0001_ANT.png,images/0001_POST.png", "scan_date"),
        ("0001,P1,66,M,20200301,lung,1,images/0001_ANT.png,images/0001_POST.png", "scan_date"),
        ("0001,P1,66,M,2020-02-30,lung,1,images/0001_ANT.png,images/0001_POST.png", "scan_date"),
        ("0001,P1,66,M,2020-03-01,lung,yes,images/0001_ANT.png,images/0001_POST.png", "metastasis"),
        ("0001,P1,66,M,2020-03-01,lung,1,images/missing.png,images/0001_POST.png", "anterior"),
        ("0001,P1,66,M,2020-03-01,lung,1,/etc/passwd,images/0001_POST.png", "anterior"),
        ("0001,P1,66,M,2020-03-01,lung,1,images/0001_ANT.png,../x.png", "posterior"),
        ("0001,P1,66,M,2020-03-01,lung,1,images/0001_ANT.png,", "posterior"),
    ],
)
def test_malformed_row_names_row_and_column(tmp_path: Path, row: str, column: str) -> None:
    good = "0002,P2,45,F,2020-04-02,,0,images/0002_ANT.png,images/0002_POST.png"
    root = _dataset(tmp_path, [good, row])
    with pytest.raises(ValueError, match=rf"cases\.csv: row 3, column '{column}'"):
        read_dataset(root)


def test_wrong_field_count_and_duplicates(tmp_path: Path) -> None:
    good = "0001,P1,66,M,2020-03-01,lung,1,images/0001_ANT.png,images/0001_POST.png"
    with pytest.raises(ValueError, match="row 2: 8 fields"):
        read_dataset(_dataset(tmp_path / "a", [good.rsplit(",", 1)[0]]))
    with pytest.raises(ValueError, match=r"row 4, column 'case_id'.*repeats row 2"):
        read_dataset(_dataset(tmp_path / "b", [good, "", good]))


@pytest.mark.parametrize(
    ("header", "word"),
    [
        (HEADER.replace(",primary", ""), "missing column"),
        (HEADER + ",notes", "unknown column"),
        (HEADER + ",age", "repeated column"),
    ],
)
def test_bad_header(tmp_path: Path, header: str, word: str) -> None:
    (tmp_path / CASES_FILE).write_text(header + "\n")
    with pytest.raises(ValueError, match=f"row 1 \\(header\\): {word}"):
        read_dataset(tmp_path)


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=CASES_FILE):
        read_dataset(tmp_path)


def test_masks_from_labelme_scaled_to_the_canonical_grid(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    case = read_dataset(root)[0]
    drawn = np.zeros((256, 64), np.uint8)  # on the image's own 256 x 64 grid
    drawn[60:64, 30:34] = 1
    drawn[200:220, 20:40] = 2
    write_labelme(case.anterior.with_suffix(".json"), drawn, case.anterior.name, (256, 64))
    masks = load_case_masks(case)
    assert set(masks) == {"ANT", "POST"}
    assert masks["ANT"].shape == (ROWS, COLS) and masks["ANT"].dtype == np.uint8
    assert not masks["POST"].any()
    # 4 x 4 pixels scaled by 4 in each direction: about 16 x 16 on the canonical grid.
    assert 12 * 12 <= np.count_nonzero(masks["ANT"] == 1) <= 20 * 20
    assert np.count_nonzero(masks["ANT"] == 2) > 60 * 60
    assert patient_lesion_pixels(read_dataset(root)) == {
        "P1": int(np.count_nonzero(masks["ANT"] == 1)),
        "P2": 0,
    }


def test_load_case_views(tmp_path: Path) -> None:
    case = read_dataset(_dataset(tmp_path))[0]
    scan = load_case_views(case)
    assert set(scan.views) == {"ANT", "POST"}
    assert scan.views["ANT"].shape == (ROWS, COLS)
