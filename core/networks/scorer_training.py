"""The lesion scorer's training examples: the segmenter's marks on labelled scans.

Issue 26 trained the shipped scorer on phantom marks (``scripts/train_scorer.py``);
issue 24's fine-tune retrains it on a centre's reviewed scans, so that what the centre's
physicians called benign (its camera's joints, its patients' degenerative uptake) stops
being marked. Both take their examples from here: every mark the segmenter makes on a
whole view (:func:`core.networks.inference.segment_marks`, exactly what the scorer is
given at analysis), its features, and whether a reference mask calls it a metastasis
(:func:`core.lesions.features.candidate_truth`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import LABEL_METASTASIS, VIEWS
from core.evaluation.metrics import roc_auc
from core.lesions.features import FEATURES, candidate_truth
from core.lesions.scorer import SCORER, fit_scorer, load_scorer, save_scorer, score
from core.networks.files import load_network_card
from core.networks.inference import segment_marks, skeleton_labels
from core.networks.models import LoadedModels, load_models
from core.networks.sampling import TrainingData

#: Seconds a scan's examples take on one thread of this project's 2-core CPU (whole-view
#: segmenter, skeleton network, features; 1.5 s measured reading phantom PNGs, less
#: from memory). A fine-tune keeps this much of its time budget per scan for the scorer.
SECONDS_PER_SCAN = 1.5
#: Seconds kept for the scorer's own training (full-batch epochs over a few thousand
#: marks take seconds).
FIT_SECONDS = 30.0


@dataclass(frozen=True)
class MarkExamples:
    """Labelled marks of several scans.

    Attributes:
        features: float32 (n, len(FEATURES)) each mark's features.
        truth: bool (n,) whether the mark lies on a reference metastasis.
        scan: int (n,) the index of each mark's scan, into ``scan_truth``.
        scan_truth: bool (S,) whether each scan's reference has any metastasis.
    """

    features: np.ndarray
    truth: np.ndarray
    scan: np.ndarray
    scan_truth: np.ndarray

    def scan_scores(self, scores: np.ndarray) -> np.ndarray:
        """Each scan's highest mark score (0 without marks): float (S,)."""
        out = np.zeros(len(self.scan_truth))
        np.maximum.at(out, self.scan, np.asarray(scores, dtype=float))
        return out

    def summary(self, scores: np.ndarray, threshold: float) -> dict[str, float | int | None]:
        """The figures of a scorer's ``scores`` (n,) on these marks.

        Returns:
            ``marks``, ``true_marks``, ``scans``, ``mark_auc`` and ``scan_auc`` (None
            where one class is missing), and at ``threshold``: ``sensitivity``,
            ``specificity`` (None without scans of that class), ``marks_per_negative``
            and ``true_marks_kept``.
        """
        per_scan = self.scan_scores(scores)
        truth = self.scan_truth
        kept = np.asarray(scores) >= threshold
        called = per_scan >= threshold
        negatives = np.flatnonzero(~truth)
        marks_neg = np.bincount(self.scan[kept], minlength=len(truth))[negatives]

        def auc(y: np.ndarray, s: np.ndarray) -> float | None:
            return round(float(roc_auc(y.astype(int), s)), 4) if 0 < y.sum() < len(y) else None

        def share(a: np.ndarray) -> float | None:
            return round(float(a.mean()), 4) if a.size else None

        return {
            "marks": len(self.truth),
            "true_marks": int(self.truth.sum()),
            "scans": len(truth),
            "mark_auc": auc(self.truth, np.asarray(scores)),
            "scan_auc": auc(truth, per_scan),
            "threshold": round(float(threshold), 4),
            "sensitivity": share(called[truth]),
            "specificity": share(~called[~truth]),
            "marks_per_negative": round(float(marks_neg.mean()), 2) if negatives.size else None,
            "true_marks_kept": share(kept[self.truth]),
        }


