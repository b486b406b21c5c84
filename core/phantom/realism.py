"""Regional uptake, soft tissue, kidneys and hot spots, measured alike on real and generated scans.

The realism table of ``docs/phantom.md`` compares what a reader sees on a
normal scan: how bright each skeletal region is against the lumbar spine, how much
soft tissue and kidney shows, and how many focal hot spots stand out. Real exports
come in unknown display units, so every measure is a ratio inside one view.

Landmarks come from the body's extent alone, so that the same code runs on real
exports (no truth) and on the phantom: the body spans rows ``top .. bottom`` (rows
with at least 3 pixels of Gaussian-smoothed ``counts / p99.5`` at or above 0.08), its
midline is the intensity-weighted centre column of the trunk (20-45 % of the length).
A region is a box at a fraction ``f`` of the body length and a column offset from the
midline in pixels scaled by ``length / 680`` (680 rows: the median real body). Each
region's level is the 95th percentile of the smoothed view (sigma 1.5) in its box, so
a box needs only to hold the structure, not fit it. The boxes (fractions of stature
from standard anthropometry) are in :data:`REGIONS`.

* ``soft tissue`` is the median of the lateral abdomen boxes (outside the spine and
  the kidneys), over the lumbar level;
* ``kidney`` is the posterior view's kidney-box 90th percentile over the soft-tissue
  median beside it: about 1 where kidneys do not show, 1.5 and above where they do;
* ``hot spots`` counts connected spots where the smoothed view exceeds 2.2 x its
  local median (31 px median filter) and the lumbar level's 0.5, at least 4 pixels:
  the obvious focal uptake a reader looks at (joints and bladder included);
* ``spot contrast`` is the median over those spots of the 90th percentile inside over
  the ring median, the way ``../shared/real-stats.md`` measures boxed findings.

Run ``python -m core.phantom.realism REAL_DIR [--cases 60] [--seed 9]`` for the
Markdown table (median [IQR] of the real typical whole-body scans and of generated
scans without metastasis) and, for information, :func:`separability_auc`: the
leave-one-out ROC AUC of a small classifier (L2-regularised logistic regression on
these measures plus :func:`core.phantom.compare.scan_measures`) that tells generated
scans from real ones. 0.5 would mean the measures cannot tell them apart; it is not a
target, since the same kind of classifier also tells one real centre's exports from
another's.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from core.config import VIEWS
from core.evaluation.metrics import roc_auc
from core.phantom.compare import is_whole_body, read_real, scan_measures
from core.phantom.generate import generate_case

#: Median real body length, rows (docs/phantom.md), the unit of column offsets.
REFERENCE_LENGTH = 680.0


@dataclass(frozen=True)
class Box:
    """A measuring box: rows as fractions of the body length, columns from the midline.

    Attributes:
        f0: First row, fraction of the body length from the vertex.
        f1: Last row, fraction.
        dx0: Inner column offset from the midline, px at the reference length.
        dx1: Outer column offset, px (``dx0 = 0`` and a positive ``dx1``: centred box).
        views: Views the region is measured on.
    """

    f0: float
    f1: float
    dx0: float
    dx1: float
    views: tuple[str, ...] = VIEWS


#: The regions of the realism table. The lumbar spine is the reference.
REGIONS: dict[str, Box] = {
    "skull": Box(0.01, 0.10, 0, 40),
    "face": Box(0.07, 0.12, 0, 22, ("ANT",)),
    "cervical spine": Box(0.12, 0.16, 0, 7, ("POST",)),
    "shoulders": Box(0.17, 0.22, 58, 95),
    "sternum": Box(0.20, 0.29, 0, 7, ("ANT",)),
    "ribs": Box(0.22, 0.33, 24, 55),
    "thoracic spine": Box(0.22, 0.33, 0, 7, ("POST",)),
    "lumbar spine": Box(0.37, 0.44, 0, 7),
    "pelvis": Box(0.42, 0.49, 28, 62),
    "sacroiliac joints": Box(0.45, 0.50, 8, 24, ("POST",)),
    "femoral shafts": Box(0.57, 0.66, 18, 50),
    "knees": Box(0.70, 0.76, 8, 48),
}
#: Soft tissue: the flanks above the iliac crests, outside spine, kidneys and arms.
_SOFT = Box(0.33, 0.37, 46, 58)
#: Kidneys on the posterior view.
_KIDNEY = Box(0.33, 0.40, 16, 36, ("POST",))


@dataclass(frozen=True)
class Frame:
    """Where the body lies in one view."""

    top: int
    length: int
    midline: float


def smooth_window(counts: np.ndarray) -> np.ndarray:
    """Return ``gaussian(counts / p99.5, 1.5)``, float64 (1024, 256), about 0..1."""
    a = np.asarray(counts, dtype=np.float64)
    hi = float(np.percentile(a, 99.5))
    return ndimage.gaussian_filter(a / hi if hi > 0 else a, 1.5)


def find_frame(w: np.ndarray) -> Frame | None:
    """Find the body's top, length and midline in a smoothed, windowed view.

    Returns:
        The frame, or None when no body 300 rows or longer is found.
    """
    body = ndimage.gaussian_filter(w, 2.0) >= 0.08
    rows = np.flatnonzero(body.sum(axis=1) >= 3)
    if rows.size == 0 or rows[-1] - rows[0] < 300:
        return None
    top, bottom = int(rows[0]), int(rows[-1])
    length = bottom - top + 1
    trunk = w[top + int(0.2 * length) : top + int(0.45 * length)]
    cols = np.arange(w.shape[1])
    weight = trunk.sum(axis=0)
    midline = float((weight * cols).sum() / weight.sum())
    # the spine is the brightest column near the centre of mass: snap to it
    near = np.abs(cols - midline) <= 15
    prof = ndimage.uniform_filter1d(weight, 5)
    midline = float(cols[near][np.argmax(prof[near])])
    return Frame(top, length, midline)


def _box_values(w: np.ndarray, fr: Frame, box: Box) -> np.ndarray:
    r0 = fr.top + round(box.f0 * fr.length)
    r1 = fr.top + round(box.f1 * fr.length) + 1
    k = fr.length / REFERENCE_LENGTH
    cols = np.arange(w.shape[1]) - fr.midline
    if box.dx0 == 0:
        sel = np.abs(cols) <= box.dx1 * k
    else:
        sel = (np.abs(cols) >= box.dx0 * k) & (np.abs(cols) <= box.dx1 * k)
    return w[max(r0, 0) : min(r1, w.shape[0]), sel].ravel()


def hot_spots(w: np.ndarray, floor: float) -> list[float]:
    """Return the contrast of each obvious focal hot spot (see the module docstring)."""
    # the local median on a 4x coarser grid: the same level, for a fraction of the cost
    coarse = ndimage.median_filter(w[::4, ::4], size=8)
    local = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[: w.shape[0], : w.shape[1]]
    hot = (w > 2.2 * np.maximum(local, 1e-3)) & (w > floor)
    labels, _ = ndimage.label(hot)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        inside = labels[sl] == i
        if inside.sum() < 4:
            continue
        grown = ndimage.binary_dilation(labels == i, iterations=8)
        ring = grown & ~ndimage.binary_dilation(labels == i, iterations=2)
        ring_med = float(np.median(w[ring])) if ring.any() else 0.0
        val = float(np.percentile(w[sl][inside], 90))
        out.append(val / max(ring_med, 1e-3))
    return out


def view_realism(counts: np.ndarray, view: str) -> dict[str, float]:
    """Measure one view (see the module docstring); NaN where a region is not on it."""
    w = smooth_window(counts)
    fr = find_frame(w)
    keys = [*REGIONS, "soft tissue", "kidney", "hot spots", "spot contrast"]
    out = dict.fromkeys(keys, float("nan"))
    if fr is None:
        return out
    lumbar = float(np.percentile(_box_values(w, fr, REGIONS["lumbar spine"]), 95))
    if lumbar <= 0:
        return out
    for name, box in REGIONS.items():
        if view in box.views:
            vals = _box_values(w, fr, box)
            if vals.size:
                out[name] = float(np.percentile(vals, 95)) / lumbar
    soft = float(np.median(_box_values(w, fr, _SOFT)))
    out["soft tissue"] = soft / lumbar
    if view in _KIDNEY.views:
        kid = float(np.percentile(_box_values(w, fr, _KIDNEY), 90))
        out["kidney"] = kid / max(soft, 1e-3 * lumbar)
    spots = hot_spots(w, 0.5 * lumbar)
    out["hot spots"] = float(len(spots))
    out["spot contrast"] = float(np.median(spots)) if spots else float("nan")
    return out


def scan_realism(views: dict[str, np.ndarray]) -> dict[str, float]:
    """Measure a scan: each region on the views it is defined for (mean when on both)."""
    per_view = {v: view_realism(views[v], v) for v in VIEWS}
    out: dict[str, float] = {}
    for key in per_view[VIEWS[0]]:
        vals = [per_view[v][key] for v in VIEWS if np.isfinite(per_view[v][key])]
        if key == "hot spots":
            out[key] = float(sum(vals)) if vals else float("nan")
        else:
            out[key] = float(np.mean(vals)) if vals else float("nan")
    return out


def summarise(rows: list[dict[str, float]]) -> dict[str, str]:
    """Median [25th-75th percentile] of each measure over scans, as text."""
    out = {}
    for key in rows[0]:
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            out[key] = "-"
            continue
        q1, med, q3 = np.percentile(vals, [25, 50, 75])
        fmt = "{:.0f}" if key == "hot spots" else "{:.2f}"
        out[key] = f"{fmt.format(med)} [{fmt.format(q1)}-{fmt.format(q3)}]"
    return out


def realism_rows(
    real_dir: str | Path, n_cases: int, seed: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Measure the typical real whole-body scans and generated scans without metastasis."""
    real = [scan_realism(v) for _, v in read_real(real_dir) if is_whole_body(v)]
    gen = [scan_realism(generate_case(seed, i, metastasis=False).views) for i in range(n_cases)]
    return real, gen


