"""Draw a gallery of generated scans (generated images only) for the docs.

Run::

    python -m core.phantom.gallery docs/phantom_gallery.png [--seed 0]

Six patients in two rows; for each, the anterior view, the posterior view and the
anterior view with the true masks (red metastasis, yellow bladder). Views are
windowed at their 99.5th percentile, black background, hot = bright.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from core.config import LABEL_BLADDER, LABEL_METASTASIS
from core.phantom.generate import generate_case

#: (caption, generate_case keyword arguments) of the six panels.
PANELS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("no metastasis, lung", {"metastasis": False, "primary": "lung", "arm_position": "sides"}),
    ("multiple metastases, breast", {"pattern": "multiple", "primary": "breast"}),
    ("superscan, prostate", {"pattern": "superscan", "primary": "prostate"}),
    ("age 14, growth plates", {"age": 14, "primary": "bone", "metastasis": False}),
    ("catheter and urine bag", {"benign": ("catheter_bag",), "metastasis": False}),
    ("injection site, rib fractures", {"benign": ("injection_site", "rib_fracture")}),
)


def _window(a: np.ndarray) -> np.ndarray:
    top = float(np.percentile(a, 99.5)) or 1.0
    return (np.clip(a / top, 0.0, 1.0) * 255).astype(np.uint8)


def _overlay(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    for label, colour in ((LABEL_METASTASIS, (255, 40, 40)), (LABEL_BLADDER, (255, 220, 0))):
        m = mask == label
        edge = m & ~ndimage.binary_erosion(m)
        rgb[edge] = colour
    return rgb


def gallery(seed: int = 0, rows: int = 880, scale: float = 0.75) -> Image.Image:
    """Return the gallery image (RGB).

    Args:
        seed: Generation seed; panel k is case ``k`` of it with the panel's options.
        rows: Rows of each view kept from the top (the feet end near row 800).
        scale: Resize factor of the whole picture.

    Returns:
        The picture.
    """
    blocks = []
    for k, (caption, kwargs) in enumerate(PANELS):
        c = generate_case(seed, k, **kwargs)
        ant, post = _window(c.views["ANT"]), _window(c.views["POST"])
        grey = [np.repeat(x[:rows, :, None], 3, axis=2) for x in (ant, post)]
        over = _overlay(ant, c.masks["ANT"])[:rows]
        gap = np.full((rows, 4, 3), 70, np.uint8)
        block = np.concatenate([grey[0], gap, grey[1], gap, over], axis=1)
        head = Image.new("RGB", (block.shape[1], 28), (255, 255, 255))
        ImageDraw.Draw(head).text(
            (6, 8), f"{caption}  ({c.patient.sex}, {c.patient.age} y)  ANT | POST | masks", fill=0
        )
        blocks.append(np.concatenate([np.asarray(head), block], axis=0))
    pad = np.full((blocks[0].shape[0], 16, 3), 255, np.uint8)
    row1 = np.concatenate([blocks[0], pad, blocks[1], pad, blocks[2]], axis=1)
    row2 = np.concatenate([blocks[3], pad, blocks[4], pad, blocks[5]], axis=1)
    sep = np.full((16, row1.shape[1], 3), 255, np.uint8)
    im = Image.fromarray(np.concatenate([row1, sep, row2], axis=0))
    if scale != 1.0:
        im = im.resize(
            (round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS
        )
    return im


def main(argv: Sequence[str] | None = None) -> int:
    """Save the gallery PNG.

    Args:
        argv: ``OUT [--seed S]``; ``sys.argv[1:]`` when None.

    Returns:
        0.
    """
    ap = argparse.ArgumentParser(prog="python -m core.phantom.gallery", description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    gallery(args.seed).save(args.out, optimize=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
