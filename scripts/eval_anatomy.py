r"""Measurement: skeleton Dice and the product's BSI against the phantom's truth.

Not product code. On phantom cases made with settings not used in training (another
seed, and by default the simulated second centre of :mod:`core.phantom.centres`:
other counts, blur and benign rates), half of them with forced metastatic patterns so
that BSI spans its range, it measures:

* the skeleton network's mean Dice per region against the exact label maps
  (:func:`core.phantom.skeleton_truth.case_label_maps`), per scan and overall;
* three BSIs per scan: the truth (true metastasis masks on the true maps), the
  anatomy's (true masks on the network's maps: the skeleton's error alone) and the
  product's (:func:`core.analysis.analyze`: the segmenter's masks on the network's
  maps), with Pearson r and the mean absolute difference of each against the truth::

    cd /work/main && PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/eval_anatomy.py \
        --model models --seed 7301 --cases 40 --centre second
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.analysis import analyze
from core.anatomy.bsi import bone_scan_index
from core.anatomy.regions import LABELS, N_LABELS
from core.anatomy.training import dice_from_counts, overlap_counts
from core.config import LABEL_METASTASIS, REPO_ROOT
from core.networks.inference import skeleton_labels
from core.networks.models import load_models
from core.phantom.centres import centre_named
from core.phantom.generate import generate_case, to_scan
from core.phantom.skeleton_truth import case_label_maps

PATTERNS = ("solitary", "oligo", "multiple", "extensive")


def region_dice(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of each region present in either map (the training run's own measure)."""
    dice = dice_from_counts(overlap_counts(pred, truth, N_LABELS))
    return {LABELS[k]: d for k, d in dice.items()}


def _bsi(maps: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> float:
    return bone_scan_index(
        **{
            f"{v.lower()}_{part}": arr
            for v in maps
            for part, arr in (("skeleton", maps[v]), ("mask", masks[v] == LABEL_METASTASIS))
        }
    ).bsi


def _pearson(a: list[float], b: list[float]) -> float:
    return (
        float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and np.std(a) and np.std(b) else float("nan")
    )


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print its table; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models")
    p.add_argument("--seed", type=int, default=7301)
    p.add_argument("--cases", type=int, default=40)
    p.add_argument("--centre", default="second", help="phantom centre profile name")
    p.add_argument("--json", type=Path, help="write the per-scan figures here")
    a = p.parse_args(argv)
    models = load_models(a.model, device="cpu")
    if models.skeleton is None:
        raise SystemExit(f"{a.model}: no skeleton network")
    centre = centre_named(a.centre)
    rows: list[dict[str, Any]] = []
    per_region: dict[str, list[float]] = {}
    for i in range(a.cases):
        forced = {"pattern": PATTERNS[(i // 2) % len(PATTERNS)]} if i % 2 == 0 else {}
        case = generate_case(a.seed, i, centre=centre, **forced)  # type: ignore[arg-type]
        truth_maps = case_label_maps(a.seed, i, centre=centre, **forced)
        maps = skeleton_labels(models, case.views)
        dices = {v: region_dice(maps[v], truth_maps[v]) for v in maps}
        for d in dices.values():
            for name, x in d.items():
                per_region.setdefault(name, []).append(x)
        result = analyze([to_scan(case)], models)[0]
        rows.append(
            {
                "case": i,
                "dice": float(np.mean([x for d in dices.values() for x in d.values()])),
                "bsi_truth": _bsi(truth_maps, case.masks),
                "bsi_anatomy": _bsi(maps, case.masks),
                "bsi_product": result.raw_bsi,
                "quality": result.quality.reason,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    truth = [float(r["bsi_truth"]) for r in rows]
    anat = [float(r["bsi_anatomy"]) for r in rows]
    prod = [float(r["bsi_product"] or 0.0) for r in rows]
    print(f"\n{len(rows)} cases, seed {a.seed}, centre {a.centre}")
    print(f"mean Dice per scan: {np.mean([r['dice'] for r in rows]):.3f}")
    print(
        "mean Dice per region (over views and scans): "
        f"{np.mean([np.mean(v) for v in per_region.values()]):.3f}"
    )
    worst = sorted(per_region.items(), key=lambda kv: np.mean(kv[1]))[:6]
    print("weakest regions: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in worst))
    for name, est in (("anatomy (true masks)", anat), ("product (segmenter)", prod)):
        mad = float(np.mean(np.abs(np.subtract(est, truth))))
        print(f"BSI {name}: Pearson r {_pearson(est, truth):.3f}, mean |diff| {mad:.3f} %")
    if a.json:
        a.json.write_text(
            json.dumps({"rows": rows, "per_region": per_region}, indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
