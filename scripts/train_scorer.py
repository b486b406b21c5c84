r"""Train the lesion scorer (issue 26) on candidate marks of phantom scans, on the CPU.

Reads the candidate files of ``scripts/lesion_candidates.py`` (the shipped segmenter's
whole-view labels and probability, the skeleton network's map, the true masks),
computes every mark's features (:mod:`core.lesions.features`) and whether it is a true
metastasis (:func:`core.lesions.features.candidate_truth`), trains the MONAI
``FullyConnectedNet`` of :mod:`core.lesions.scorer` with
:func:`core.lesions.scorer.fit_scorer` (binary cross-entropy on all training marks at
once, Adam, ``--epochs`` full passes; seconds on one core), and
reports on the held-out candidates (the second centre): mark AUC, scan AUC of the
highest mark score, and at each threshold of ``--thresholds`` the sensitivity and
specificity of the call "a mark at or above it", marks per negative scan and the share
of true lesions kept. ``--out`` writes ``scorer.{safetensors,json}`` there.

Run::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/train_scorer.py \
        ~/bonescan-runs/scorer/train ~/bonescan-runs/scorer/val --out ~/bonescan-runs/scorer/model
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.lesions.features import FEATURES, candidate_truth, view_candidates
from core.lesions.scorer import ScorerConfig, fit_scorer, save_scorer, score
from core.networks.scorer_training import MarkExamples


def load_candidates(folder: Path) -> dict[str, Any]:
    """Features, truth and the scan of every mark in a candidates folder."""
    xs, ys, scan_of, scan_truth = [], [], [], []
    for k, path in enumerate(sorted(folder.glob("*.npz"))):
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            for v in range(2):
                cands = view_candidates(
                    z["views"][v],
                    z["skeleton"][v],
                    z["seg"][v],
                    z["p_met"][v].astype(np.float32) / 255.0,
                    posterior=v == 1,
                )
                xs.append(cands.features)
                ys.append(candidate_truth(cands.components, z["masks"][v]))
                scan_of += [k] * len(cands.features)
        scan_truth.append(bool(meta["metastasis"]))
    return {
        "x": np.concatenate(xs),
        "y": np.concatenate(ys),
        "scan": np.array(scan_of, dtype=int),
        "scan_truth": np.array(scan_truth, dtype=bool),
    }


def report(data: dict[str, Any], scores: np.ndarray, thresholds: list[float]) -> dict[str, Any]:
    """Mark and scan figures of scores on one candidates set (:meth:`MarkExamples.summary`)."""
    marks = MarkExamples(data["x"], data["y"], data["scan"], data["scan_truth"])
    at = {t: marks.summary(scores, t) for t in thresholds}
    first = at[thresholds[0]]
    per_threshold = ("sensitivity", "specificity", "marks_per_negative", "true_marks_kept")
    return {
        **{k: first[k] for k in ("marks", "true_marks", "mark_auc", "scan_auc")},
        "at": {str(t): {k: figures[k] for k in per_threshold} for t, figures in at.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Train on the first folder, report on the second."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", type=Path)
    p.add_argument("val", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--epochs", type=int, default=600)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop", nargs="*", default=[], help="features zeroed (ablation)")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.8, 0.9])
    args = p.parse_args(argv)
    start = time.time()
    train, val = load_candidates(args.train), load_candidates(args.val)
    for name in args.drop:
        train["x"][:, FEATURES.index(name)] = 0.0
        val["x"][:, FEATURES.index(name)] = 0.0
    print(
        f"features: {len(train['x'])} training marks ({int(train['y'].sum())} true), "
        f"{len(val['x'])} held-out marks, {time.time() - start:.0f} s"
    )
    curve: list[dict[str, Any]] = []

    def on_epoch(epoch: int, loss: float, model: torch.nn.Module, cfg: ScorerConfig) -> None:
        held = report(val, score(model, cfg, val["x"]), [0.5])
        curve.append(
            {
                "epoch": epoch,
                "loss": round(loss, 4),
                "mark_auc": held["mark_auc"],
                "scan_auc": held["scan_auc"],
            }
        )
        print(curve[-1], flush=True)

    model, cfg = fit_scorer(
        train["x"],
        train["y"],
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        hidden=tuple(args.hidden),
        seed=args.seed,
        report=on_epoch,
    )
    results = {
        "training": report(train, score(model, cfg, train["x"]), args.thresholds),
        "held_out": report(val, score(model, cfg, val["x"]), args.thresholds),
    }
    print(json.dumps(results, indent=1))
    if args.out:
        save_scorer(
            args.out,
            model,
            cfg,
            {
                "training": {
                    "candidates": str(args.train),
                    "marks": len(train["x"]),
                    "true_marks": int(train["y"].sum()),
                    "epochs": args.epochs,
                    "lr": args.lr,
                    "curve": curve,
                    "dropped": args.drop,
                },
                "metrics": {"held_out": str(args.val), **results["held_out"]},
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
