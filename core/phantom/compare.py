"""Compare generated scans with real exports in numbers, check the burden truth, time it.

Run::

    python -m core.phantom.compare /path/to/real-scans [--cases 40] [--seed 0]
        [--burden-cases 150] [--ladder-patients 20] [--rate-cases 40]
        [--picture /tmp/compare.png]

``REAL_DIR`` holds ``ant/*.jpg|png`` and ``post/*`` of the same names (one scan per
name); each pair is read with the project's reader (:func:`core.reading.readers.read_scan`).
Nothing of the real images is written anywhere except the optional ``--picture``
(keep it outside the repository). The output is Markdown for ``docs/phantom.md``.

Every measure is taken the same way on both sets, on each view's counts windowed by
its own 99.5th percentile (``w = min(counts / p99.5, 1)``), so that the unknown
scaling of exported images does not matter:

* ``p75 ... p99`` — percentiles of ``w`` over the whole view;
* ``background %`` — share of pixels with smoothed ``w`` under 0.02;
* ``top row``, ``length``, ``width`` — body extent: rows/columns with at least 3
  pixels of smoothed (Gaussian sigma 2) ``w`` >= 0.08;
* ``bladder px``, ``bladder/bone`` — the hottest blob (smoothed, sigma 1.5) in the
  low pelvis (40-58 % of the body length, central 40 % of its width): its area at
  half its maximum, and its maximum over the bone level (mean of the top 2 % of
  smoothed values in the trunk, 18-40 % of the body length);
* ``noise`` — relative noise where ``w`` is 0.3-0.6: the standard deviation of a
  pixel minus the mean of its 8 neighbours (divided by sqrt(9/8)) over the local
  smoothed level (Poisson counts c give 1/sqrt(c));
* ``POST/ANT spine`` — mean counts of the spine column (body centre +-4 columns,
  25-42 % of the length) on the posterior view over the anterior one.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage, stats

from core.config import VIEWS
from core.phantom.export import generate_dataset
from core.phantom.findings import PATTERNS
from core.phantom.generate import generate_case
from core.reading.readers import read_scan

_MEASURES = (
    "p75",
    "p90",
    "p95",
    "p99",
    "background %",
    "top row",
    "length",
    "width",
    "bladder px",
    "bladder/bone",
    "noise",
)


def view_measures(counts: np.ndarray) -> dict[str, float]:
    """Return the measures of one view (see the module docstring).

    Args:
        counts: 2-D counts (any real dtype), hot = high.

    Returns:
        ``{measure: value}`` for every name of the module docstring except the spine
        ratio (NaN where a measure cannot be taken, e.g. no body found).
    """
    a = np.asarray(counts, dtype=np.float64)
    top = float(np.percentile(a, 99.5)) or 1.0
    w = np.clip(a / top, 0.0, 1.0)
    out: dict[str, float] = {f"p{q}": float(np.percentile(w, q)) for q in (75, 90, 95, 99)}
    sm = ndimage.gaussian_filter(w, 2.0)
    out["background %"] = 100.0 * float((sm < 0.02).mean())
    body = sm >= 0.08
    rows = np.flatnonzero(body.sum(1) >= 3)
    cols = np.flatnonzero(body.sum(0) >= 3)
    nan = float("nan")
    if rows.size == 0 or cols.size == 0:
        out.update({k: nan for k in ("top row", "length", "width", "bladder px", "bladder/bone")})
    else:
        r0, r1 = int(rows[0]), int(rows[-1])
        c0, c1 = int(cols[0]), int(cols[-1])
        length, width = r1 - r0 + 1, c1 - c0 + 1
        out["top row"], out["length"], out["width"] = float(r0), float(length), float(width)
        s15 = ndimage.gaussian_filter(w, 1.5)
        cc = (c0 + c1) / 2
        pr0, pr1 = r0 + int(0.40 * length), r0 + int(0.58 * length)
        pc0, pc1 = int(cc - 0.2 * width), int(cc + 0.2 * width) + 1
        region = s15[pr0:pr1, pc0:pc1]
        trunk = s15[r0 + int(0.18 * length) : r0 + int(0.40 * length), c0 : c1 + 1]
        bone = float(np.mean(np.sort(trunk, axis=None)[-max(1, trunk.size // 50) :]))
        if region.size == 0 or bone <= 0:
            out["bladder px"], out["bladder/bone"] = nan, nan
        else:
            peak = float(region.max())
            lab, _ = ndimage.label(region >= 0.5 * peak)
            at = np.unravel_index(np.argmax(region), region.shape)
            out["bladder px"] = float((lab == lab[at]).sum())
            out["bladder/bone"] = peak / bone
    k = np.ones((3, 3)) / 8.0
    k[1, 1] = 0.0
    resid = (w - ndimage.convolve(w, k, mode="nearest")) / math.sqrt(9.0 / 8.0)
    level = ndimage.uniform_filter(w, 7)
    sel = (level >= 0.3) & (level <= 0.6)
    out["noise"] = float(resid[sel].std() / level[sel].mean()) if sel.sum() > 50 else nan
    return out


def spine_ratio(ant: np.ndarray, post: np.ndarray) -> float:
    """Return mean spine-column counts, posterior over anterior (see the module docstring)."""
    ratios = []
    for view in (ant, post):
        sm = ndimage.gaussian_filter(np.clip(view / (np.percentile(view, 99.5) or 1.0), 0, 1), 2)
        body = sm >= 0.08
        rows = np.flatnonzero(body.sum(1) >= 3)
        cols = np.flatnonzero(body.sum(0) >= 3)
        if rows.size == 0:
            return float("nan")
        length = rows[-1] - rows[0] + 1
        r0, r1 = rows[0] + int(0.25 * length), rows[0] + int(0.42 * length)
        c = (int(cols[0]) + int(cols[-1])) // 2
        ratios.append(float(np.asarray(view, np.float64)[r0:r1, c - 4 : c + 5].mean()))
    return ratios[1] / ratios[0] if ratios[0] > 0 else float("nan")


def scan_measures(views: dict[str, np.ndarray]) -> dict[str, float]:
    """Return every measure of a scan: per-view measures averaged over ANT and POST."""
    per = [view_measures(views[v]) for v in VIEWS]
    out = {k: float(np.nanmean([p[k] for p in per])) for k in _MEASURES}
    out["POST/ANT spine"] = spine_ratio(views["ANT"], views["POST"])
    return out


def read_real(folder: str | Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Read every ``ant/NAME`` + ``post/NAME`` pair of a folder with the project's reader.

    Args:
        folder: The folder with ``ant`` and ``post`` subfolders.

    Returns:
        ``[(name, {"ANT": counts, "POST": counts})]`` sorted by name.

    Raises:
        FileNotFoundError: If the folder has no ``ant`` subfolder.
    """
    root = Path(folder)
    if not (root / "ant").is_dir():
        raise FileNotFoundError(f"{root}: no 'ant' subfolder")
    out = []
    for ant in sorted((root / "ant").iterdir()):
        post = root / "post" / ant.name
        if post.exists():
            scan = read_scan(ant, post)
            out.append((ant.stem, {v: np.asarray(scan.views[v]) for v in VIEWS}))
    return out


