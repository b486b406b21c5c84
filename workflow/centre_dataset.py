"""The centre's own labelled dataset: the studies its physicians marked reviewed.

:func:`export_reviewed` writes every reviewed study in the project's labelled dataset
format (:mod:`core.reading.dataset`), so that ``python -m core train``, ``evaluate`` and
``calibrate`` read it as they read any dataset::

    OUT/
      cases.csv                       core.reading.dataset.write_cases_csv
      images/<case>_ANT.png (+ .json)  the stored counts, and the physician's masks as
      images/<case>_POST.png (+ .json) LabelMe polygons (core.reading.labelme.write_labelme)
      split.csv                       case_id, patient_id, split (train/calibration/test)
      export.json                     when, the split seed, what was left out and why

*Reviewed study*: a study with an analysis marked reviewed
(:func:`db.annotations.mark_reviewed`); when several of its analyses are, the newest of
them. Its masks are the physician's (:func:`workflow.review_changes.reviewed_masks_of`:
the model's masks after removed lesions, drawn lesions and mask edits), its
``metastasis`` column the physician's scan label, never the model's call.

*Patients* appear by pseudonym only (never name or external id); the age is the study
year minus the birth year, as the cohort page counts it. A reviewed study that lacks
what the format requires (a study date, the sex, the birth year, both views) is left
out, and the summary says which and why.

*Images* keep the stored counts: a study read from the paper's 8-bit display (grey
level 1) is written back as that 8-bit picture (``255 - counts``), which the reader
again takes as grey level 1; any other study as a 16-bit PNG of its counts (black
background, hot = bright), which the reader takes as they are. Both are lossless for
integer counts; counts that are not whole numbers (a resized export) are scaled into
16 bits (``export.json`` gives the factor) or rounded into 8.

*Split* by patient with the paper's rule (:func:`core.evaluation.metrics.split_patients`
on each patient's metastasis pixels, levels of :func:`core.evaluation.metrics.lesion_level`):
20 % of each level to test, then 20 % of the rest, by the same rule, to calibration;
the same store and seed give the same split. Where that leaves no calibration or test
patient (a small centre whose levels each hold one or two patients), the levels are
pooled.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlite_utils import Database

from core.config import LABEL_METASTASIS, VIEWS
from core.evaluation.metrics import split_patients
from core.reading.dataset import MAX_AGE, SEXES, Case, load_case_masks, write_cases_csv
from core.reading.labelme import write_labelme
from db.annotations import reviewed_analyses
from db.queries import study_views
from workflow.review_changes import reviewed_masks_of

#: Share of each lesion-size level that goes to test, then of the rest to calibration.
HELD_OUT_SHARE = 0.2
#: The split names, in the order they are reported.
SPLITS: tuple[str, str, str] = ("train", "calibration", "test")
#: From this many patients on, levels too small to give calibration and test patients
#: are pooled (:func:`split_by_patient`): 1 test, 1 calibration, 2 training at 4.
MIN_POOLED_PATIENTS = 4
#: The split file written beside ``cases.csv``.
SPLIT_FILE = "split.csv"
#: What the export records about itself.
EXPORT_FILE = "export.json"


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_reviewed` wrote.

    Attributes:
        out: The dataset folder.
        cases: Scans written (one per reviewed study).
        patients: Their patients.
        with_metastasis: Scans the physician labelled metastasis.
        without_metastasis: Scans labelled without.
        split_scans: ``{split: scans}`` for train, calibration and test.
        split_patients: ``{split: patients}``.
        skipped: One sentence per reviewed study left out, and why.
        notes: One sentence per case worth knowing about (counts scaled, a mask whose
            holes LabelMe polygons cannot keep).
    """

    out: Path
    cases: int
    patients: int
    with_metastasis: int
    without_metastasis: int
    split_scans: dict[str, int]
    split_patients: dict[str, int]
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Planned:
    """One reviewed study that can be exported."""

    case_id: str
    row: Mapping[str, Any]
    age: int
    scan_date: dt.date
    masks: dict[str, np.ndarray]

    @property
    def lesion_pixels(self) -> int:
        return sum(int(np.count_nonzero(m == LABEL_METASTASIS)) for m in self.masks.values())


def case_id_of(study_id: int) -> str:
    """The case id of a study in the export (its store id; nothing that names the patient)."""
    return f"S{int(study_id):06d}"


