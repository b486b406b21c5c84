"""Turn a file, or an anterior/posterior pair of files, into a :class:`~core.scan.Scan`.

:func:`read_scan` is the one public entry. It decides what a file is from its first
bytes, not its name: ``DICM`` at offset 128 is DICOM (read by :mod:`core.reading.dicom`), the
PNG and JPEG signatures are exported images; anything else is refused.

Exported images (PNG or JPEG, 8- or 16-bit, grey or colour) come in either polarity;
:func:`core.imaging.display.detect_polarity` decides which from the background, and the
pixels become counts (hot = high): a black-background export (``"hot-bright"``) is
taken as it is, a white-background one (``"hot-dark"``, the paper's display) as
``max_value - pixel`` with ``max_value`` 255 for 8-bit images and the smallest
``2**k - 1`` at or above the image's maximum for 16-bit ones. An 8-bit hot-dark export
*is* the paper's grey level 1, and ``meta.display_is_grey_level_1`` says so.

What one picture holds is decided by the layout finder (:mod:`core.reading.layout`, see
docs/layouts.md), with the picture's shape (width / height) as a guard:

* **two whole-body views** (side by side, bordered, cropped tight, or on a
  workstation screen beside spot views and a header): each panel is cropped, its
  burned-in text and borders set to the background, padded to 1 : 4 and read as the
  view its label, side marker or (with a note) left-to-right position names.
* **one whole-body view** in a picture at most :data:`SINGLE_VIEW_MAX_ASPECT` wide for
  its height: one view, with burned-in text and borders set to the background. Its
  name (the file name, then its folder) says which when it holds ``ant``/``anterior``
  or ``post``/``posterior`` as a word (``scan_ANT.png``, ``post/7.jpg``); then a
  burned-in label; otherwise it is taken as anterior, with a note. In a wider picture
  only the view's panel is read. A picture the finder cannot read is still read as one
  view when it is narrow (at most :data:`SINGLE_VIEW_SURE_ASPECT`; the quality gate
  then judges it), never when it is wide enough to hold two.
* **four whole-body panels** of equal width, between :data:`COMPOSITE_MIN_ASPECT` and
  :data:`COMPOSITE_MAX_ASPECT` (about square): the paper's composite export, left to
  right ANT grey level 1, ANT grey level 2, POST grey level 1, POST grey level 2
  (1024 x 1024 in all), read so only when panels 2 and 4 are the grey level 2 of
  panels 1 and 3 (compared where the body shows; a deeper picture, which cannot be
  checked, only when the layout finder saw four equal whole-body panels). Panels 1
  and 3 are the views. A square picture whose panels are not grey levels of each
  other (a workstation screen) is never read by this rule.
* anything else is refused, with what the finder found and why it is unsure.

Every view is resized to the canonical 1024 x 256 with
:func:`core.imaging.resize.resize_bilinear` (values are interpolated, not re-scaled to
keep total counts). Files are refused with a :class:`~core.scan.ScanReadError` whose
message names the file and says why: not an image, empty, damaged or truncated, not
nuclear medicine, a side under :data:`core.reading.limits.MIN_SIDE` pixels, more than
:data:`core.reading.limits.MAX_PIXELS` pixels (checked from the header, before any pixel
is decoded), or blank.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from core.config import COLS, ROWS, VIEWS
from core.imaging.display import detect_polarity, grey_level_2
from core.imaging.resize import resize_bilinear
from core.reading.dicom import read_dicom_views
from core.reading.layout import (
    Layout,
    LayoutError,
    find_layout,
    panel_view,
    to_heat,
)
from core.reading.limits import MAX_PIXELS, MIN_SIDE, check_dimensions, refusal
from core.scan import Polarity, Scan, ScanMeta

#: width / height at or under which an image is one view (a view is 256 / 1024 = 0.25).
SINGLE_VIEW_MAX_ASPECT = 0.75
#: width / height above which a picture is read as one view only when the layout finder
#: found exactly one whole-body view in it (two side by side are about 0.5).
SINGLE_VIEW_SURE_ASPECT = 0.42
#: width / height range of a four-panel composite (four views side by side: 1.0).
COMPOSITE_MIN_ASPECT, COMPOSITE_MAX_ASPECT = 3.5 / 4, 1.5
#: Panels of a composite export, left to right: (view, grey level).
COMPOSITE_PANELS: tuple[tuple[str, int], ...] = (("ANT", 1), ("ANT", 2), ("POST", 1), ("POST", 2))
#: Largest mean absolute difference, in grey levels, between a composite's grey-level-2
#: panel and grey level 2 recomputed from its grey-level-1 panel (JPEG noise included).
COMPOSITE_TOLERANCE = 8.0
#: Smallest share of a composite's panel that shows the body (not the background).
COMPOSITE_MIN_SHOWN = 0.02

FileKind = Literal["dicom", "png", "jpeg"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_VIEW_WORDS = {"ant": "ANT", "anterior": "ANT", "post": "POST", "posterior": "POST"}


def sniff(path: str | Path) -> FileKind:
    """Say what a file is from its first bytes.

    Args:
        path: The file.

    Returns:
        ``"dicom"`` (``DICM`` at byte 128), ``"png"`` or ``"jpeg"`` (their signatures).

    Raises:
        ScanReadError: If the file is missing, a folder, empty, or none of these.
    """
    p = Path(path)
    if not p.exists():
        raise refusal(p, "the file does not exist.")
    if not p.is_file():
        raise refusal(p, "this is a folder, not a file.")
    if p.stat().st_size == 0:
        raise refusal(p, "the file is empty (0 bytes), so there is no scan in it.")
    with p.open("rb") as f:
        head = f.read(132)
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(_JPEG_SIGNATURE):
        return "jpeg"
    raise refusal(
        p,
        "the file is not an image or DICOM file (it is not DICOM, PNG or JPEG), "
        "so it cannot be read as a bone scan.",
    )


def view_from_name(path: str | Path) -> str | None:
    """Return the view a file's name gives, or None.

    The file name is looked at first, then its folder's name; a word ``ant`` or
    ``anterior`` (case-insensitive, delimited by anything but a letter, e.g.
    ``scan_ANT.png``, ``ant2.jpg``, ``ant/7.jpg``) means ANT, ``post``/``posterior``
    POST. A name holding both, or neither, says nothing.

    Args:
        path: The file.

    Returns:
        ``"ANT"``, ``"POST"`` or None.
    """
    p = Path(path)
    for part in (p.stem, p.parent.name):
        found = {_VIEW_WORDS[w] for w in re.findall(r"[a-z]+", part.lower()) if w in _VIEW_WORDS}
        if len(found) == 1:
            return found.pop()
    return None


@dataclass(frozen=True)
class _Decoded:
    pixels: np.ndarray  # 2-D, uint8 / uint16 / int32, native byte order
    bit_depth: int
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _View:
    counts: np.ndarray  # float32 (1024, 256)
    polarity: Polarity
    is_grey_level_1: bool
    notes: tuple[str, ...]


def _decode_image(path: Path) -> _Decoded:
    """Decode a PNG/JPEG into a 2-D integer array, checking its size from the header first."""
    notes: list[str] = []
    with warnings.catch_warnings():
        # PIL warns above its own limit; ours is lower and checked just below
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as exc:
            declared = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(declared.group(1)) / 1e6:.0f} million pixels" if declared else "its size"
            raise refusal(
                path,
                f"the image is too large to read safely ({size}; the limit is "
                f"{MAX_PIXELS // 1_000_000} million).",
            ) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise refusal(path, f"the image is damaged and cannot be opened ({exc}).") from None
    with im:
        cols, rows = im.size
        check_dimensions(path, rows, cols)
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise refusal(
                path,
                f"the image is damaged or incomplete (truncated) and cannot be decoded ({exc}).",
            ) from None
        mode = im.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            pixels = np.asarray(im).astype(np.uint16)
            bit_depth = 16
        elif mode == "I":
            pixels = np.asarray(im).astype(np.int32)
            if pixels.min() < 0:
                raise refusal(path, "the image holds negative pixel values; it is not a scan.")
            bit_depth = 16 if pixels.max() <= 0xFFFF else 32
        elif mode == "L":
            pixels = np.asarray(im).astype(np.uint8)
            bit_depth = 8
        elif mode in ("1", "P", "PA", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
            if "A" in im.getbands():
                alpha = np.asarray(im.getchannel("A"))
                if alpha.min() < 255:
                    notes.append("the image's transparency (alpha channel) was ignored")
            if mode not in ("1", "L", "LA", "P", "PA"):
                notes.append("colour image converted to grey (luminance)")
            pixels = np.asarray(im.convert("L")).astype(np.uint8)
            bit_depth = 8
        else:
            raise refusal(path, f"the image's pixel format ({mode}) is not one a scan export uses.")
    return _Decoded(pixels, bit_depth, tuple(notes))


def _to_counts(path: Path, pixels: np.ndarray, bit_depth: int) -> _View:
    """Turn one view's stored pixels into canonical counts (hot = high), noting polarity."""
    lo, hi = int(pixels.min()), int(pixels.max())
    if lo == hi:
        raise refusal(
            path, f"the image is blank: every pixel has the value {lo}, so it holds no scan."
        )
    guess = detect_polarity(pixels)
    if guess.polarity == "hot-bright":
        counts = pixels.astype(np.float32)
        how = "black background, hot = bright; pixel values taken as counts"
    else:
        top = 255 if bit_depth == 8 else (1 << max(8, hi.bit_length())) - 1
        counts = (top - pixels.astype(np.float32)).astype(np.float32)
        how = f"white background, hot = dark (the paper's display); counts = {top} - pixel"
    note = f"polarity detected: {guess.polarity} ({how}; background {guess.background:g})"
    if not guess.confident:
        note += "; uncertain, because the border and the most common value disagree"
    notes = [note]
    if counts.shape != (ROWS, COLS):
        notes.append(
            f"resized from {counts.shape[1]} x {counts.shape[0]} to {COLS} x {ROWS} "
            "(width x height, bilinear)"
        )
        counts = resize_bilinear(counts)
    return _View(
        counts, guess.polarity, guess.polarity == "hot-dark" and bit_depth == 8, tuple(notes)
    )


