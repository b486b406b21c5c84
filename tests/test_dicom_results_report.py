from __future__ import annotations

import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.dicom_results.measurement_report import (
    HOTSPOTS,
    LESION_AREA,
    REPORT_SERIES_DESCRIPTION,
    SCHEME,
    measurement_report,
    read_bstbi,
    read_bstbi_images,
)
from core.dicom_results.summary import ReportedLesion, ResultSummary, SourceStudy
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom

DCIODVFY = Path("/usr/bin/dciodvfy")
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
# more digits than a DS (16 characters) holds: only FloatingPointValue keeps it exactly
EXACT_BSTBI = 0.12345678901234567
LESIONS = (
    ReportedLesion("ANT", 1, "thoracic_spine", 3.25, 2.5, "model"),
    ReportedLesion("ANT", 2, "ribs", 0.75, None, "added"),
    ReportedLesion("POST", 1, "pelvis", 1.5, 1.8, "removed", "fracture"),
)


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "source.dcm"
    write_nm_dicom(path, to_scan(generate_case(11, 5, metastasis=True)))
    return path


@pytest.fixture(scope="module")
def source(source_file: Path) -> SourceStudy:
    return SourceStudy.from_dataset(pydicom.dcmread(source_file))


def _summary(**changes: object) -> ResultSummary:
    values: dict[str, object] = {
        "bstbi": EXACT_BSTBI,
        "bstbi_images": {
            ("ANT", 1): 0.1 / 3,
            ("ANT", 2): 0.2,
            ("POST", 1): 0.15,
            ("POST", 2): 0.04,
        },
        "hotspots": 7,
        "lesion_area_cm2": 12.5,
        "metastasis_probability": 0.91,
        "metastasis_threshold": 0.5,
        "metastasis_call": True,
        "quality": "ok",
        "model_version": "classifier:0123456789ab segmenter:ba9876543210",
        "weights_sha256": "cd" * 32,
        "lesions": LESIONS,
        "reviewed_by": "drsmith",
    }
    values.update(changes)
    return ResultSummary(**values)  # type: ignore[arg-type]


def _round_trip(tmp_path: Path, ds: pydicom.Dataset) -> pydicom.Dataset:
    path = tmp_path / "report.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return pydicom.dcmread(path)


def _report(source: SourceStudy, summary: ResultSummary) -> hd.sr.ComprehensiveSR:
    return measurement_report(source, summary, series_uid=generate_uid(), instance_number=1)


def _groups(ds: pydicom.Dataset) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    report = hd.sr.ComprehensiveSR.from_dataset(ds).content
    assert isinstance(report, hd.sr.MeasurementReport), "not read as a TID 1500 report"
    return report.get_image_measurement_groups()


def _evaluations(
    group: hd.sr.MeasurementsAndQualitativeEvaluations,
) -> dict[str, hd.sr.CodedConcept]:
    return {e.name.meaning: e[0].value for e in group.get_qualitative_evaluations()}


def _texts(group: hd.sr.MeasurementsAndQualitativeEvaluations) -> dict[str, str]:
    return {
        item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue
        for item in group[0].ContentSequence
        if item.ValueType == "TEXT"
    }


def test_round_trip_keeps_the_study_in_a_new_series(
    tmp_path: Path, source_file: Path, source: SourceStudy
) -> None:
    series = generate_uid()
    report = measurement_report(source, _summary(), series_uid=series, instance_number=3)
    back = _round_trip(tmp_path, report)
    original = pydicom.dcmread(source_file)
    assert back.StudyInstanceUID == original.StudyInstanceUID
    assert back.PatientID == original.PatientID
    assert str(back.PatientName) == str(original.PatientName)
    assert back.SeriesInstanceUID == series != original.SeriesInstanceUID
    assert back.SOPInstanceUID != original.SOPInstanceUID
    assert back.SOPClassUID == COMPREHENSIVE_SR
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.Modality == "SR"
    assert back.SeriesDescription == REPORT_SERIES_DESCRIPTION
    assert back.InstanceNumber == 3
    assert back.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == SCHEME
    evidence = back.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert back.PreliminaryFlag == "PRELIMINARY"


def test_bstbi_and_the_per_image_values_read_back_exactly(
    tmp_path: Path, source: SourceStudy
) -> None:
    summary = _summary()
    back = _round_trip(tmp_path, _report(source, summary))
    assert read_bstbi(back) == summary.bstbi
    assert read_bstbi_images(back) == summary.bstbi_images


