from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from cli import main
from core.reading.dicom import read_dicom_views, write_nm_dicom
from core.reading.readers import read_scan
from core.scan import Scan, ScanMeta
from tests.readers_helpers import SC_STORAGE, nm_dataset, phantom_counts, write_dataset


def _code(value: str) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "SCT", "x"
    return item


def _scan(**meta: object) -> Scan:
    ant = phantom_counts(top=900).astype(np.float32)
    post = phantom_counts(top=700, seed=3).astype(np.float32)
    post[0, 0] = 70000  # clipped to 65535 on writing
    defaults: dict[str, object] = {
        "patient_id": "P-0001",
        "patient_name": "Phantom^Alice",
        "sex": "F",
        "age": 66.0,
        "birth_date": dt.date(1958, 3, 1),
        "study_date": dt.date(2024, 5, 2),
        "pixel_spacing_mm": (2.4, 2.4),
    }
    defaults.update(meta)
    return Scan(views={"ANT": ant, "POST": post}, meta=ScanMeta(**defaults))  # type: ignore[arg-type]


def test_nema_nm1_loads_as_anterior() -> None:
    path = get_testdata_file("JPEG2000.dcm")
    assert isinstance(path, str)
    scan = read_scan(path)
    assert list(scan.views) == ["ANT"]
    ant = scan.views["ANT"]
    assert ant.shape == (1024, 256) and ant.dtype == np.float32
    assert ant.min() >= 0 and ant.max() > 100
    meta = scan.meta
    assert meta.source_format == "dicom"
    assert meta.pixel_spacing_mm == pytest.approx((2.26, 2.26))
    assert meta.manufacturer == "GE Medical Systems"
    assert meta.patient_id == "8NM1" and meta.sex == "M"
    assert meta.study_date == dt.date(2004, 8, 26)
    assert meta.age is None  # neither PatientAge nor a birth date
    assert any("negative" in n and "set to 0" in n for n in meta.notes)
    assert any("taken as anterior" in n for n in meta.notes)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    scan = _scan()
    path = tmp_path / "study.dcm"
    write_nm_dicom(path, scan, injected_mbq=555.0, uid_seed="case-1")
    back = read_scan(path)
    for view in ("ANT", "POST"):
        expected = np.clip(np.round(scan.views[view]), 0, 65535)
        assert np.array_equal(back.views[view], expected), view
    assert back.views["POST"][0, 0] == 65535
    m = back.meta
    assert (m.patient_id, m.patient_name, m.sex) == ("P-0001", "Phantom^Alice", "F")
    assert m.age == 66.0 and m.birth_date == dt.date(1958, 3, 1)
    assert m.study_date == dt.date(2024, 5, 2)
    assert m.pixel_spacing_mm == pytest.approx((2.4, 2.4))
    assert m.manufacturer == "bonescan-phantom"
    assert m.notes == ()  # nothing had to be assumed


def test_written_file_has_the_nm_whole_body_tags(tmp_path: Path) -> None:
    path = tmp_path / "study.dcm"
    write_nm_dicom(path, _scan(), injected_mbq=555.0, study_uid="1.2.3.4", uid_seed="s")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.20"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.20"
    assert ds.Modality == "NM"
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    assert ds.NumberOfFrames == 2 and ds.Rows == 1024 and ds.Columns == 256
    assert ds.BitsAllocated == 16 and ds.PixelRepresentation == 0
    assert pydicom.tag.Tag("DetectorVector") in list(ds.FrameIncrementPointer)
    assert list(ds.DetectorVector) == [1, 2] and ds.NumberOfDetectors == 2
    codes = [item.ViewCodeSequence[0] for item in ds.DetectorInformationSequence]
    assert [(c.CodeValue, c.CodingSchemeDesignator) for c in codes] == [
        ("399321004", "SCT"),
        ("399001007", "SCT"),
    ]
    assert [float(x) for x in ds.PixelSpacing] == [2.4, 2.4]
    drug = ds.RadiopharmaceuticalInformationSequence[0]
    assert drug.Radiopharmaceutical == "Tc-99m Medronate (MDP)"
    assert drug.RadionuclideCodeSequence[0].CodeValue == "72454006"
    assert drug.RadiopharmaceuticalCodeSequence[0].CodeValue == "96390006"
    assert float(drug.RadionuclideTotalDose) == 555.0
    assert ds.StudyInstanceUID == "1.2.3.4"
    assert ds.PatientAge == "066Y" and ds.PatientBirthDate == "19580301"
    assert ds.pixel_array.dtype == np.uint16


def test_uid_seed_makes_uids_reproducible(tmp_path: Path) -> None:
    uids = []
    for name, seed in (("a.dcm", "x"), ("b.dcm", "x"), ("c.dcm", "y")):
        write_nm_dicom(tmp_path / name, _scan(), uid_seed=seed)
        ds = pydicom.dcmread(tmp_path / name)
        uids.append((ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID))
    assert uids[0] == uids[1]
    assert uids[0][0] != uids[2][0] and len(set(uids[0])) == 3


