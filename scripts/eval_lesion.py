r"""Compare model folders on labelled phantom datasets: calls, masks and marks (issue 26).

A measurement, not product code. For each model folder and dataset it runs the
product's :func:`core.networks.inference.predict_batch` (the lesion network when the
folder has one, else the paper's two networks) on every case's two view images and
prints: scan AUC of metastasis, sensitivity and specificity at the folder's own
threshold, Dice of metastasis (pooled over the positive scans' views) and of the
bladder (over all views), marks per negative scan (8-connected metastasis components
of at least ``--min-mark`` pixels, both views), and the share of true lesions touched
by a mark. ``--dicom`` also runs each case's DICOM file and reports how often the call and the
masks agree with the PNG export's. ``--json`` writes the figures.

Run::

    PYTHONPATH=. .venv/bin/python scripts/eval_lesion.py DATASET [DATASET ...] \
        --model models --model ~/bonescan-eval/candidate [--no-lesion models] --limit 150
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from core.burden.indices import HOTSPOT_STRUCTURE
from core.config import LABEL_BLADDER, LABEL_METASTASIS
from core.evaluation.metrics import roc_auc
from core.networks.inference import predict_batch
from core.networks.models import LoadedModels, load_models
from core.reading.dataset import load_case_masks, load_case_views, read_dataset
from core.reading.readers import read_scan


def evaluate(
    models: LoadedModels, dataset: Path, limit: int | None, min_mark: int, dicom: bool = False
) -> dict[str, Any]:
    """Return the figures of one model folder on one dataset (module docstring)."""
    cases = read_dataset(dataset)[:limit]
    truth, scores, calls = [], [], []
    inter = {LABEL_METASTASIS: 0, LABEL_BLADDER: 0}
    total = {LABEL_METASTASIS: 0, LABEL_BLADDER: 0}
    marks_neg: list[int] = []
    found = lesions = 0
    same_call = compared = 0
    agree = {LABEL_METASTASIS: [0, 0], LABEL_BLADDER: [0, 0]}
    start = time.perf_counter()
    for case in cases:
        scan = load_case_views(case)
        masks = load_case_masks(case)
        (pred,) = predict_batch(models, [scan.views])
        truth.append(bool(case.metastasis))
        scores.append(pred.probabilities["metastasis"])
        calls.append(pred.positive["metastasis"])
        marks = 0
        for view, true in masks.items():
            got = pred.masks[view]
            for label in (LABEL_METASTASIS, LABEL_BLADDER):
                if label == LABEL_METASTASIS and not case.metastasis:
                    continue
                inter[label] += int(((got == label) & (true == label)).sum())
                total[label] += int((got == label).sum() + (true == label).sum())
            pieces, n = ndimage.label(got == LABEL_METASTASIS, structure=HOTSPOT_STRUCTURE)
            sizes = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
            marks += int((sizes >= min_mark).sum())
            tl, tn = ndimage.label(true == LABEL_METASTASIS, structure=HOTSPOT_STRUCTURE)
            for k in range(1, tn + 1):
                lesions += 1
                found += int((got[tl == k] == LABEL_METASTASIS).any())
        if not case.metastasis:
            marks_neg.append(marks)
        if dicom and case.dicom is not None:
            # the same scan as the DICOM file: the same call and the same masks?
            (other,) = predict_batch(models, [read_scan(case.dicom).views])
            compared += 1
            same_call += int(other.positive["metastasis"] == pred.positive["metastasis"])
            for view, got in pred.masks.items():
                for label, pair in agree.items():
                    a, b = got == label, other.masks[view] == label
                    pair[0] += 2 * int((a & b).sum())
                    pair[1] += int(a.sum() + b.sum())
    t = np.array(truth)
    c = np.array(calls)
    return {
        "cases": len(cases),
        "positives": int(t.sum()),
        "auc": round(float(roc_auc(t.astype(int), np.array(scores))), 4),
        "sensitivity": round(float(c[t].mean()), 4) if t.any() else None,
        "specificity": round(float((~c[~t]).mean()), 4) if (~t).any() else None,
        "dice_metastasis": round(2 * inter[LABEL_METASTASIS] / max(total[LABEL_METASTASIS], 1), 4),
        "dice_bladder": round(2 * inter[LABEL_BLADDER] / max(total[LABEL_BLADDER], 1), 4),
        "marks_per_negative": round(float(np.mean(marks_neg)), 2) if marks_neg else None,
        "lesions_found": round(found / max(lesions, 1), 4),
        "seconds_per_scan": round((time.perf_counter() - start) / max(len(cases), 1), 3),
        **(
            {
                "dicom_png_same_call": f"{same_call}/{compared}",
                "dicom_png_dice_metastasis": round(agree[1][0] / max(agree[1][1], 1), 4),
                "dicom_png_dice_bladder": round(agree[2][0] / max(agree[2][1], 1), 4),
            }
            if compared
            else {}
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Evaluate every model folder on every dataset and print a markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", type=Path, nargs="+")
    p.add_argument("--model", type=Path, action="append", default=[], help="model folder")
    p.add_argument(
        "--no-lesion",
        type=Path,
        action="append",
        default=[],
        help="model folder run without its lesion network (the two networks)",
    )
    p.add_argument("--limit", type=int)
    p.add_argument("--min-mark", type=int, default=1, help="smallest mark, pixels")
    p.add_argument("--json", type=Path)
    p.add_argument("--dicom", action="store_true", help="also compare PNG and DICOM of each case")
    args = p.parse_args(argv)
    runs = [(str(m), m, True) for m in args.model]
    runs += [(f"{m} (two networks)", m, False) for m in args.no_lesion]
    out: dict[str, Any] = {}
    keys = (
        "auc",
        "sensitivity",
        "specificity",
        "dice_metastasis",
        "dice_bladder",
        "marks_per_negative",
        "lesions_found",
        "seconds_per_scan",
    )
    print("| dataset | model | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, folder, lesion in runs:
        models = load_models(folder, device="cpu", precision="float32", lesion=lesion)
        for dataset in args.datasets:
            res = evaluate(models, dataset, args.limit, args.min_mark, args.dicom)
            out.setdefault(str(dataset), {})[name] = res
            extra = {k: v for k, v in res.items() if k.startswith("dicom_png")}
            print(
                (f"{extra} " if extra else "")
                + f"| {dataset.name} | {name} | "
                + " | ".join(str(res[k]) for k in keys)
                + " |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
