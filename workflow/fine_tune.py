"""The centre's fine-tune job: reviewed scans -> candidate model -> comparison -> registry.

:func:`run_fine_tune_job` runs one ``fine-tune`` job of :mod:`db.jobs` in its folder
``OUT`` (``<data>/jobs/<id>``), step by step::

    OUT/dataset/       (a) the physician-reviewed studies as a labelled dataset + split.csv
    OUT/train/         (b) one dataset folder per split, images hard-linked (or copied)
    OUT/calibration/
    OUT/test/
    OUT/candidate/     (c) the fine-tuned model (checkpoint.pt and progress.json while
                           training, from the active model's weights, in the time budget)
    OUT/calibration.json   (d) the candidate's threshold, chosen on OUT/calibration
    OUT/comparison.json    (e) candidate and parent side by side on OUT/test
    OUT/registered.json    (f) the candidate's version in the registry
                           (g) the job finished, with the comparison as its result

Each step writes its output under a temporary name and renames it when complete (or
writes its marker file last), and is skipped when its output is there: a job killed at
any point (a server restart, a reboot) is started again by :func:`workflow.jobs.
recover_jobs` and carries on, training included (it resumes from ``checkpoint.pt``).
The time budget counts the training loop only, over every session: a resumed run gets
what the earlier sessions left (at least :data:`MIN_SESSION_S`).

The parent is the model active when the job was made (``args["parent"]`` and
``args["init_from"]``), not whichever is active when a resumed run gets there: a
checkpoint records the weights it started from, and the comparison must be with them.
A failure marks the job failed with its reason; the active model is never changed here
(promotion is an admin's decision on the Model lab page).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.burden.indices import hotspot_count
from core.config import AGE_GROUPS, LABEL_METASTASIS, age_group
from core.evaluation.evaluate import CaseOutcome, case_outcome, grouped_figures
from core.networks.calibrate import apply_calibration, choose_threshold, scan_scores
from core.networks.fine_tune import fine_tune_options
from core.networks.inference import predict_batch
from core.networks.models import CLASSIFIER, SEGMENTER, load_models, read_card
from core.networks.trainer import CHECKPOINT_NAME, PROGRESS_NAME, TrainOptions, train_from_folder
from core.reading.dataset import (
    Case,
    load_case_masks,
    load_case_views,
    read_dataset,
    write_cases_csv,
)
from db import jobs as job_store
from db.connection import open_db
from db.model_registry import list_models
from workflow.centre_dataset import export_reviewed
from workflow.model_versions import FIGURE_KEYS, register_candidate

#: The splits of ``split.csv``, each made into its own dataset folder.
SPLITS: tuple[str, str, str] = ("train", "calibration", "test")
#: The split file the export writes beside ``cases.csv``.
SPLIT_FILE = "split.csv"
#: Sub-folders and marker files of a job's folder.
DATASET_DIR, CANDIDATE_DIR = "dataset", "candidate"
TRAIN_TIME_FILE = "train_time.json"
CALIBRATION_FILE = "calibration.json"
COMPARISON_FILE = "comparison.json"
REGISTERED_FILE = "registered.json"
#: Fewest seconds a resumed training session is given, even when the budget is spent
#: (enough to time its steps and save the models).
MIN_SESSION_S = 60.0
#: Scans per call of the networks while comparing.
EVAL_BATCH = 4
#: Training settings a job may override (tests and a command line run tiny jobs).
OVERRIDABLE: tuple[str, ...] = (
    "steps",
    "seg_steps",
    "batch_size",
    "lr",
    "val_every",
    "val_cases",
    "checkpoint_every",
    "device",
    "amp",
    "seg_crop_rows",
    "scorer_epochs",
)


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse a training override that is not one of :data:`OVERRIDABLE`.

    Returns:
        The overrides as a plain dict.

    Raises:
        ValueError: If a key is not overridable.
    """
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"overrides: {', '.join(unknown)} may not be set (only {OVERRIDABLE})")
    return dict(overrides)


