"""Calibrate the classifier's scan-level metastasis threshold on a held-aside dataset.

A scan's metastasis probability is the maximum over its crops (14 at the default
stride). A classifier trained on batches that are half lesion crops
(``positive_share`` 0.5) is over-confident on the many lesion-free crops of a real
scan, and the maximum of many such crops is >= 0.5 for almost every scan: the
paper's 0.5 then calls every scan positive. :func:`calibrate_classifier` reads a
labelled dataset that neither training nor testing uses, computes each scan's
probability, and picks the threshold with the largest Youden index (sensitivity +
specificity - 1); :func:`apply_calibration` writes it into the classifier card
(``label_thresholds``), where it decides both the scan's call and the segmentation
gate. The held-out test set is then evaluated with it, unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.imaging.normalise import normalise_view
from core.lesions.scorer import SCORER, set_scorer_threshold
from core.networks.inference import crop_probabilities, predict_batch
from core.networks.lesion_net import LESION, set_lesion_thresholds
from core.networks.models import (
    CLASSIFIER,
    ClassifierConfig,
    LoadedModels,
    config_from_dict,
    read_card,
    set_config,
)
from core.reading.dataset import load_case_views, read_dataset


@dataclasses.dataclass(frozen=True)
class ThresholdChoice:
    """A threshold and how it separates the calibration scans.

    Attributes:
        threshold: Scans with probability >= it are called positive; in [0, 1].
        sensitivity: Share of positive scans called positive.
        specificity: Share of negative scans called negative.
        youden: ``sensitivity + specificity - 1``.
    """

    threshold: float
    sensitivity: float
    specificity: float
    youden: float


def rates_at(truth: np.ndarray, scores: np.ndarray, threshold: float) -> ThresholdChoice:
    """Return sensitivity, specificity and Youden index when ``scores >= threshold`` is positive.

    Args:
        truth: bool (n,), both classes present.
        scores: float (n,) probabilities.
        threshold: The cut-off, in [0, 1] (just above 1 calls nothing positive).

    Returns:
        The threshold with its rates.
    """
    called = scores >= threshold
    sens = float(called[truth].mean())
    spec = float((~called[~truth]).mean())
    return ThresholdChoice(float(threshold), sens, spec, sens + spec - 1.0)


def choose_threshold(truth: Sequence[bool], scores: Sequence[float]) -> ThresholdChoice:
    """Return the threshold with the largest Youden index.

    Candidates are the lowest score (calling every scan positive), the midpoints
    between consecutive distinct scores, and just above the largest (calling none
    positive, unless the largest is 1), so that the chosen threshold does not sit
    on a calibration score. Among equal indices the highest threshold wins (fewer
    false positives for the same balance).

    Args:
        truth: Whether each scan is positive; both classes must occur.
        scores: Each scan's probability, in [0, 1], same length.

    Returns:
        The choice.

    Raises:
        ValueError: If the lengths differ, a class is missing or a score is outside [0, 1].
    """
    y = np.asarray(truth, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"truth and scores must be 1-D of one length, got {y.shape}, {s.shape}")
    if y.all() or not y.any():
        raise ValueError("truth must hold both positive and negative scans")
    if not ((s >= 0.0) & (s <= 1.0)).all():
        raise ValueError("scores must lie in [0, 1]")
    distinct = np.unique(s)
    # the lowest score calls every scan positive; just above the highest calls none
    # (unless that is 1.0: a threshold above 1 is not a probability)
    candidates = [distinct[0], *((distinct[:-1] + distinct[1:]) / 2)]
    if distinct[-1] < 1.0:
        candidates.append(np.nextafter(distinct[-1], 2.0))
    best: ThresholdChoice | None = None
    for t in candidates:
        choice = rates_at(y, s, float(t))
        if best is None or choice.youden >= best.youden:
            best = choice
    assert best is not None
    return best


def scan_scores(
    models: LoadedModels,
    dataset: Path | str,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[str], list[bool], list[float]]:
    """Each scan's metastasis probability (maximum over its crops) on a labelled dataset.

    Args:
        models: The loaded models (only the classifier runs).
        dataset: A labelled dataset folder (:func:`core.reading.dataset.read_dataset`).
        limit: Only the first ``limit`` cases (>= 1), or all when None.
        progress: Called with (done, total) after each case.

    Returns:
        Case ids, reference-standard metastasis, and probabilities, in dataset order.

    Raises:
        ValueError: If ``limit`` < 1 or the dataset cannot be read.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    cases = read_dataset(dataset)[:limit]
    column = models.classifier_config.labels.index("metastasis")
    ids, truth, scores = [], [], []
    for k, case in enumerate(cases):
        scan = load_case_views(case)
        if models.lesion is not None or models.scorer is not None:
            # the lesion network's (or the scorer's) scan score is what its threshold decides
            (pred,) = predict_batch(models, [scan.views])
            score = pred.probabilities["metastasis"]
        else:
            views = np.stack([normalise_view(np.asarray(v)) for v in scan.views.values()])
            # float32 throughout: the threshold is chosen where decisions are made
            probs = crop_probabilities(models, views, precision="float32").probabilities
            score = float(probs[:, :, column].max())
        ids.append(case.case_id)
        truth.append(bool(case.metastasis))
        scores.append(score)
        if progress is not None:
            progress(k + 1, len(cases))
    return ids, truth, scores