def _plan(db: Database) -> tuple[list[_Planned], list[str]]:
    """The reviewed studies that can be exported, and a sentence for each that cannot."""
    planned: list[_Planned] = []
    skipped: list[str] = []
    for row in reviewed_analyses(db):
        name = f"study {row['study_id']} ({row['pseudonym']})"
        missing = []
        if not row["study_date"]:
            missing.append("no study date")
        if row["sex"] not in SEXES:
            missing.append("no sex")
        if row["birth_year"] is None:
            missing.append("no birth year")
        views = db.execute(
            "SELECT view FROM views WHERE study_id = ? ORDER BY view", [row["study_id"]]
        ).fetchall()
        if {v for (v,) in views} != set(VIEWS):
            missing.append("not both views")
        if missing:
            skipped.append(f"{name}: {', '.join(missing)}")
            continue
        scan_date = dt.date.fromisoformat(str(row["study_date"])[:10])
        age = scan_date.year - int(row["birth_year"])
        if not 0 <= age <= MAX_AGE:
            skipped.append(f"{name}: age {age} from birth year {row['birth_year']}")
            continue
        masks = reviewed_masks_of(db, int(row["analysis_id"]))
        planned.append(_Planned(case_id_of(row["study_id"]), row, age, scan_date, masks))
    return planned, skipped


def _level_split(patient_lesion_pixels: Mapping[str, int], seed: int) -> dict[str, str]:
    rest, test = split_patients(patient_lesion_pixels, HELD_OUT_SHARE, seed)
    train, calibration = split_patients(
        {p: patient_lesion_pixels[p] for p in rest}, HELD_OUT_SHARE, seed
    )
    out = dict.fromkeys(train, "train")
    out.update(dict.fromkeys(calibration, "calibration"))
    out.update(dict.fromkeys(test, "test"))
    return out


def split_by_patient(patient_lesion_pixels: Mapping[str, int], seed: int = 0) -> dict[str, str]:
    """Place each patient in train, calibration or test by the paper's 7-level rule.

    A small centre's levels can each be too small to share (a level of 1 or 2 patients
    is all training), leaving no calibration or test patient at all. Then, from
    :data:`MIN_POOLED_PATIENTS` patients on, the levels are pooled: the same rule on
    all patients as one level, so that every split gets patients.

    Args:
        patient_lesion_pixels: ``{patient: metastasis pixels}`` over all its scans.
        seed: Seed of both shuffles.

    Returns:
        ``{patient: split}``: :data:`HELD_OUT_SHARE` of each level to ``"test"``
        (:func:`core.evaluation.metrics.split_patients`), then the same share of the rest,
        level by level, to ``"calibration"``; the others ``"train"``.
    """
    out = _level_split(patient_lesion_pixels, seed)
    if len(out) >= MIN_POOLED_PATIENTS and not {"calibration", "test"} <= set(out.values()):
        out = _level_split(dict.fromkeys(patient_lesion_pixels, 0), seed)
    return out


def _patient_pixels(planned: list[_Planned]) -> dict[str, int]:
    pixels: dict[str, int] = {}
    for case in planned:
        patient = str(case.row["pseudonym"])
        pixels[patient] = pixels.get(patient, 0) + case.lesion_pixels
    return pixels


def _counts(planned: list[_Planned], splits: Mapping[str, str]) -> dict[str, Any]:
    patients = {str(c.row["pseudonym"]) for c in planned}
    positive = sum(1 for c in planned if c.row["reviewed_metastasis"])
    return {
        "scans": len(planned),
        "with_metastasis": positive,
        "without_metastasis": len(planned) - positive,
        "patients": len(patients),
        "synthetic_patients": len({str(c.row["pseudonym"]) for c in planned if c.row["synthetic"]}),
        "split": {
            name: {
                "patients": sum(1 for p in patients if splits[p] == name),
                "scans": sum(1 for c in planned if splits[str(c.row["pseudonym"])] == name),
            }
            for name in SPLITS
        },
    }


def reviewed_summary(db: Database, *, split_seed: int = 0) -> dict[str, Any]:
    """Say what an export of the reviewed studies would hold, writing nothing.

    Args:
        db: An open store.
        split_seed: The seed the split would use.

    Returns:
        ``{"scans", "with_metastasis", "without_metastasis", "patients",
        "synthetic_patients", "split": {split: {"patients", "scans"}}, "skipped":
        [sentences]}``; every count 0 when nothing is reviewed.
    """
    planned, skipped = _plan(db)
    splits = split_by_patient(_patient_pixels(planned), split_seed) if planned else {}
    return {**_counts(planned, splits), "skipped": skipped}


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(
            f"out {out} exists and is not an empty folder; give a new folder for the dataset"
        )


