"""The labelled dataset format: a folder with ``cases.csv``, view images and LabelMe files.

Layout::

    dataset/
      cases.csv
      images/0001_ANT.png   images/0001_ANT.json   (LabelMe annotation, same stem)
      images/0001_POST.png  images/0001_POST.json
      dicom/0001.dcm        (optional)

``cases.csv`` is UTF-8 CSV (a byte-order mark is tolerated) with a header row and one
row per case (one scan). Columns, in any order:

=============  ==============================================================
case_id        unique, non-empty text
patient_id     non-empty text; several cases may share a patient (follow-up)
age            age in years at the scan, a number in [0, 150]
sex            ``M``, ``F`` or ``O`` (upper or lower case)
scan_date      ``YYYY-MM-DD``
primary        primary tumour as free text (e.g. ``lung``, ``breast``); may be empty
metastasis     ``1`` (bone metastasis) or ``0``, by the reference standard
anterior       the anterior view image, path relative to the dataset folder
posterior      the posterior view image, path relative to the dataset folder
dicom          optional column; the DICOM file of the scan (relative path) or empty
=============  ==============================================================

Paths use ``/`` and must stay inside the dataset folder. Each view image is one view
(PNG or JPEG, as :func:`core.reading.readers.read_scan` reads them; not a four-panel
composite), and the LabelMe file beside it, with the same stem and ``.json``, holds
that view's polygons labelled ``metastasis`` and ``bladder``; no ``.json`` means
nothing is annotated in that view. Annotations are drawn on the image as it is and
scaled onto the canonical 1024 x 256 grid the same way the reader resizes the image
(the whole image, no cropping).

Errors name the file, the row (the line number a spreadsheet shows: the header is
row 1) and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from core.config import COLS, LABEL_METASTASIS, ROWS
from core.reading.labelme import read_labelme_for_image
from core.reading.readers import read_scan
from core.scan import Scan

#: The index file of a dataset folder.
CASES_FILE = "cases.csv"
#: Columns every ``cases.csv`` has, in the order they are written.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "case_id",
    "patient_id",
    "age",
    "sex",
    "scan_date",
    "primary",
    "metastasis",
    "anterior",
    "posterior",
)
#: Columns a ``cases.csv`` may have as well.
OPTIONAL_COLUMNS: tuple[str, ...] = ("dicom",)
#: Accepted values of ``sex``.
SEXES: tuple[str, ...] = ("M", "F", "O")
#: Oldest accepted age, years.
MAX_AGE = 150.0

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Case:
    """One row of ``cases.csv``, with its paths resolved.

    Attributes:
        case_id: Unique id of the case (scan).
        patient_id: Id of the patient.
        age: Age in years at the scan, in [0, 150].
        sex: ``"M"``, ``"F"`` or ``"O"``.
        scan_date: Date of the scan.
        primary: Primary tumour, free text ("" when not given).
        metastasis: True when the reference standard says bone metastasis.
        anterior: Absolute path of the anterior view image.
        posterior: Absolute path of the posterior view image.
        dicom: Absolute path of the DICOM file, or None.
    """

    case_id: str
    patient_id: str
    age: float
    sex: str
    scan_date: dt.date
    primary: str
    metastasis: bool
    anterior: Path
    posterior: Path
    dicom: Path | None = None


class _RowError(ValueError):
    """A bad cell; :func:`read_dataset` adds the file and row."""

    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        super().__init__(reason)


def _relative_path(column: str, text: str, root: Path, check_files: bool) -> Path:
    if not text:
        raise _RowError(column, "is empty; give a path relative to the dataset folder")
    if text.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", text):
        raise _RowError(column, f"{text!r} is absolute; give a path relative to the folder")
    path = (root / PurePosixPath(text.replace("\\", "/"))).resolve()
    if not path.is_relative_to(root):
        raise _RowError(column, f"{text!r} leads outside the dataset folder")
    if check_files and not path.is_file():
        raise _RowError(column, f"{text!r}: no such file")
    return path


def _parse_row(row: dict[str, str], root: Path, check_files: bool) -> Case:
    case_id = row["case_id"].strip()
    if not case_id:
        raise _RowError("case_id", "is empty")
    patient_id = row["patient_id"].strip()
    if not patient_id:
        raise _RowError("patient_id", "is empty")
    try:
        age = float(row["age"])
    except ValueError:
        raise _RowError("age", f"{row['age']!r} is not a number") from None
    if not (math.isfinite(age) and 0.0 <= age <= MAX_AGE):
        raise _RowError("age", f"{row['age']!r} is not an age in [0, {MAX_AGE:g}]")
    sex = row["sex"].strip().upper()
    if sex not in SEXES:
        raise _RowError("sex", f"{row['sex']!r} is not one of {', '.join(SEXES)}")
    date_text = row["scan_date"].strip()
    try:
        if not _DATE.fullmatch(date_text):
            raise ValueError
        scan_date = dt.date.fromisoformat(date_text)
    except ValueError:
        raise _RowError("scan_date", f"{date_text!r} is not a date YYYY-MM-DD") from None
    flag = row["metastasis"].strip()
    if flag not in ("0", "1"):
        raise _RowError("metastasis", f"{row['metastasis']!r} is not 1 or 0")
    dicom_text = (row.get("dicom") or "").strip()
    return Case(
        case_id=case_id,
        patient_id=patient_id,
        age=age,
        sex=sex,
        scan_date=scan_date,
        primary=row["primary"].strip(),
        metastasis=flag == "1",
        anterior=_relative_path("anterior", row["anterior"].strip(), root, check_files),
        posterior=_relative_path("posterior", row["posterior"].strip(), root, check_files),
        dicom=_relative_path("dicom", dicom_text, root, check_files) if dicom_text else None,
    )


def read_dataset(folder: str | Path, *, check_files: bool = True) -> list[Case]:
    """Read and validate a dataset folder's ``cases.csv``.

    Args:
        folder: The dataset folder.
        check_files: Also require every image (and DICOM) path to be an existing file.

    Returns:
        The cases in file order, paths resolved to absolute paths.

    Raises:
        ValueError: If ``cases.csv`` is missing or unreadable, its header lacks a
            required column, names an unknown or repeated one, or a row is malformed;
            the message names the file, the row number (header = row 1) and the column.
    """
    root = Path(folder).resolve()
    path = root / CASES_FILE
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as err:
        raise ValueError(f"{path}: cannot read the dataset index ({err.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header row") from None
        except (csv.Error, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: row 1: {err}") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        repeated = sorted({c for c in header if header.count(c) > 1})
        if missing or unknown or repeated:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown column(s) {', '.join(unknown)}")
            if repeated:
                parts.append(f"repeated column(s) {', '.join(repeated)}")
            raise ValueError(f"{path}: row 1 (header): {'; '.join(parts)}")

        cases: list[Case] = []
        first_row: dict[str, int] = {}
        line = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as err:
                raise ValueError(f"{path}: row {reader.line_num}: {err}") from None
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue  # blank lines are allowed
            if len(fields) != len(header):
                raise ValueError(
                    f"{path}: row {line}: {len(fields)} fields, the header has {len(header)}"
                )
            row = dict(zip(header, fields, strict=True))
            try:
                case = _parse_row(row, root, check_files)
            except _RowError as err:
                raise ValueError(f"{path}: row {line}, column {err.column!r}: {err}") from None
            if case.case_id in first_row:
                raise ValueError(
                    f"{path}: row {line}, column 'case_id': {case.case_id!r} repeats "
                    f"row {first_row[case.case_id]}"
                )
            first_row[case.case_id] = line
            cases.append(case)
    return cases


def _relative_text(root: Path, path: Path, case_id: str, column: str) -> str:
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"cases: case {case_id!r}: {column} {path} is outside {root}")
    return resolved.relative_to(root).as_posix()


def write_cases_csv(folder: str | Path, cases: Iterable[Case]) -> Path:
    """Write ``cases.csv`` for cases whose files lie inside ``folder``.

    The ``dicom`` column is written only when some case has a DICOM file.

    Args:
        folder: The dataset folder (it must exist).
        cases: The cases; their paths absolute or relative to the working directory.

    Returns:
        The path of the file written.

    Raises:
        ValueError: If a case's file lies outside ``folder`` or case ids repeat.
    """
    root = Path(folder).resolve()
    items = list(cases)
    ids = [c.case_id for c in items]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"cases: case_id repeated: {', '.join(repeated)}")
    with_dicom = any(c.dicom is not None for c in items)
    columns = REQUIRED_COLUMNS + (OPTIONAL_COLUMNS if with_dicom else ())
    rows: list[Sequence[str]] = [columns]
    for c in items:
        row = [
            c.case_id,
            c.patient_id,
            f"{c.age:g}",
            c.sex,
            c.scan_date.isoformat(),
            c.primary,
            "1" if c.metastasis else "0",
            _relative_text(root, c.anterior, c.case_id, "anterior"),
            _relative_text(root, c.posterior, c.case_id, "posterior"),
        ]
        if with_dicom:
            row.append("" if c.dicom is None else _relative_text(root, c.dicom, c.case_id, "dicom"))
        rows.append(row)
    path = root / CASES_FILE
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def load_case_views(case: Case) -> Scan:
    """Read a case's two view images into a :class:`~core.scan.Scan`.

    Args:
        case: The case.

    Returns:
        The scan from ``core.reading.readers.read_scan(case.anterior, case.posterior)``.

    Raises:
        core.scan.ScanReadError: If an image cannot be read as a bone-scan view.
    """
    return read_scan(case.anterior, case.posterior)


def load_case_masks(case: Case) -> dict[str, np.ndarray]:
    """Read a case's LabelMe annotations onto the canonical grid.

    Args:
        case: The case.

    Returns:
        ``{"ANT": mask, "POST": mask}``; each uint8 (1024, 256), 0 background,
        1 metastasis, 2 bladder; all 0 for a view without a ``.json``.

    Raises:
        ValueError: If an annotation file is malformed.
    """
    return {
        "ANT": read_labelme_for_image(case.anterior, (ROWS, COLS)),
        "POST": read_labelme_for_image(case.posterior, (ROWS, COLS)),
    }


def patient_lesion_pixels(cases: Iterable[Case]) -> dict[str, int]:
    """Return each patient's annotated metastasis pixels, for the patient split.

    The split is :func:`core.evaluation.metrics.split_patients`. A patient's count is
    the sum over both views of all its cases, on the canonical grid.

    Args:
        cases: The cases.

    Returns:
        ``{patient_id: pixels}``, pixels >= 0.

    Raises:
        ValueError: If an annotation file is malformed.
    """
    out: dict[str, int] = {}
    for case in cases:
        pixels = sum(
            int(np.count_nonzero(m == LABEL_METASTASIS)) for m in load_case_masks(case).values()
        )
        out[case.patient_id] = out.get(case.patient_id, 0) + pixels
    return out