def training_options(
    time_budget_s: float, *, init_from: str, overrides: Mapping[str, Any] | None = None
) -> TrainOptions:
    """The training settings of one session: the fine-tune's, with the job's overrides.

    The fine-tune's are :func:`core.networks.fine_tune.fine_tune_options` (measured on
    this project's CPU), without a progress bar (the job's log is a file).

    Args:
        time_budget_s: Seconds this session's training loop may take (> 0).
        init_from: The model folder the weights start from.
        overrides: Settings of :data:`OVERRIDABLE` to change (``seg_crop_rows`` sets
            the segmenter's training crop to that many rows x 256).

    Raises:
        ValueError: If an override is unknown or a setting is invalid.
    """
    if not (time_budget_s > 0 and math.isfinite(time_budget_s)):
        raise ValueError(f"time_budget_s must be a finite number > 0, got {time_budget_s!r}")
    changes = check_overrides(overrides or {})
    opts = fine_tune_options(time_budget_s, init_from=init_from, progress=False)
    rows = changes.pop("seg_crop_rows", None)
    if rows is not None:
        changes["segmenter"] = dataclasses.replace(opts.segmenter, train_crop=(int(rows), 256))
    return dataclasses.replace(opts, **changes)


# --- small helpers ------------------------------------------------------------------


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    # atomic, so that a marker file is either whole or absent
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _stage(db_path: Path, job_id: int, message: str) -> None:
    with open_db(db_path) as db:
        job_store.set_message(db, job_id, message)


def _fresh(path: Path) -> Path:
    """Remove what an interrupted step left at ``path`` and return it."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


# --- (a) export and (b) split -------------------------------------------------------


def export_dataset(db_path: Path, out: Path, *, split_seed: int = 0) -> Path:
    """Step (a): export the reviewed studies to ``out/dataset`` unless already there.

    Returns:
        The dataset folder (``cases.csv``, ``images/``, ``split.csv``).

    Raises:
        ValueError: If the export is refused (e.g. no reviewed study).
    """
    final = out / DATASET_DIR
    if (final / SPLIT_FILE).is_file() and (final / "cases.csv").is_file():
        return final
    partial = _fresh(out / (DATASET_DIR + ".partial"))
    with open_db(db_path) as db:
        export_reviewed(db, partial, split_seed=split_seed)
    if not (partial / SPLIT_FILE).is_file():
        raise ValueError(f"the export wrote no {SPLIT_FILE} in {partial}")
    _fresh(final)
    partial.rename(final)
    return final


def read_split(dataset: Path) -> dict[str, str]:
    """Read ``split.csv``: ``{case_id: split}``.

    Raises:
        ValueError: If the file is missing, lacks a column, or names an unknown split.
    """
    path = dataset / SPLIT_FILE
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the split ({exc.strerror})") from None
    split: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        case_id, which = (row.get("case_id") or "").strip(), (row.get("split") or "").strip()
        if not case_id or which not in SPLITS:
            raise ValueError(
                f"{path}: row {line}: needs a case_id and a split of {SPLITS}, got {row}"
            )
        split[case_id] = which
    return split


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copy2(src, dst)


def _place(case: Case, root: Path, folder: Path) -> Case:
    """Link a case's view images (and their LabelMe files) into ``folder``."""
    moved: list[Path] = []
    for src in (case.anterior, case.posterior):
        dst = folder / src.relative_to(root)
        _link(src, dst)
        note = src.with_suffix(".json")
        if note.is_file():
            _link(note, dst.with_suffix(".json"))
        moved.append(dst)
    return dataclasses.replace(case, anterior=moved[0], posterior=moved[1], dicom=None)


def split_folders(out: Path) -> dict[str, Path]:
    """Step (b): make ``out/train``, ``out/calibration`` and ``out/test`` from split.csv.

    Each is a labelled dataset folder of its own (``cases.csv`` with paths inside it),
    its images hard-linked from ``out/dataset`` (copied where links cannot be made).

    Returns:
        ``{split: folder}``.

    Raises:
        ValueError: If a case has no split, or a split cannot serve its purpose: no
            scan to train on, a calibration set without both a scan with and one without
            metastasis, or no scan to test on.
    """
    dataset = out / DATASET_DIR
    folders = {name: out / name for name in SPLITS}
    if all((f / "cases.csv").is_file() for f in folders.values()):
        return folders
    cases = read_dataset(dataset)
    split = read_split(dataset)
    missing = [c.case_id for c in cases if c.case_id not in split]
    if missing:
        raise ValueError(f"{dataset / SPLIT_FILE}: no split for case(s) {', '.join(missing[:5])}")
    groups = {name: [c for c in cases if split[c.case_id] == name] for name in SPLITS}
    check_split(groups)
    root = dataset.resolve()
    for name, members in groups.items():
        if (folders[name] / "cases.csv").is_file():
            continue
        partial = _fresh(out / (name + ".partial"))
        partial.mkdir(parents=True)
        placed = [_place(c, root, partial) for c in members]
        write_cases_csv(partial, placed)
        _fresh(folders[name])
        partial.rename(folders[name])
    return folders