def _summary(rows: list[dict[str, float]]) -> dict[str, str]:
    keys = [*_MEASURES, "POST/ANT spine"]
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in rows], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            out[k] = "-"
            continue
        q1, med, q3 = np.percentile(vals, [25, 50, 75])
        fmt = "{:.0f}" if k in ("top row", "length", "width", "bladder px") else "{:.2f}"
        if k == "background %":
            fmt = "{:.1f}"
        out[k] = f"{fmt.format(med)} [{fmt.format(q1)}-{fmt.format(q3)}]"
    return out


def is_whole_body(views: dict[str, np.ndarray]) -> bool:
    """Tell a typical diagnostic whole-body scan (heuristic).

    In both views the windowed 90th percentile reaches 0.1; noise-only images,
    non-scans and images dominated by one saturated spot stay near 0.
    """
    return all(view_measures(views[v])["p90"] >= 0.1 for v in VIEWS)


def compare_table(real_dir: str | Path, n_cases: int, seed: int) -> str:
    """Return a Markdown table: median [IQR] of each measure, real vs generated.

    Args:
        real_dir: Folder of real scans (see :func:`read_real`).
        n_cases: Generated cases (cases 0 .. n-1 of ``seed``).
        seed: Generation seed.

    Returns:
        The Markdown table (columns: real all, real whole-body, generated).
    """
    real = read_real(real_dir)
    real_rows = [scan_measures(v) for _, v in real]
    body_rows = [r for (_, v), r in zip(real, real_rows, strict=True) if is_whole_body(v)]
    gen_rows = [scan_measures(generate_case(seed, i).views) for i in range(n_cases)]
    cols = [
        (f"real, all ({len(real_rows)})", _summary(real_rows)),
        (f"real, typical whole-body ({len(body_rows)})", _summary(body_rows)),
        (f"generated ({len(gen_rows)})", _summary(gen_rows)),
    ]
    lines = ["| measure | " + " | ".join(c[0] for c in cols) + " |"]
    lines.append("|---|" + "---|" * len(cols))
    for k in [*_MEASURES, "POST/ANT spine"]:
        lines.append(f"| {k} | " + " | ".join(c[1][k] for c in cols) + " |")
    return "\n".join(lines)


