"""Evaluation as the paper measures it: Table 2, ROC AUC and Dice, networks and baseline.

Every case (scan) of a labelled dataset (:mod:`core.reading.dataset`) is run through the
networks (:func:`core.networks.inference.predict_batch`, several scans per call, models loaded
once) and through the classical baseline (:func:`core.evaluation.baseline.baseline_scan`), and
compared with its reference standard:

* **Metastasis truth** of a scan: the ``metastasis`` column of ``cases.csv``.
* **Bladder truth** of a scan: its annotation holds a bladder pixel in some view.
* **Call and scores.** Networks: the scan probabilities of :class:`~core.networks.inference.
  Prediction` (max crop probability over both views) are the ROC scores, and the call
  is ``positive["metastasis"]`` (probability >= the classifier's threshold, 0.5).
  Baseline: its metastasis and bladder scores, and its hot-spot call.
* **Counts** tp, fp, tn, fn of the metastasis call, and from them sensitivity,
  specificity, accuracy, PPV and NPV (:class:`core.evaluation.metrics.Confusion`).
* **AUC** of metastasis and of bladder: :func:`core.evaluation.metrics.roc_auc` of the scan
  scores against the truth.
* **Dice of a class**: the mean, over the views of the group's scans whose annotation
  holds that class, of the Dice between the predicted and the annotated mask of that
  class (:func:`core.evaluation.metrics.dice_over_views`), the networks' masks being the gated
  ones. Views are pooled, not averaged per scan first, as in :func:`core.evaluation.metrics.table2`.
* **Groups**: every figure over all cases (``overall``) and by age group
  (:data:`core.config.AGE_GROUPS`); the groups' counts add up to the overall ones.
* An undefined figure (a zero denominator, an AUC of a group with one class only, a
  Dice without an annotated view) is None (``null`` in JSON, ``n/a`` when printed).
* **seconds_per_case**: wall time from the two view files on disk to the networks'
  :class:`~core.networks.inference.Prediction`: reading and decoding the images
  (:func:`core.reading.dataset.load_case_views`) plus the batched inference, summed over the
  dataset and divided by the number of cases. Loading the models (once), reading the
  annotations, the baseline and the metrics are not counted.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # no pandas-stubs in the venv
from tqdm import tqdm

from core.config import AGE_GROUPS, LABEL_BLADDER, LABEL_METASTASIS, age_group
from core.evaluation.baseline import baseline_scan
from core.evaluation.metrics import (
    CaseRecord,
    Confusion,
    dice_over_views,
    format_dice,
    roc_auc,
    table2,
)
from core.networks.inference import predict_batch
from core.networks.models import LoadedModels
from core.reading.dataset import Case, load_case_masks, load_case_views, read_dataset

#: Keys of the figures of one group, in the order they are written.
FIGURE_KEYS: tuple[str, ...] = (
    "tp",
    "fp",
    "tn",
    "fn",
    "sensitivity",
    "specificity",
    "accuracy",
    "ppv",
    "npv",
    "auc_metastasis",
    "auc_bladder",
    "dice_metastasis",
    "dice_bladder",
)
#: Top-level keys of :meth:`Evaluation.to_json`.
JSON_KEYS: tuple[str, ...] = ("n_cases", "overall", "by_age", "baseline", "seconds_per_case")
#: Scans per call of the networks by default.
DEFAULT_BATCH = 8


@dataclass(frozen=True)
class CaseOutcome:
    """One scan's truth and one method's answer.

    Attributes:
        case_id: The case id.
        age: Age in years at the scan.
        metastasis: Truth: ``cases.csv`` says bone metastasis.
        bladder: Truth: the annotation holds a bladder in some view.
        call: The method calls the scan metastatic.
        score_metastasis: The method's metastasis score (higher = more likely).
        score_bladder: The method's bladder score.
        dice_metastasis: Metastasis Dice of each view whose annotation holds metastasis.
        dice_bladder: Bladder Dice of each view whose annotation holds a bladder.
    """

    case_id: str
    age: float
    metastasis: bool
    bladder: bool
    call: bool
    score_metastasis: float
    score_bladder: float
    dice_metastasis: tuple[float, ...]
    dice_bladder: tuple[float, ...]


def case_outcome(
    case: Case,
    truth_masks: Mapping[str, np.ndarray],
    pred_masks: Mapping[str, np.ndarray],
    *,
    call: bool,
    score_metastasis: float,
    score_bladder: float,
) -> CaseOutcome:
    """Compare one method's answer on a scan with the scan's truth.

    Args:
        case: The case (its age and ``metastasis`` flag are used).
        truth_masks: ``{view: uint8 (rows, cols) annotation}``, 0/1/2 labels, e.g.
            :func:`core.reading.dataset.load_case_masks`.
        pred_masks: ``{view: uint8 label mask}`` of the method, same views and shapes.
        call: The method's metastasis call.
        score_metastasis: Its metastasis score (finite).
        score_bladder: Its bladder score (finite).

    Returns:
        The :class:`CaseOutcome`.

    Raises:
        ValueError: If a score is not finite, or the masks' views or shapes differ.
    """
    for name, value in (("score_metastasis", score_metastasis), ("score_bladder", score_bladder)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r} (case {case.case_id!r})")
    return CaseOutcome(
        case_id=case.case_id,
        age=case.age,
        metastasis=case.metastasis,
        bladder=any(bool(np.any(np.asarray(m) == LABEL_BLADDER)) for m in truth_masks.values()),
        call=bool(call),
        score_metastasis=float(score_metastasis),
        score_bladder=float(score_bladder),
        dice_metastasis=tuple(dice_over_views(pred_masks, truth_masks, LABEL_METASTASIS)),
        dice_bladder=tuple(dice_over_views(pred_masks, truth_masks, LABEL_BLADDER)),
    )


def _auc(truth: list[bool], scores: list[float]) -> float | None:
    if not truth:
        return None
    value = roc_auc(np.array(truth), np.array(scores, dtype=np.float64))
    return None if math.isnan(value) else value


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def figures(outcomes: Sequence[CaseOutcome]) -> dict[str, Any]:
    """Return the figures of one group of scans.

    Args:
        outcomes: The group's outcomes (may be empty).

    Returns:
        ``{key: value}`` for every key of :data:`FIGURE_KEYS`: counts as int, the
        other figures as float in [0, 1] or None when undefined.
    """
    counts = Confusion(
        tp=sum(o.call and o.metastasis for o in outcomes),
        fp=sum(o.call and not o.metastasis for o in outcomes),
        tn=sum(not o.call and not o.metastasis for o in outcomes),
        fn=sum(not o.call and o.metastasis for o in outcomes),
    )
    return {
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
        "sensitivity": counts.sensitivity,
        "specificity": counts.specificity,
        "accuracy": counts.accuracy,
        "ppv": counts.ppv,
        "npv": counts.npv,
        "auc_metastasis": _auc(
            [o.metastasis for o in outcomes], [o.score_metastasis for o in outcomes]
        ),
        "auc_bladder": _auc([o.bladder for o in outcomes], [o.score_bladder for o in outcomes]),
        "dice_metastasis": _mean([d for o in outcomes for d in o.dice_metastasis]),
        "dice_bladder": _mean([d for o in outcomes for d in o.dice_bladder]),
    }


def grouped_figures(outcomes: Sequence[CaseOutcome]) -> dict[str, Any]:
    """Return the figures over all scans and by age group.

    Args:
        outcomes: Every scan's outcome.

    Returns:
        ``{"overall": figures, "by_age": {"<50": figures, "50-70": ..., ">=70": ...}}``
        with :func:`figures` dicts.
    """
    groups: dict[str, list[CaseOutcome]] = {g: [] for g in AGE_GROUPS}
    for o in outcomes:
        groups[age_group(o.age)].append(o)
    return {
        "overall": figures(outcomes),
        "by_age": {g: figures(groups[g]) for g in AGE_GROUPS},
    }


@dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate_dataset`.

    Attributes:
        model: Per-scan outcomes of the networks, in dataset order; None when the
            networks were not run.
        baseline: Per-scan outcomes of the classical baseline, same order.
        seconds_per_case: See the module docstring; None when the networks were not run.
        device: Where the networks ran ("" when they did not).
    """

    model: tuple[CaseOutcome, ...] | None
    baseline: tuple[CaseOutcome, ...]
    seconds_per_case: float | None
    device: str = ""

    @property
    def n_cases(self) -> int:
        """Number of scans evaluated."""
        return len(self.baseline)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON report: exactly the keys of :data:`JSON_KEYS`.

        Returns:
            ``{"n_cases", "overall", "by_age", "baseline", "seconds_per_case"}``;
            ``overall`` and ``by_age`` are the networks' figures (None when they were
            not run); ``baseline`` holds ``{"overall", "by_age"}`` of the baseline.
        """
        model = grouped_figures(self.model) if self.model is not None else None
        return {
            "n_cases": self.n_cases,
            "overall": model["overall"] if model else None,
            "by_age": model["by_age"] if model else None,
            "baseline": grouped_figures(self.baseline),
            "seconds_per_case": self.seconds_per_case,
        }


def _baseline_outcome(
    case: Case, views: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]
) -> CaseOutcome:
    found = baseline_scan(views)
    return case_outcome(
        case,
        truth,
        found.masks,
        call=found.metastasis,
        score_metastasis=found.score_metastasis,
        score_bladder=found.score_bladder,
    )


def evaluate_cases(
    cases: Sequence[Case],
    models: LoadedModels | None,
    *,
    batch: int = DEFAULT_BATCH,
    progress: bool = True,
) -> Evaluation:
    """Run the networks (when given) and the baseline on cases and compare with the truth.

    Args:
        cases: The cases, e.g. from :func:`core.reading.dataset.read_dataset`.
        models: From :func:`core.networks.models.load_models`; None runs the baseline only.
        batch: Scans per call of the networks (>= 1).
        progress: Show a tqdm progress bar (on stderr).

    Returns:
        The :class:`Evaluation`.

    Raises:
        ValueError: If ``cases`` is empty, ``batch`` < 1, or an annotation is malformed.
        core.scan.ScanReadError: If a view image cannot be read.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch!r}")
    if not cases:
        raise ValueError("cases must not be empty")
    model_out: list[CaseOutcome] = []
    base_out: list[CaseOutcome] = []
    seconds = 0.0
    with tqdm(total=len(cases), unit="scan", desc="evaluate", disable=not progress) as bar:
        for start in range(0, len(cases), batch):
            chunk = cases[start : start + batch]
            began = time.perf_counter()
            scans = [load_case_views(c) for c in chunk]
            preds = predict_batch(models, [s.views for s in scans]) if models is not None else None
            seconds += time.perf_counter() - began
            for i, (case, scan) in enumerate(zip(chunk, scans, strict=True)):
                truth = load_case_masks(case)
                if preds is not None:
                    p = preds[i]
                    model_out.append(
                        case_outcome(
                            case,
                            truth,
                            p.masks,
                            call=p.positive["metastasis"],
                            score_metastasis=p.probabilities["metastasis"],
                            score_bladder=p.probabilities["bladder"],
                        )
                    )
                base_out.append(_baseline_outcome(case, scan.views, truth))
            bar.update(len(chunk))
    return Evaluation(
        model=tuple(model_out) if models is not None else None,
        baseline=tuple(base_out),
        seconds_per_case=seconds / len(cases) if models is not None else None,
        device=str(models.device) if models is not None else "",
    )