def check_split(groups: Mapping[str, Sequence[Case]]) -> None:
    """Refuse a split that cannot train, calibrate or test (before hours are spent).

    Raises:
        ValueError: Saying which split falls short and what to review to mend it.
    """
    if not groups.get("train"):
        raise ValueError("the split gives no scan to train on: review more studies")
    calibration = groups.get("calibration") or []
    with_metastasis = sum(c.metastasis for c in calibration)
    if with_metastasis == 0 or with_metastasis == len(calibration):
        raise ValueError(
            f"the calibration split holds {len(calibration)} scan(s), {with_metastasis} with "
            "metastasis: choosing a threshold needs scans with and without metastasis; "
            "review more studies of both kinds"
        )
    if not groups.get("test"):
        raise ValueError("the split gives no scan to test on: review more studies")


def data_counts(folders: Mapping[str, Path]) -> dict[str, dict[str, int]]:
    """Scans, scans with metastasis and patients of each split folder."""
    counts: dict[str, dict[str, int]] = {}
    for name, folder in folders.items():
        cases = read_dataset(folder)
        counts[name] = {
            "scans": len(cases),
            "with_metastasis": sum(c.metastasis for c in cases),
            "patients": len({c.patient_id for c in cases}),
        }
    return counts


# --- (c) train ----------------------------------------------------------------------


def _models_written(folder: Path) -> bool:
    names = (f"{n}.{ext}" for n in (CLASSIFIER, SEGMENTER) for ext in ("json", "safetensors"))
    return all((folder / n).is_file() for n in names) and not (folder / CHECKPOINT_NAME).exists()


def _seconds_spent(out: Path) -> float:
    """Training seconds of the earlier sessions, counting the last one's progress record.

    Each session's ``progress.json`` carries its own elapsed time; it is added once
    (its content hash is remembered), so a run killed several times counts every session.
    """
    record_path = out / TRAIN_TIME_FILE
    record = _read_json(record_path) or {"spent_s": 0.0, "counted": []}
    progress_path = out / CANDIDATE_DIR / PROGRESS_NAME
    try:
        text = progress_path.read_bytes()
    except OSError:
        return float(record["spent_s"])
    digest = hashlib.sha256(text).hexdigest()
    progress = _read_json(progress_path) or {}
    if digest not in record["counted"] and isinstance(progress.get("elapsed_s"), int | float):
        record = {
            "spent_s": float(record["spent_s"]) + float(progress["elapsed_s"]),
            "counted": [*record["counted"], digest],
        }
        _write_json(record_path, record)
    return float(record["spent_s"])


def train_candidate(out: Path, args: Mapping[str, Any]) -> Path:
    """Step (c): fine-tune from ``args["init_from"]`` on ``out/train`` into ``out/candidate``.

    Resumes from ``out/candidate/checkpoint.pt`` when an earlier session left one;
    skipped when the models are written.

    Returns:
        The candidate folder.

    Raises:
        ValueError: If the starting model folder is gone, or the run stopped short.
    """
    candidate = out / CANDIDATE_DIR
    if _models_written(candidate):
        return candidate
    init_from = str(args["init_from"])
    if not Path(init_from).is_dir():
        raise ValueError(f"the parent model folder {init_from} is gone; the job cannot resume")
    budget = float(args["time_budget_s"])
    left = max(MIN_SESSION_S, budget - _seconds_spent(out))
    opts = training_options(left, init_from=init_from, overrides=args.get("overrides"))
    result = train_from_folder(out / "train", candidate, opts, resume=True)
    if not result.finished:
        raise ValueError(f"training stopped at step {result.step} without saving the models")
    return candidate


# --- (d) calibrate ------------------------------------------------------------------