def _layout(path: Path, pixels: np.ndarray) -> Literal["single", "composite"]:
    rows, cols = pixels.shape
    aspect = cols / rows
    if aspect <= SINGLE_VIEW_MAX_ASPECT:
        return "single"
    if COMPOSITE_MIN_ASPECT <= aspect <= COMPOSITE_MAX_ASPECT:
        return "composite"
    raise refusal(
        path,
        f"the image is {cols} x {rows} pixels (width x height), which is neither one "
        "whole-body view (taller than wide, about 1 : 4) nor four views side by side "
        "(about square).",
    )


def _composite_panels(pixels: np.ndarray) -> list[np.ndarray]:
    """The four equal-width panels of a picture, left to right."""
    cols = pixels.shape[1]
    edges = [round(i * cols / 4) for i in range(5)]
    width = min(edges[i + 1] - edges[i] for i in range(4))
    return [pixels[:, edges[i] : edges[i] + width] for i in range(4)]


def _composite_mismatch(decoded: _Decoded, layout: Layout | None) -> str | None:
    """Say why a picture is not the paper's four-panel composite, or None when it is.

    An 8-bit picture is one when panel 2 is grey level 2 of panel 1 and panel 4 of
    panel 3 (within :data:`COMPOSITE_TOLERANCE`, in either polarity). A deeper picture
    cannot be checked so; it is one only when the layout finder saw four whole-body
    panels of equal width.
    """
    pixels = decoded.pixels
    if int(pixels.min()) == int(pixels.max()):
        return None  # blank: refused as such when its panels are read
    if decoded.bit_depth != 8:
        if layout is not None and layout.kind == "composite":
            return None
        return "its panels cannot be checked against each other, and the finder saw no four"
    panels = _composite_panels(pixels)
    if panels[0].shape[1] < 2:
        return "it is too narrow for four panels"
    hot_bright = detect_polarity(pixels).polarity == "hot-bright"
    for first in (0, 2):
        g1, g2 = panels[first], panels[first + 1]
        if hot_bright:
            g1, g2 = 255 - g1, 255 - g2
        want = grey_level_2(g1).astype(np.int16)
        # Compared where either panel shows something: a screen's background, alike in
        # any two of its columns, would otherwise make any picture pass.
        shown = (want < 255 - COMPOSITE_TOLERANCE) | (g2 < 255 - COMPOSITE_TOLERANCE)
        if shown.mean() < COMPOSITE_MIN_SHOWN:
            return f"panels {first + 1} and {first + 2} show almost nothing"
        diff = float(np.abs(want - g2.astype(np.int16))[shown].mean())
        if diff > COMPOSITE_TOLERANCE:
            return (
                f"panel {first + 2} is not grey level 2 of panel {first + 1}: mean "
                f"difference {diff:.1f} grey levels, at most {COMPOSITE_TOLERANCE:g} in one"
            )
    return None