def evaluate_dataset(
    folder: str | Path,
    models: LoadedModels | None,
    *,
    limit: int | None = None,
    batch: int = DEFAULT_BATCH,
    progress: bool = True,
) -> Evaluation:
    """Evaluate the networks (when given) and the baseline on a labelled dataset folder.

    Args:
        folder: The dataset folder (``cases.csv``, images, LabelMe files).
        models: From :func:`core.networks.models.load_models`; None runs the baseline only.
        limit: Evaluate only the first ``limit`` cases (>= 1) of ``cases.csv``.
        batch: Scans per call of the networks (>= 1).
        progress: Show a progress bar.

    Returns:
        The :class:`Evaluation`.

    Raises:
        ValueError: If the dataset is invalid or empty, or ``limit`` / ``batch`` < 1.
        core.scan.ScanReadError: If a view image cannot be read.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    cases = read_dataset(folder)
    if not cases:
        raise ValueError(f"{Path(folder) / 'cases.csv'}: the dataset holds no case")
    return evaluate_cases(cases[:limit], models, batch=batch, progress=progress)


def _format_auc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def method_table(outcomes: Sequence[CaseOutcome]) -> pd.DataFrame:
    """Return Table 2 of one method, with AUC and bladder Dice columns added.

    Args:
        outcomes: Every scan's outcome for the method.

    Returns:
        The frame of :func:`core.evaluation.metrics.table2` (groups ``"<50"``, ``"50-70"``,
        ``">=70"``, ``"all"``; rates as the paper writes them) plus the string columns
        ``"AUC (metastasis)"``, ``"AUC (bladder)"`` and ``"Dice (bladder)"``.
    """
    frame = table2(
        CaseRecord(age=o.age, y_true=o.metastasis, y_pred=o.call, dice=o.dice_metastasis)
        for o in outcomes
    ).frame
    grouped = grouped_figures(outcomes)
    rows = [*(grouped["by_age"][g] for g in AGE_GROUPS), grouped["overall"]]
    frame["AUC (metastasis)"] = [_format_auc(r["auc_metastasis"]) for r in rows]
    frame["AUC (bladder)"] = [_format_auc(r["auc_bladder"]) for r in rows]
    frame["Dice (bladder)"] = [format_dice(r["dice_bladder"]) for r in rows]
    return frame


def format_report(evaluation: Evaluation, title: str = "") -> str:
    """Write the evaluation as text: one table per method, then the timing.

    Args:
        evaluation: From :func:`evaluate_dataset`.
        title: A first line (e.g. the dataset), or "".

    Returns:
        Multi-line text.
    """
    lines = [title] if title else []
    if evaluation.model is not None:
        lines += ["Networks (ResNet34 classifier + UNet segmenter):"]
        lines += [method_table(evaluation.model).to_string(index=False), ""]
    lines += ["Classical baseline (hot spots above the bone background, core.evaluation.baseline):"]
    lines += [method_table(evaluation.baseline).to_string(index=False), ""]
    if evaluation.seconds_per_case is not None:
        lines.append(
            f"{evaluation.n_cases} scans; {evaluation.seconds_per_case:.3f} s per scan on "
            f"{evaluation.device} (view files read and decoded + batched inference; "
            "model loading excluded)"
        )
    else:
        lines.append(f"{evaluation.n_cases} scans; networks not run")
    return "\n".join(lines)


def describe_dataset(folder: str | Path, evaluation: Evaluation) -> dict[str, Any]:
    """Return a short description of the evaluated data, for a model card.

    Args:
        folder: The dataset folder.
        evaluation: Its evaluation.

    Returns:
        ``{"path", "n_cases", "n_metastasis", "first_case", "last_case", "date"}``.
    """
    cases = evaluation.baseline
    return {
        "path": str(Path(folder).resolve()),
        "n_cases": len(cases),
        "n_metastasis": sum(o.metastasis for o in cases),
        "first_case": cases[0].case_id if cases else None,
        "last_case": cases[-1].case_id if cases else None,
        "date": dt.date.today().isoformat(),
    }
