r"""Measure a left-right symmetry filter on the segmenter's marks (issue 13; not shipped).

A measurement, not product code. On real scans the shipped segmenter marks joints,
shoulders, knees and sacroiliac joints in pairs: physiological and degenerative uptake is
mostly symmetric, metastases mostly are not. This probe drops each metastasis mark off
the mid-line (more than ``--centre`` px from it) whose mirror image across the body's
mid-line (per row: the middle of the body's outline, median-smoothed) is at least
``1 / ratio`` as hot (smoothed counts, maximum within 4 px), and optionally each mark
whose contrast to an 8-px ring around it is under ``contrast``. It prints, for each
setting, on a labelled dataset: Dice of metastasis on positive scans, the share of true
lesions (8-connected truth components) hit by a mark, marks per negative scan, and the
scan call as shipped and as "classifier positive and at least one mark left"; and with
``--real DIR`` the marks per real scan (``DIR/ant/N.jpg`` with ``DIR/post/N.jpg``).

Run::

    PYTHONPATH=. .venv/bin/python scripts/symmetry_probe.py DATASET --cases 100 \\
        [--real ../shared/real-scans] [--model models]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from core.burden.indices import HOTSPOT_STRUCTURE
from core.networks.inference import predict_batch
from core.networks.models import load_models
from core.reading.dataset import load_case_masks, load_case_views, read_dataset
from core.reading.readers import read_scan

#: (mirror ratio, contrast floor) settings tried; None is the shipped output.
SETTINGS: tuple[tuple[float, float] | None, ...] = (None, (1.2, 0.0), (1.3, 0.0), (1.2, 1.5))


def midline_per_row(counts: np.ndarray) -> np.ndarray:
    """Column of the body's mid-line in each row (middle of its outline, smoothed)."""
    s = ndimage.gaussian_filter(counts.astype(np.float32), 3)
    body = s > 0.06 * np.percentile(s, 99.5)
    mid = np.full(counts.shape[0], np.nan)
    for r in range(counts.shape[0]):
        idx = np.flatnonzero(body[r])
        if idx.size >= 3:
            mid[r] = 0.5 * (idx[0] + idx[-1])
    ok = np.isfinite(mid)
    if not ok.any():
        return np.full(counts.shape[0], (counts.shape[1] - 1) / 2)
    mid = np.interp(np.arange(counts.shape[0]), np.flatnonzero(ok), mid[ok])
    return ndimage.median_filter(mid, size=41, mode="nearest")


def filter_marks(
    counts: np.ndarray, mask: np.ndarray, ratio: float, contrast: float, centre: int = 8
) -> np.ndarray:
    """The label mask with symmetric (and, with ``contrast``, faint) marks removed."""
    lab, n = ndimage.label(mask == 1, structure=HOTSPOT_STRUCTURE)
    out = mask.copy()
    if n == 0:
        return out
    s = ndimage.gaussian_filter(counts.astype(np.float32), 1.5)
    near_max = ndimage.maximum_filter(s, size=9)
    mid = midline_per_row(counts)
    w = counts.shape[1]
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        rr, cc = np.nonzero(lab[sl] == i)
        rr, cc = rr + sl[0].start, cc + sl[1].start
        if contrast > 0:
            box = tuple(slice(max(0, x.start - 10), x.stop + 10) for x in sl)
            comp = lab[box] == i
            ring = ndimage.binary_dilation(comp, iterations=8) & ~comp
            level = np.percentile(s[box][comp], 90) / max(float(np.median(s[box][ring])), 1e-3)
            if level < contrast:
                out[rr, cc] = 0
                continue
        if abs(float(np.mean(cc - mid[rr]))) < centre:
            continue
        mc = np.round(2 * mid[rr] - cc).astype(int)
        inside = (mc >= 0) & (mc < w)
        if inside.any() and float(s[rr, cc].max()) < ratio * float(
            near_max[rr[inside], mc[inside]].max()
        ):
            out[rr, cc] = 0
    return out


def _marks(
    views: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    setting: tuple[float, float] | None,
) -> dict[str, np.ndarray]:
    if setting is None:
        return dict(masks)
    return {v: filter_marks(views[v], m, *setting) for v, m in masks.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the figures described in the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("dataset", type=Path)
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--model", type=Path, default=Path("models"))
    p.add_argument("--real", type=Path)
    args = p.parse_args(argv)
    models = load_models(args.model)
    rows: list[dict[Any, Any]] = []
    for case in read_dataset(args.dataset)[: args.cases]:
        scan = load_case_views(case)
        pred = predict_batch(models, [scan.views])[0]
        truth = load_case_masks(case)
        called = pred.probabilities["metastasis"] >= pred.thresholds["metastasis"]
        row: dict[Any, Any] = {"met": bool(case.metastasis), "called": called}
        for k, setting in enumerate(SETTINGS):
            masks = _marks(scan.views, pred.masks, setting)
            inter = total = marks = hit = lesions = 0
            for v, m in masks.items():
                got, want = m == 1, truth[v] == 1
                inter += int((got & want).sum())
                total += int(got.sum() + want.sum())
                marks += ndimage.label(got, structure=HOTSPOT_STRUCTURE)[1]
                tl, tn = ndimage.label(want, structure=HOTSPOT_STRUCTURE)
                lesions += tn
                hit += len(set(np.unique(tl[got & want])) - {0})
            row[k] = (1.0 if total == 0 else 2 * inter / total, marks, hit, lesions)
        rows.append(row)
    pos = [r for r in rows if r["met"]]
    neg = [r for r in rows if not r["met"]]
    print(f"{len(rows)} scans ({len(pos)} with metastasis), model {args.model}")
    for k, setting in enumerate(SETTINGS):
        dice = np.mean([r[k][0] for r in pos])
        found = sum(r[k][2] for r in pos) / max(1, sum(r[k][3] for r in pos))
        marks = np.mean([r[k][1] for r in neg])
        sens = np.mean([r["called"] and r[k][1] > 0 for r in pos])
        spec = np.mean([not (r["called"] and r[k][1] > 0) for r in neg])
        print(
            f"{setting!s:12} Dice {dice:.3f}  lesions found {found:.1%}  "
            f"marks per negative scan {marks:.1f}  call with marks: {sens:.1%} / {spec:.1%}"
        )
    if args.real is not None:
        for ant in sorted((args.real / "ant").glob("*.jpg"), key=lambda q: int(q.stem)):
            scan = read_scan(ant, args.real / "post" / ant.name)
            pred = predict_batch(models, [scan.views])[0]
            counts = [
                sum(
                    ndimage.label(m == 1, structure=HOTSPOT_STRUCTURE)[1]
                    for m in _marks(scan.views, pred.masks, s).values()
                )
                for s in SETTINGS
            ]
            print(f"real {ant.stem:>4}: marks {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
