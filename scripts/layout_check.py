r"""Measure the layout finder on generated workstation exports, and draw what it finds.

For ``--cases`` phantom cases (``generate_case(--seed, i)``) every layout of
:mod:`core.phantom.layouts` is rendered (a third of them saved as JPEG at quality
60-95, as ``python -m core generate --layouts`` writes them), read back with
:func:`core.reading.readers.read_scan` and passed through the quality gate. A
single-view layout (``single-markers``) is written as two files, ``..._ANT`` and
``..._POST``, each read alone. Unless ``--no-cuts``, the whole-body panels of every
two-view layout are also cut out (:func:`core.phantom.layouts.cut_panels`) and read as
an anterior/posterior pair of files, ``read_scan(ant, post)`` (rows ``cut:<layout>``).
It prints, per layout and overall:

* ``read``: the share read as two whole-body views with the right names and every
  whole-body panel within 2 pixels of the truth (its box, or the box less its
  ``pad``); a single-view file or a cut pair: read as its view(s) with the right
  content (:func:`_views_outcome`: the body read is more like the truth's view
  than like the other view's); in the newer layouts, a pair with the right names and
  content counts as read even when a panel's box is off (its edge may be invisible);
* ``refused``: the share the reader refused (a clear refusal, not a misread);
* ``misread``: the share read with a wrong view name, a panel off by more than
  2 pixels, or the wrong content;
* ``gate``: the share of those read whose views the quality gate refused.

With ``--gallery PNG`` it also draws one picture per layout with the panels found
(green: whole-body views, with the name read; orange: spot views; blue: text set
aside or masked), for docs/layouts.md.

Run::

    PYTHONPATH=. .venv/bin/python scripts/layout_check.py --cases 100 --seed 61
    PYTHONPATH=. .venv/bin/python scripts/layout_check.py --cases 1 \
        --gallery docs/layout_gallery.png
    PYTHONPATH=. .venv/bin/python scripts/layout_check.py --cases 20 \
        --layouts screen-4x3 single-markers   # some layouts only
"""

from __future__ import annotations

import argparse
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from core.imaging.display import detect_polarity
from core.imaging.quality import assess
from core.imaging.resize import resize_bilinear
from core.phantom.export import LAYOUT_JPEG_EVERY
from core.phantom.generate import PhantomCase, generate_case
from core.phantom.layouts import (
    CLASSIC_LAYOUTS,
    LAYOUTS,
    SINGLE_VIEW_LAYOUTS,
    ExportedLayout,
    PanelTruth,
    cut_panels,
    render_layout,
    save_layout,
)
from core.reading.layout import Layout, LayoutError, find_layout, pad_to_view, to_heat
from core.reading.readers import read_scan
from core.scan import Scan, ScanReadError

TOLERANCE = 2
#: Content check of a view read: the body (smoothed counts over 5 % of their 99.5th
#: percentile) cropped out of the view read and out of the truth's view, both resized
#: to CONTENT_SHAPE, must correlate at CONTENT_MIN_CORRELATION or more, and better than
#: with the other view's truth. Where the body sits in the view (a cut's margin, a tight
#: crop padded) does not matter; a wrong part of the picture, a spot view, a body cut
#: short or the views swapped does. (0.5, not higher: a marker cleared from an arm, or a
#: speck of a spot view's label left at a panel's edge, widens the crop of a view that
#: is otherwise right; the swap test tells the views apart.)
CONTENT_SHAPE = (256, 64)
CONTENT_MIN_CORRELATION = 0.5


def _found(path: Path) -> Layout | None:
    pixels = np.asarray(Image.open(path).convert("L"))
    try:
        return find_layout(
            to_heat(pixels, detect_polarity(pixels).polarity == "hot-dark", 8),
            lossy=path.suffix == ".jpg",
        )
    except LayoutError:
        return None


