"""What the result objects carry: the source study's identity and the analysis' figures.

Both are plain data, so the DICOM builders depend on neither the pipeline nor the
store: whoever holds an analysis (fresh or reviewed) fills a :class:`ResultSummary`,
and the received instance gives the :class:`SourceStudy`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset

from core.config import VIEWS

#: Review statuses of a lesion: found by the model, drawn by a physician, or removed.
LESION_STATUSES: tuple[str, ...] = ("model", "added", "removed")
#: Display grey levels the per-image BSTBI is computed on.
GREY_LEVELS: tuple[int, int] = (1, 2)
#: Manufacturer written into the results (General Equipment module).
RESULTS_MANUFACTURER = "bonescan-dashboard"
#: Character set written when any copied text is not ASCII (UTF-8).
UTF8_CHARSET = "ISO_IR 192"

# Keyword of each SourceStudy field in the source instance.
_KEYWORDS: dict[str, str] = {
    "study_instance_uid": "StudyInstanceUID",
    "patient_id": "PatientID",
    "series_instance_uid": "SeriesInstanceUID",
    "sop_class_uid": "SOPClassUID",
    "sop_instance_uid": "SOPInstanceUID",
    "patient_name": "PatientName",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "accession_number": "AccessionNumber",
    "study_id": "StudyID",
    "referring_physician_name": "ReferringPhysicianName",
}
_UIDS = ("study_instance_uid", "series_instance_uid", "sop_class_uid", "sop_instance_uid")
_REQUIRED = ("patient_id", *_UIDS)
_UID_CHARS = re.compile(r"[0-9.]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


@dataclass(frozen=True)
class SourceStudy:
    """The identifying attributes of the analysed instance, copied into every result.

    The results join the source's study (same Study Instance UID, same patient module)
    and reference the source instance, so the three UIDs of that instance are required
    as well as the study's and the patient's identifiers.

    Attributes:
        study_instance_uid: StudyInstanceUID (required).
        patient_id: PatientID (required).
        series_instance_uid: The source's SeriesInstanceUID (required, for references).
        sop_class_uid: The source's SOPClassUID (required, for references).
        sop_instance_uid: The source's SOPInstanceUID (required, for references).
        patient_name: PatientName as DICOM writes it (``"FAMILY^GIVEN"``), or ``""``.
        patient_birth_date: PatientBirthDate ``YYYYMMDD``, or ``""``.
        patient_sex: ``"M"``, ``"F"``, ``"O"`` or ``""``.
        study_date: StudyDate ``YYYYMMDD``, or ``""``.
        study_time: StudyTime ``HHMMSS.FFFFFF`` (or a prefix), or ``""``.
        accession_number: AccessionNumber, or ``""``.
        study_id: StudyID, or ``""``.
        referring_physician_name: ReferringPhysicianName, or ``""``.
    """

    study_instance_uid: str
    patient_id: str
    series_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    referring_physician_name: str = ""

    def __post_init__(self) -> None:
        for name in _REQUIRED:
            if not str(getattr(self, name) or "").strip():
                raise ValueError(f"the source instance has no {_KEYWORDS[name]} ({name})")
        for name in _UIDS:
            # leading zeros and the like are copied as found: the results must join
            # the source's study whatever its UIDs look like
            if not _UID_CHARS.fullmatch(getattr(self, name)):
                raise ValueError(
                    f"{name} ({_KEYWORDS[name]}) is not a UID (digits and dots, at most 64): "
                    f"{getattr(self, name)!r}"
                )
        for name in ("patient_birth_date", "study_date"):
            if getattr(self, name) and not _DATE.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be YYYYMMDD or empty, got {getattr(self, name)!r}")
        if self.study_time and not _TIME.fullmatch(self.study_time):
            raise ValueError(f"study_time must be HHMMSS.FFFFFF or empty, got {self.study_time!r}")
        if self.patient_sex not in ("", "M", "F", "O"):
            raise ValueError(f"patient_sex must be M, F, O or empty, got {self.patient_sex!r}")

    @classmethod
    def from_dataset(cls, ds: Dataset) -> SourceStudy:
        """Copy the identifying attributes of a received instance.

        Malformed optional values (a date that is not ``YYYYMMDD``, a sex other than
        M/F/O) are left empty rather than copied, since a result that repeats them
        would be refused by strict archives.

        Args:
            ds: The analysed instance (a whole dataset or just its header).

        Returns:
            Its source study.

        Raises:
            ValueError: If StudyInstanceUID, PatientID, SeriesInstanceUID, SOPClassUID or
                SOPInstanceUID is missing or empty (the message names it), or a UID holds
                anything but digits and dots.
        """
        values = {name: _text(ds, keyword) for name, keyword in _KEYWORDS.items()}
        for name in ("patient_birth_date", "study_date"):
            if not _DATE.fullmatch(values[name]):
                values[name] = ""
        if not _TIME.fullmatch(values["study_time"]):
            values["study_time"] = ""
        values["patient_sex"] = values["patient_sex"].upper()
        if values["patient_sex"] not in ("M", "F", "O"):
            values["patient_sex"] = ""
        return cls(**values)

    @property
    def needs_utf8(self) -> bool:
        """True when a copied text is not ASCII (the results then declare UTF-8)."""
        return any(not str(getattr(self, name)).isascii() for name in _KEYWORDS)

    def to_dataset(self) -> Dataset:
        """Return the source as a header-only dataset: patient, study and instance UIDs.

        Returns:
            A dataset with the patient and study attributes, the source's series and
            SOP UIDs, and SpecificCharacterSet when a value needs UTF-8; what an SR
            builder needs as evidence.
        """
        ds = Dataset()
        if self.needs_utf8:
            ds.SpecificCharacterSet = UTF8_CHARSET
        for name, keyword in _KEYWORDS.items():
            setattr(ds, keyword, getattr(self, name))
        return ds


@dataclass(frozen=True)
class ReportedLesion:
    """One lesion as the results report it.

    Attributes:
        view: ``"ANT"`` or ``"POST"``.
        component: Its number among the view's lesions (>= 1).
        skeletal_region: Where it lies (:data:`core.imaging.regions.REGIONS`).
        area_cm2: Area in cm² (>= 0).
        uptake_ratio: Mean lesion counts / mean normal-bone counts, or None when
            undefined.
        status: ``"model"`` (found by the model and kept), ``"added"`` (drawn by a
            physician) or ``"removed"`` (removed by a physician on review).
        removal_reason: Why it was removed (e.g. ``"fracture"``); None unless removed.
    """

    view: str
    component: int
    skeletal_region: str
    area_cm2: float
    uptake_ratio: float | None
    status: str
    removal_reason: str | None = None

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {self.view!r}")
        if isinstance(self.component, bool) or int(self.component) < 1:
            raise ValueError(f"component must be an integer >= 1, got {self.component!r}")
        if not self.skeletal_region.strip():
            raise ValueError("skeletal_region must not be empty")
        if not (math.isfinite(self.area_cm2) and self.area_cm2 >= 0):
            raise ValueError(f"area_cm2 must be finite and >= 0, got {self.area_cm2!r}")
        if self.uptake_ratio is not None and not (
            math.isfinite(self.uptake_ratio) and self.uptake_ratio >= 0
        ):
            raise ValueError(f"uptake_ratio must be finite and >= 0, got {self.uptake_ratio!r}")
        if self.status not in LESION_STATUSES:
            raise ValueError(f"status must be one of {LESION_STATUSES}, got {self.status!r}")
        if self.removal_reason is not None and self.status != "removed":
            raise ValueError(
                f"removal_reason is only for removed lesions, got status {self.status!r}"
            )


@dataclass(frozen=True)
class ReportedRegion:
    """One skeletal region's part of the Bone Scan Index, as the results report it.

    Attributes:
        region: The region's name in the region table (:data:`core.anatomy.regions.LABELS`,
            e.g. ``"ribs_left"``).
        involvement: Fraction of the region involved, in [0, 1] (the larger of the two
            views, docs/bsi.md).
        bsi_percent: Its contribution to the BSI, percent of skeletal mass (>= 0).
    """

    region: str
    involvement: float
    bsi_percent: float

    def __post_init__(self) -> None:
        if not self.region.strip():
            raise ValueError("region must not be empty")
        _check_fraction(f"involvement of {self.region!r}", self.involvement)
        _check_percent(f"bsi_percent of {self.region!r}", self.bsi_percent)


def _check_fraction(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


#: Rounding a sum of region contributions may pass 100 % by this much.
_PERCENT_SLACK = 1e-9


def _check_percent(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 100.0 + _PERCENT_SLACK):
        raise ValueError(f"{name} must be a percent in [0, 100], got {value!r}")


@dataclass(frozen=True)
class ResultSummary:
    """Everything the result objects carry about one analysed scan, as plain values.

    Attributes:
        bstbi: The scan's BSTBI in [0, 1], or None when the scan failed the quality
            gate (then the burden is not reported).
        bstbi_images: ``{(view, grey level): BSTBI}`` of each display image (the four
            whose mean is ``bstbi``); empty when not reported.
        hotspots: Lesion count over both views, or None when not reported.
        lesion_area_cm2: Lesion area over both views in cm², or None when not reported.
        metastasis_probability: The classifier's probability of metastasis, in [0, 1].
        metastasis_threshold: The threshold its call used, in [0, 1].
        metastasis_call: ``metastasis_probability >= metastasis_threshold``.
        quality: ``"ok"``, or the quality verdict's reason (one sentence).
        model_version: Names the models.
        weights_sha256: Lower-case hex sha256 over both models' weights.
        lesions: Every lesion with its review status (removed ones included).
        reviewed_by: The physician who reviewed the lesions, or None when unreviewed.
        quality_cautions: The quality gate's cautions on a scan that passed it, one
            sentence each (a saturated site, the feet out of the field), to be read with
            the results; empty when none.
        bsi: The Bone Scan Index, percent of skeletal mass in [0, 100], or None when not
            reported (the scan failed the quality gate, or no skeleton was read).
        bsi_regions: The involved regions of that BSI (empty without one), each once.
    """

    bstbi: float | None
    bstbi_images: dict[tuple[str, int], float]
    hotspots: int | None
    lesion_area_cm2: float | None
    metastasis_probability: float
    metastasis_threshold: float
    metastasis_call: bool
    quality: str
    model_version: str
    weights_sha256: str
    lesions: tuple[ReportedLesion, ...] = ()
    reviewed_by: str | None = None
    quality_cautions: tuple[str, ...] = ()
    bsi: float | None = None
    bsi_regions: tuple[ReportedRegion, ...] = ()

    def __post_init__(self) -> None:
        if self.bstbi is not None:
            _check_fraction("bstbi", self.bstbi)
        if self.bsi is not None:
            _check_percent("bsi", self.bsi)
        if self.bsi_regions and self.bsi is None:
            raise ValueError("bsi_regions must be empty when bsi is None (not reported)")
        names = [r.region for r in self.bsi_regions if isinstance(r, ReportedRegion)]
        if len(names) != len(self.bsi_regions):
            raise ValueError("bsi_regions must be ReportedRegion")
        if len(set(names)) != len(names):
            raise ValueError(f"bsi_regions: a region appears twice in {names}")
        _check_images(self.bstbi_images)
        if self.hotspots is not None and (isinstance(self.hotspots, bool) or self.hotspots < 0):
            raise ValueError(f"hotspots must be an integer >= 0, got {self.hotspots!r}")
        if self.lesion_area_cm2 is not None and not (
            math.isfinite(self.lesion_area_cm2) and self.lesion_area_cm2 >= 0
        ):
            raise ValueError(
                f"lesion_area_cm2 must be finite and >= 0, got {self.lesion_area_cm2!r}"
            )
        _check_fraction("metastasis_probability", self.metastasis_probability)
        _check_fraction("metastasis_threshold", self.metastasis_threshold)
        if not isinstance(self.metastasis_call, bool):
            raise ValueError(f"metastasis_call must be a bool, got {self.metastasis_call!r}")
        if not self.quality.strip():
            raise ValueError("quality must be 'ok' or the verdict's reason, got ''")
        if not self.model_version.strip():
            raise ValueError("model_version must name the models, got ''")
        if not _SHA256.fullmatch(self.weights_sha256):
            raise ValueError(
                f"weights_sha256 must be 64 lower-case hex digits, got {self.weights_sha256!r}"
            )
        seen: set[tuple[str, int]] = set()
        for lesion in self.lesions:
            if not isinstance(lesion, ReportedLesion):
                raise ValueError(f"lesions must be ReportedLesion, got {type(lesion).__name__}")
            key = (lesion.view, lesion.component)
            if key in seen:
                raise ValueError(f"lesions: {key!r} appears twice")
            seen.add(key)
        if self.reviewed_by is not None and not self.reviewed_by.strip():
            raise ValueError("reviewed_by must name the reviewer or be None, got ''")
        if any(not isinstance(c, str) or not c.strip() for c in self.quality_cautions):
            raise ValueError(
                f"quality_cautions must be non-empty sentences, got {self.quality_cautions!r}"
            )

    @property
    def quality_ok(self) -> bool:
        """True when the scan passed the quality gate."""
        return self.quality == "ok"


def _check_images(images: Mapping[tuple[str, int], float]) -> None:
    allowed = {(view, level) for view in VIEWS for level in GREY_LEVELS}
    for key, value in images.items():
        if key not in allowed:
            raise ValueError(f"bstbi_images keys must be (view, 1 or 2), got {key!r}")
        _check_fraction(f"bstbi_images[{key!r}]", value)
