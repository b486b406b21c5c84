"""The in-memory scan every stage works on, and the error readers raise.

A :class:`Scan` is two views (``"ANT"``, ``"POST"``) of a planar whole-body bone
scan as float32 count arrays of the canonical 1024 x 256 (rows x columns), hot =
high, head at row 0, plus what the file said about the patient and the study.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.config import COLS, ROWS, VIEWS

#: How an exported image encoded uptake: the paper's display (white background,
#: hot = dark) or the common export (black background, hot = bright).
Polarity = Literal["hot-dark", "hot-bright"]


class ScanReadError(ValueError):
    """A file could not be read as a bone scan; the message names the file and why."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class ScanMeta:
    """What a file says about the patient and the acquisition (None where it says nothing).

    Attributes:
        patient_id: DICOM PatientID or None.
        patient_name: DICOM PatientName as text, or None. Identifying: never log it.
        sex: ``"M"``, ``"F"``, ``"O"`` or None.
        age: Age in years at the study, or None.
        birth_date: Date of birth, or None.
        study_date: Date of the study, or None.
        pixel_spacing_mm: (row, column) spacing of the *canonical* 1024 x 256 grid in
            mm, or None when the file does not say.
        manufacturer: Equipment manufacturer, or None.
        source_format: ``"dicom"``, ``"png"``, ``"jpeg"`` or ``"composite-png"`` etc.
        source_files: The files the scan was read from, in view order.
        polarity: For exported images, the polarity detected; None for DICOM counts.
        bit_depth: Bits per sample of an exported image, or None for DICOM.
        display_is_grey_level_1: True when the file is an 8-bit export in the paper's
            display, whose pixels are taken as grey level 1 instead of re-windowing.
        notes: Human-readable remarks made while reading (e.g. detected polarity).
        study_instance_uid: DICOM StudyInstanceUID, or None; results sent back to a PACS
            join this study.
        instances: ``(SOP Class UID, SOP Instance UID)`` of each DICOM instance read, in
            file order; a study received twice is recognised by them.
        accession_number: DICOM AccessionNumber, or None.
    """

    patient_id: str | None = None
    patient_name: str | None = None
    sex: str | None = None
    age: float | None = None
    birth_date: dt.date | None = None
    study_date: dt.date | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    manufacturer: str | None = None
    source_format: str = "unknown"
    source_files: tuple[str, ...] = ()
    polarity: Polarity | None = None
    bit_depth: int | None = None
    display_is_grey_level_1: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    study_instance_uid: str | None = None
    instances: tuple[tuple[str, str], ...] = ()
    accession_number: str | None = None


@dataclass(frozen=True)
class Scan:
    """Two views of a whole-body bone scan.

    Attributes:
        views: ``{"ANT": a, "POST": p}``; each float32, shape (1024, 256), counts
            >= 0 (hot = high). A scan read from one single-view file holds only
            the view it had.
        meta: What the file said.
    """

    views: Mapping[str, np.ndarray]
    meta: ScanMeta = field(default_factory=ScanMeta)

    def __post_init__(self) -> None:
        if not self.views:
            raise ValueError("views must hold at least one of 'ANT', 'POST'")
        for name, arr in self.views.items():
            if name not in VIEWS:
                raise ValueError(f"views: unknown view {name!r}, expected one of {VIEWS}")
            if arr.shape != (ROWS, COLS) or arr.dtype != np.float32:
                raise ValueError(
                    f"views[{name!r}] must be float32 of shape ({ROWS}, {COLS}), "
                    f"got {arr.dtype} {arr.shape}"
                )