def separability_rows(
    real_dir: str | Path, n_cases: int, seed: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Feature rows for :func:`separability_auc`: these measures and compare's, per scan."""

    def row(views: dict[str, np.ndarray]) -> dict[str, float]:
        return {**scan_realism(views), **scan_measures(views)}

    real = [row(v) for _, v in read_real(real_dir) if is_whole_body(v)]
    gen = [row(generate_case(seed, i, metastasis=False).views) for i in range(n_cases)]
    return real, gen


def realism_table(real: list[dict[str, float]], gen: list[dict[str, float]]) -> str:
    """Return the Markdown realism table, real beside generated."""
    a, b = summarise(real), summarise(gen)
    lines = [
        f"| measure (normal scans) | real ({len(real)}) | generated ({len(gen)}) |",
        "|---|---|---|",
    ]
    for key in a:
        name = f"{key} / lumbar spine" if key in REGIONS and key != "lumbar spine" else key
        if key == "lumbar spine":
            continue
        lines.append(f"| {name} | {a[key]} | {b[key]} |")
    return "\n".join(lines)


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt)
        loss = loss + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def separability_auc(
    real: list[dict[str, float]], gen: list[dict[str, float]], l2: float = 0.1
) -> float:
    """Leave-one-out ROC AUC of a logistic regression telling real (1) from generated (0).

    Args:
        real: Feature rows of real scans (same keys in every row).
        gen: Feature rows of generated scans.
        l2: Ridge penalty on the standardised features' weights.

    Returns:
        The AUC of the held-out scores (0.5: indistinguishable on these features).

    Raises:
        ValueError: If either side has fewer than 2 scans.
    """
    if len(real) < 2 or len(gen) < 2:
        raise ValueError(f"need >= 2 scans a side, got {len(real)} real and {len(gen)} generated")
    keys = sorted(real[0])
    x = np.array([[r[k] for k in keys] for r in real + gen], dtype=np.float64)
    y = np.array([1.0] * len(real) + [0.0] * len(gen))
    # a measure missing on a scan gets the column median, so it tells nothing either way
    med = np.nanmedian(x, axis=0)
    x = np.where(np.isfinite(x), x, np.where(np.isfinite(med), med, 0.0))
    scores = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        mu, sd = x[keep].mean(axis=0), x[keep].std(axis=0) + 1e-9
        w, b = _fit_logistic((x[keep] - mu) / sd, y[keep], l2)
        scores[i] = float(((x[i] - mu) / sd) @ w + b)
    return float(roc_auc(y, scores))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the realism table (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m core.phantom.realism", description=__doc__)
    p.add_argument("real_dir", type=Path, help="folder with ant/ and post/ of the same names")
    p.add_argument("--cases", type=int, default=60, help="generated scans without metastasis")
    p.add_argument("--seed", type=int, default=9, help="generation seed")
    args = p.parse_args(argv)
    real, gen = realism_rows(args.real_dir, args.cases, args.seed)
    print(realism_table(real, gen))
    print()
    real, gen = separability_rows(args.real_dir, args.cases, args.seed)
    print(
        f"leave-one-out AUC, generated vs real ({len(real)} real, {len(gen)} generated; "
        f"information only): {separability_auc(real, gen):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