def _split_composite(path: Path, decoded: _Decoded) -> tuple[_View, _View, list[str]]:
    """Return the ANT and POST views of a four-panel composite and notes on its panels."""
    panels = _composite_panels(decoded.pixels)
    rows, width = panels[0].shape
    if width < MIN_SIDE:
        raise refusal(
            path,
            f"the image looks like four views side by side, but each panel is only {width} "
            f"pixels wide; a whole-body view needs at least {MIN_SIDE}.",
        )
    notes = [
        f"composite of four {width} x {rows} panels, read left to right as ANT grey level 1, "
        "ANT grey level 2, POST grey level 1, POST grey level 2; panels 1 and 3 used"
    ]
    # (Only a picture whose panels 2 and 4 are grey level 2 of panels 1 and 3 comes
    # here, see _composite_mismatch; a deeper one, which cannot be so checked, only
    # when the layout finder saw four equal whole-body panels.)
    if decoded.bit_depth == 8:
        notes.append("panels 2 and 4 are grey level 2 of panels 1 and 3, as documented")
    else:
        notes.append("grey level 2 panels not checked (not an 8-bit export)")
    ant = _to_counts(path, panels[0], decoded.bit_depth)
    post = _to_counts(path, panels[2], decoded.bit_depth)
    return ant, post, notes


