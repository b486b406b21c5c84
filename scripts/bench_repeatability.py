r"""Benchmark: how much BSTBI, BSI and the hotspot count move when nothing has changed.

Not product code. It measures the repeatability behind
:mod:`core.burden.repeatability` (issue 25, point 4: which changes are real).

**The re-acquisitions.** Each patient is one phantom scene
(:func:`core.phantom.generate.draw_scene`: body, benign findings, metastases,
physiology), kept as it is: the same bones, the same lesions with the same uptake, the
same soft tissue and bladder. Each *repeat* puts the patient on the table again (a new
placement, :func:`core.phantom.generate.draw_placement`: other vertex row and mid-line
column, so other pixels) and images the scene once per count level with its own
Poisson noise draw. The count level is the total counts of the view with fewer counts
(usually the anterior one), so that both views have at least that many. The scene is
rendered noise-free with the phantom's own renderer (``core.phantom.generate._render``,
the one :func:`core.phantom.generate.generate_case` uses, called here rather than
adding a keyword to the phantom), scaled to the level and Poisson
sampled: scaling the noise-free image is exactly what the renderer does for a given
total.

**The analysis.** Every scan goes through the product's analysis,
:func:`core.analysis.analyze` with the shipped models
(:func:`core.networks.models.load_models`). Recorded per scan: BSTBI
(``raw_bstbi``, so that a scan the gate refused still counts; refusals are reported),
the hotspot count (``raw_hotspots``), the product's BSI when the result has one
(``raw_bsi``, else ``bsi``, percent: read on the skeleton network's maps), and the BSI
of the same lesion masks read on the phantom's exact skeleton maps
(:func:`core.phantom.skeleton_truth.label_maps` with
:func:`core.anatomy.bsi.bone_scan_index`): the lesion networks' share of the BSI's
repeatability, with a perfect skeleton.

**The statistics.** Per count level and metric: the pooled within-patient SD
(:func:`core.burden.repeatability.repeatability_sd`) over the patients' repeats, its
95 % confidence interval (chi-square on the pooled degrees of freedom), the least
significant change ``2.77 x SD`` and the mean over all scans of the level (a change of
count level alone moves it when the mean differs between levels).

Default run (8 patients, 6 with metastases, 4 repeats, 6 levels: 192 analyses, about
6 minutes on one thread; docs/benchmarks.md gives the larger run behind
:data:`core.burden.repeatability.REPEATABILITY`)::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/bench_repeatability.py \
        --json ~/repeatability.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from core.analysis import AnalysisResult, analyze
from core.anatomy.bsi import bone_scan_index
from core.burden.repeatability import LSC_FACTOR, repeatability_sd
from core.config import LABEL_METASTASIS, VIEWS
from core.networks.models import load_models
from core.phantom.findings import PATTERNS
from core.phantom.generate import (
    PHANTOM_MANUFACTURER,
    PHANTOM_SOURCE_FORMAT,
    PIXEL_SPACING_MM,
    CaseScene,
    _render,
    draw_placement,
    draw_scene,
)
from core.phantom.skeleton_truth import label_maps
from core.scan import Scan, ScanMeta

#: Count levels (million counts in the view with fewer counts) of the default run.
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.5, 4.0)
#: Metastatic extent of the default run's patients, cycled (:func:`patient_scene`): three
#: with metastases of a drawn extent, then one without.
DEFAULT_PATTERNS: tuple[str, ...] = ("drawn", "drawn", "drawn", "none")
#: Metrics measured, in table order: BSTBI (fraction), the product's BSI (percent, when
#: the analysis has one), BSI on the phantom's exact skeleton (percent), hotspots.
METRICS: tuple[str, ...] = ("bstbi", "bsi", "bsi_exact_skeleton", "hotspots")
#: Renderer count limits wide enough never to rescale a level (the scan is rescaled here).
_NO_LIMITS = (1.0, 1e12)
#: Random stream of the placements and noise, apart from the phantom's own streams.
_STREAM = 25


@dataclass
class Measured:
    """Values per metric, level and patient: ``values[metric][level][patient] -> repeats``."""

    values: dict[str, dict[float, dict[int, list[float]]]] = field(default_factory=dict)
    refused: dict[float, int] = field(default_factory=dict)
    cautioned: dict[float, int] = field(default_factory=dict)
    true_bsi: dict[int, list[float]] = field(default_factory=dict)
    counts: dict[float, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, metric: str, level: float, patient: int, value: float | None) -> None:
        """Record one scan's value (None: the metric is absent, nothing recorded)."""
        if value is None or not math.isfinite(value):
            return
        by_level = self.values.setdefault(metric, {}).setdefault(level, {})
        by_level.setdefault(patient, []).append(float(value))


