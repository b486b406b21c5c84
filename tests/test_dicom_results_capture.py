from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.dicom_results.secondary_capture import (
    BAND_RGB,
    OVERLAY_SERIES_DESCRIPTION,
    SECONDARY_CAPTURE_STORAGE,
    caption,
    overlay_capture,
    with_caption,
)
from core.dicom_results.summary import ReportedLesion, ResultSummary, SourceStudy
from core.imaging.display import display_images
from core.imaging.overlay import overlay_rgb
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom

DCIODVFY = Path("/usr/bin/dciodvfy")


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = generate_case(11, 4, metastasis=True)
    path = tmp_path_factory.mktemp("source") / "source.dcm"
    write_nm_dicom(path, to_scan(case))
    return path


@pytest.fixture(scope="module")
def source(source_file: Path) -> SourceStudy:
    return SourceStudy.from_dataset(pydicom.dcmread(source_file))


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    case = generate_case(11, 4, metastasis=True)
    display = display_images(to_scan(case))[("ANT", 1)]
    return overlay_rgb(display, case.masks["ANT"])


def _summary(**changes: object) -> ResultSummary:
    values: dict[str, object] = {
        "bstbi": 0.123456789,
        "bstbi_images": {("ANT", 1): 0.1, ("ANT", 2): 0.2, ("POST", 1): 0.15, ("POST", 2): 0.04},
        "hotspots": 7,
        "lesion_area_cm2": 12.5,
        "metastasis_probability": 0.91,
        "metastasis_threshold": 0.5,
        "metastasis_call": True,
        "quality": "ok",
        "model_version": "classifier:0123456789ab segmenter:ba9876543210",
        "weights_sha256": "ab" * 32,
        "lesions": (ReportedLesion("ANT", 1, "thoracic_spine", 3.2, 2.5, "model"),),
        "reviewed_by": None,
    }
    values.update(changes)
    return ResultSummary(**values)  # type: ignore[arg-type]


def _written(tmp_path: Path, ds: pydicom.Dataset) -> Path:
    path = tmp_path / "capture.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_round_trip_keeps_the_study_in_a_new_series(
    tmp_path: Path, source_file: Path, source: SourceStudy, picture: np.ndarray
) -> None:
    series = generate_uid()
    ds = overlay_capture(
        source, _summary(), picture, view="ANT", series_uid=series, instance_number=1
    )
    back = pydicom.dcmread(_written(tmp_path, ds))
    original = pydicom.dcmread(source_file)
    assert back.StudyInstanceUID == original.StudyInstanceUID
    assert back.PatientID == original.PatientID
    assert str(back.PatientName) == str(original.PatientName)
    assert back.PatientBirthDate == original.PatientBirthDate
    assert back.SeriesInstanceUID == series != original.SeriesInstanceUID
    assert back.SOPInstanceUID != original.SOPInstanceUID
    assert back.SOPInstanceUID == back.file_meta.MediaStorageSOPInstanceUID
    assert back.SOPClassUID == SECONDARY_CAPTURE_STORAGE
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.Modality == "OT"
    assert back.SeriesDescription == OVERLAY_SERIES_DESCRIPTION
    assert list(back.ImageType) == ["DERIVED", "SECONDARY"]
    assert back.ConversionType == "WSD"
    assert back.BurnedInAnnotation == "YES"
    assert back.DerivationDescription
    ref = back.SourceImageSequence[0]
    assert ref.ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == original.SOPClassUID


def test_every_capture_gets_its_own_instance_uid(source: SourceStudy, picture: np.ndarray) -> None:
    series = generate_uid()
    uids = {
        overlay_capture(
            source, _summary(), picture, view=view, series_uid=series, instance_number=i + 1
        ).SOPInstanceUID
        for i, view in enumerate(("ANT", "POST"))
    }
    assert len(uids) == 2


