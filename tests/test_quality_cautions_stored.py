"""A scan that passed the gate with cautions: stored once, shown wherever its verdict is.

One generated DICOM is ingested with a result whose verdict passed with two cautions
(from the phantom's truth masks, so no network runs); the cautions come back from the
store's queries, the patient record, the report's HTML and CSV, the ``analyze --json``
line, the TID 1500 SR and the overlay caption, never recomputed from the scan.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import highdicom as hd
import pydicom
import pytest
from markupsafe import escape
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from cli.scans import analysis_line
from core.analysis import AnalysisResult, result_from_masks
from core.burden.charts import trajectory_figure
from core.burden.patient_record import PatientRecord, patient_info
from core.dicom_results.measurement_report import (
    QUALITY_CAUTION,
    SCHEME,
    measurement_report,
    read_quality_cautions,
)
from core.dicom_results.secondary_capture import CAUTION_NOTE, caption
from core.dicom_results.summary import SourceStudy
from core.imaging.quality import QualityVerdict
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from core.reading.uploaded import read_uploaded
from db.connection import open_db
from db.queries import patient_overview, patient_time_series, study_with_masks
from workflow.ingest import ingest
from workflow.pacs.push import result_summary
from workflow.patients import load_patient
from workflow.report import CAUTION_SEPARATOR, CSV_COLUMNS, patient_report_html, studies_csv

if TYPE_CHECKING:
    from core.networks.models import LoadedModels

#: Two cautions as the gate words them; markup characters check the report's escaping.
CAUTIONS = (
    "The anterior view's bladder is saturated (4.1 % of its pixels at the ceiling & more).",
    "The posterior view stops above the feet (the body reaches row 1023 < 1024).",
)


@dataclasses.dataclass(frozen=True)
class Stored:
    """The stored case: its file, study and the result it was stored with."""

    db_path: Path
    dicom: Path
    study_id: int
    result: AnalysisResult


def store_case_with_cautions(
    folder: Path,
    db_path: Path | None = None,
    cautions: tuple[str, ...] = CAUTIONS,
    seed: int = 11,
) -> Stored:
    """Ingest one generated DICOM into a store, its verdict passed with cautions.

    Args:
        folder: Where the DICOM is written.
        db_path: The store; None: ``store.sqlite`` in ``folder``.
        cautions: The verdict's cautions.
        seed: The phantom case's seed.

    Returns:
        The stored case.
    """
    case = generate_case(seed, 3, metastasis=True)
    dicom = folder / "case.dcm"
    write_nm_dicom(dicom, to_scan(case), uid_seed=f"cautions-{seed}")
    files = [(dicom.name, dicom.read_bytes())]
    scan = read_uploaded(files)
    verdict = QualityVerdict(True, "ok", "ok", {}, cautions)
    result = result_from_masks(
        scan,
        case.masks,
        {"metastasis": 0.9, "bladder": 0.9},
        verdict=verdict,
        model_version="phantom truth",
        weights_sha256="ab" * 32,
    )
    db_path = folder / "store.sqlite" if db_path is None else db_path
    with open_db(db_path) as db:
        # the result is given: ingest stores it and runs no model
        done = ingest(
            db,
            files,
            models=cast("LoadedModels", None),
            account="test",
            scan=scan,
            result=result,
        )
    return Stored(db_path, dicom, done.study_id, result)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    return store_case_with_cautions(tmp_path_factory.mktemp("cautions"))


def _record(db_path: Path) -> PatientRecord:
    with open_db(db_path) as db:
        (patient,) = patient_overview(db)
        return load_patient(db, patient_info(patient))


def _study(stored: Stored) -> dict[str, Any]:
    with open_db(stored.db_path) as db:
        return study_with_masks(db, stored.study_id)


def test_the_queries_return_the_stored_cautions(stored: Stored) -> None:
    with open_db(stored.db_path) as db:
        (patient,) = patient_overview(db)
        (row,) = patient_time_series(db, cast(int, patient["id"]))
        raw = db.execute(
            "SELECT quality_cautions_json FROM analyses WHERE study_id = ?", [stored.study_id]
        ).fetchone()[0]
    assert row["quality"] == "ok"
    assert row["quality_cautions"] == list(CAUTIONS)
    assert json.loads(raw) == list(CAUTIONS)
    analysis = _study(stored)["analysis"]
    assert analysis["quality_cautions"] == list(CAUTIONS)
    assert "quality_cautions_json" not in analysis


def test_the_patient_record_carries_them(stored: Stored) -> None:
    (point,) = _record(stored.db_path).studies
    assert point.reliable and point.cautions == CAUTIONS


def test_the_report_lists_them_escaped_under_the_quality(stored: Stored) -> None:
    record = _record(stored.db_path)
    html = patient_report_html(record, trajectory_figure(record.studies, record.treatments))
    items = "".join(f"<li>Caution: {escape(c)}</li>" for c in CAUTIONS)
    assert f'<td>ok<ul class="cautions">{items}</ul></td>' in html
    for caution in CAUTIONS:
        assert caution not in html  # its "&" and "<" are escaped


def test_the_csv_joins_them_in_one_column(stored: Stored) -> None:
    record = _record(stored.db_path)
    (row,) = csv.DictReader(io.StringIO(studies_csv(record.studies)))
    assert tuple(row) == CSV_COLUMNS
    assert row["quality"] == "ok"
    assert row["quality_cautions"].split(CAUTION_SEPARATOR) == list(CAUTIONS)


def test_the_analyze_json_line_has_them(stored: Stored) -> None:
    line = json.loads(json.dumps(analysis_line([stored.dicom], stored.result)))
    assert line["quality"] == "ok"
    assert line["quality_cautions"] == list(CAUTIONS)
    none = dataclasses.replace(stored.result, quality=QualityVerdict(True, "ok", "ok"))
    assert analysis_line([stored.dicom], none)["quality_cautions"] == []


def test_the_structured_report_has_each_as_text_beside_the_verdict(
    stored: Stored, tmp_path: Path
) -> None:
    with open_db(stored.db_path) as db:
        summary = result_summary(db, study_with_masks(db, stored.study_id))
    assert summary.quality_cautions == CAUTIONS
    source = SourceStudy.from_dataset(pydicom.dcmread(stored.dicom))
    report = measurement_report(source, summary, series_uid=generate_uid(), instance_number=1)
    path = tmp_path / "report.dcm"
    pydicom.dcmwrite(path, report, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert read_quality_cautions(back) == CAUTIONS
    content = hd.sr.ComprehensiveSR.from_dataset(back).content
    assert isinstance(content, hd.sr.MeasurementReport)
    scan = content.get_image_measurement_groups()[0]
    cautions = [
        item.TextValue
        for item in scan[0].ContentSequence
        if item.ValueType == "TEXT"
        and item.ConceptNameCodeSequence[0].CodeValue == QUALITY_CAUTION.value
        and item.ConceptNameCodeSequence[0].CodingSchemeDesignator == SCHEME
    ]
    assert cautions == list(CAUTIONS)  # in the scan's group, beside the quality verdict
    verdict = {e.name.value: e[0].value for e in scan.get_qualitative_evaluations()}
    assert verdict[codes.DCM.ImageQuality.value] == codes.DCM.UsableMeetsTheQualityControlStandard


def test_the_overlay_caption_points_to_the_report(stored: Stored) -> None:
    with open_db(stored.db_path) as db:
        summary = result_summary(db, study_with_masks(db, stored.study_id))
    assert CAUTION_NOTE in caption(summary, "ANT")
    assert CAUTION_NOTE not in caption(dataclasses.replace(summary, quality_cautions=()), "ANT")