def calibrated_config(config: ClassifierConfig, threshold: float) -> ClassifierConfig:
    """Return ``config`` with ``threshold`` as the metastasis threshold.

    Args:
        config: The classifier's config; its other labels keep their thresholds.
        threshold: The new metastasis threshold, in [0, 1].

    Returns:
        The new frozen config.

    Raises:
        ValueError: If ``threshold`` is outside [0, 1] or the config has no metastasis label.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if "metastasis" not in config.labels:
        raise ValueError(f"config has no metastasis label: {config.labels}")
    values = config.thresholds()
    values["metastasis"] = threshold
    return dataclasses.replace(
        config, label_thresholds=tuple(values[label] for label in config.labels)
    )


def apply_calibration(
    model_dir: Path | str,
    choice: ThresholdChoice,
    *,
    dataset: str,
    n_cases: int,
    n_positive: int,
    command: str,
) -> dict[str, Any]:
    """Write a chosen metastasis threshold into the folder's card, saying where from.

    The classifier's card, or the lesion network's or the lesion scorer's when the
    folder has one (its scan score then makes the calls, :mod:`core.networks.lesion_net`,
    :mod:`core.lesions.scorer`).

    Args:
        model_dir: The model folder.
        choice: From :func:`choose_threshold`.
        dataset: Names the calibration data (for the card).
        n_cases: Scans it was chosen on (>= 1).
        n_positive: Of which positive.
        command: The command that chose it.

    Returns:
        The card as written.

    Raises:
        ValueError: If ``n_cases`` < 1.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases}")
    own = next((n for n in (LESION, SCORER) if (Path(model_dir) / f"{n}.json").is_file()), None)
    if own is not None:
        # the folder's calls are the lesion network's or the scorer's: theirs is the
        # threshold to set
        calibration = {
            "metastasis_threshold": {
                "threshold": round(choice.threshold, 4),
                "rule": f"largest Youden index (sensitivity + specificity - 1) over the "
                f"calibration scans of the {own}'s scan score",
                "chosen_on": f"{n_cases} scans ({n_positive} with metastasis) of {dataset}",
                "calibration_sensitivity": round(choice.sensitivity, 4),
                "calibration_specificity": round(choice.specificity, 4),
                "command": command,
                "date": dt.date.today().isoformat(),
            }
        }
        if own == LESION:
            return set_lesion_thresholds(
                model_dir, threshold=round(choice.threshold, 4), calibration=calibration
            )
        return set_scorer_threshold(model_dir, round(choice.threshold, 4), calibration=calibration)
    card = read_card(model_dir, CLASSIFIER)
    config = config_from_dict(CLASSIFIER, card["config"])
    assert isinstance(config, ClassifierConfig)
    calibration = dict(card.get("calibration") or {})
    calibration["metastasis_threshold"] = {
        "threshold": round(choice.threshold, 4),
        "why": "the scan's probability is the maximum over its crops; at the paper's 0.5 "
        "almost every scan is called positive",
        "rule": "largest Youden index (sensitivity + specificity - 1) over the calibration "
        "scans; it also opens the segmentation gate",
        "chosen_on": f"{n_cases} scans ({n_positive} with metastasis) of {dataset}: neither "
        "the training nor the held-out test set",
        "calibration_sensitivity": round(choice.sensitivity, 4),
        "calibration_specificity": round(choice.specificity, 4),
        "command": command,
        "date": dt.date.today().isoformat(),
    }
    new = calibrated_config(config, round(choice.threshold, 4))
    return set_config(model_dir, new, calibration=calibration)
