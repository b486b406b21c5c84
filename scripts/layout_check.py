r"""Measure the layout finder on generated workstation exports, and draw what it finds.

For ``--cases`` phantom cases (``generate_case(--seed, i)``) every layout of
:mod:`core.phantom.layouts` is rendered (a third of them saved as JPEG at quality
60-95, as ``python -m core generate --layouts`` writes them), read back with
:func:`core.reading.readers.read_scan` and passed through the quality gate. It prints, per
layout and overall:

* ``read``: the share read as two whole-body views with the right names and every
  whole-body panel within 2 pixels of the truth;
* ``refused``: the share the reader refused (a clear refusal, not a misread);
* ``misread``: the share read with a wrong view name or a panel off by more than
  2 pixels (must be 0);
* ``gate``: the share of those read whose views the quality gate refused.

With ``--gallery PNG`` it also draws one picture per layout with the panels found
(green: whole-body views, with the name read; orange: spot views; blue: text set
aside or masked), for docs/layouts.md.

Run::

    PYTHONPATH=. .venv/bin/python scripts/layout_check.py --cases 100 --seed 61
    PYTHONPATH=. .venv/bin/python scripts/layout_check.py --cases 1 \
        --gallery docs/layout_gallery.png
"""

from __future__ import annotations

import argparse
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.imaging.display import detect_polarity
from core.imaging.quality import assess
from core.phantom.export import LAYOUT_JPEG_EVERY
from core.phantom.generate import generate_case
from core.phantom.layouts import LAYOUTS, ExportedLayout, render_layout, save_layout
from core.reading.layout import Layout, LayoutError, find_layout, to_heat
from core.reading.readers import read_scan
from core.scan import ScanReadError

TOLERANCE = 2


def _found(path: Path) -> Layout | None:
    pixels = np.asarray(Image.open(path).convert("L"))
    try:
        return find_layout(
            to_heat(pixels, detect_polarity(pixels).polarity == "hot-dark", 8),
            lossy=path.suffix == ".jpg",
        )
    except LayoutError:
        return None


def _outcome(path: Path, exported: ExportedLayout) -> tuple[str, bool | None]:
    """("read" | "refused" | "misread", gate passed or None)."""
    truth = {p.view: p.box for p in exported.panels if p.kind == "whole_body" and p.view}
    try:
        scan = read_scan(path)
    except ScanReadError:
        return "refused", None
    layout = _found(path)
    if layout is None or set(layout.views) != set(truth) or set(scan.views) != set(truth):
        return "misread", None
    for view, box in truth.items():
        got = layout.views[view].box
        if max(abs(a - b) for a, b in zip(got, box, strict=True)) > TOLERANCE:
            return "misread", None
    return "read", assess(scan).ok


def _draw(path: Path, out_height: int = 560) -> Image.Image:
    pixels = np.asarray(Image.open(path).convert("L"))
    layout = _found(path)
    im = Image.fromarray(pixels).convert("RGB")
    draw = ImageDraw.Draw(im)
    if layout is not None:
        for panel in layout.panels:
            r0, r1, c0, c1 = panel.box
            colour = {"whole_body": (0, 200, 0), "spot": (255, 140, 0), "text": (60, 120, 255)}
            draw.rectangle((c0, r0, c1 - 1, r1 - 1), outline=colour[panel.kind], width=4)
            for label in panel.labels:
                a0, a1, b0, b1 = label.box
                draw.rectangle((b0 - 2, a0 - 2, b1 + 1, a1 + 1), outline=(60, 120, 255), width=2)
        for view, panel in layout.views.items():
            _, r1, c0, _ = panel.box  # the name read, at the panel's foot
            draw.rectangle((c0 + 4, r1 - 34, c0 + 84, r1 - 4), fill=(0, 160, 0))
            draw.text((c0 + 10, r1 - 30), view, fill=(255, 255, 255), font_size=22)
    width = max(1, round(im.width * out_height / im.height))
    return im.resize((width, out_height), Image.Resampling.LANCZOS)


def _sheet(drawn: list[Image.Image], gap: int = 10) -> Image.Image:
    """Portrait pictures in one row, landscape ones (screens) in a row below."""
    rows = [[d for d in drawn if d.width <= d.height], [d for d in drawn if d.width > d.height]]
    rows = [r for r in rows if r]
    width = max(sum(d.width for d in r) + gap * (len(r) - 1) for r in rows)
    height = sum(max(d.height for d in r) for r in rows) + gap * (len(rows) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    y = 0
    for r in rows:
        x = 0
        for d in r:
            sheet.paste(d, (x, y))
            x += d.width + gap
        y += max(d.height for d in r) + gap
    return sheet


def main(argv: list[str] | None = None) -> int:
    """Print the measurement (module docstring); optionally write the gallery."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--seed", type=int, default=61)
    p.add_argument("--gallery", type=Path)
    args = p.parse_args(argv)
    counts: dict[str, Counter[str]] = {layout: Counter() for layout in LAYOUTS}
    drawn: list[Image.Image] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            case = generate_case(args.seed, i)
            for layout in LAYOUTS:
                seed = zlib.crc32(f"{case.case_id}/{layout}".encode())
                quality = None if seed % LAYOUT_JPEG_EVERY else 60 + (seed // 7) % 36
                exported = render_layout(case.views, layout, seed)
                suffix = ".png" if quality is None else ".jpg"
                path = save_layout(Path(tmp) / f"{i}-{layout}{suffix}", exported, quality)
                outcome, gate = _outcome(path, exported)
                counts[layout][outcome] += 1
                if gate is False:
                    counts[layout]["gate refused"] += 1
                if args.gallery is not None and i == 0:
                    drawn.append(_draw(path))
    total: Counter[str] = Counter()
    print(f"{'layout':15} {'n':>4} {'read':>7} {'refused':>8} {'misread':>8} {'gate':>6}")
    for layout, c in counts.items():
        total.update(c)
        n = c["read"] + c["refused"] + c["misread"]
        print(
            f"{layout:15} {n:4d} {c['read'] / n:7.1%} {c['refused'] / n:8.1%} "
            f"{c['misread'] / n:8.1%} {c['gate refused'] / max(c['read'], 1):6.1%}"
        )
    n = total["read"] + total["refused"] + total["misread"]
    print(
        f"{'all':15} {n:4d} {total['read'] / n:7.1%} {total['refused'] / n:8.1%} "
        f"{total['misread'] / n:8.1%} {total['gate refused'] / max(total['read'], 1):6.1%}"
    )
    if args.gallery is not None and drawn:
        # a 256-colour palette keeps the picture small in git
        _sheet(drawn).quantize(256, method=Image.Quantize.FASTOCTREE).save(
            args.gallery, optimize=True
        )
        print(f"gallery written to {args.gallery}")
    return 0 if total["misread"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
