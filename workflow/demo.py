"""Seed a store with the synthetic demo cohort (:mod:`core.phantom.demo_cohort`).

Each phantom patient is written with its studies and treatments in one transaction, so
an interrupted run leaves whole patients only, and a patient already stored (by its
pseudonym) is skipped: running the seeding again finishes what an earlier run began.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

from core.phantom.demo_cohort import (
    DEMO_PATIENTS,
    DEMO_SEED,
    DEMO_SETUP_ACCOUNT,
    DemoPatient,
    case_sha256,
    demo_cohort,
)
from core.phantom.generate import to_scan
from db.access import account_count
from db.queries import patient_id_by_pseudonym, store_summary
from db.store import add_patient, add_treatment, store_study


@dataclass(frozen=True)
class DemoSeedSummary:
    """What :func:`seed_demo_cohort` wrote.

    Attributes:
        patients: Patients added by this call.
        studies: Studies stored with them.
        already_stored: Patients of the cohort the store held before the call.
    """

    patients: int
    studies: int
    already_stored: int


def reason_to_skip(db: Database) -> str | None:
    """Return why the store should not get the demo cohort unasked, or None if it may.

    A store that holds patients, or one with accounts (a department's store), gets no
    demo data unless someone asks for it explicitly.

    Args:
        db: The open store.

    Returns:
        The reason, worded to follow the store's path in a message, or None.
    """
    if store_summary(db).patients:
        return "the store already holds patients"
    if account_count(db):
        return "the store has accounts"
    return None


def _store_patient(db: Database, patient: DemoPatient) -> int:
    """Store one demo patient, its scans and treatments; return the studies stored."""
    info = patient.cases[0].patient
    with db.atomic():  # one patient, its scans and treatments: all or nothing
        pid = add_patient(
            db,
            pseudonym=patient.pseudonym,
            name=f"Synthetic patient {patient.pseudonym[5:]}",
            external_id=info.patient_id,
            sex=info.sex,
            birth_year=info.birth_year,
            primary_tumour=info.primary,
            synthetic=True,
            account=DEMO_SETUP_ACCOUNT,
        )
        for case in patient.cases:
            store_study(
                db,
                patient_id=pid,
                scan=to_scan(case),
                source_name=f"{case.case_id}.dcm",
                source_sha256=case_sha256(case),
                injection_delay_h=case.injection_delay_h,
                account=DEMO_SETUP_ACCOUNT,
            )
        for t in patient.treatments:
            add_treatment(db, patient_id=pid, agent=t.agent, start=t.start, end=t.end,
                          dose=t.dose, account=DEMO_SETUP_ACCOUNT)  # fmt: skip
    return len(patient.cases)


def seed_demo_cohort(
    db: Database,
    n_patients: int = DEMO_PATIENTS,
    seed: int = DEMO_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSeedSummary:
    """Store the demo cohort's first ``n_patients`` patients that the store lacks.

    Args:
        db: The open store.
        n_patients: Patients of the cohort (>= 1).
        seed: The cohort seed.
        progress: Called with (patients done, ``n_patients``) after each patient,
            stored or skipped.

    Returns:
        How many patients and studies were added, and how many patients were there.

    Raises:
        ValueError: If ``n_patients`` < 1.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    patients = studies = present = 0
    for done, patient in enumerate(demo_cohort(n_patients, seed), start=1):
        if patient_id_by_pseudonym(db, patient.pseudonym) is None:
            studies += _store_patient(db, patient)
            patients += 1
        else:
            present += 1  # stored by an earlier run
        if progress is not None:
            progress(done, n_patients)
    return DemoSeedSummary(patients=patients, studies=studies, already_stored=present)