def burden_check(n: int, seed: int) -> dict[str, Any]:
    """Spearman rho of the true-mask BSTBI against lesion number, uptake and size.

    Draws ``n`` metastatic cases (seed ``seed``) and, among them, the solitary ones
    for the uptake and size of a single lesion.

    Args:
        n: Metastatic cases to generate.
        seed: Generation seed.

    Returns:
        ``{"n", "rho_lesions", "rho_mean_uptake", "rho_mask_pixels", "n_solitary",
        "rho_solitary_uptake", "rho_solitary_size", "p_values": {...}}``.
    """
    b, nles, upt, pix = [], [], [], []
    sol_b, sol_u, sol_s = [], [], []
    for i in range(n):
        c = generate_case(seed, i, metastasis=True)
        les = [x for x in c.truth["lesions"] if max(x["mask_pixels"].values()) > 0]
        b.append(c.truth["bstbi"]["mean"])
        nles.append(len(les))
        upt.append(float(np.mean([x["uptake_ratio"] for x in les])) if les else 1.0)
        pix.append(sum(int((c.masks[v] == 1).sum()) for v in VIEWS))
        if c.truth["pattern"] == "solitary":
            sol_b.append(c.truth["bstbi"]["mean"])
            sol_u.append(c.truth["lesions"][0]["uptake_ratio"])
            sol_s.append(c.truth["lesions"][0]["size_mm"])
    res: dict[str, Any] = {"n": n, "n_solitary": len(sol_b), "p_values": {}}
    for name, x, y in (
        ("rho_lesions", b, nles),
        ("rho_mean_uptake", b, upt),
        ("rho_mask_pixels", b, pix),
        ("rho_solitary_uptake", sol_b, sol_u),
        ("rho_solitary_size", sol_b, sol_s),
    ):
        r = stats.spearmanr(x, y)
        res[name] = round(float(r.statistic), 3)
        res["p_values"][name] = float(r.pvalue)
    return res


#: Uptake scales of the controlled check (multipliers of each lesion's excess uptake).
UPTAKE_SCALES: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)