def _close(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return max(abs(a - b) for a, b in zip(got, want, strict=True)) <= TOLERANCE


def _outcome(path: Path, exported: ExportedLayout, case: PhantomCase) -> tuple[str, bool | None]:
    """("read" | "refused" | "misread", gate passed or None).

    A classic layout is read when its panels are found within 2 px and named right. The
    newer layouts may leave a panel's edge invisible (a background margin, no border):
    there a right name with the right content (:func:`_views_outcome`) counts as read
    too.
    """
    truth = {p.view: p for p in exported.panels if p.kind == "whole_body" and p.view}
    try:
        scan = read_scan(path)
    except ScanReadError:
        return "refused", None
    if set(scan.views) != set(truth):
        return "misread", None
    layout = _found(path)
    boxes = layout is not None and set(layout.views) == set(truth)
    if layout is not None and boxes:
        for view, panel in truth.items():
            got = layout.views[view].box
            boxes = boxes and (_close(got, panel.box) or _close(got, panel.image_box))
    if boxes:
        return "read", assess(scan).ok
    if exported.layout in CLASSIC_LAYOUTS:
        return "misread", None
    return _views_outcome(scan, case, truth)


def _expected_view(counts: np.ndarray, panel: PanelTruth) -> np.ndarray:
    """The canonical view a reader should give for a panel: its window, padded to 1 : 4."""
    assert panel.window is not None
    w0, w1, c0, c1 = panel.window
    r0, r1, b0, b1 = panel.image_box
    shown = resize_bilinear(counts[w0:w1, c0:c1], (r1 - r0, b1 - b0))
    return resize_bilinear(pad_to_view(shown)[0])


def _body_crop(view: np.ndarray) -> np.ndarray | None:
    a = ndimage.gaussian_filter(np.asarray(view, np.float64), 2.0)
    level = float(np.percentile(a, 99.5))
    if level <= 0:
        return None
    body = a > 0.05 * level
    # The body's parts (the largest and those of some size), not remains of a border
    # line or a label at the panel's edge, which would widen the crop.
    parts, n = ndimage.label(body)
    if n > 1:
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        body = sizes[parts] >= 0.05 * sizes.max()
    rows, cols = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
    crop = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return resize_bilinear(crop, CONTENT_SHAPE).astype(np.float64)


def _content(got: np.ndarray, want: np.ndarray) -> float:
    """How alike a view read and the truth's view are: their body crops' correlation."""
    a, b = _body_crop(got), _body_crop(want)
    if a is None or b is None or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _views_outcome(
    scan: Scan, case: PhantomCase, panels: dict[str, PanelTruth]
) -> tuple[str, bool | None]:
    """Whether a scan holds exactly these views, with the right content.

    Each view read must match its truth (body crops correlating at
    :data:`CONTENT_MIN_CORRELATION` or more) better than the other view's truth.
    """
    if set(scan.views) != set(panels):
        return "misread", None
    for view, panel in panels.items():
        other = "POST" if view == "ANT" else "ANT"
        own = _content(scan.views[view], _expected_view(case.views[view], panel))
        swapped = _content(scan.views[view], _expected_view(case.views[other], panel))
        if own < CONTENT_MIN_CORRELATION or own <= swapped:
            return "misread", None
    return "read", assess(scan).ok


def _single_outcome(
    path: Path, exported: ExportedLayout, case: PhantomCase
) -> tuple[str, bool | None]:
    """A single-view file: read alone, as one view with the right name and content."""
    try:
        scan = read_scan(path)
    except ScanReadError:
        return "refused", None
    (panel,) = [p for p in exported.panels if p.kind == "whole_body"]
    assert panel.view is not None
    return _views_outcome(scan, case, {panel.view: panel})


def _cut_outcome(
    ant: Path, post: Path, cuts: dict[str, ExportedLayout], case: PhantomCase
) -> tuple[str, bool | None]:
    """Panels cut out of a picture, read as an anterior/posterior pair of files."""
    try:
        scan = read_scan(ant, post)
    except ScanReadError:
        return "refused", None
    return _views_outcome(scan, case, {v: c.panels[0] for v, c in cuts.items()})


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


def _row(name: str, c: Counter[str]) -> str:
    n = c["read"] + c["refused"] + c["misread"]
    if n == 0:
        return f"{name:24} {0:4d}"
    return (
        f"{name:24} {n:4d} {c['read'] / n:7.1%} {c['refused'] / n:8.1%} "
        f"{c['misread'] / n:8.1%} {c['gate refused'] / max(c['read'], 1):6.1%}"
    )


def _count(counter: Counter[str], outcome: tuple[str, bool | None]) -> None:
    counter[outcome[0]] += 1
    if outcome[1] is False:
        counter["gate refused"] += 1


def main(argv: list[str] | None = None) -> int:
    """Print the measurement (module docstring); optionally write the gallery."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", type=int, default=100)
    p.add_argument("--seed", type=int, default=61)
    p.add_argument("--gallery", type=Path)
    p.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    p.add_argument("--no-cuts", action="store_true", help="do not read cut-out panels")
    args = p.parse_args(argv)
    chosen: list[str] = list(args.layouts)
    counts: dict[str, Counter[str]] = {layout: Counter() for layout in chosen}
    cut_rows = [f"cut:{x}" for x in chosen if x not in SINGLE_VIEW_LAYOUTS]
    counts.update({row: Counter() for row in ([] if args.no_cuts else cut_rows)})
    drawn: list[Image.Image] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            case = generate_case(args.seed, i)
            for layout in chosen:
                seed = zlib.crc32(f"{case.case_id}/{layout}".encode())
                quality = None if seed % LAYOUT_JPEG_EVERY else 60 + (seed // 7) % 36
                suffix = ".png" if quality is None else ".jpg"
                if layout in SINGLE_VIEW_LAYOUTS:
                    for view in ("ANT", "POST"):
                        exported = render_layout(case.views, layout, seed, view=view)
                        name = f"{i}-{layout}_{view}{suffix}"
                        path = save_layout(Path(tmp) / name, exported, quality)
                        _count(counts[layout], _single_outcome(path, exported, case))
                        if args.gallery is not None and i == 0 and view == "ANT":
                            drawn.append(_draw(path))
                    continue
                exported = render_layout(case.views, layout, seed)
                path = save_layout(Path(tmp) / f"{i}-{layout}{suffix}", exported, quality)
                _count(counts[layout], _outcome(path, exported, case))
                if args.gallery is not None and i == 0:
                    drawn.append(_draw(path))
                if args.no_cuts:
                    continue
                cuts = cut_panels(exported, zlib.crc32(f"{case.case_id}/{layout}/cut".encode()))
                files = {
                    v: save_layout(Path(tmp) / f"{i}-cut-{layout}_{v}{suffix}", c, quality)
                    for v, c in cuts.items()
                }
                _count(
                    counts[f"cut:{layout}"], _cut_outcome(files["ANT"], files["POST"], cuts, case)
                )
    total: Counter[str] = Counter()
    print(f"{'layout':24} {'n':>4} {'read':>7} {'refused':>8} {'misread':>8} {'gate':>6}")
    for name, c in counts.items():
        total.update(c)
        print(_row(name, c))
    print(_row("all", total))
    if args.gallery is not None and drawn:
        # a 256-colour palette keeps the picture small in git
        _sheet(drawn).quantize(256, method=Image.Quantize.FASTOCTREE).save(
            args.gallery, optimize=True
        )
        print(f"gallery written to {args.gallery}")
    return 0 if total["misread"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