def test_scan_figures_call_quality_and_algorithm_are_present(
    tmp_path: Path, source: SourceStudy
) -> None:
    back = _round_trip(tmp_path, _report(source, _summary()))
    groups = _groups(back)
    scan = next(g for g in groups if g.tracking_identifier == "Whole-body bone scan burden")
    assert scan.get_measurements(name=HOTSPOTS)[0].value == 7
    assert scan.get_measurements(name=LESION_AREA)[0].value == 12.5
    evaluations = _evaluations(scan)
    assert evaluations["Metastasis"] == codes.SCT.Present
    assert evaluations["Image Quality"] == codes.DCM.UsableMeetsTheQualityControlStandard
    texts = _texts(scan)
    assert texts["Algorithm Version"] == "classifier:0123456789ab segmenter:ba9876543210"
    assert texts["Algorithm Parameters"] == "weights sha256 " + "cd" * 32
    observers = [
        item.get("TextValue") or str(item.get("PersonName", ""))
        for item in back.ContentSequence
        if item.RelationshipType == "HAS OBS CONTEXT"
    ]
    assert "drsmith^" in observers


def test_every_lesion_has_its_group_with_site_area_and_review(
    tmp_path: Path, source: SourceStudy
) -> None:
    back = _round_trip(tmp_path, _report(source, _summary()))
    groups = _groups(back)
    by_id = {g.tracking_identifier: g for g in groups}
    assert len(groups) == 1 + len(LESIONS)
    for lesion in LESIONS:
        group = by_id[f"{lesion.view} lesion {lesion.component}"]
        assert group.finding_type == codes.SCT.Lesion
        site = group.finding_sites[0].value
        assert site.scheme_designator == SCHEME
        assert site.meaning == lesion.skeletal_region.replace("_", " ")
        assert group.get_measurements(name=LESION_AREA)[0].value == lesion.area_cm2
        evaluations = _evaluations(group)
        assert evaluations["Physician review status"].value == lesion.status.upper()
        view = "Anterior projection" if lesion.view == "ANT" else "Posterior projection"
        assert evaluations["Image View"].meaning == view
    removed = by_id["POST lesion 1"]
    assert _texts(removed)["Reason for removal on review"] == "fracture"
    assert "Reason for removal on review" not in _texts(by_id["ANT lesion 1"])


def test_a_scan_that_failed_quality_reports_no_burden(tmp_path: Path, source: SourceStudy) -> None:
    reason = "The anterior view is not a whole-body bone scan."
    summary = _summary(
        bstbi=None,
        bstbi_images={},
        hotspots=None,
        lesion_area_cm2=None,
        metastasis_call=False,
        metastasis_probability=0.2,
        quality=reason,
        lesions=(),
        reviewed_by=None,
    )
    back = _round_trip(tmp_path, _report(source, summary))
    assert read_bstbi(back) is None
    assert read_bstbi_images(back) == {}
    groups = _groups(back)
    assert len(groups) == 1
    assert groups[0].get_measurements(name=HOTSPOTS) == []
    evaluations = _evaluations(groups[0])
    assert evaluations["Metastasis"] == codes.SCT.Absent
    assert evaluations["Image Quality"] == codes.DCM.UsableDoesNotMeetTheQualityControlStandard
    assert _texts(groups[0])["Quality verdict reason"] == reason


def test_a_non_ascii_patient_name_survives(
    tmp_path: Path, source_file: Path, source: SourceStudy
) -> None:
    ds = pydicom.dcmread(source_file)
    ds.PatientName = "Müller^Jürgen"
    back = _round_trip(tmp_path, _report(SourceStudy.from_dataset(ds), _summary()))
    assert str(back.PatientName) == "Müller^Jürgen"
    assert back.SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.skipif(not DCIODVFY.exists(), reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_finds_no_error(tmp_path: Path, source: SourceStudy) -> None:
    path = tmp_path / "report.dcm"
    pydicom.dcmwrite(path, _report(source, _summary()), enforce_file_format=True)
    run = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, check=False)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []


def test_bad_input_is_refused(source_file: Path, source: SourceStudy) -> None:
    ds = pydicom.dcmread(source_file)
    del ds.StudyInstanceUID
    with pytest.raises(ValueError, match="StudyInstanceUID"):
        SourceStudy.from_dataset(ds)
    with pytest.raises(ValueError, match="new series"):
        measurement_report(
            source, _summary(), series_uid=source.series_instance_uid, instance_number=1
        )
    with pytest.raises(ValueError, match="not an SR"):
        read_bstbi(pydicom.dcmread(source_file))
    with pytest.raises(ValueError, match="bstbi"):
        _summary(bstbi=1.5)
    with pytest.raises(ValueError, match="weights_sha256"):
        _summary(weights_sha256="abc")
    with pytest.raises(ValueError, match="appears twice"):
        _summary(lesions=(LESIONS[0], LESIONS[0]))
    with pytest.raises(ValueError, match="removal_reason"):
        ReportedLesion("ANT", 1, "ribs", 1.0, None, "model", "fracture")