def _view_image(counts: np.ndarray, grey_level_1: bool) -> tuple[Image.Image, float | None]:
    """The picture of one view that the reader takes back as these counts.

    Returns:
        The picture and the factor counts were multiplied by to fit 16 bits (None when
        written as they are).
    """
    if grey_level_1:
        # the paper's display: the reader takes an 8-bit white-background picture as
        # counts = 255 - pixel and flags it grey level 1 again
        pixels = np.clip(np.floor(255.0 - counts + 0.5), 0, 255).astype(np.uint8)
        return Image.fromarray(pixels, mode="L"), None
    whole = np.rint(counts)
    if counts.min() >= 0 and counts.max() <= 65535 and np.array_equal(whole, counts):
        return Image.fromarray(whole.astype(np.uint16)), None
    peak = float(counts.max())
    factor = 65535.0 / peak if peak > 0 else 1.0
    scaled = np.clip(np.floor(np.clip(counts, 0, None) * factor + 0.5), 0, 65535)
    return Image.fromarray(scaled.astype(np.uint16)), factor


def export_reviewed(db: Database, out: Path, *, split_seed: int = 0) -> ExportSummary:
    """Write the reviewed studies as a labelled dataset with a patient split.

    Args:
        db: An open store.
        out: A new or empty folder (created with its parents).
        split_seed: Seed of the patient split (:func:`split_by_patient`).

    Returns:
        The :class:`ExportSummary`.

    Raises:
        ValueError: If ``out`` exists and is not an empty folder, no study is marked
            reviewed, or none of the reviewed studies can be exported (the message
            says why each was left out).
    """
    out = Path(out)
    _check_out(out)
    planned, skipped = _plan(db)
    if not planned:
        if skipped:
            raise ValueError("no reviewed study can be exported: " + "; ".join(skipped))
        raise ValueError(
            "no study is marked reviewed: mark studies reviewed on the review page first"
        )
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    scaled: dict[str, dict[str, float]] = {}
    cases: list[Case] = []
    for plan in planned:
        row = plan.row
        study = db.execute(
            "SELECT display_grey_level_1 FROM studies WHERE id = ?", [row["study_id"]]
        ).fetchone()
        views = study_views(db, int(row["study_id"]))
        paths: dict[str, Path] = {}
        for view in VIEWS:
            counts = views[view]
            picture, factor = _view_image(counts, bool(study[0]))
            path = images / f"{plan.case_id}_{view}.png"
            picture.save(path)
            if factor is not None:
                scaled.setdefault(plan.case_id, {})[view] = factor
                notes.append(f"{plan.case_id} {view}: counts not whole, scaled by {factor:.6g}")
            mask = plan.masks.get(view)
            if mask is None:
                mask = np.zeros(counts.shape, np.uint8)
            write_labelme(path.with_suffix(".json"), mask, path.name, counts.shape)
            paths[view] = path
        case = Case(
            case_id=plan.case_id,
            patient_id=str(row["pseudonym"]),
            age=float(plan.age),
            sex=str(row["sex"]),
            scan_date=plan.scan_date,
            primary=str(row["primary_tumour"] or ""),
            metastasis=bool(row["reviewed_metastasis"]),
            anterior=paths["ANT"],
            posterior=paths["POST"],
        )
        back = load_case_masks(case)
        for view, mask in plan.masks.items():
            if mask.shape == back[view].shape and not np.array_equal(mask, back[view]):
                # LabelMe polygons have no holes: a hole erased inside a mark comes back filled
                differ = int(np.count_nonzero(mask != back[view]))
                notes.append(
                    f"{plan.case_id} {view}: {differ} mask pixels differ in LabelMe "
                    "(a hole inside a mark is filled)"
                )
        cases.append(case)
    write_cases_csv(out, cases)
    splits = split_by_patient(_patient_pixels(planned), split_seed)
    lines = ["case_id,patient_id,split"] + [
        f"{c.case_id},{c.patient_id},{splits[c.patient_id]}" for c in cases
    ]
    (out / SPLIT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    totals = _counts(planned, splits)
    (out / EXPORT_FILE).write_text(
        json.dumps(
            {
                "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "what": "studies marked reviewed; labels and masks are the physicians'",
                "split_seed": split_seed,
                "held_out_share": HELD_OUT_SHARE,
                **totals,
                "counts_scaled": scaled,
                "skipped": skipped,
                "notes": notes,
            },
            indent=1,
            sort_keys=True,
        ),
        encoding="utf-8",
    )
    return ExportSummary(
        out=out,
        cases=totals["scans"],
        patients=totals["patients"],
        with_metastasis=totals["with_metastasis"],
        without_metastasis=totals["without_metastasis"],
        split_scans={name: totals["split"][name]["scans"] for name in SPLITS},
        split_patients={name: totals["split"][name]["patients"] for name in SPLITS},
        skipped=tuple(skipped),
        notes=tuple(notes),
    )