def _scan(views: dict[str, np.ndarray]) -> Scan:
    meta = ScanMeta(
        pixel_spacing_mm=PIXEL_SPACING_MM,
        manufacturer=PHANTOM_MANUFACTURER,
        source_format=PHANTOM_SOURCE_FORMAT,
        notes=("synthetic phantom scan, not a patient",),
    )
    return Scan(views=views, meta=meta)


def reacquire(
    scene: CaseScene,
    levels_million: Sequence[float],
    rng: np.random.Generator,
    *,
    new_placement: bool = True,
) -> tuple[list[Scan], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Image one scene again: a new placement, then one noise draw per count level.

    Args:
        scene: The patient (nothing of it changes).
        levels_million: Count levels, million counts of the view with fewer counts.
        rng: Draws the placement and the noise.
        new_placement: False keeps the scene's own placement (only the noise changes).

    Returns:
        ``(scans, truth_masks, skeleton_maps)``: one scan per level, the phantom's lesion
        and bladder masks of this placement, and its exact skeleton label maps.
    """
    placement = (
        draw_placement(rng, scene.body, scene.physiology.blur_scale)
        if new_placement
        else scene.placement
    )
    phys = replace(scene.physiology, total_counts_ant=1e6)
    _, result, _ = _render(
        scene.body, scene.lesions, scene.benign, phys, placement, None, _NO_LIMITS
    )
    expected = result.expected
    lowest = min(float(expected[v].sum()) for v in VIEWS)
    scans = []
    for level in levels_million:
        k = level * 1e6 / lowest
        scans.append(_scan({v: rng.poisson(expected[v] * k).astype(np.float32) for v in VIEWS}))
    skeleton = label_maps(scene.body, scene.physiology, placement)
    return scans, result.masks, skeleton


def _bsi(skeleton: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> float:
    return bone_scan_index(
        ant_skeleton=skeleton["ANT"],
        ant_mask=masks["ANT"] == LABEL_METASTASIS,
        post_skeleton=skeleton["POST"],
        post_mask=masks["POST"] == LABEL_METASTASIS,
    ).bsi


def _record(
    out: Measured,
    level: float,
    patient: int,
    scan: Scan,
    result: AnalysisResult,
    skeleton: dict[str, np.ndarray],
) -> None:
    out.refused[level] = out.refused.get(level, 0) + (not result.reliable)
    out.cautioned[level] = out.cautioned.get(level, 0) + bool(result.quality.cautions)
    out.counts.setdefault(level, []).append(
        (float(scan.views["ANT"].sum()), float(scan.views["POST"].sum()))
    )
    out.add("bstbi", level, patient, result.raw_bstbi)
    out.add("hotspots", level, patient, float(result.raw_hotspots))
    # the product's BSI, once the analysis computes one (raw: whatever the verdict)
    product_bsi = getattr(result, "raw_bsi", getattr(result, "bsi", None))
    out.add("bsi", level, patient, None if product_bsi is None else float(product_bsi))
    out.add("bsi_exact_skeleton", level, patient, _bsi(skeleton, result.masks))


def patient_scene(seed: int, index: int, pattern: str) -> CaseScene:
    """Draw patient ``index`` of ``seed`` with the metastatic extent ``pattern``.

    ``"none"``: no metastasis; ``"drawn"``: metastases of a drawn extent; else one of
    :data:`core.phantom.findings.PATTERNS`.
    """
    if pattern == "none":
        return draw_scene(seed, index, metastasis=False)
    if pattern == "drawn":
        return draw_scene(seed, index, metastasis=True)
    return draw_scene(seed, index, pattern=pattern)


def measure(
    *,
    seed: int,
    patients: int,
    patterns: Sequence[str],
    repeats: int,
    levels_million: Sequence[float],
    new_placement: bool = True,
    log: Any = sys.stderr,
) -> Measured:
    """Run every re-acquisition of every patient through the analysis.

    Args:
        seed: Phantom seed (patients are its cases 0 .. patients - 1).
        patients: Number of patients.
        patterns: Metastatic extent of each patient, cycled (:func:`patient_scene`).
        repeats: Re-acquisitions per patient (each at every level).
        levels_million: Count levels, million counts of the view with fewer counts.
        new_placement: False keeps each patient's placement (noise only changes).
        log: Where progress lines go.

    Returns:
        The values measured.
    """
    models = load_models(device="cpu")
    out = Measured()
    start = time.perf_counter()
    for p in range(patients):
        scene = patient_scene(seed, p, patterns[p % len(patterns)])
        for r in range(repeats):
            rng = np.random.default_rng([seed, _STREAM, p, r])
            scans, truth, skeleton = reacquire(
                scene, levels_million, rng, new_placement=new_placement
            )
            out.true_bsi.setdefault(p, []).append(_bsi(skeleton, truth))
            results = analyze(scans, models)
            for level, scan, result in zip(levels_million, scans, results, strict=True):
                _record(out, level, p, scan, result, skeleton)
            print(
                f"patient {p + 1}/{patients} ({scene.pattern}, {len(scene.lesions)} lesions) "
                f"repeat {r + 1}/{repeats}: {time.perf_counter() - start:.0f} s",
                file=log,
                flush=True,
            )
    return out


def _sd_interval(sd: float, dof: int) -> tuple[float, float]:
    """95 % confidence interval of a pooled SD with ``dof`` degrees of freedom."""
    if dof <= 0:
        return math.nan, math.nan
    lo = sd * math.sqrt(dof / stats.chi2.ppf(0.975, dof))
    hi = sd * math.sqrt(dof / stats.chi2.ppf(0.025, dof))
    return float(lo), float(hi)


def product_table(
    measured: Measured, levels_million: Sequence[float], plateau_from: float
) -> dict[str, Any]:
    """The rows of :data:`core.burden.repeatability.REPEATABILITY` from this measurement.

    From ``plateau_from`` million counts up the SD does not depend on the counts (within
    its confidence interval), so those levels are pooled into one SD (every patient's
    repeats at every such level), given at the lowest and the highest of those levels.
    Below, each level keeps its own SD. The rows are then made non-increasing in counts
    (each level takes the largest SD of itself and every higher level): fewer counts
    never make a measurement more repeatable, and a smaller SD at a low level (fewer
    detections, not more precision) must not shrink the limit there.

    Returns:
        ``{"counts_per_view": [...], "sd": {metric: [...]}}``; metrics without values
        are left out.
    """
    low = [lv for lv in levels_million if lv < plateau_from]
    high = [lv for lv in levels_million if lv >= plateau_from]
    ends = sorted({min(high), max(high)}) if high else []
    out_levels = [*low, *ends]
    sd: dict[str, list[float]] = {}
    for metric in METRICS:
        by_level = measured.values.get(metric, {})
        if not by_level:
            continue
        row = [repeatability_sd([v for v in by_level[lv].values() if len(v) >= 2]) for lv in low]
        pooled = [v for lv in high for v in by_level.get(lv, {}).values() if len(v) >= 2]
        row += [repeatability_sd(pooled)] * len(ends) if pooled else []
        for i in range(len(row) - 2, -1, -1):
            row[i] = max(row[i], row[i + 1])
        sd[metric] = row
    return {"counts_per_view": [lv * 1e6 for lv in out_levels], "sd": sd}


def summarise(measured: Measured, levels_million: Sequence[float]) -> list[dict[str, Any]]:
    """Per level and metric: SD, its 95 % interval, LSC, mean, patients and repeats."""
    rows = []
    for level in levels_million:
        ant_post = np.array(measured.counts.get(level, []))
        row: dict[str, Any] = {
            "level_million": level,
            "mean_counts_ant": float(ant_post[:, 0].mean()) if len(ant_post) else math.nan,
            "mean_counts_post": float(ant_post[:, 1].mean()) if len(ant_post) else math.nan,
            "refused": measured.refused.get(level, 0),
            "cautioned": measured.cautioned.get(level, 0),
            "metrics": {},
        }
        for metric in METRICS:
            per_patient = list(measured.values.get(metric, {}).get(level, {}).values())
            usable = [v for v in per_patient if len(v) >= 2]
            if not usable:
                continue
            sd = repeatability_sd(usable)
            dof = sum(len(v) - 1 for v in usable)
            lo, hi = _sd_interval(sd, dof)
            row["metrics"][metric] = {
                "sd": sd,
                "sd_ci95": [lo, hi],
                "lsc": LSC_FACTOR * sd,
                "mean": float(np.mean([x for v in usable for x in v])),
                "patients": len(usable),
                "repeats": max(len(v) for v in usable),
                "dof": dof,
            }
        rows.append(row)
    return rows


_FORMAT = {"bstbi": "{:.4f}", "bsi": "{:.3f}", "bsi_exact_skeleton": "{:.3f}", "hotspots": "{:.2f}"}
_HEAD = {
    "bstbi": "BSTBI",
    "bsi": "BSI %",
    "bsi_exact_skeleton": "BSI % (exact skeleton)",
    "hotspots": "hotspots",
}


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary as markdown tables: SD (95 % interval) and LSC, then the means."""
    metrics = [m for m in METRICS if any(m in r["metrics"] for r in rows)]
    head = "| M counts / view | " + " | ".join(
        f"{_HEAD[m]} SD (95 % CI) | {_HEAD[m]} LSC" for m in metrics
    )
    lines = [head + " |", "|---" * (1 + 2 * len(metrics)) + "|"]
    for r in rows:
        cells = [f"{r['level_million']:g}"]
        for m in metrics:
            s = r["metrics"].get(m)
            if s is None:
                cells += ["", ""]
                continue
            f = _FORMAT[m]
            ci = f"{f.format(s['sd_ci95'][0])}-{f.format(s['sd_ci95'][1])}"
            cells += [f"{f.format(s['sd'])} ({ci})", f.format(s["lsc"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| M counts / view | ANT / POST counts (M, mean) | refused | cautioned | "]
    lines[-1] += " | ".join(f"mean {_HEAD[m]}" for m in metrics) + " |"
    lines.append("|---" * (4 + len(metrics)) + "|")
    for r in rows:
        cells = [
            f"{r['level_million']:g}",
            f"{r['mean_counts_ant'] / 1e6:.2f} / {r['mean_counts_post'] / 1e6:.2f}",
            str(r["refused"]),
            str(r["cautioned"]),
        ]
        for m in metrics:
            s = r["metrics"].get(m)
            cells.append("" if s is None else _FORMAT[m].format(s["mean"]))
        lines.append("| " + " | ".join(cells) + " |")
    first: dict[str, Any] = next((r["metrics"] for r in rows if r["metrics"]), {})
    any_metric = next(iter(first.values()), None)
    if any_metric is not None:
        lines.append("")
        lines.append(
            f"{any_metric['patients']} patients x {any_metric['repeats']} repeats per level "
            f"({any_metric['dof']} degrees of freedom per SD)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the markdown tables, and write JSON when asked (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seed", type=int, default=2025, help="phantom seed")
    p.add_argument("--patients", type=int, default=8, help="number of patients")
    p.add_argument(
        "--patterns",
        default=",".join(DEFAULT_PATTERNS),
        help="metastatic extent per patient, cycled: none, drawn or a phantom pattern "
        f"({', '.join(PATTERNS)}), comma-separated",
    )
    p.add_argument(
        "--fixed-placement",
        action="store_true",
        help="keep each patient's placement: only the counts and the noise change",
    )
    p.add_argument("--repeats", type=int, default=4, help="re-acquisitions per patient (>= 2)")
    p.add_argument(
        "--levels",
        default=",".join(f"{x:g}" for x in DEFAULT_LEVELS),
        help="count levels, million counts of the view with fewer counts, comma-separated",
    )
    p.add_argument(
        "--plateau-from",
        type=float,
        default=0.5,
        help="million counts from which the levels are pooled for the product table",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--json", type=Path, help="write the summary and every value here")
    args = p.parse_args(argv)
    levels = tuple(float(x) for x in args.levels.split(","))
    if args.patients < 1:
        p.error("--patients must be >= 1")
    if args.repeats < 2:
        p.error("--repeats must be >= 2 (an SD needs two scans of a patient)")
    if not levels or any(not (math.isfinite(x) and x > 0) for x in levels):
        p.error("--levels must be numbers > 0")
    patterns = tuple(args.patterns.split(","))
    if any(x not in ("none", "drawn", *PATTERNS) for x in patterns):
        p.error(f"--patterns must name none, drawn or {', '.join(PATTERNS)}")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    measured = measure(
        seed=args.seed,
        patients=args.patients,
        patterns=patterns,
        repeats=args.repeats,
        levels_million=levels,
        new_placement=not args.fixed_placement,
    )
    rows = summarise(measured, levels)
    seconds = time.perf_counter() - start
    print(markdown(rows))
    true_bsi = {p: float(np.mean(v)) for p, v in measured.true_bsi.items()}
    print()
    print("True BSI per patient (phantom masks on the exact skeleton, %): ", end="")
    print(", ".join(f"{b:.2f}" for b in true_bsi.values()))
    table = product_table(measured, levels, args.plateau_from)
    print("For core/burden/repeatability.py (SD per level, plateau pooled, non-increasing):")
    print("  counts_per_view:", ", ".join(f"{c:.3g}" for c in table["counts_per_view"]))
    for metric, row in table["sd"].items():
        print(f"  {metric}:", ", ".join(f"{x:.4g}" for x in row))
    print(f"{seconds:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "arguments": {
                        "seed": args.seed,
                        "patients": args.patients,
                        "patterns": list(patterns),
                        "fixed_placement": args.fixed_placement,
                        "repeats": args.repeats,
                        "levels_million": list(levels),
                    },
                    "seconds": seconds,
                    "summary": rows,
                    "product_table": table,
                    "true_bsi": true_bsi,
                    "values": {
                        m: {f"{lv:g}": by for lv, by in per.items()}
                        for m, per in measured.values.items()
                    },
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
