"""Load one patient over time from the store, as the patient page and the report show it.

The records and the follow-up are pure (:mod:`core.burden.patient_record`); this module
reads the rows they are made from, so it sits where storage and analysis meet.
"""

from __future__ import annotations

import datetime as dt

from sqlite_utils import Database

from core.burden.patient_record import (
    PatientInfo,
    PatientRecord,
    default_treatment_start,
    findings_from_stored,
    followup_studies,
    study_points,
    treatments_from_rows,
    with_followup,
)
from db.queries import patient_time_series, study_with_masks
from db.treatments import patient_treatments


def load_patient(
    db: Database,
    info: PatientInfo,
    *,
    treatment_start: dt.date | None = None,
    use_default_start: bool = True,
) -> PatientRecord:
    """Read a patient's studies and treatments and follow the reliable studies.

    Args:
        db: An open store.
        info: The patient (:func:`core.burden.patient_record.patient_info`).
        treatment_start: Start of the PCWG3 clock; None with ``use_default_start``
            means :func:`default_treatment_start`, None without it the baseline.
        use_default_start: See ``treatment_start``.

    Returns:
        The :class:`PatientRecord`.
    """
    points = study_points(patient_time_series(db, info.patient_id))
    treatments = treatments_from_rows(patient_treatments(db, info.patient_id))
    start = treatment_start
    if start is None and use_default_start:
        start = default_treatment_start(treatments)
    findings = {
        p.study_id: findings_from_stored(study_with_masks(db, p.study_id))[0]
        for p in followup_studies(points)
    }
    filled, fu = with_followup(points, findings, treatment_start=start)
    return PatientRecord(info, filled, treatments, fu, start)
