r"""Measurement: the skeleton network's regions on real exports and on phantom scans.

Not product code. For each anterior/posterior pair of the real-scan folder (look and
sanity-check only, never copied into the repository) it reads the pair as the product
does (:func:`core.reading.readers.read_scan`), labels both views with the skeleton
network of a model folder (:func:`core.anatomy.network.predict_labels`), and writes
under ``--out`` (outside the repository) one overlay PNG per scan (counts in grey, each
region in its own colour, left and right sides in related hues) and a montage of all.

It also prints a markdown table of plain checks a careful eye would make, per scan:
whether the map is readable (spine and pelvis, :func:`core.anatomy.placement.unreadable_reason`),
which of the skull, spine, pelvis, both shoulders (clavicle/scapula/humerus) and both
knees it found, whether the regions lie in head-to-foot order (skull above the
thoracic spine above the lumbar spine above the pelvis above the knees, by the mean row
of each region's largest piece), and whether each paired region's largest piece lies on
its own side of the spine (naming those that do not)::

    cd /work/main && PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python scripts/skeleton_overlays.py \
        --model models --out /tmp/skeleton-real

``--phantom SEED:N`` labels N phantom cases of that seed instead, with the exact maps'
mean Dice per scan beside the checks.
"""

from __future__ import annotations

import argparse
import colorsys
import itertools
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.anatomy.network import load_skeleton_network, predict_labels
from core.anatomy.placement import largest_piece, unreadable_reason
from core.anatomy.regions import LABELS, N_LABELS, REGIONS, index_of
from core.anatomy.training import dice_from_counts, overlap_counts
from core.config import REPO_ROOT, VIEWS
from core.phantom.generate import generate_case
from core.phantom.skeleton_truth import case_label_maps
from core.reading.readers import read_scan

REAL = REPO_ROOT.parent / "shared" / "real-scans"
#: Regions whose mean rows must run head to foot (the first view each is present on).
ORDER = ("skull", "thoracic_spine", "lumbar_spine", "pelvis_right", "knee_right")
#: Least pixels of a region's largest piece for its side to be checked.
MIN_PIECE_PX = 100
SHOULDER_PARTS = ("clavicle", "scapula", "humerus")


def palette() -> np.ndarray:
    """RGB colour per label: background black, paired sides in neighbouring hues."""
    out = np.zeros((N_LABELS, 3), np.uint8)
    bases = sorted(
        {r.base for r in REGIONS}, key=lambda b: index_of(b if b in LABELS else f"{b}_right")
    )
    for k, base in enumerate(bases):
        hue = k / len(bases)
        for r in REGIONS:
            if r.base != base:
                continue
            value = 0.65 if r.side == "left" else 1.0
            rgb = colorsys.hsv_to_rgb(hue, 0.85, value)
            out[r.index] = [int(255 * c) for c in rgb]
    return out


