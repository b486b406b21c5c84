r"""Measurement: what the product makes of the 17 real exported bone scans.

Not product code. For each anterior/posterior pair in the real-scan folder
(``ant/N.jpg``, ``post/N.jpg``; see its README: look and sanity-check only, never copy
the images into the repository) it runs the same analysis, in this process, as::

    python -m core analyze --anterior ant/N.jpg --posterior post/N.jpg \
        --model DIR --json --masks OUTDIR

(:func:`core.reading.readers.read_scan`, then :func:`core.analysis.analyze` with models loaded
once by :func:`core.networks.models.load_models`), and prints a markdown table: quality verdict,
metastasis probability and call, marks (hotspots over both views), BSTBI, the skeletal
regions of the marks (:func:`core.imaging.regions.skeletal_region`, as the pipeline stores them
per lesion), whether a bladder was found, and known facts about some files. Under
``--out`` (outside the repository; default ``/tmp/real-scans-out``) it writes, per scan,
an overlay PNG (both views, hot = bright, metastasis red, bladder green), the label
masks as the CLI writes them, one JSON file with every scan's CLI line and lesions, and
one montage PNG of all scans::

    cd /work/main && PYTHONPATH=. .venv/bin/python scripts/real_scans.py \
        --model models --markdown /tmp/real-scans-out/table.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cli.scans import analysis_line
from core.analysis import AnalysisResult, analyze
from core.config import LABEL_BLADDER, LABEL_METASTASIS, REPO_ROOT, VIEWS
from core.imaging.overlay import overlay_rgb
from core.networks.models import LoadedModels, ModelFileError, load_models
from core.reading.readers import read_scan
from core.scan import ScanReadError

#: Known facts about some files (from looking at them; see the folder's README).
NOTES: dict[str, str] = {
    "389": "child: open growth plates (hot metaphyses are normal)",
    "137": "noise only, no body",
    "317": "noise only, no body",
    "345": "not a bone scan",
    "586": "saturated regions",
}
#: Scans that are not adults (excluded from the adult positive count).
NOT_ADULT: frozenset[str] = frozenset({"389"})
#: Percentile of a view's counts shown as full white in the overlays.
WINDOW_PERCENTILE = 99.7
#: Rows of each view kept in the montage (head to about the knees).
MONTAGE_ROWS = 800
#: Columns of background between the two views of an overlay.
GAP_PX = 8


def _scan_ids(real: Path) -> list[str]:
    """Return the scan ids with both views present, sorted numerically."""
    ids = [p.stem for p in (real / "ant").glob("*.jpg") if (real / "post" / p.name).is_file()]
    return sorted(ids, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def _window(counts: np.ndarray) -> np.ndarray:
    """Window a view for looking: 0 counts black, the 99.7th percentile and above white."""
    a = np.asarray(counts, dtype=np.float64)
    top = float(np.percentile(a, WINDOW_PERCENTILE))
    if top <= 0:
        top = float(a.max()) or 1.0
    return np.rint(255.0 * np.clip(a / top, 0.0, 1.0)).astype(np.uint8)


def _overlay(views: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
    """Both views side by side, hot = bright, metastasis red, bladder green."""
    panels = []
    for view in VIEWS:
        grey = _window(views[view])
        panels.append(overlay_rgb(grey, masks.get(view), opacity=0.45))
    gap = np.full((panels[0].shape[0], GAP_PX, 3), 60, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1]], axis=1)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    pic = Image.fromarray(img)
    draw = ImageDraw.Draw(pic)
    draw.rectangle((0, 0, 6 * len(text) + 6, 13), fill=(0, 0, 0))
    draw.text((3, 1), text, fill=(255, 255, 0))
    return np.asarray(pic)


def _montage(tiles: list[tuple[str, np.ndarray]], per_row: int = 9) -> np.ndarray:
    """Rows 0..MONTAGE_ROWS of every overlay, half size, in a grid, labelled by scan id."""
    small = []
    for scan_id, img in tiles:
        cut = Image.fromarray(img[:MONTAGE_ROWS])
        half = cut.resize((cut.width // 2, cut.height // 2), Image.Resampling.BILINEAR)
        small.append(_label(np.asarray(half), scan_id))
    h, w = small[0].shape[:2]
    rows = (len(small) + per_row - 1) // per_row
    pad = 6
    out = np.full((rows * (h + pad), per_row * (w + pad), 3), 30, dtype=np.uint8)
    for i, tile in enumerate(small):
        r, c = divmod(i, per_row)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tile
    return out


def _sites(result: AnalysisResult) -> str:
    """The regions of the marks, e.g. ``"knee x2, pelvis, sternum"`` (most first)."""
    counts = Counter(les.region.replace("_", " ") for les in result.lesions)
    parts = [f"{name} x{n}" if n > 1 else name for name, n in counts.most_common()]
    return ", ".join(parts) if parts else "none"


def _row(scan_id: str, result: AnalysisResult) -> dict[str, str]:
    ok = result.quality.ok
    verdict = "ok" if ok else f"refused ({result.quality.code}): {result.quality.reason}"
    call = ("positive" if result.positives["metastasis"] else "negative") if ok else "—"
    if ok:
        marks = str(result.hotspots)
        bstbi = f"{result.bstbi:.4f}" if result.bstbi is not None else "n/a"
    else:  # the product reports no burden; the raw figures are shown for inspection only
        marks = f"— (raw {result.raw_hotspots})"
        bstbi = f"— (raw {result.raw_bstbi:.4f})"
    bladder_px = sum(int((m == LABEL_BLADDER).sum()) for m in result.masks.values())
    bladder = "yes" if result.positives["bladder"] else "no"
    bladder += f" (p={result.probabilities['bladder']:.2f}, mask {bladder_px} px)"
    return {
        "scan": scan_id,
        "quality": verdict,
        "p(metastasis)": f"{result.probabilities['metastasis']:.3f}",
        "call": call,
        "marks": marks,
        "BSTBI": bstbi,
        "sites marked": _sites(result) + ("" if ok else " (not reported)"),
        "bladder": bladder,
        "note": NOTES.get(scan_id, ""),
    }


def _markdown(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(row[k].replace("|", "/") for k in head) + " |")
    return "\n".join(lines)


def _summary(results: dict[str, AnalysisResult], threshold: float) -> list[str]:
    ok = {k: r for k, r in results.items() if r.quality.ok}
    adult = {k: r for k, r in ok.items() if k not in NOT_ADULT}
    positive = sorted((k for k, r in adult.items() if r.positives["metastasis"]), key=int)
    marks = [r.hotspots or 0 for r in ok.values()]
    raw = [r.raw_hotspots for r in results.values()]
    refused = sorted((k for k in results if k not in ok), key=int)
    lines = [
        f"quality gate: {len(ok)} of {len(results)} scans ok; refused: "
        + (", ".join(refused) or "none"),
        f"adult gated-ok scans called positive (p >= {threshold:.4f}): {len(positive)} of "
        f"{len(adult)} ({', '.join(positive) or 'none'})",
    ]
    if marks:
        lines.append(
            f"marks per gated-ok scan: median {statistics.median(marks):g}, max {max(marks)} "
            f"(n={len(marks)})"
        )
    lines.append(
        f"raw marks per scan, all {len(raw)} scans (refused ones not reported by the "
        f"product): median {statistics.median(raw):g}, max {max(raw)}"
    )
    return lines


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--real",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "real-scans",
        help="folder with ant/N.jpg and post/N.jpg (default ../shared/real-scans)",
    )
    p.add_argument("--model", type=Path, default=Path("models"), help="model folder (models)")
    p.add_argument(
        "--out", type=Path, default=Path("/tmp/real-scans-out"), help="overlays, masks, JSON"
    )
    p.add_argument("--markdown", type=Path, help="also write the table and summary here")
    p.add_argument("--device", help="cpu, cuda ... (default: GPU when available, as the CLI)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Analyse every real scan pair, write the pictures and print the table."""
    args = _parse(argv)
    ids = _scan_ids(args.real)
    if not ids:
        print(f"error: no ant/N.jpg + post/N.jpg pairs in {args.real}", file=sys.stderr)
        return 2
    out: Path = args.out
    (out / "masks").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        models: LoadedModels = load_models(args.model, device=args.device)
    except ModelFileError as exc:
        print(f"error: no usable model in {args.model} ({exc})", file=sys.stderr)
        return 2
    load_s = time.perf_counter() - t0
    # the threshold of whatever makes the folder's calls
    if models.scorer is not None:
        threshold = float(models.scorer[1].threshold)
    elif models.lesion is not None:
        threshold = float(models.lesion[1].threshold)
    else:
        threshold = models.classifier_config.thresholds()["metastasis"]
    results: dict[str, AnalysisResult] = {}
    lines: list[dict[str, Any]] = []
    tiles: list[tuple[str, np.ndarray]] = []
    t1 = time.perf_counter()
    for scan_id in ids:
        files = [args.real / "ant" / f"{scan_id}.jpg", args.real / "post" / f"{scan_id}.jpg"]
        start = time.perf_counter()
        try:
            scan = read_scan(files[0], posterior=files[1])
        except (ScanReadError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        (result,) = analyze([scan], models, read_seconds=[time.perf_counter() - start])
        results[scan_id] = result
        line = analysis_line(files, result)
        line["scan"] = scan_id
        line["read_notes"] = list(scan.meta.notes)
        line["quality_code"] = result.quality.code
        line["raw"] = {"hotspots": result.raw_hotspots, "bstbi": round(result.raw_bstbi, 4)}
        line["lesions"] = [
            {
                "view": les.view,
                "region": les.region,
                "area_px": les.area_px,
                "row": round(les.centroid_row, 1),
                "col": round(les.centroid_col, 1),
                "uptake_ratio": None if les.uptake_ratio is None else round(les.uptake_ratio, 2),
            }
            for les in result.lesions
        ]
        lines.append(line)
        case = files[0].stem  # the CLI names masks after the anterior file's stem
        for view in VIEWS:
            if view in result.masks:
                mask = np.ascontiguousarray(result.masks[view], dtype=np.uint8)
                Image.fromarray(mask).save(out / "masks" / f"{case}_{view}_mask.png")
        pic = _overlay(dict(scan.views), result.masks)
        Image.fromarray(pic).save(out / f"{scan_id}_overlay.png")
        tiles.append((scan_id, pic))
    run_s = time.perf_counter() - t1
    if not results:
        print("error: no scan could be read", file=sys.stderr)
        return 2
    Image.fromarray(_montage(tiles)).save(out / "montage.png")
    (out / "results.json").write_text(json.dumps(lines, indent=2) + "\n", encoding="utf-8")
    table = _markdown([_row(k, r) for k, r in results.items()])
    summary = _summary(results, threshold)
    mets_px = {k: sum(int((m == LABEL_METASTASIS).sum()) for m in r.masks.values())
               for k, r in results.items()}  # fmt: skip
    summary.append(f"metastasis mask pixels, all views: max {max(mets_px.values())}")
    device = next(iter(results.values())).device
    summary.append(
        f"{len(results)} scans in {run_s:.1f} s ({run_s / len(results):.2f} s per scan, "
        f"models loaded in {load_s:.1f} s, {device}; model {args.model})"
    )
    text = table + "\n\n" + "\n".join(f"- {s}" for s in summary) + "\n"
    print(text)
    print(f"overlays, montage, masks and results.json written to {out}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