def _find_layout(
    path: Path, decoded: _Decoded, lossy: bool
) -> tuple[Layout | None, LayoutError | None, bool]:
    """Run the layout finder on a picture.

    Returns:
        (layout or None, the finder's refusal or None, whether the picture is hot-dark).
    """
    pixels = decoded.pixels
    if int(pixels.min()) == int(pixels.max()):
        return None, None, False  # blank: refused as such by _to_counts
    hot_dark = detect_polarity(pixels).polarity == "hot-dark"
    try:
        layout = find_layout(to_heat(pixels, hot_dark, decoded.bit_depth), lossy=lossy)
    except LayoutError as exc:
        return None, exc, hot_dark
    return layout, None, hot_dark


def _masked_single(
    decoded: _Decoded, layout: Layout, hot_dark: bool
) -> tuple[_Decoded, str | None]:
    """Set a single view's burned-in text and borders to its background value.

    Returns:
        (the picture with them cleared, a note saying so, or None when there were none).
    """
    clear = layout.chrome | layout.text
    if not clear.any():
        return decoded, None
    pixels = decoded.pixels.copy()
    if hot_dark:
        hi = int(pixels.max())
        pixels[clear] = 255 if decoded.bit_depth == 8 else (1 << max(8, hi.bit_length())) - 1
    else:
        pixels[clear] = 0
    labels = len(layout.whole_body[0].labels)
    note = f"burned-in text ({labels} label(s)) and panel borders set to the background"
    return _Decoded(pixels, decoded.bit_depth, decoded.notes), note