def test_views_follow_view_codes_not_frame_order(tmp_path: Path) -> None:
    scan = _scan()
    path = tmp_path / "post_first.dcm"
    write_nm_dicom(path, scan, view_order=("POST", "ANT"))
    frames = pydicom.dcmread(path).pixel_array
    assert np.array_equal(frames[0], np.clip(np.round(scan.views["POST"]), 0, 65535))
    back = read_scan(path)
    assert np.array_equal(back.views["ANT"], scan.views["ANT"])
    assert back.views["POST"][5, 5] == scan.views["POST"][5, 5]


def test_write_rejects_bad_view_order(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="view_order"):
        write_nm_dicom(tmp_path / "x.dcm", _scan(), view_order=("ANT", "ANT"))
    with pytest.raises(ValueError, match="view_order"):
        write_nm_dicom(tmp_path / "x.dcm", _scan(), view_order=("LAT",))


def test_two_single_frame_files_as_a_pair(tmp_path: Path) -> None:
    ant, post = phantom_counts(top=500), phantom_counts(top=300, seed=2)
    a = write_dataset(tmp_path / "a.dcm", nm_dataset(ant, PatientID="9"))
    p = write_dataset(tmp_path / "b.dcm", nm_dataset(post, PatientID="9"))
    scan = read_scan(a, posterior=p)
    assert np.array_equal(scan.views["ANT"], ant) and np.array_equal(scan.views["POST"], post)
    assert scan.meta.source_files == (str(a), str(p))
    assert sum("by its position" in n for n in scan.meta.notes) == 2


def test_pair_given_in_the_wrong_order_follows_view_codes(tmp_path: Path) -> None:
    ant, post = phantom_counts(top=500), phantom_counts(top=300, seed=2)
    info_ant, info_post = pydicom.Dataset(), pydicom.Dataset()
    info_ant.ViewCodeSequence = [_code("399321004")]
    info_post.ViewCodeSequence = [_code("399001007")]
    a = write_dataset(tmp_path / "1.dcm", nm_dataset(ant, DetectorInformationSequence=[info_ant]))
    p = write_dataset(tmp_path / "2.dcm", nm_dataset(post, DetectorInformationSequence=[info_post]))
    scan = read_dicom_views([p, a])
    assert np.array_equal(scan.views["ANT"], ant) and np.array_equal(scan.views["POST"], post)


@pytest.mark.parametrize(
    ("attrs", "view"),
    [
        ({"ImageID": "WB POST"}, "POST"),
        ({"SeriesDescription": "Whole body anterior"}, "ANT"),
        ({"ImageID": "WHOLE BODY_E"}, "ANT"),  # says nothing: anterior by position
        ({"SeriesDescription": "antero-posterior"}, "ANT"),  # a direction, not a view
    ],
)
def test_older_files_name_the_view_in_text(
    tmp_path: Path, attrs: dict[str, str], view: str
) -> None:
    path = write_dataset(tmp_path / "old.dcm", nm_dataset(phantom_counts(), **attrs))
    assert list(read_scan(path).views) == [view]


def test_two_frame_file_without_view_info_is_ant_then_post(tmp_path: Path) -> None:
    frames = np.stack([phantom_counts(top=50), phantom_counts(top=90, seed=4)])
    path = write_dataset(tmp_path / "wb.dcm", nm_dataset(frames))
    scan = read_scan(path)
    assert scan.views["ANT"].max() == 50 and scan.views["POST"].max() == 90


def test_secondary_capture_nm_is_accepted(tmp_path: Path) -> None:
    ds = nm_dataset(phantom_counts(), sop_class=SC_STORAGE, ImageID="POST")
    scan = read_scan(write_dataset(tmp_path / "sc.dcm", ds))
    assert list(scan.views) == ["POST"]


def test_dicom_is_resized_and_spacing_follows(tmp_path: Path) -> None:
    small = phantom_counts(512, 128, top=100)
    ds = nm_dataset(small, PixelSpacing=[4.52, 4.4])
    scan = read_scan(write_dataset(tmp_path / "small.dcm", ds))
    assert scan.views["ANT"].shape == (1024, 256)
    assert scan.meta.pixel_spacing_mm == pytest.approx((2.26, 2.2))
    assert any("resized from 128 x 512" in n for n in scan.meta.notes)


def test_age_from_birth_and_study_dates(tmp_path: Path) -> None:
    ds = nm_dataset(phantom_counts(), PatientBirthDate="19600515", StudyDate="20240514")
    scan = read_scan(write_dataset(tmp_path / "age.dcm", ds))
    assert scan.meta.age == 63.0  # the birthday is one day later
    ds = nm_dataset(phantom_counts(), PatientAge="018M", StudyDate="20240514")
    assert read_scan(write_dataset(tmp_path / "months.dcm", ds)).meta.age == 1.5


def test_rescale_slope_is_applied(tmp_path: Path) -> None:
    ds = nm_dataset(phantom_counts(top=100), RescaleSlope="2", RescaleIntercept="0")
    assert read_scan(write_dataset(tmp_path / "s.dcm", ds)).views["ANT"].max() == 200


def test_cli_info_reads_dicom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "study.dcm"
    write_nm_dicom(path, _scan())
    assert main(["info", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "dicom" and set(out["views"]) == {"ANT", "POST"}
    (tmp_path / "notes.dcm").write_text("not a scan")
    assert main(["info", str(tmp_path / "notes.dcm")]) == 2
    assert "notes.dcm" in capsys.readouterr().err