def ladder_check(n_patients: int, seed: int) -> dict[str, Any]:
    """Controlled check: the same patient with more lesions, and with hotter lesions.

    For each patient ``i`` of ``seed``: BSTBI for every extent pattern (solitary,
    oligo, multiple, extensive, superscan: more lesions, same body and scan) and for
    every uptake scale of :data:`UPTAKE_SCALES` (pattern ``"multiple"``). Spearman rho
    of BSTBI against the lesion count and against the scale, per patient.

    Args:
        n_patients: Patients.
        seed: Seed.

    Returns:
        ``{"n_patients", "median_bstbi_by_pattern", "rho_count": {median, min,
        share_1}, "rho_uptake": {median, min, share_1}}`` (share_1: patients with rho 1).
    """
    by_pattern: dict[str, list[float]] = {p: [] for p in PATTERNS}
    rho_n, rho_u = [], []
    for i in range(n_patients):
        counts, bs = [], []
        for p in PATTERNS:
            c = generate_case(seed, i, pattern=p)
            counts.append(len(c.truth["lesions"]))
            bs.append(c.truth["bstbi"]["mean"])
            by_pattern[p].append(bs[-1])
        rho_n.append(float(stats.spearmanr(counts, bs).statistic))
        bu = [
            generate_case(seed, i, pattern="multiple", uptake_scale=k).truth["bstbi"]["mean"]
            for k in UPTAKE_SCALES
        ]
        rho_u.append(float(stats.spearmanr(UPTAKE_SCALES, bu).statistic))

    def summary(r: list[float]) -> dict[str, float]:
        a = np.array(r)
        return {
            "median": round(float(np.median(a)), 3),
            "min": round(float(a.min()), 3),
            "share_1": round(float((a > 0.999).mean()), 3),
        }

    return {
        "n_patients": n_patients,
        "median_bstbi_by_pattern": {
            p: round(float(np.median(v)), 4) for p, v in by_pattern.items()
        },
        "rho_count": summary(rho_n),
        "rho_uptake": summary(rho_u),
    }


def generation_rate(n: int, seed: int) -> dict[str, float]:
    """Cases per second on one core: generation alone, and generation plus writing.

    Args:
        n: Cases to time.
        seed: Seed.

    Returns:
        ``{"generate_per_s", "generate_and_write_per_s"}``.
    """
    t0 = time.perf_counter()
    for i in range(n):
        generate_case(seed, i)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(tmp, n, seed)
    t2 = time.perf_counter()
    return {
        "generate_per_s": round(n / (t1 - t0), 2),
        "generate_and_write_per_s": round(n / (t2 - t1), 2),
    }


def picture(real_dir: str | Path, out: str | Path, seed: int, n_real: int = 4) -> None:
    """Save one picture: 6 generated ANT/POST pairs, then ``n_real`` real pairs.

    Each view is windowed at its own 99.5th percentile, black background, hot = bright.
    Keep ``out`` outside the repository: real images never enter it.
    """

    def win(a: np.ndarray) -> np.ndarray:
        top = float(np.percentile(a, 99.5)) or 1.0
        return (np.clip(a / top, 0, 1) * 255).astype(np.uint8)

    pairs = [generate_case(seed, i).views for i in range(6)]
    pairs += [v for _, v in read_real(real_dir)[:n_real]]
    gap = np.full((1024, 3), 90, np.uint8)
    space = np.full((1024, 12), 255, np.uint8)
    tiles = [np.concatenate([win(p["ANT"]), gap, win(p["POST"]), space], 1) for p in pairs]
    Image.fromarray(np.concatenate(tiles, 1)).save(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison, the burden check and the rate as Markdown.

    Args:
        argv: Arguments (see the module docstring); ``sys.argv[1:]`` when None.

    Returns:
        0.
    """
    ap = argparse.ArgumentParser(prog="python -m core.phantom.compare", description=__doc__)
    ap.add_argument("real_dir", type=Path, help="folder with ant/ and post/ real exports")
    ap.add_argument("--cases", type=int, default=40, help="generated cases to measure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--burden-cases", type=int, default=150)
    ap.add_argument("--ladder-patients", type=int, default=20)
    ap.add_argument("--rate-cases", type=int, default=40)
    ap.add_argument("--picture", type=Path, help="also save a side-by-side PNG (not in the repo)")
    args = ap.parse_args(argv)
    print(compare_table(args.real_dir, args.cases, args.seed))
    print()
    print("BSTBI (true masks) vs burden:", burden_check(args.burden_cases, args.seed + 1))
    print("BSTBI, controlled:", ladder_check(args.ladder_patients, args.seed + 2))
    print("rate (one core):", generation_rate(args.rate_cases, args.seed + 3))
    if args.picture:
        picture(args.real_dir, args.picture, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