def _layout_views(
    path: Path, decoded: _Decoded, layout: Layout, hot_dark: bool
) -> tuple[dict[str, _View], list[str]]:
    """Crop the named whole-body panels of a picture into canonical views."""
    heat = to_heat(decoded.pixels, hot_dark, decoded.bit_depth)
    polarity: Polarity = "hot-dark" if hot_dark else "hot-bright"
    rows, cols = decoded.pixels.shape
    notes = [
        f"picture of {cols} x {rows} pixels read by the layout finder: "
        + "; ".join(p.describe() for p in layout.panels)
    ]
    notes += list(layout.notes)
    views: dict[str, _View] = {}
    for view, panel in layout.views.items():
        counts = resize_bilinear(panel_view(heat, layout, panel))
        r0, r1, c0, c1 = panel.box
        how = (
            f"{view}: panel at columns {c0}-{c1 - 1}, rows {r0}-{r1 - 1}, padded to 1 : 4 "
            "and resized"
        )
        if panel.labels:
            how += f"; {len(panel.labels)} burned-in label(s) set to the background"
        views[view] = _View(counts, polarity, hot_dark and decoded.bit_depth == 8, (how,))
    notes.append(f"polarity detected: {polarity}")
    return views, notes


def _read_image_file(path: Path, kind: FileKind) -> Scan:
    decoded = _decode_image(path)
    notes = list(decoded.notes)
    rows, cols = decoded.pixels.shape
    aspect = cols / rows
    layout, why_not, hot_dark = _find_layout(path, decoded, lossy=kind == "jpeg")
    composite_range = COMPOSITE_MIN_ASPECT <= aspect <= COMPOSITE_MAX_ASPECT
    differs = _composite_mismatch(decoded, layout) if composite_range else None
    if composite_range and differs is None:
        ant, post, panel_notes = _split_composite(path, decoded)
        notes += [f"ANT: {n}" for n in ant.notes] + [f"POST: {n}" for n in post.notes]
        notes += panel_notes
        return _image_scan(
            {"ANT": ant, "POST": post}, f"composite-{kind}", (path,), decoded.bit_depth, notes
        )
    if layout is not None and layout.kind == "pair":
        views, layout_notes = _layout_views(path, decoded, layout, hot_dark)
        notes += layout_notes
        return _image_scan(views, f"layout-{kind}", (path,), decoded.bit_depth, notes)
    if layout is not None and layout.kind == "single" and aspect > SINGLE_VIEW_SURE_ASPECT:
        # one whole-body view among spot views or text: read its panel only
        chosen = next(iter(layout.views), None) or view_from_name(path) or "ANT"
        panel = layout.whole_body[0]
        views, layout_notes = _layout_views(
            path, decoded, replace(layout, views={chosen: panel}), hot_dark
        )
        notes += layout_notes
        if not layout.views:
            notes.append(f"one whole-body view found and no label; taken as {chosen}")
        return _image_scan(views, f"layout-{kind}", (path,), decoded.bit_depth, notes)
    if aspect > SINGLE_VIEW_MAX_ASPECT:
        reason = (
            "it is neither one whole-body view (taller than wide, about 1 : 4), nor two "
            "side by side, nor four views side by side (about square)"
        )
        if differs is not None:
            # Never guessed: a square picture is the four-panel export only when its
            # panels are grey levels of each other.
            reason = (
                "the layout finder found no two whole-body views in it, and it is not the "
                f"paper's four-panel composite ({differs})"
            )
        if why_not is not None:
            reason += f"; the layout finder says: {why_not}"
        raise refusal(path, f"the image is {cols} x {rows} pixels (width x height); {reason}")
    if why_not is not None and (why_not.bodies > 1 or aspect > SINGLE_VIEW_SURE_ASPECT):
        # Two bodies that cannot be told apart are never read as one view; nor is a
        # picture too wide to be one view (a pair) whose layout the finder could not read.
        raise refusal(path, str(why_not))
    view = view_from_name(path)
    labelled = next(iter(layout.views), None) if layout is not None else None
    if view is not None and labelled is not None and labelled != view:
        # the file name is the sender's own statement; a marker read from pixels is not
        notes.append(
            f"view {view} taken from the file name; the burned-in text seems to say "
            f"{labelled}: check"
        )
    elif view is not None:
        notes.append(f"view {view} taken from the file name")
    elif labelled is not None:
        view = labelled
        notes.append(f"view {labelled} read from the burned-in label")
    else:
        view = "ANT"
        notes.append("the file name does not say which view this is; taken as anterior (ANT)")
    if layout is not None:
        decoded, note = _masked_single(decoded, layout, hot_dark)
        if note:
            notes.append(note)
    converted = _to_counts(path, decoded.pixels, decoded.bit_depth)
    notes += list(converted.notes)
    assert view is not None
    return _image_scan({view: converted}, kind, (path,), decoded.bit_depth, notes)