def calibrate_candidate(out: Path) -> dict[str, Any]:
    """Step (d): choose the candidate's threshold on ``out/calibration`` and write it.

    As ``python -m core calibrate out/calibration --model out/candidate --write``.

    Returns:
        ``{"threshold", "sensitivity", "specificity", "scans", "with_metastasis"}``.
    """
    done = _read_json(out / CALIBRATION_FILE)
    if done is not None:
        return done
    candidate, folder = out / CANDIDATE_DIR, out / "calibration"
    models = load_models(candidate, device="cpu")
    ids, truth, scores = scan_scores(models, folder)
    choice = choose_threshold(truth, scores)
    apply_calibration(
        candidate,
        choice,
        dataset=str(folder),
        n_cases=len(ids),
        n_positive=int(sum(truth)),
        command=f"python -m core calibrate {folder} --model {candidate} --write",
    )
    record = {
        "threshold": round(choice.threshold, 4),
        "sensitivity": choice.sensitivity,
        "specificity": choice.specificity,
        "scans": len(ids),
        "with_metastasis": int(sum(truth)),
    }
    _write_json(out / CALIBRATION_FILE, record)
    return record


# --- (e) compare --------------------------------------------------------------------


def _marks_per_negative(outcomes: Sequence[CaseOutcome], marks: Sequence[int]) -> float | None:
    counts = [m for o, m in zip(outcomes, marks, strict=True) if not o.metastasis]
    return float(np.mean(counts)) if counts else None


def model_figures(model_dir: Path | str, folder: Path | str) -> dict[str, Any]:
    """The paper's figures of one model on a labelled dataset, with marks per negative scan.

    Args:
        model_dir: The model folder.
        folder: The labelled dataset folder.

    Returns:
        ``{"overall": figures, "by_age": {group: figures}, "n_cases", "threshold"}``;
        figures are :func:`core.evaluation.evaluate.figures` (counts, sensitivity,
        specificity, accuracy, PPV, NPV, AUC, Dice) plus ``marks_per_negative_scan``:
        the mean number of hotspots (8-connected metastasis components, both views) the
        model marks on a scan without metastasis, None where the group has none.

    Raises:
        ValueError: If the dataset is empty or unreadable.
        core.networks.models.ModelFileError: If the model cannot be loaded.
    """
    cases = read_dataset(folder)
    if not cases:
        raise ValueError(f"{folder}: the dataset holds no case")
    models = load_models(model_dir)
    outcomes: list[CaseOutcome] = []
    marks: list[int] = []
    for start in range(0, len(cases), EVAL_BATCH):
        chunk = cases[start : start + EVAL_BATCH]
        preds = predict_batch(models, [load_case_views(c).views for c in chunk])
        for case, p in zip(chunk, preds, strict=True):
            outcomes.append(
                case_outcome(
                    case,
                    load_case_masks(case),
                    p.masks,
                    call=p.positive["metastasis"],
                    score_metastasis=p.probabilities["metastasis"],
                    score_bladder=p.probabilities["bladder"],
                )
            )
            marks.append(sum(hotspot_count(m == LABEL_METASTASIS) for m in p.masks.values()))
    grouped = grouped_figures(outcomes)
    grouped["overall"]["marks_per_negative_scan"] = _marks_per_negative(outcomes, marks)
    for group in AGE_GROUPS:
        members = [i for i, o in enumerate(outcomes) if age_group(o.age) == group]
        grouped["by_age"][group]["marks_per_negative_scan"] = _marks_per_negative(
            [outcomes[i] for i in members], [marks[i] for i in members]
        )
    return {
        **grouped,
        "n_cases": len(cases),
        "threshold": models.classifier_config.thresholds()["metastasis"],
    }


def compare_models(out: Path, args: Mapping[str, Any]) -> dict[str, Any]:
    """Step (e): the candidate and its parent side by side on ``out/test``.

    Returns:
        ``{"test_set": {...}, "candidate": figures, "active": figures}`` (figures of
        :func:`model_figures`; "active" is the parent, the model active when the job
        was made, with its ``version``).
    """
    done = _read_json(out / COMPARISON_FILE)
    if done is not None:
        return done
    test = out / "test"
    cases = read_dataset(test)
    comparison = {
        "test_set": {
            "scans": len(cases),
            "with_metastasis": sum(c.metastasis for c in cases),
            "patients": len({c.patient_id for c in cases}),
        },
        "candidate": model_figures(out / CANDIDATE_DIR, test),
        "active": {"version": args["parent"], **model_figures(str(args["init_from"]), test)},
    }
    _write_json(out / COMPARISON_FILE, comparison)
    return comparison


