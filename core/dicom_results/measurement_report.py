"""The analysis' figures as a DICOM Comprehensive SR measurement report (TID 1500).

The report holds one measurement group (TID 1501) for the scan, one per lesion and one
per skeletal region the Bone Scan Index finds involved:

* scan group: BSTBI and its four per-image values, the Bone Scan Index (percent of
  skeletal mass, when a skeleton was read and the gate passed), hotspot count, lesion area, the
  classifier's metastasis probability and threshold (measurements, TID 300); the
  metastasis call and the quality verdict (qualitative evaluations, with the verdict's
  reason as text when it failed, and each of the gate's cautions as text when it
  passed); the algorithm (TID 4019: model version, weights
  sha256). Figures the quality gate withholds are left out, not written as zero.
* lesion group: its view, skeletal region (finding site), area and uptake ratio, and
  its review status (found by the model, added or removed by a physician, with the
  removal reason).
* region group (one per involved region of the BSI): the region as finding site, with
  its laterality (SNOMED left or right) for a paired bone, the involved percent of the
  region and its contribution to the BSI. Uninvolved regions are left out: their zeros
  add length, not information.

Concepts without a standard code use the local scheme :data:`SCHEME` (declared in the
Coding Scheme Identification Sequence); units are UCUM. The observer is the algorithm
(device), plus the reviewing physician when there is one. The report is marked
complete, unverified and preliminary: the product is a decision aid, so no report it
makes is the final word. It joins the source's study in a new series (Modality SR)
and lists the source instance as evidence.

Comprehensive SR (rather than Comprehensive 3D or Enhanced SR) is the SR class the
widest range of archives and viewers accepts, and it admits every relationship used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import UID, generate_uid

from core.anatomy.regions import region
from core.config import VIEWS
from core.dicom_results.summary import (
    GREY_LEVELS,
    RESULTS_MANUFACTURER,
    ReportedLesion,
    ReportedRegion,
    ResultSummary,
    SourceStudy,
)
from core.reading.dicom import VIEW_CODES

#: Coding scheme designator of the local codes.
SCHEME = "99BONESCAN"
#: Series description of the reports.
REPORT_SERIES_DESCRIPTION = "Bone scan burden report"
#: Name of the algorithm in its identification (TID 4019).
ALGORITHM_NAME = "Bone scan tumour burden (ResNet34 classifier, UNet segmenter, BSTBI)"
#: Code value of the scan's BSTBI.
BSTBI_CODE = "BSTBI"
#: Code value of the scan's Bone Scan Index.
BSI_CODE = "BSI"
#: Tracking identifier of a BSI region group, before the region's name.
REGION_GROUP_PREFIX = "BSI region "

#: Units (UCUM).
UNIT_RATIO = hd.sr.CodedConcept("{ratio}", "UCUM", "ratio")
UNIT_COUNT = hd.sr.CodedConcept("{count}", "UCUM", "count")
UNIT_CM2 = hd.sr.CodedConcept("cm2", "UCUM", "square centimeter")
UNIT_ONE = hd.sr.CodedConcept("1", "UCUM", "no units")
UNIT_PERCENT = hd.sr.CodedConcept("%", "UCUM", "percent")


def local(value: str, meaning: str) -> hd.sr.CodedConcept:
    """Return a concept of the local scheme :data:`SCHEME`.

    Args:
        value: Code value (at most 16 characters).
        meaning: Code meaning (at most 64 characters).

    Returns:
        The coded concept.
    """
    return hd.sr.CodedConcept(value, SCHEME, meaning)


BSTBI = local(BSTBI_CODE, "Bone scan tumour burden index")
BSI = local(BSI_CODE, "Bone scan index (percent of skeletal mass)")
REGION_INVOLVEMENT = local("BSI-INVOLVED", "Involved fraction of the skeletal region")
REGION_BSI = local("BSI-CONTRIB", "Contribution of the region to the bone scan index")
HOTSPOTS = local("HOTSPOTS", "Hotspot count")
LESION_AREA = local("LESION-AREA", "Lesion area")
METASTASIS_PROBABILITY = local("MET-PROB", "Metastasis probability (classifier)")
METASTASIS_THRESHOLD = local("MET-THRESHOLD", "Metastasis decision threshold")
UPTAKE_RATIO = local("UPTAKE-RATIO", "Lesion to normal bone uptake ratio")
QUALITY_REASON = local("QUALITY-REASON", "Quality verdict reason")
QUALITY_CAUTION = local("QUALITY-CAUTION", "Quality caution")
REVIEW_STATUS = local("REVIEW-STATUS", "Physician review status")
REMOVAL_REASON = local("REMOVAL-REASON", "Reason for removal on review")
STATUS_CODES: dict[str, hd.sr.CodedConcept] = {
    "model": local("MODEL", "Found by the model"),
    "added": local("ADDED", "Added by a physician"),
    "removed": local("REMOVED", "Removed by a physician"),
}
_VIEW_WORDS = {"ANT": "anterior", "POST": "posterior"}
#: SNOMED laterality of a paired region's side (a mid region has none).
LATERALITY: dict[str, Code] = {"left": codes.SCT.Left, "right": codes.SCT.Right}


def bstbi_image_code(view: str, level: int) -> hd.sr.CodedConcept:
    """Return the concept of one display image's BSTBI (e.g. ``BSTBI-ANT-1``).

    Args:
        view: ``"ANT"`` or ``"POST"``.
        level: Display grey level, 1 or 2.

    Returns:
        The coded concept.
    """
    return local(
        f"{BSTBI_CODE}-{view}-{level}",
        f"BSTBI, {_VIEW_WORDS[view]} view, grey level {level}",
    )


def region_code(region: str) -> hd.sr.CodedConcept:
    """Return the local concept of a skeletal region (e.g. ``THORACIC_SPINE``).

    Args:
        region: A region name (:data:`core.imaging.regions.REGIONS`).

    Returns:
        The coded concept: the name upper-cased as the value, in words as the meaning.
    """
    value = re.sub(r"[^A-Z0-9_]", "_", region.strip().upper())[:16]
    return local(value, region.strip().replace("_", " ")[:64])


def _number(name: hd.sr.CodedConcept, value: float, unit: hd.sr.CodedConcept) -> hd.sr.Measurement:
    # a Python float keeps the exact value in FloatingPointValue beside the DS text
    return hd.sr.Measurement(name=name, value=float(value), unit=unit)


def _text(name: hd.sr.CodedConcept, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(
        name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )


def _person_name(name: str) -> str:
    # a bare login is a family name only; the caret says so (highdicom refuses a name without)
    return name if "^" in name else f"{name}^"


def _observation_context(
    summary: ResultSummary, device_uid: str, manufacturer: str
) -> hd.sr.ObservationContext:
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid,
            name=ALGORITHM_NAME[:64],
            manufacturer_name=manufacturer,
            model_name=summary.model_version,
        ),
    )
    person = None
    if summary.reviewed_by is not None:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=_person_name(summary.reviewed_by), login_name=summary.reviewed_by
            ),
        )
    return hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)


def _scan_group(
    summary: ResultSummary, source: SourceStudy
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    measurements = []
    if summary.bstbi is not None:
        measurements.append(_number(BSTBI, summary.bstbi, UNIT_RATIO))
    for view in VIEWS:
        for level in GREY_LEVELS:
            if (view, level) in summary.bstbi_images:
                measurements.append(
                    _number(
                        bstbi_image_code(view, level),
                        summary.bstbi_images[(view, level)],
                        UNIT_RATIO,
                    )
                )
    if summary.bsi is not None:
        measurements.append(_number(BSI, summary.bsi, UNIT_PERCENT))
    if summary.hotspots is not None:
        measurements.append(
            hd.sr.Measurement(name=HOTSPOTS, value=int(summary.hotspots), unit=UNIT_COUNT)
        )
    if summary.lesion_area_cm2 is not None:
        measurements.append(_number(LESION_AREA, summary.lesion_area_cm2, UNIT_CM2))
    measurements.append(_number(METASTASIS_PROBABILITY, summary.metastasis_probability, UNIT_ONE))
    measurements.append(_number(METASTASIS_THRESHOLD, summary.metastasis_threshold, UNIT_ONE))
    evaluations = [
        hd.sr.QualitativeEvaluation(
            name=codes.SCT.Metastasis,
            value=codes.SCT.Present if summary.metastasis_call else codes.SCT.Absent,
        ),
        hd.sr.QualitativeEvaluation(
            name=codes.DCM.ImageQuality,
            value=(
                codes.DCM.UsableMeetsTheQualityControlStandard
                if summary.quality_ok
                else codes.DCM.UsableDoesNotMeetTheQualityControlStandard
            ),
        ),
    ]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=[source.sop_instance_uid, "scan"]),
            identifier="Whole-body bone scan burden",
        ),
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=ALGORITHM_NAME,
            version=summary.model_version,
            parameters=[f"weights sha256 {summary.weights_sha256}"],
        ),
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )
    if not summary.quality_ok:
        group[0].ContentSequence.append(_text(QUALITY_REASON, summary.quality))
    else:
        for caution in summary.quality_cautions:
            group[0].ContentSequence.append(_text(QUALITY_CAUTION, caution))
    return group


def _lesion_group(
    lesion: ReportedLesion, source: SourceStudy
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    measurements = [_number(LESION_AREA, lesion.area_cm2, UNIT_CM2)]
    if lesion.uptake_ratio is not None:
        measurements.append(_number(UPTAKE_RATIO, lesion.uptake_ratio, UNIT_RATIO))
    view_code, view_meaning = VIEW_CODES[lesion.view]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(
                entropy_srcs=[source.sop_instance_uid, lesion.view, str(lesion.component)]
            ),
            identifier=f"{lesion.view} lesion {lesion.component}",
        ),
        finding_type=codes.SCT.Lesion,
        finding_sites=[hd.sr.FindingSite(region_code(lesion.skeletal_region))],
        measurements=measurements,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                name=codes.DCM.ImageView,
                value=hd.sr.CodedConcept(view_code, "SCT", view_meaning),
            ),
            hd.sr.QualitativeEvaluation(name=REVIEW_STATUS, value=STATUS_CODES[lesion.status]),
        ],
    )
    if lesion.removal_reason is not None:
        group[0].ContentSequence.append(_text(REMOVAL_REASON, lesion.removal_reason))
    return group


def _region_site(name: str) -> hd.sr.FindingSite:
    """The finding site of a BSI region: its bone, and its side as SNOMED laterality."""
    try:
        known = region(name)
    except KeyError:  # a name the table no longer holds: the name alone, no laterality
        return hd.sr.FindingSite(region_code(name))
    return hd.sr.FindingSite(region_code(known.base), laterality=LATERALITY.get(known.side))


def _region_group(
    part: ReportedRegion, source: SourceStudy
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=[source.sop_instance_uid, "bsi", part.region]),
            identifier=f"{REGION_GROUP_PREFIX}{part.region}",
        ),
        finding_sites=[_region_site(part.region)],
        measurements=[
            _number(REGION_INVOLVEMENT, 100.0 * part.involvement, UNIT_PERCENT),
            _number(REGION_BSI, part.bsi_percent, UNIT_PERCENT),
        ],
    )


def measurement_report(
    source: SourceStudy,
    summary: ResultSummary,
    *,
    series_uid: str,
    instance_number: int,
    series_number: int = 902,
    sop_instance_uid: str | None = None,
    manufacturer: str = RESULTS_MANUFACTURER,
) -> hd.sr.ComprehensiveSR:
    """Build the SR measurement report of one analysed scan.

    Args:
        source: The analysed instance (its study, patient and UIDs are copied, and it
            is listed as evidence).
        summary: The figures to report.
        series_uid: SeriesInstanceUID of the report series.
        instance_number: InstanceNumber within that series (>= 1).
        series_number: SeriesNumber of the report series.
        sop_instance_uid: SOPInstanceUID of the report; generated when None.
        manufacturer: Manufacturer of the software that made the report.

    Returns:
        The report (a pydicom dataset with file meta, Explicit VR Little Endian),
        ready for ``pydicom.dcmwrite`` or a C-STORE.

    Raises:
        ValueError: If ``series_uid`` is not a valid UID or is the source's series, or
            ``instance_number`` is below 1.
    """
    if not UID(series_uid).is_valid:
        raise ValueError(f"series_uid is not a valid UID: {series_uid!r}")
    if series_uid == source.series_instance_uid:
        raise ValueError("series_uid must name a new series, not the source's")
    if isinstance(instance_number, bool) or instance_number < 1:
        raise ValueError(f"instance_number must be >= 1, got {instance_number!r}")
    # one device UID per model pair, so reports of one model name one observer
    device_uid = generate_uid(entropy_srcs=[summary.model_version, summary.weights_sha256])
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(summary, device_uid, manufacturer),
        procedure_reported=codes.cid100.NMUnspecifiedBodyRegion,
        imaging_measurements=[
            _scan_group(summary, source),
            *(_lesion_group(lesion, source) for lesion in summary.lesions),
            *(
                _region_group(part, source)
                for part in summary.bsi_regions
                if part.involvement > 0.0
            ),
        ],
    )
    return hd.sr.ComprehensiveSR(
        evidence=[source.to_dataset()],
        content=report[0],
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=instance_number,
        manufacturer=manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description=REPORT_SERIES_DESCRIPTION,
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=SCHEME,
                name="Bone scan burden dashboard local codes",
                responsible_organization=manufacturer,
            )
        ],
    )


def _items(ds: Dataset) -> Iterator[Dataset]:
    """Yield every content item of an SR tree, depth first."""
    for item in ds.get("ContentSequence") or ():
        yield item
        yield from _items(item)


def _is(item: Dataset, concept: hd.sr.CodedConcept) -> bool:
    names = item.get("ConceptNameCodeSequence") or ()
    if not names:
        return False
    name = names[0]
    return bool(
        name.get("CodeValue") == concept.value
        and name.get("CodingSchemeDesignator") == concept.scheme_designator
    )


def _value(item: Dataset) -> float:
    measured = item.MeasuredValueSequence[0]
    if "FloatingPointValue" in measured:
        return float(measured.FloatingPointValue)
    return float(measured.NumericValue)


def _read(ds: Dataset, concept: hd.sr.CodedConcept) -> float | None:
    if "ContentSequence" not in ds:
        raise ValueError("ds is not an SR document (it has no ContentSequence)")
    for item in _items(ds):
        if item.get("ValueType") == "NUM" and _is(item, concept):
            return _value(item)
    return None


def read_bstbi(ds: Dataset) -> float | None:
    """Return the scan's BSTBI from a report this module wrote.

    Args:
        ds: The report (e.g. as ``pydicom.dcmread`` returns it).

    Returns:
        The BSTBI (the exact float when the report carries FloatingPointValue), or
        None when the report does not give one (the scan failed the quality gate).

    Raises:
        ValueError: If ``ds`` is not an SR document.
    """
    return _read(ds, BSTBI)


def read_bsi(ds: Dataset) -> float | None:
    """Return the scan's Bone Scan Index (percent) from a report this module wrote.

    Args:
        ds: The report.

    Returns:
        The BSI in percent of skeletal mass, or None when the report does not give one.

    Raises:
        ValueError: If ``ds`` is not an SR document.
    """
    return _read(ds, BSI)


def read_bsi_regions(ds: Dataset) -> dict[str, tuple[float, float]]:
    """Return the BSI's regions from a report this module wrote.

    Args:
        ds: The report.

    Returns:
        ``{region name: (involved fraction 0..1, contribution to the BSI in percent)}``
        for each region group, named as the group's tracking identifier names it.

    Raises:
        ValueError: If ``ds`` is not an SR document.
    """
    if "ContentSequence" not in ds:
        raise ValueError("ds is not an SR document (it has no ContentSequence)")
    out: dict[str, tuple[float, float]] = {}
    for item in _items(ds):
        if item.get("ValueType") != "CONTAINER":
            continue
        children = list(item.get("ContentSequence") or ())
        name = next(
            (
                str(c.TextValue)[len(REGION_GROUP_PREFIX) :]
                for c in children
                if c.get("ValueType") == "TEXT"
                and str(c.get("TextValue", "")).startswith(REGION_GROUP_PREFIX)
            ),
            None,
        )
        if name is None:
            continue
        values = {
            concept.value: _value(c)
            for c in children
            for concept in (REGION_INVOLVEMENT, REGION_BSI)
            if c.get("ValueType") == "NUM" and _is(c, concept)
        }
        out[name] = (
            values.get(REGION_INVOLVEMENT.value, 0.0) / 100.0,
            values.get(REGION_BSI.value, 0.0),
        )
    return out


def read_bstbi_images(ds: Dataset) -> dict[tuple[str, int], float]:
    """Return the per-image BSTBI values from a report this module wrote.

    Args:
        ds: The report.

    Returns:
        ``{(view, grey level): BSTBI}`` for each image the report gives.

    Raises:
        ValueError: If ``ds`` is not an SR document.
    """
    out: dict[tuple[str, int], float] = {}
    for view in VIEWS:
        for level in GREY_LEVELS:
            value = _read(ds, bstbi_image_code(view, level))
            if value is not None:
                out[(view, level)] = value
    return out


def read_quality_cautions(ds: Dataset) -> tuple[str, ...]:
    """Return the quality gate's cautions from a report this module wrote.

    Args:
        ds: The report.

    Returns:
        Each caution's text, in the order written; empty when the report gives none.

    Raises:
        ValueError: If ``ds`` is not an SR document.
    """
    if "ContentSequence" not in ds:
        raise ValueError("ds is not an SR document (it has no ContentSequence)")
    return tuple(
        str(item.TextValue)
        for item in _items(ds)
        if item.get("ValueType") == "TEXT" and _is(item, QUALITY_CAUTION)
    )
