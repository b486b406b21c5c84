"""Where the product keeps its files, and the constants every part shares.

The embedded default is a SQLite file under ``data/`` in the repository; set
``BONESCAN_DB`` to use another file (or ``BONESCAN_DATA_DIR`` to move the whole
data folder).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Views of a whole-body scan, in the order used everywhere.
VIEWS: tuple[str, str] = ("ANT", "POST")
#: Canonical view size, rows x columns (the paper's 256 x 1024 matrix, head up).
ROWS, COLS = 1024, 256
#: Label values in every mask, PNG and database row.
LABEL_BACKGROUND, LABEL_METASTASIS, LABEL_BLADDER = 0, 1, 2
#: Age groups of the paper's Table 2; 50 and 70 belong to the upper group.
AGE_GROUPS: tuple[str, str, str] = ("<50", "50-70", ">=70")


def age_group(age: float) -> str:
    """Return the paper's age group of ``age`` in years.

    Args:
        age: Age at the scan, years (>= 0).

    Returns:
        ``"<50"``, ``"50-70"`` or ``">=70"``; 50 and 70 belong to the upper group.

    Raises:
        ValueError: If ``age`` is negative or not a finite number.
    """
    if not age >= 0 or age == float("inf"):
        raise ValueError(f"age must be a finite number >= 0, got {age!r}")
    if age < 50:
        return "<50"
    if age < 70:
        return "50-70"
    return ">=70"


def age_by_year(birth_year: int | None, date: dt.date | None) -> int | None:
    """Return a patient's age in whole years at ``date``, by year: ``date.year - birth_year``.

    The store keeps a birth year, not a birth date, so the age is the year's: at most one
    year over the true age, before the birthday. The stored scans' age
    (:func:`db.queries.stored_scan`) and an upload's without one in its file
    (:func:`workflow.ingest.ingest`) are this; the cohort's age groups and a centre's
    dataset count the same way.

    Args:
        birth_year: The year of birth, or None.
        date: The date of the study, or None.

    Returns:
        The age, or None when either is unknown or ``date`` is before the birth year.
    """
    if date is None or birth_year is None or date.year < birth_year:
        return None
    return date.year - birth_year


def data_dir() -> Path:
    """Return the data folder (``$BONESCAN_DATA_DIR`` or ``<repo>/data``), creating it."""
    path = Path(os.environ.get("BONESCAN_DATA_DIR") or REPO_ROOT / "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir() -> Path:
    """Return the model folder in use (``$BONESCAN_MODELS`` or the shipped ``<repo>/models``)."""
    env = os.environ.get("BONESCAN_MODELS")
    return Path(env) if env else REPO_ROOT / "models"


def db_path() -> Path:
    """Return the SQLite file in use (``$BONESCAN_DB`` or ``<data>/bonescan.sqlite``).

    The folder holding it is created if missing.
    """
    env = os.environ.get("BONESCAN_DB")
    path = Path(env) if env else data_dir() / "bonescan.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


#: Pixel spacing (row, column) in mm used when a file gives none: the canonical grid
#: of the paper's camera (and of the phantom).
DEFAULT_PIXEL_SPACING_MM: tuple[float, float] = (2.3, 2.3)
