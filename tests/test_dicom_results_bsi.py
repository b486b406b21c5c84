"""The Bone Scan Index in the DICOM results: SR measurement, region groups, caption."""

from __future__ import annotations

import subprocess
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from core.dicom_results.measurement_report import (
    BSI,
    REGION_GROUP_PREFIX,
    UNIT_PERCENT,
    measurement_report,
    read_bsi,
    read_bsi_regions,
    read_bstbi,
)
from core.dicom_results.secondary_capture import caption
from core.dicom_results.summary import ReportedRegion, ResultSummary, SourceStudy
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from db.queries import study_with_masks
from tests.bsi_fixtures import add_bsi_analyses
from workflow.pacs.push import reported_regions, result_summary

DCIODVFY = Path("/usr/bin/dciodvfy")
# more digits than a DS holds: only FloatingPointValue keeps it exactly
EXACT_BSI = 2.6671234567891234
REGIONS = (
    ReportedRegion("lumbar_spine", 0.25, 0.6841),
    ReportedRegion("ribs_right", 0.05, 0.1099),
    ReportedRegion("pelvis_left", 0.5, 1.8731),
)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> SourceStudy:
    path = tmp_path_factory.mktemp("source") / "source.dcm"
    write_nm_dicom(path, to_scan(generate_case(11, 5, metastasis=True)))
    return SourceStudy.from_dataset(pydicom.dcmread(path))


def _summary(**changes: object) -> ResultSummary:
    values: dict[str, object] = {
        "bstbi": 0.125,
        "bstbi_images": {("ANT", 1): 0.1, ("ANT", 2): 0.2, ("POST", 1): 0.15, ("POST", 2): 0.05},
        "hotspots": 7,
        "lesion_area_cm2": 12.5,
        "metastasis_probability": 0.91,
        "metastasis_threshold": 0.5,
        "metastasis_call": True,
        "quality": "ok",
        "model_version": "classifier:0123456789ab segmenter:ba9876543210",
        "weights_sha256": "cd" * 32,
        "bsi": EXACT_BSI,
        "bsi_regions": REGIONS,
    }
    values.update(changes)
    return ResultSummary(**values)  # type: ignore[arg-type]


def _written(tmp_path: Path, source: SourceStudy, summary: ResultSummary) -> Path:
    path = tmp_path / "report.dcm"
    report = measurement_report(source, summary, series_uid=generate_uid(), instance_number=1)
    pydicom.dcmwrite(path, report, enforce_file_format=True)
    return path


def _groups(ds: pydicom.Dataset) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    report = hd.sr.ComprehensiveSR.from_dataset(ds).content
    assert isinstance(report, hd.sr.MeasurementReport), "not read as a TID 1500 report"
    return report.get_image_measurement_groups()


def test_the_bsi_reads_back_exactly_in_percent(tmp_path: Path, source: SourceStudy) -> None:
    back = pydicom.dcmread(_written(tmp_path, source, _summary()))
    assert read_bsi(back) == EXACT_BSI
    assert read_bstbi(back) == 0.125  # beside the BSTBI, which is unchanged
    groups = _groups(back)
    scan = next(g for g in groups if g.tracking_identifier == "Whole-body bone scan burden")
    (measured,) = scan.get_measurements(name=BSI)
    assert measured.unit == UNIT_PERCENT


def test_each_involved_region_has_its_group_with_site_side_and_figures(
    tmp_path: Path, source: SourceStudy
) -> None:
    back = pydicom.dcmread(_written(tmp_path, source, _summary()))
    read = read_bsi_regions(back)
    assert set(read) == {r.region for r in REGIONS}
    for r in REGIONS:
        involvement, percent = read[r.region]
        assert involvement == pytest.approx(r.involvement, abs=1e-12)
        assert percent == r.bsi_percent
    groups = _groups(back)
    by_id = {g.tracking_identifier: g for g in groups}
    ribs = by_id[f"{REGION_GROUP_PREFIX}ribs_right"].finding_sites[0]
    assert ribs.value.meaning == "ribs"
    assert ribs.laterality == codes.SCT.Right
    spine = by_id[f"{REGION_GROUP_PREFIX}lumbar_spine"].finding_sites[0]
    assert spine.value.meaning == "lumbar spine" and spine.laterality is None


def test_an_uninvolved_region_and_a_missing_bsi_are_left_out(
    tmp_path: Path, source: SourceStudy
) -> None:
    quiet = _summary(bsi_regions=(*REGIONS, ReportedRegion("skull", 0.0, 0.0)))
    assert "skull" not in read_bsi_regions(pydicom.dcmread(_written(tmp_path, source, quiet)))
    none = pydicom.dcmread(_written(tmp_path, source, _summary(bsi=None, bsi_regions=())))
    assert read_bsi(none) is None and read_bsi_regions(none) == {}


def test_the_caption_gives_the_bsi_only_when_reported() -> None:
    assert " | BSI 2.67 % | 7 hotspots | " in caption(_summary(), "ANT")
    assert "BSI" not in caption(_summary(bsi=None, bsi_regions=()), "ANT").replace("BSTBI", "")


def test_bad_bsi_figures_are_refused() -> None:
    with pytest.raises(ValueError, match="bsi"):
        _summary(bsi=120.0)
    with pytest.raises(ValueError, match="bsi_regions must be empty"):
        _summary(bsi=None)
    with pytest.raises(ValueError, match="appears twice"):
        _summary(bsi_regions=(REGIONS[0], REGIONS[0]))
    with pytest.raises(ValueError, match="involvement"):
        ReportedRegion("ribs_left", 1.5, 1.0)
    with pytest.raises(ValueError, match="region"):
        ReportedRegion(" ", 0.5, 1.0)


def test_stored_regions_become_reported_regions_head_to_feet() -> None:
    stored = {
        "pelvis_left": {"involvement": 0.5, "percent": 1.8731},
        "skull": {"involvement": 0.0, "percent": 0.0},
        "lumbar_spine": {"involvement": 0.25, "percent": 0.6841},
    }
    assert reported_regions(stored) == (
        ReportedRegion("lumbar_spine", 0.25, 0.6841),
        ReportedRegion("pelvis_left", 0.5, 1.8731),
    )
    assert reported_regions(None) == ()


@pytest.mark.skipif(not DCIODVFY.exists(), reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_finds_no_error_with_the_bsi(tmp_path: Path, source: SourceStudy) -> None:
    path = _written(tmp_path, source, _summary())
    run = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, check=False)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
    assert errors == []


def test_a_stored_analysis_sends_its_bsi_and_regions(truth_store: Path) -> None:
    study_id = add_bsi_analyses(truth_store, 0)[-1]
    with open_db(truth_store) as db:
        data = study_with_masks(db, study_id)
        data["analysis"]["weights_sha256"] = "ab" * 32  # truth analyses name no weights
        summary = result_summary(db, data)
    analysis = data["analysis"]
    assert summary.bsi == analysis["bsi"] is not None
    involved = {k for k, v in analysis["bsi_regions"].items() if v["involvement"] > 0}
    assert {r.region for r in summary.bsi_regions} == involved
    assert sum(r.bsi_percent for r in summary.bsi_regions) == pytest.approx(summary.bsi)
