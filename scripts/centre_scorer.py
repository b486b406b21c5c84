r"""Measure what refitting the lesion scorer to a centre's reviewed scans gains (issue 24).

A measurement, not product code. With one model folder's segmenter and skeleton network
it computes every mark's features and truth on three labelled datasets of a centre (the
reviewed scans, a calibration set, a test set; :func:`core.networks.scorer_training.mark_examples`,
cached under ``--cache``). Then, for each number of reviewed scans in ``--sizes`` (the
first N), it refits the folder's scorer as a fine-tune does
(:func:`core.lesions.scorer.fit_scorer` from its weights) with each setting of
``--settings``, and also trains one from scratch; each scorer's threshold is the Youden
choice on the calibration set, and the line printed gives the test set's scan AUC, mark
AUC, sensitivity, specificity, marks per negative scan and the share of true marks kept.

Run (docs/centre_loop.md, section 5)::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/centre_scorer.py \
        REVIEWED CALIBRATION TEST --model models --cache ~/bonescan-eval/examples
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.lesions.scorer import ScorerConfig, fit_scorer, score
from core.networks.calibrate import choose_threshold
from core.networks.models import LoadedModels, load_models
from core.networks.scorer_training import MarkExamples, mark_examples
from core.reading.dataset import load_case_masks, load_case_views, read_dataset


def examples(models: LoadedModels, dataset: Path, cache: Path) -> MarkExamples:
    """The labelled marks of a dataset, computed once and cached as ``cache``."""
    if cache.exists():
        with np.load(cache) as z:
            return MarkExamples(z["features"], z["truth"], z["scan"], z["scan_truth"])
    start = time.time()
    cases = read_dataset(dataset)
    ex = mark_examples(models, ((load_case_views(c).views, load_case_masks(c)) for c in cases))
    print(f"{dataset}: {len(cases)} scans, {len(ex.truth)} marks, {time.time() - start:.0f} s")
    np.savez(cache, features=ex.features, truth=ex.truth, scan=ex.scan, scan_truth=ex.scan_truth)
    return ex


def first_scans(ex: MarkExamples, n: int) -> MarkExamples:
    """The marks of the first ``n`` scans."""
    keep = ex.scan < n
    return MarkExamples(ex.features[keep], ex.truth[keep], ex.scan[keep], ex.scan_truth[:n])


def main(argv: list[str] | None = None) -> int:
    """Print one line per scorer (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reviewed", type=Path)
    p.add_argument("calibration", type=Path)
    p.add_argument("test", type=Path)
    p.add_argument("--model", type=Path, default=Path("models"))
    p.add_argument("--cache", type=Path, required=True, help="folder for the marks' cache")
    p.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument(
        "--settings", nargs="+", default=["100:1e-3", "300:1e-3", "300:3e-3"], help="EPOCHS:LR"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    models = load_models(args.model, device="cpu")
    if models.scorer is None:
        raise SystemExit(f"{args.model} has no lesion scorer")
    reviewed = examples(models, args.reviewed, args.cache / "reviewed.npz")
    cal = examples(models, args.calibration, args.cache / "calibration.npz")
    test = examples(models, args.test, args.cache / "test.npz")

    def line(name: str, model: torch.nn.Module, cfg: ScorerConfig) -> None:
        cal_scores = cal.scan_scores(score(model, cfg, cal.features))
        threshold = choose_threshold(list(cal.scan_truth), list(cal_scores)).threshold
        s = test.summary(score(model, cfg, test.features), threshold)
        print(
            f"{name:28s} threshold {threshold:.3f}  test: scan AUC {s['scan_auc']} "
            f"mark AUC {s['mark_auc']} sens {s['sensitivity']} spec {s['specificity']} "
            f"marks/negative {s['marks_per_negative']} true marks kept {s['true_marks_kept']}",
            flush=True,
        )

    line("as shipped", *models.scorer)
    for n in args.sizes:
        sub = first_scans(reviewed, n)
        for setting in args.settings:
            epochs, lr = setting.split(":")
            fitted = fit_scorer(
                sub.features, sub.truth, init=models.scorer, epochs=int(epochs), lr=float(lr)
            )
            line(f"{n} scans, refit {setting}", *fitted)
        line(f"{n} scans, from scratch", *fit_scorer(sub.features, sub.truth))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
