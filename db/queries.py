"""Reads the pages and the command line need. Only ``db/`` writes SQL."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlite_utils import Database

from db.store import decode_counts


@dataclass(frozen=True)
class StoreSummary:
    """Counts shown on the home page."""

    patients: int
    studies: int
    synthetic_patients: int


def store_summary(db: Database) -> StoreSummary:
    """Return how many patients (synthetic among them) and studies the store holds."""
    row = db.execute(
        """
        SELECT
            (SELECT count(*) FROM patients),
            (SELECT count(*) FROM studies),
            (SELECT count(*) FROM patients WHERE synthetic = 1)
        """
    ).fetchone()
    return StoreSummary(patients=row[0], studies=row[1], synthetic_patients=row[2])


def study_views(db: Database, study_id: int) -> dict[str, np.ndarray]:
    """Return a stored study's views as float32 count arrays keyed by view name."""
    return {
        view: decode_counts(dtype, blob, rows, cols)
        for view, rows, cols, dtype, blob in db.execute(
            "SELECT view, rows, cols, dtype, counts_zlib FROM views WHERE study_id = ? "
            "ORDER BY view",
            [study_id],
        ).fetchall()
    }


def patient_id_by_pseudonym(db: Database, pseudonym: str) -> int | None:
    """Return the id of the patient with this pseudonym, or None."""
    row = db.execute("SELECT id FROM patients WHERE pseudonym = ?", [pseudonym]).fetchone()
    return None if row is None else int(row[0])


def patient_overview(db: Database) -> list[dict[str, object]]:
    """Return one row per patient: who, how many studies, first and last, treatments.

    Keys: ``id, pseudonym, sex, birth_year, primary_tumour, synthetic (bool), studies,
    first_study, last_study, treatments`` (agents, comma-separated, by start date).
    """
    rows = db.execute(
        """
        SELECT p.id, p.pseudonym, p.sex, p.birth_year, p.primary_tumour, p.synthetic,
               count(s.id), min(s.study_date), max(s.study_date),
               (SELECT group_concat(agent, ', ') FROM
                   (SELECT DISTINCT agent FROM treatments t
                    WHERE t.patient_id = p.id ORDER BY t.start_date))
        FROM patients p LEFT JOIN studies s ON s.patient_id = p.id
        GROUP BY p.id ORDER BY p.pseudonym
        """
    ).fetchall()
    keys = ("id", "pseudonym", "sex", "birth_year", "primary_tumour", "synthetic",
            "studies", "first_study", "last_study", "treatments")  # fmt: skip
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for row in out:
        row["synthetic"] = bool(row["synthetic"])
    return out
