"""The written phantom dataset loads back exactly with the project's own readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cli import main
from core.config import VIEWS
from core.imaging.display import grey_level_1
from core.phantom import PhantomCase, generate_case, generate_series
from core.phantom.export import export_style, view_image, write_dataset
from core.reading.dataset import load_case_masks, load_case_views, read_dataset
from core.reading.dicom import MDP_CODE, NM_IMAGE_STORAGE, VIEW_CODES, read_dicom_views


def _first(seed: int, style: str) -> int:
    return next(i for i in range(200) if export_style(f"phantom-s{seed}-{i:05d}")[0] == style)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PhantomCase]]:
    out = tmp_path_factory.mktemp("phantom")
    picks = sorted({_first(41, "grey-level-1"), _first(41, "hot-bright"), 2})
    cases = [generate_case(41, i) for i in picks]
    cases += [generate_case(41, 1000, pattern="multiple")]
    write_dataset(out, cases)
    return out, cases


def test_cases_csv_lists_every_case(written: tuple[Path, list[PhantomCase]]) -> None:
    out, cases = written
    rows = read_dataset(out)
    assert [r.case_id for r in rows] == [c.case_id for c in cases]
    for r, c in zip(rows, cases, strict=True):
        assert r.patient_id == c.patient.patient_id and r.sex == c.patient.sex
        assert r.age == c.patient.age and r.scan_date == c.scan_date
        assert r.primary == c.patient.primary and r.metastasis == c.has_metastasis
        assert r.dicom is not None and r.dicom.exists()


def test_images_read_back_exactly(written: tuple[Path, list[PhantomCase]]) -> None:
    out, cases = written
    styles = set()
    for row, c in zip(read_dataset(out), cases, strict=True):
        scan = load_case_views(row)
        style, top = export_style(c.case_id)
        styles.add(style)
        for v in VIEWS:
            img = view_image(c.views[v], style, top)
            if style == "grey-level-1":
                assert np.array_equal(img, grey_level_1(c.views[v]))
                assert scan.meta.display_is_grey_level_1
                assert np.array_equal(scan.views[v], 255.0 - img)
            else:
                assert scan.meta.polarity == "hot-bright"
                assert 40 <= int(img.max()) <= 120
                assert np.array_equal(scan.views[v], img.astype(np.float32))
    assert styles == {"grey-level-1", "hot-bright"}


def test_labelme_masks_read_back_exactly(written: tuple[Path, list[PhantomCase]]) -> None:
    out, cases = written
    for row, c in zip(read_dataset(out), cases, strict=True):
        masks = load_case_masks(row)
        for v in VIEWS:
            assert np.array_equal(masks[v], c.masks[v]), (c.case_id, v)
    assert any((c.masks["ANT"] == 1).any() for c in cases)


def test_dicom_counts_and_tags(written: tuple[Path, list[PhantomCase]]) -> None:
    out, cases = written
    for c in cases:
        path = out / "dicom" / f"{c.case_id}.dcm"
        scan = read_dicom_views(path)
        for v in VIEWS:
            assert np.array_equal(scan.views[v], np.round(c.views[v]))
        assert scan.meta.manufacturer == "bonescan-phantom"
        assert scan.meta.pixel_spacing_mm == pytest.approx(c.pixel_spacing_mm)
        assert scan.meta.study_date == c.scan_date and scan.meta.sex == c.patient.sex
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == NM_IMAGE_STORAGE and ds.Modality == "NM"
        assert "WHOLE BODY" in list(ds.ImageType) and ds.NumberOfFrames == 2
        codes = [item.ViewCodeSequence[0].CodeValue for item in ds.DetectorInformationSequence]
        assert codes == [VIEW_CODES[v][0] for v in VIEWS]
        drug = ds.RadiopharmaceuticalInformationSequence[0]
        assert drug.RadiopharmaceuticalCodeSequence[0].CodeValue == MDP_CODE[0]
        assert float(drug.RadionuclideTotalDose) == pytest.approx(c.truth["injected_mbq"])
        assert ds.PatientID == c.patient.patient_id
        assert ds.PatientBirthDate == c.patient.birth_date.strftime("%Y%m%d")


def test_truth_files_hold_the_record(written: tuple[Path, list[PhantomCase]]) -> None:
    out, cases = written
    for c in cases:
        truth = json.loads((out / "truth" / f"{c.case_id}.json").read_text(encoding="utf-8"))
        assert truth["case_id"] == c.case_id
        assert truth["lesions"] == c.truth["lesions"]
        assert truth["export"]["images"] == export_style(c.case_id)[0]
        assert 0.0 <= truth["bstbi"]["mean"] <= 1.0


def test_export_style_is_deterministic_and_mixed() -> None:
    styles = [export_style(f"phantom-s0-{i:05d}")[0] for i in range(500)]
    assert styles == [export_style(f"phantom-s0-{i:05d}")[0] for i in range(500)]
    assert 0.14 <= styles.count("hot-bright") / 500 <= 0.26


def test_view_image_refuses_unknown_style() -> None:
    with pytest.raises(ValueError, match="style"):
        view_image(np.ones((4, 4)), "sepia", 100)


def test_cli_generate_writes_a_longitudinal_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["generate", str(tmp_path / "ds"), "--cases", "1", "--seed", "3", "--longitudinal"])
        == 0
    )
    series = generate_series(3, 0)
    rows = read_dataset(tmp_path / "ds")
    assert [r.case_id for r in rows] == [c.case_id for c in series]
    assert len({r.patient_id for r in rows}) == 1
    assert "scans" in capsys.readouterr().out
    assert main(["generate", str(tmp_path / "bad"), "--cases", "0"]) == 2