# --- (f) register and the whole job -------------------------------------------------


def _steps(candidate: Path) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    for name in (CLASSIFIER, SEGMENTER):
        training = read_card(candidate, name).get("training") or {}
        steps[name] = training.get("steps")
    notes = (read_card(candidate, CLASSIFIER).get("training") or {}).get("notes") or []
    return {**steps, "notes": notes}


def card_extra(job_id: int, summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the registry's card of the candidate holds beside its own cards' summary.

    ``figures`` (the candidate's overall figures on the job's test split, which the
    versions table shows), ``figures_dataset`` (that split), ``job`` and ``fine_tune``
    (the parent, data counts, steps, calibration and the whole comparison).
    """
    comparison = summary["comparison"]
    overall = comparison["candidate"]["overall"]
    return {
        "job": job_id,
        "figures": {k: overall[k] for k in FIGURE_KEYS if overall.get(k) is not None},
        "figures_dataset": {"what": f"the test split of fine-tune job {job_id}",
                            **comparison["test_set"]},
        "fine_tune": dict(summary),
    }  # fmt: skip


def register(db_path: Path, out: Path, job: job_store.Job, card_extra: Mapping[str, Any]) -> str:
    """Step (f): register ``out/candidate`` once (a rerun finds it by its folder).

    Returns:
        The candidate's version.
    """
    done = _read_json(out / REGISTERED_FILE)
    if done is not None:
        return str(done["version"])
    candidate = (out / CANDIDATE_DIR).resolve()
    with open_db(db_path) as db:
        known = [m for m in list_models(db) if Path(str(m["path"])).resolve() == candidate]
        if known:
            version = str(known[0]["version"])
        else:
            version = register_candidate(
                db,
                candidate,
                parent=str(job.args["parent"]),
                card_extra=dict(card_extra),
                account=job.started_by,
            )
    _write_json(out / REGISTERED_FILE, {"version": version})
    return version


def run_fine_tune_job(db_path: Path | str, job_id: int) -> dict[str, Any]:
    """Run (or carry on) one fine-tune job, from the export to the registered candidate.

    Args:
        db_path: The store's SQLite file.
        job_id: A queued or running ``fine-tune`` job (:func:`workflow.jobs.start_fine_tune`).

    Returns:
        The job's result: ``{"candidate", "parent", "data", "steps", "calibration",
        "comparison", "time_budget_s"}``.

    Raises:
        ValueError: If the job is not an active fine-tune job.
        Exception: Whatever a step raised; the job is then marked failed with the stage
            and the reason, and the active model is untouched.
    """
    db_path = Path(db_path)
    with open_db(db_path) as db:
        job = job_store.job(db, job_id)
    if job.kind != "fine-tune" or not job.active:
        raise ValueError(f"job_id: job {job_id} is a {job.state} {job.kind} job, not an active "
                         "fine-tune")  # fmt: skip
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = "starting"
    try:
        stage = "exporting the reviewed scans"
        _stage(db_path, job_id, stage)
        export_dataset(db_path, out, split_seed=int(job.args.get("split_seed", 0)))
        stage = "splitting them into train, calibration and test"
        _stage(db_path, job_id, stage)
        folders = split_folders(out)
        counts = data_counts(folders)
        stage = "training"
        _stage(db_path, job_id, stage)
        candidate = train_candidate(out, job.args)
        stage = "calibrating the candidate's threshold"
        _stage(db_path, job_id, stage)
        calibration = calibrate_candidate(out)
        stage = "comparing the candidate with the active model"
        _stage(db_path, job_id, stage)
        comparison = compare_models(out, job.args)
        stage = "registering the candidate"
        _stage(db_path, job_id, stage)
        summary = {
            "job": job_id,
            "parent": job.args["parent"],
            "data": counts,
            "steps": _steps(candidate),
            "time_budget_s": job.args["time_budget_s"],
            "calibration": calibration,
            "comparison": comparison,
        }
        version = register(db_path, out, job, card_extra(job_id, summary))
        result = {"candidate": version, **summary}
        with open_db(db_path) as db:
            job_store.finish(db, job_id, result)
    except Exception as exc:
        with open_db(db_path) as db:
            if job_store.job(db, job_id).active:
                job_store.fail(db, job_id, f"{stage}: {exc}")
        raise
    return result
