"""Draw skeleton label maps over phantom views (or a network's maps over any views).

Writes one PNG per case: ANT view, ANT with labels, POST with labels, POST view, so
that a reader checks alignment and sides at a glance. Colours: patient's LEFT regions
warm (red/orange/yellow), RIGHT regions cool (blue/green/cyan), midline grey-violet;
a caption under each panel names the view and, on the labelled panels, which side
of the image holds the patient's left.

Run::

    .venv/bin/python scripts/skeleton_overlay.py --out /tmp/skeleton --seed 5 --cases 4
    .venv/bin/python scripts/skeleton_overlay.py --out /tmp/skeleton --model DIR --cases 4
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.anatomy.network import load_skeleton_network, predict_labels
from core.anatomy.regions import LABELS, REGIONS
from core.config import VIEWS
from core.phantom.generate import generate_case
from core.phantom.skeleton_truth import case_label_maps

_WARM = [(230, 25, 25), (255, 140, 0), (240, 220, 0), (200, 60, 120), (255, 90, 160)]
_COOL = [(30, 90, 255), (0, 190, 80), (0, 200, 220), (100, 60, 220), (60, 160, 255)]
_MID = [(170, 170, 200), (200, 120, 255), (120, 200, 200), (230, 200, 160), (150, 220, 120)]


def palette() -> np.ndarray:
    """Return (N_LABELS, 3) uint8 colours: left warm, right cool, midline pale."""
    out = np.zeros((len(LABELS), 3), dtype=np.uint8)
    counters = {"left": 0, "right": 0, "mid": 0}
    for r in REGIONS:
        colours = {"left": _WARM, "right": _COOL, "mid": _MID}[r.side]
        out[r.index] = colours[counters[r.side] % len(colours)]
        counters[r.side] += 1
    return out


def grey(counts: np.ndarray) -> np.ndarray:
    """Return a display grey image (uint8, hot = bright) of one view's counts."""
    ref = max(float(np.percentile(counts, 99.5)), 1e-6)
    return (np.sqrt(np.clip(counts / ref, 0, 1)) * 255).astype(np.uint8)


def overlay(counts: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Return an RGB uint8 image: the view in grey with labelled pixels coloured."""
    g = grey(counts).astype(np.float32)[..., None].repeat(3, axis=2)
    col = palette()[labels].astype(np.float32)
    on = (labels > 0)[..., None]
    return np.where(on, (1 - alpha) * g + alpha * col, g).astype(np.uint8)


def panel_strip(views: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray]) -> Image.Image:
    """Return the 4-panel picture (ANT, ANT labels, POST labels, POST) with captions."""
    panels = [
        (np.repeat(grey(views["ANT"])[..., None], 3, 2), "ANT"),
        (overlay(views["ANT"], maps["ANT"]), "ANT: pt L = viewer R"),
        (overlay(views["POST"], maps["POST"]), "POST: pt L = viewer L"),
        (np.repeat(grey(views["POST"])[..., None], 3, 2), "POST"),
    ]
    h, w = views["ANT"].shape
    img = Image.new("RGB", (4 * w + 30, h + 20), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    for k, (a, caption) in enumerate(panels):
        img.paste(Image.fromarray(a), (k * (w + 10), 0))
        draw.text((k * (w + 10) + 4, h + 4), caption, fill=(255, 255, 255))
    return img


def main(argv: Sequence[str] | None = None) -> int:
    """Write overlays of truth (default) or of a trained network's maps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/skeleton"))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="network folder: its maps")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = None if args.model is None else load_skeleton_network(args.model)
    for i in range(args.first, args.first + args.cases):
        case = generate_case(args.seed, i)
        if model is None:
            maps = case_label_maps(args.seed, i)
            tag = "overlay"
        else:
            maps = predict_labels(model, {v: case.views[v] for v in VIEWS})
            tag = "predicted"
        path = args.out / f"{tag}_s{args.seed}_{i:03d}_{case.truth['body']['arm_position']}.png"
        panel_strip(case.views, maps).save(path)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
