"""Reads of a patient's treatments (the patient page lists them and draws them as bands).

Kept apart from :mod:`db.queries` only so that it could be written beside other work on
that file; it belongs there and may move.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database


def patient_treatments(db: Database, patient_id: int) -> list[dict[str, Any]]:
    """Return a patient's treatments by start date (then id).

    Args:
        db: An open store.
        patient_id: The patient (an unknown id gives an empty list).

    Returns:
        One dict per treatment with keys ``id, agent, start_date, end_date, dose, note``;
        dates are ``YYYY-MM-DD`` strings, ``end_date`` None while ongoing.
    """
    rows = db.execute(
        "SELECT id, agent, start_date, end_date, dose, note FROM treatments "
        "WHERE patient_id = ? ORDER BY start_date, id",
        [patient_id],
    ).fetchall()
    keys = ("id", "agent", "start_date", "end_date", "dose", "note")
    return [dict(zip(keys, row, strict=True)) for row in rows]
