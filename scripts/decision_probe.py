"""Measure scan-level decisions that use both networks' evidence (issue 13, point 6).

A measurement, not product code. For each scan of a labelled dataset it runs both
networks once (whole-view segmentation, so the segmenter's own evidence is not gated by
the classifier) and scores the scan three ways:

* ``classifier``: the product's rule, the maximum crop probability;
* ``segmenter``: the area (pixels, both views) of the largest 8-connected metastasis
  component of the segmenter's ungated argmax;
* ``both``: the mean of the two scores' ranks over the dataset (each network's
  evidence weighted alike, no threshold assumed).

It prints each score's ROC AUC against the truth (any visible metastasis), and the
sensitivity/specificity of ``classifier`` at the card's threshold beside ``both`` at
the rank that gives the same specificity.

Run::

    PYTHONPATH=. .venv/bin/python scripts/decision_probe.py DATASET --model DIR [--cases N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from core.config import LABEL_METASTASIS
from core.evaluation.metrics import roc_auc
from core.networks.inference import predict_batch
from core.networks.models import load_models
from core.reading.dataset import load_case_views, read_dataset


def _largest_component(masks: dict[str, np.ndarray]) -> int:
    best = 0
    for m in masks.values():
        labels, n = ndimage.label(m == LABEL_METASTASIS, structure=np.ones((3, 3)))
        if n:
            best = max(best, int(np.bincount(labels.ravel())[1:].max()))
    return best


def main(argv: list[str] | None = None) -> int:
    """Print the AUC of each scan-level rule (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("dataset", type=Path)
    p.add_argument("--model", type=Path, default=Path("models"))
    p.add_argument("--cases", type=int, help="only the first N cases")
    args = p.parse_args(argv)
    models = load_models(args.model)
    cases = read_dataset(args.dataset)[: args.cases]
    truth, cls, seg = [], [], []
    thr = 0.5
    for case in cases:
        scan = load_case_views(case)
        pred = predict_batch(models, [scan.views], segment="full")[0]
        truth.append(bool(case.metastasis))
        cls.append(pred.probabilities["metastasis"])
        thr = pred.thresholds["metastasis"]
        seg.append(_largest_component(pred.masks_ungated))
    t, c, s = np.array(truth), np.array(cls), np.array(seg, dtype=float)
    both = (stats.rankdata(c) + stats.rankdata(s)) / (2 * len(c))
    print(f"{len(t)} scans, {int(t.sum())} with metastasis")
    for name, score in (("classifier", c), ("segmenter", s), ("both", both)):
        print(f"AUC {name}: {roc_auc(t, score):.3f}")
    called = c >= thr
    spec = float((~called[~t]).mean())
    cut = np.quantile(both[~t], spec) if (~t).any() else 1.0
    called_both = both > cut
    print(
        f"classifier at {thr:.4f}: sensitivity {called[t].mean():.3f}, specificity {spec:.3f}; "
        f"both at the same specificity ({float((~called_both[~t]).mean()):.3f}): "
        f"sensitivity {called_both[t].mean():.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