def overlay(counts: np.ndarray, labels: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Counts windowed to grey, regions blended over them (RGB uint8)."""
    top = float(np.percentile(counts, 99.5)) or 1.0
    grey = np.clip(counts / top, 0, 1) ** 0.5 * 255
    rgb = np.repeat(grey[..., None], 3, axis=2)
    bone = labels > 0
    rgb[bone] = 0.45 * rgb[bone] + 0.55 * colours[labels[bone]]
    return rgb.astype(np.uint8)


def checks(maps: dict[str, np.ndarray]) -> dict[str, str]:
    """Plain checks of a scan's maps (see the module docstring)."""
    present = {LABELS[int(i)] for m in maps.values() for i in np.unique(m) if i}
    reasons = {v: unreadable_reason(m) for v, m in maps.items()}
    readable = ", ".join(f"{v} {'ok' if r is None else r}" for v, r in reasons.items())
    shoulders = all(
        any(f"{p}_{side}" in present for p in SHOULDER_PARTS) for side in ("left", "right")
    )
    knees = "knee_left" in present and "knee_right" in present
    ant = maps.get("ANT", next(iter(maps.values())))
    rows = []
    for name in ORDER:
        ys, _ = _main_piece(ant == index_of(name))
        rows.append(float(ys.mean()) if ys.size else None)
    known = [r for r in rows if r is not None]
    ordered = all(a < b for a, b in itertools.pairwise(known))
    wrong_side: list[str] = []
    for view, m in maps.items():
        _, spine = _main_piece(np.isin(m, [index_of("thoracic_spine"), index_of("lumbar_spine")]))
        if spine.size == 0:
            continue
        mid = float(spine.mean())
        for r in REGIONS:
            if r.side == "mid":
                continue
            _, cols = _main_piece(m == r.index)
            if cols.size < MIN_PIECE_PX:
                continue
            # The product's orientation: the patient's right is on the image left on
            # ANT and on the image right on POST (seen from behind).
            on_left_of_image = float(cols.mean()) < mid
            if on_left_of_image != ((r.side == "right") == (view == "ANT")):
                wrong_side.append(f"{view} {r.name}")
    return {
        "readable": readable,
        "skull": "yes" if "skull" in present else "no",
        "spine": "yes" if {"thoracic_spine", "lumbar_spine"} <= present else "no",
        "pelvis": "yes" if {"pelvis_left", "pelvis_right"} <= present else "no",
        "both shoulders": "yes" if shoulders else "no",
        "both knees": "yes" if knees else "no",
        "head-to-foot order": "yes" if ordered else "NO",
        "sides": "yes" if not wrong_side else "NO: " + ", ".join(wrong_side),
        "regions": str(len(present)),
    }


def _main_piece(where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the largest connected piece (flecks elsewhere ignored)."""
    rows, cols = np.nonzero(largest_piece(where))
    return rows, cols


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean Dice over the regions present in either map."""
    out = dice_from_counts(overlap_counts(pred, truth, N_LABELS))
    return float(np.mean(list(out.values()))) if out else 1.0


def main(argv: list[str] | None = None) -> int:
    """Label the scans, print the checks, write the overlays; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models")
    p.add_argument("--out", type=Path, default=Path("/tmp/skeleton-real"))
    p.add_argument("--real", type=Path, default=REAL)
    p.add_argument("--phantom", help="SEED:N phantom cases instead of the real scans")
    a = p.parse_args(argv)
    loaded = load_skeleton_network(a.model)
    colours = palette()
    a.out.mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray] | None]] = []
    if a.phantom:
        seed, n = (int(x) for x in a.phantom.split(":"))
        for i in range(n):
            case = generate_case(seed, i)
            items.append((f"s{seed}-{i}", dict(case.views), case_label_maps(seed, i)))
    else:
        for ant in sorted((a.real / "ant").glob("*.jpg"), key=lambda f: int(f.stem)):
            post = a.real / "post" / ant.name
            try:
                scan = read_scan(ant, posterior=post)
            except ValueError as exc:
                print(f"{ant.stem}: not read ({exc})", file=sys.stderr)
                continue
            items.append((ant.stem, dict(scan.views), None))
    header = None
    tiles = []
    for name, views, truth in items:
        maps = predict_labels(loaded, views)
        row = checks(maps)
        if truth is not None:
            row["Dice"] = f"{np.mean([dice(maps[v], truth[v]) for v in maps]):.3f}"
        if header is None:
            header = ["scan", *row]
            print("| " + " | ".join(header) + " |")
            print("|" + "---|" * len(header))
        print(f"| {name} | " + " | ".join(row.values()) + " |")
        pair = np.concatenate(
            [overlay(views[v], maps[v], colours) for v in VIEWS if v in views], axis=1
        )
        img = Image.fromarray(pair)
        ImageDraw.Draw(img).text((4, 4), name, fill=(255, 255, 0))
        img.save(a.out / f"{name}.png")
        tiles.append(np.asarray(img.resize((img.width // 2, img.height // 2))))
    if tiles:
        per_row = 9
        h, w = tiles[0].shape[:2]
        rows = -(-len(tiles) // per_row)
        sheet = np.zeros((rows * h, per_row * w, 3), np.uint8)
        for k, t in enumerate(tiles):
            r, c = divmod(k, per_row)
            sheet[r * h : r * h + t.shape[0], c * w : c * w + t.shape[1]] = t
        Image.fromarray(sheet).save(a.out / "montage.png")
        print(f"\noverlays and montage.png written to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
