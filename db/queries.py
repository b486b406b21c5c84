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