def _image_scan(
    views: dict[str, _View],
    source_format: str,
    paths: tuple[Path, ...],
    bit_depth: int,
    notes: list[str],
) -> Scan:
    polarities = {v.polarity for v in views.values()}
    first = views[next(v for v in VIEWS if v in views)]
    if len(polarities) > 1:
        notes.append("the views have different polarities; each was converted on its own")
    meta = ScanMeta(
        source_format=source_format,
        source_files=tuple(str(p) for p in paths),
        polarity=first.polarity,
        bit_depth=bit_depth,
        display_is_grey_level_1=all(v.is_grey_level_1 for v in views.values()),
        notes=tuple(notes),
    )
    return Scan(views={k: views[k].counts for k in VIEWS if k in views}, meta=meta)


def _read_image_pair(ant: Path, post: Path, kind_ant: FileKind, kind_post: FileKind) -> Scan:
    notes: list[str] = []
    views: dict[str, _View] = {}
    bit_depth = 8
    for path, view in ((ant, "ANT"), (post, "POST")):
        decoded = _decode_image(path)
        if _layout(path, decoded.pixels) == "composite":
            raise refusal(
                path,
                "this image holds four views side by side (both anterior and posterior); "
                "give it on its own, not as one view of a pair.",
            )
        kind = kind_ant if view == "ANT" else kind_post
        layout, _, hot_dark = _find_layout(path, decoded, lossy=kind == "jpeg")
        if layout is not None and layout.kind == "pair":
            raise refusal(
                path,
                "this image holds two whole-body views side by side; give it on its own, "
                "not as one view of a pair.",
            )
        named = view_from_name(path)
        if named is not None and named != view:
            notes.append(
                f"{path.name} is named like a {named} view but was given as {view}; read as {view}"
            )
        if layout is not None and layout.kind == "single":
            decoded, note = _masked_single(decoded, layout, hot_dark)
            if note:
                notes.append(f"{view}: {note}")
        converted = _to_counts(path, decoded.pixels, decoded.bit_depth)
        views[view] = converted
        notes += list(decoded.notes) + [f"{view}: {n}" for n in converted.notes]
        bit_depth = max(bit_depth, decoded.bit_depth)
    fmt = kind_ant if kind_ant == kind_post else f"{kind_ant}+{kind_post}"
    return _image_scan(views, fmt, (ant, post), bit_depth, notes)


def read_scan(path: str | Path, posterior: str | Path | None = None) -> Scan:
    """Read a whole-body bone scan from a file, or from an anterior/posterior pair.

    What a file is comes from its content (see the module docstring): DICOM NM (one
    two-frame file, or single-frame files), or a PNG/JPEG export in either polarity,
    one view or a four-panel composite (left to right: ANT grey level 1, ANT grey
    level 2, POST grey level 1, POST grey level 2).

    Args:
        path: The scan file; with ``posterior``, the anterior view.
        posterior: The posterior view's file, when ``path`` is the anterior view; both
            must be DICOM or both exported images.

    Returns:
        The scan: each view float32 (1024, 256) counts >= 0, hot = high; one view only
        when a single-view file was given alone. ``meta.notes`` says what was assumed
        (view from the file name, polarity detected, resizing, ...).

    Raises:
        ScanReadError: If a file cannot be read as a bone scan; the message names the
            file and says why.
    """
    first = Path(path)
    kind = sniff(first)
    if posterior is None:
        if kind == "dicom":
            return read_dicom_views(first)
        return _read_image_file(first, kind)
    second = Path(posterior)
    kind_post = sniff(second)
    if first.resolve() == second.resolve():
        raise refusal(second, "the same file was given as both the anterior and posterior view.")
    if (kind == "dicom") != (kind_post == "dicom"):
        raise refusal(
            second,
            f"the anterior view ({first.name}) and the posterior view must both be DICOM "
            "files or both exported images.",
        )
    if kind == "dicom":
        return read_dicom_views([first, second])
    return _read_image_pair(first, second, kind, kind_post)