def test_pixels_are_the_picture_under_a_caption_band(
    tmp_path: Path, source: SourceStudy, picture: np.ndarray
) -> None:
    ds = overlay_capture(
        source, _summary(), picture, view="ANT", series_uid=generate_uid(), instance_number=1
    )
    back = pydicom.dcmread(_written(tmp_path, ds))
    assert back.PhotometricInterpretation == "RGB"
    assert back.SamplesPerPixel == 3
    assert back.PlanarConfiguration == 0
    assert back.BitsAllocated == 8
    pixels = back.pixel_array
    band = pixels.shape[0] - picture.shape[0]
    assert band > 0
    assert pixels.shape[1:] == picture.shape[1:]
    np.testing.assert_array_equal(pixels[band:], picture)
    text = np.any(pixels[:band] != np.asarray(BAND_RGB, dtype=np.uint8), axis=2)
    assert text.sum() > 500, "the caption band holds no text"
    # the overlay's red (metastasis) is in the picture
    red = (pixels[band:, :, 0] > 150) & (pixels[band:, :, 1] < 80)
    assert red.any()


def test_caption_names_the_figures_and_that_it_is_a_decision_aid() -> None:
    text = caption(_summary(), "POST")
    assert text == (
        "POST | BSTBI 0.123 | 7 hotspots | decision aid, not a diagnosis | "
        "model classifier:0123456789ab segmenter:ba9876543210"
    )
    withheld = caption(
        _summary(bstbi=None, bstbi_images={}, hotspots=None, quality="Not a bone scan."),
        "ANT",
    )
    assert "BSTBI not reported" in withheld
    assert "hotspots not reported" in withheld
    assert "quality: Not a bone scan." in withheld
    assert caption(_summary(hotspots=1), "ANT").count("1 hotspot |") == 1


def test_a_long_caption_wraps_to_more_lines() -> None:
    picture = np.full((100, 256, 3), 255, dtype=np.uint8)
    short = with_caption(picture, "BSTBI 0.1")
    long = with_caption(picture, " ".join(["decision aid, not a diagnosis"] * 6))
    assert long.shape[0] > short.shape[0] > picture.shape[0]


@pytest.mark.skipif(not DCIODVFY.exists(), reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_finds_no_error(tmp_path: Path, source: SourceStudy, picture: np.ndarray) -> None:
    ds = overlay_capture(
        source,
        _summary(),
        picture,
        view="ANT",
        series_uid=generate_uid(),
        instance_number=1,
        source_frame=1,
    )
    path = _written(tmp_path, ds)
    run = subprocess.run(
        [str(shutil.which("dciodvfy") or DCIODVFY), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []


def test_a_source_without_study_uid_is_refused(source_file: Path) -> None:
    ds = pydicom.dcmread(source_file)
    del ds.StudyInstanceUID
    with pytest.raises(ValueError, match="StudyInstanceUID"):
        SourceStudy.from_dataset(ds)
    ds = pydicom.dcmread(source_file)
    ds.PatientID = ""
    with pytest.raises(ValueError, match="PatientID"):
        SourceStudy.from_dataset(ds)


def test_bad_arguments_are_refused(source: SourceStudy, picture: np.ndarray) -> None:
    series = generate_uid()
    with pytest.raises(ValueError, match="view"):
        overlay_capture(
            source, _summary(), picture, view="LAT", series_uid=series, instance_number=1
        )
    with pytest.raises(ValueError, match="rgb"):
        overlay_capture(
            source,
            _summary(),
            picture[:, :, 0],
            view="ANT",
            series_uid=series,
            instance_number=1,
        )
    with pytest.raises(ValueError, match="new series"):
        overlay_capture(
            source,
            _summary(),
            picture,
            view="ANT",
            series_uid=source.series_instance_uid,
            instance_number=1,
        )
    with pytest.raises(ValueError, match="instance_number"):
        overlay_capture(
            source, _summary(), picture, view="ANT", series_uid=series, instance_number=0
        )