def scan_examples(
    models: LoadedModels,
    views: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled marks of one scan.

    Args:
        models: Loaded models (segmenter and skeleton network).
        views: ``{view: counts}``, float (1024, 256) >= 0, canonical orientation.
        masks: ``{view: uint8 (1024, 256)}`` reference labels of the same views.

    Returns:
        float32 (n, len(FEATURES)) features and bool (n,) truth of the scan's marks.

    Raises:
        ValueError: If a view has no reference mask, or the models have no skeleton
            network.
    """
    missing = [v for v in views if v not in masks]
    if missing:
        raise ValueError(f"masks: no reference for views {missing}")
    if models.skeleton is None:
        raise ValueError("models: the scorer's features need the skeleton network")
    maps = skeleton_labels(models, views)
    xs, ys = [], []
    for v, marks in segment_marks(models, views, maps).items():
        xs.append(marks.candidates.features)
        ys.append(candidate_truth(marks.candidates.components, np.asarray(masks[v])))
    return (
        np.concatenate(xs) if xs else np.zeros((0, len(FEATURES)), np.float32),
        np.concatenate(ys) if ys else np.zeros(0, bool),
    )


def mark_examples(
    models: LoadedModels,
    scans: Iterable[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
) -> MarkExamples:
    """The labelled marks of several scans (see :func:`scan_examples`).

    Args:
        models: Loaded models.
        scans: Each ``(views, masks)``; a scan is positive when its masks hold any
            metastasis pixel.

    Returns:
        The examples, scans numbered in the order given.
    """
    xs, ys, scan_of, scan_truth = [], [], [], []
    for k, (views, masks) in enumerate(scans):
        x, y = scan_examples(models, views, masks)
        xs.append(x)
        ys.append(y)
        scan_of.append(np.full(len(x), k, dtype=int))
        scan_truth.append(any((np.asarray(m) == LABEL_METASTASIS).any() for m in masks.values()))
    return MarkExamples(
        features=np.concatenate(xs) if xs else np.zeros((0, len(FEATURES)), np.float32),
        truth=np.concatenate(ys) if ys else np.zeros(0, bool),
        scan=np.concatenate(scan_of) if scan_of else np.zeros(0, int),
        scan_truth=np.array(scan_truth, dtype=bool),
    )


def training_data_scans(
    data: TrainingData, cases: Iterable[int]
) -> Iterable[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Yield ``(views, masks)`` of the given cases of an in-memory dataset.

    Args:
        data: The dataset (counts are float16 there; returned as float32).
        cases: Indices into ``data.case_ids``.
    """
    by_case: dict[int, list[int]] = {}
    for v, c in enumerate(data.view_case):
        by_case.setdefault(int(c), []).append(v)
    for case in cases:
        rows = sorted(by_case.get(int(case), []), key=lambda r: VIEWS.index(data.view_names[r]))
        yield (
            {data.view_names[r]: data.counts[r].astype(np.float32) for r in rows},
            {data.view_names[r]: data.masks[r] for r in rows},
        )


def scorer_seconds(n_scans: int) -> float:
    """Seconds a fine-tune keeps for refitting the scorer on ``n_scans`` scans."""
    return n_scans * SECONDS_PER_SCAN + FIT_SECONDS


def refit_scorer(
    out_dir: Path | str,
    data: TrainingData,
    train_patients: Collection[str],
    val_patients: Collection[str],
    init_from: Path | str,
    *,
    epochs: int,
    lr: float,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Fit the parent's lesion scorer to a centre's reviewed scans; write it into ``out_dir``.

    The marks are those of the segmenter in ``out_dir`` (the one just fine-tuned) on
    the training patients' scans, labelled by the physicians' masks; the scorer starts
    from ``init_from``'s and keeps its feature standardisation and threshold (which
    the calibration step then sets for the centre). With ``epochs`` 0, or when the
    training scans give no mark on a physician's metastasis to learn from, the parent's
    scorer is copied unchanged, so that the candidate never falls back to the crop
    classifier without saying so.

    Args:
        out_dir: The candidate folder, holding the fine-tuned classifier and segmenter.
        data: The centre's dataset in memory.
        train_patients: Patient ids whose scans the scorer learns from.
        val_patients: Held-out patient ids, for the card's before/after figures.
        init_from: The parent model folder (it must hold ``scorer.json``).
        epochs: Full-batch epochs (0: copy the parent's scorer).
        lr: Adam's learning rate.
        device: Where the segmenter and the skeleton network run.

    Returns:
        What was done, as written in the scorer card's ``training``.

    Raises:
        ModelFileError: If a model file is missing or damaged.
        ValueError: If ``epochs`` is negative.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    started = time.perf_counter()
    parent = load_scorer(init_from, "cpu")
    parent_card, _ = load_network_card(init_from, SCORER)
    # the arithmetic the analysis will use on this machine, so that the scorer learns
    # from the marks it will be given
    models = load_models(out_dir, device=device, lesion=False)
    train_set, val_set = set(train_patients), set(val_patients)
    train_cases = [i for i, p in enumerate(data.patient_ids) if p in train_set]
    val_cases = [i for i, p in enumerate(data.patient_ids) if p in val_set]
    train = mark_examples(models, training_data_scans(data, train_cases))
    val = mark_examples(models, training_data_scans(data, val_cases))
    threshold = parent[1].threshold
    info: dict[str, Any] = {
        "init_from": {"path": str(init_from), "sha256": parent_card["weights"]["sha256"]},
        "scans": len(train_cases),
        "marks": len(train.truth),
        "true_marks": int(train.truth.sum()),
        "epochs": epochs,
        "lr": lr,
        "loss": "BCEWithLogits, full batch, Adam",
    }
    model, cfg = parent
    if epochs == 0 or not train.truth.any():
        info["copied"] = (
            "epochs 0"
            if epochs == 0
            else "no mark of the training scans lies on a physician's "
            "metastasis: nothing to learn the lesions from"
        )
    else:
        model, cfg = fit_scorer(train.features, train.truth, init=parent, epochs=epochs, lr=lr)
    info["seconds"] = round(time.perf_counter() - started, 1)
    metrics: dict[str, Any] = {}
    if len(val_cases):
        metrics["validation"] = {
            "scans": len(val_cases),
            "parent": val.summary(score(*parent, val.features), threshold),
            "refit": val.summary(score(model, cfg, val.features), threshold),
        }
    save_scorer(out_dir, model, cfg, {"training": info, "metrics": metrics})
    return info
