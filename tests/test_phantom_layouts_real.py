"""Phantom layouts taken from real exports the reader misread, and panels cut out of them.

The contracts every layout keeps (pixels, boxes, labels off the body, determinism) are
tested for these layouts too in tests/test_phantom_layouts.py; here: what each of the
new layouts promises, that every pixel off the background is recorded in the truth, and
:func:`core.phantom.layouts.cut_panels`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from core.phantom import layouts
from core.phantom.export import write_layouts
from core.phantom.generate import PhantomCase, generate_case
from core.phantom.layouts import (
    BAND_WIDTH_RANGE,
    CUT_MARGIN_MAX,
    HEAD_TOP_MAX_SHAVE,
    LAYOUTS,
    MARKER_ROW_RANGE,
    SCREEN_4X3_SIZES,
    SPOT_MAX_SHARE,
    VIEW_LABELS,
    ExportedLayout,
    PanelTruth,
    cut_panels,
    render_layout,
)
from core.reading.readers import view_from_name

Box = tuple[int, int, int, int]
NEW_LAYOUTS = (
    "screen-4x3",
    "pair-banded",
    "pair-head-top",
    "single-markers",
    "pair-white-clipped",
)
#: Widest border line any layout draws, px.
MAX_BORDER = 3


@pytest.fixture(scope="module")
def case() -> PhantomCase:
    return generate_case(5, 0)


@pytest.fixture(scope="module")
def screens(case: PhantomCase) -> list[ExportedLayout]:
    return [render_layout(case.views, "screen-4x3", s) for s in range(16)]


def _whole_body(e: ExportedLayout) -> list[PanelTruth]:
    return sorted((p for p in e.panels if p.kind == "whole_body"), key=lambda p: p.box[2])


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _inside(inner: Box, outer: Box) -> bool:
    return (
        outer[0] <= inner[0] < inner[1] <= outer[1] and outer[2] <= inner[2] < inner[3] <= outer[3]
    )


def _background(e: ExportedLayout) -> int:
    return 0 if e.polarity == "hot-bright" else 255


def _unrecorded(e: ExportedLayout, *, header_bar: bool = False) -> np.ndarray:
    """Pixels off the background that no panel, band, border line or text accounts for."""
    h, w = e.image.shape
    known = np.zeros((h, w), bool)

    def mark(box: Box, grow: int = 0) -> None:
        known[max(0, box[0] - grow) : box[1] + grow, max(0, box[2] - grow) : box[3] + grow] = True

    for p in e.panels:
        if p.kind == "header":
            if header_bar:
                mark(p.box)
        else:
            mark(p.box, p.border)
        for band in p.bands:
            mark(band)
        for _, box in p.labels:
            mark(box)
    for _, box in e.texts_outside:
        mark(box)
    off: np.ndarray = (e.image != _background(e)) & ~known
    return off


# --- the API ---------------------------------------------------------------------------


def test_the_new_layouts_are_appended(case: PhantomCase) -> None:
    assert LAYOUTS[: len(layouts.CLASSIC_LAYOUTS)] == layouts.CLASSIC_LAYOUTS
    assert LAYOUTS[len(layouts.CLASSIC_LAYOUTS) :] == NEW_LAYOUTS
    assert layouts.SINGLE_VIEW_LAYOUTS == ("single-markers",)


def test_view_argument_only_for_single_view_layouts(case: PhantomCase) -> None:
    with pytest.raises(ValueError, match="view"):
        render_layout(case.views, "pair", 0, view="ANT")
    with pytest.raises(ValueError, match="view"):
        render_layout(case.views, "single-markers", 0, view="LAT")
    default = render_layout(case.views, "single-markers", 4)
    ant = render_layout(case.views, "single-markers", 4, view="ANT")
    assert default.image.tobytes() == ant.image.tobytes() and default.truth() == ant.truth()


# --- screen-4x3 ------------------------------------------------------------------------


def test_screen_4x3_geometry(screens: list[ExportedLayout]) -> None:
    wide = 0
    for e in screens:
        h, w = e.image.shape
        assert (w, h) in SCREEN_4X3_SIZES
        header = e.panels[0]
        assert header.kind == "header" and header.box[:3] == (0, header.box[1], 0)
        assert 18 <= header.box[1] <= 40 and header.box[3] == w
        wb = _whole_body(e)
        spots = [p for p in e.panels if p.kind == "spot"]
        assert [p.kind for p in e.panels].count("header") == 1 and len(wb) == 2
        assert {p.view for p in wb} == {"ANT", "POST"} and 2 <= len(spots) <= 6
        ph = wb[0].box[1] - wb[0].box[0]
        assert wb[0].box[0] >= header.box[1] and h - wb[0].box[1] <= 20 + MAX_BORDER
        assert wb[0].box[0] - header.box[1] + h - wb[0].box[1] <= 20 + 2 * MAX_BORDER
        for s in spots:
            assert s.view is None and s.window is None and s.pad == (0, 0)
            assert s.box[2] >= wb[1].box[3]  # right of the whole-body panels
            assert s.box[1] - s.box[0] < SPOT_MAX_SHARE * ph
            assert len(s.labels) == 1 and s.labels[0] in e.texts_outside
        if wb[0].pad != (0, 0):
            wide += 1
            for p in wb:
                assert p.pad == wb[0].pad and p.window is not None
                assert (p.window[2], p.window[3]) == (0, 256)
                r0, r1, c0, c1 = p.box
                assert 1.5 <= (r1 - r0) / (c1 - c0) <= 2.3
                # the pad is background but where a label sits
                labels = np.zeros((r1 - r0, c1 - c0), bool)
                for _, (a, b, c, d) in p.labels:
                    labels[a - r0 : b - r0, c - c0 : d - c0] = True
                pixels = e.image[r0:r1, c0:c1]
                left, right = p.pad
                for cols in (slice(0, left), slice(c1 - c0 - right, c1 - c0)):
                    free = ~labels[:, cols]
                    assert (pixels[:, cols][free] == _background(e)).all()
    assert wide >= 1, "no seed drew wide panels"


def test_screen_4x3_header_names_the_patient_outside_the_panels(
    screens: list[ExportedLayout],
) -> None:
    two_lines = 0
    for e in screens:
        header = e.panels[0]
        lines = [t for t, _ in header.labels]
        assert 1 <= len(lines) <= 2
        two_lines += len(lines) == 2
        assert any("^" in t or any(n in t for n in layouts._SURNAMES) for t in lines)
        assert any("ID: " in t for t in lines)
        for label in header.labels:
            assert label in e.texts_outside
            assert _inside(label[1], header.box)
            for p in _whole_body(e):
                assert not _overlap(label[1], p.box)
            # the text is drawn: its box holds the hot extreme
            a, b, c, d = label[1]
            hot = 255 if e.polarity == "hot-bright" else 0
            assert (e.image[a:b, c:d] == hot).any()
    assert two_lines >= 1


def test_screen_4x3_has_no_ui_grey_and_nothing_unrecorded(screens: list[ExportedLayout]) -> None:
    for e in screens:
        bg = _background(e)
        assert int(np.bincount(e.image.ravel(), minlength=256).argmax()) == bg
        header = e.panels[0]
        r1 = header.box[1]
        bar = np.unique(e.image[:r1][_text_free(e, (0, r1, 0, e.image.shape[1]))])
        assert len(bar) == 1  # the header is flat: the background or one bar grey
        assert not _unrecorded(e, header_bar=bool(bar[0] != bg)).any()


def _text_free(e: ExportedLayout, region: Box) -> np.ndarray:
    r0, r1, c0, c1 = region
    free = np.ones((r1 - r0, c1 - c0), bool)
    for _, (a, b, c, d) in e.texts_outside:
        free[
            max(a, r0) - r0 : max(0, min(b, r1) - r0), max(c, c0) - c0 : max(0, min(d, c1) - c0)
        ] = False
    return free


@pytest.mark.parametrize("layout", ["screen-4x3", "pair-banded"])
def test_border_lines_are_recorded(case: PhantomCase, layout: str) -> None:
    seen = 0
    for seed in range(10):
        e = render_layout(case.views, layout, seed)
        for p in e.panels:
            if p.kind == "header" or not p.border:
                continue
            seen += 1
            assert 1 <= p.border <= MAX_BORDER
            r0, r1, c0, c1 = p.box
            k = p.border
            ring = np.concatenate(
                [
                    e.image[r0 - k : r0, c0 - k : c1 + k].ravel(),
                    e.image[r1 : r1 + k, c0 - k : c1 + k].ravel(),
                    e.image[r0:r1, c0 - k : c0].ravel(),
                    e.image[r0:r1, c1 : c1 + k].ravel(),
                ]
            )
            assert len(np.unique(ring)) == 1 and ring[0] != _background(e)
    assert seen > 0


# --- pair-banded -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_bands_are_recorded(case: PhantomCase, seed: int) -> None:
    e = render_layout(case.views, "pair-banded", seed)
    panels = _whole_body(e)
    assert [p.view for p in panels] == ["ANT", "POST"]
    bands = [b for p in panels for b in p.bands]
    assert 1 <= len(bands) <= 2 and all(len(p.bands) <= 1 for p in panels)
    for p in panels:
        for band in p.bands:
            a, b, c, d = band
            values = np.unique(e.image[a:b, c:d])
            assert len(values) == 1
            if e.polarity == "hot-dark":
                assert values[0] <= 40
            else:
                assert values[0] >= 150
            # right outside the border line, along the whole side
            r0, r1, c0, c1 = p.box
            k = p.border
            if b - a > d - c:  # a left or right band spans the panel's height
                assert (a, b) == (r0 - k, r1 + k)
                assert d == c0 - k or c == c1 + k
                assert BAND_WIDTH_RANGE[0] <= d - c <= BAND_WIDTH_RANGE[1]
            else:  # a bottom band spans its width
                assert (a, c, d) == (r1 + k, c0 - k, c1 + k)
                assert BAND_WIDTH_RANGE[0] <= b - a <= BAND_WIDTH_RANGE[1]
    assert not _unrecorded(e).any()
    truth = e.truth()
    assert [len(p["bands"]) for p in truth["panels"]] == [len(p.bands) for p in panels]


# --- pair-head-top ---------------------------------------------------------------------


def _skull_top(counts: np.ndarray) -> int:
    smooth = ndimage.gaussian_filter(counts.astype(np.float64), 2.0)
    body = smooth > 0.05 * np.percentile(smooth, 99.5)
    return int(np.flatnonzero(body.any(axis=1))[0])


@pytest.mark.parametrize("seed", range(8))
def test_head_top_window_starts_at_the_skull(case: PhantomCase, seed: int) -> None:
    e = render_layout(case.views, "pair-head-top", seed)
    top = max(_skull_top(case.views[v]) for v in ("ANT", "POST"))
    panels = _whole_body(e)
    assert [p.view for p in panels] == ["ANT", "POST"]
    for p in panels:
        assert p.window is not None and p.box[0] == 0
        assert 0 <= p.window[0] - top <= HEAD_TOP_MAX_SHAVE
        assert p.labels, "a head-top panel has a label or an R marker"
        for text, _ in p.labels:
            assert text in {*VIEW_LABELS[str(p.view)], "R"}
        ph = p.box[1] - p.box[0]
        # at least one text sits in the top rows, beside the head
        assert min(box[0] for _, box in p.labels) < 0.2 * ph
    assert not _unrecorded(e).any()


# --- single-markers --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_single_markers_sides(case: PhantomCase, seed: int) -> None:
    seen = 0
    for view in ("ANT", "POST"):
        e = render_layout(case.views, "single-markers", seed, view=view)
        (p,) = e.panels
        h, w = e.image.shape
        assert p.kind == "whole_body" and p.view == view and p.box == (0, h, 0, w)
        assert p.window == (0, 1024, 0, 256) and not e.texts_outside
        texts = [t for t, _ in p.labels]
        assert set(texts) <= {"R", "L", *VIEW_LABELS[view]}
        for text, box in p.labels:
            if text not in ("R", "L"):
                assert box[0] < 0.1 * h  # the view label is at the top
                continue
            seen += 1
            assert MARKER_ROW_RANGE[0] * h <= box[0] < box[1] <= MARKER_ROW_RANGE[1] * h
            on_left = (box[2] + box[3]) / 2 < w / 2
            # R: the patient's right, the viewer's left in ANT
            assert on_left == ((text == "R") == (view == "ANT")), (view, text, box)
    assert seen >= 2


def test_single_markers_pair_shares_the_export(case: PhantomCase) -> None:
    ant = render_layout(case.views, "single-markers", 9, view="ANT")
    post = render_layout(case.views, "single-markers", 9, view="POST")
    assert ant.polarity == post.polarity and ant.image.shape == post.image.shape
    assert ant.image.tobytes() != post.image.tobytes()


# --- pair-white-clipped ----------------------------------------------------------------


def test_white_clipped_saturates_the_bladder(case: PhantomCase) -> None:
    kinds = set()
    for seed in range(8):
        e = render_layout(case.views, "pair-white-clipped", seed)
        assert e.polarity == "hot-dark"
        for p in _whole_body(e):
            assert p.view is not None and p.clip is not None and 0 < p.clip < 1
            assert p.truth()["clip"] == p.clip and p.truth()["wrap"] == p.wrap
            kinds.add(p.wrap)
            if p.wrap:
                continue
            mask = case.masks[p.view] == 2
            rows, cols = np.nonzero(mask)
            s = (p.box[1] - p.box[0]) / 1024
            a, b = p.box[0] + int(rows.min() * s), p.box[0] + int(np.ceil((rows.max() + 1) * s))
            c, d = p.box[2] + int(cols.min() * s), p.box[2] + int(np.ceil((cols.max() + 1) * s))
            zero = e.image[a:b, c:d] == 0
            labelled, n = ndimage.label(zero)
            largest = int(np.bincount(labelled.ravel())[1:].max()) if n else 0
            # one flat black part covering at least half the bladder
            assert largest >= max(30, 0.5 * mask.sum() * s * s), (seed, p.view, largest)
    assert kinds == {True, False}


# --- cut panels ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cut_panels_keep_the_panel_and_its_truth(case: PhantomCase, layout: str) -> None:
    e = render_layout(case.views, layout, 2)
    cuts = cut_panels(e, 7)
    again = cut_panels(e, 7)
    source = {p.view: p for p in _whole_body(e)}
    assert set(cuts) == set(source)
    for view, cut in cuts.items():
        assert cut.layout == layout and cut.polarity == e.polarity and cut.cut is not None
        r0, r1, c0, c1 = cut.cut
        assert np.array_equal(cut.image, e.image[r0:r1, c0:c1])
        assert again[view].image.tobytes() == cut.image.tobytes()
        assert again[view].truth() == cut.truth()
        (p,) = cut.panels
        src = source[view]
        assert p.box == (src.box[0] - r0, src.box[1] - r0, src.box[2] - c0, src.box[3] - c0)
        assert (p.view, p.window, p.pad, p.clip, p.wrap) == (
            src.view,
            src.window,
            src.pad,
            src.clip,
            src.wrap,
        )
        assert len(p.labels) == len(src.labels)
        for (t, box), (t0, box0) in zip(p.labels, src.labels, strict=True):
            assert t == t0 and box == (box0[0] - r0, box0[1] - r0, box0[2] - c0, box0[3] - c0)
        # the margin: 0..12 px, clipped to the picture, never into another panel
        for grow in (src.box[0] - r0, r1 - src.box[1], src.box[2] - c0, c1 - src.box[3]):
            assert 0 <= grow <= CUT_MARGIN_MAX
        for other in e.panels:
            if other is not src:
                assert not _overlap(cut.cut, other.box)
        h, w = cut.image.shape
        for band in p.bands:
            assert _inside(band, (0, h, 0, w))
        for _, box in cut.texts_outside:
            assert _inside(box, (0, h, 0, w))
        off = _unrecorded(cut)
        if layout == "screen":  # the old screen's flat UI grey is the desk around panels
            assert len(np.unique(cut.image[off])) <= 1
        else:
            assert not off.any()


def test_cut_panels_margins_vary_with_the_seed(case: PhantomCase) -> None:
    e = render_layout(case.views, "pair-bordered", 1)
    boxes = {tuple(cut_panels(e, s)["ANT"].cut or ()) for s in range(6)}
    assert len(boxes) > 1
    with pytest.raises(ValueError, match="seed"):
        cut_panels(e, -1)


# --- python -m core generate --layouts -------------------------------------------------


def test_write_layouts_writes_every_layout_and_single_views_twice(
    case: PhantomCase, tmp_path: Path
) -> None:
    written = write_layouts(tmp_path, case)
    names = sorted(p.name for p in written)
    assert len(written) == len(LAYOUTS) + 1
    for layout in LAYOUTS:
        mine = [n for n in names if n.startswith(f"{case.case_id}-{layout}.")]
        mine += [n for n in names if n.startswith(f"{case.case_id}-{layout}_")]
        if layout in layouts.SINGLE_VIEW_LAYOUTS:
            assert [n.rsplit(".", 1)[0][-4:] for n in mine] == ["_ANT", "POST"]
            for n in mine:
                view = "ANT" if "_ANT." in n else "POST"
                assert view_from_name(tmp_path / "layouts" / n) == view
                truth = json.loads((tmp_path / "layouts" / n).with_suffix(".json").read_text())
                assert [p["view"] for p in truth["panels"]] == [view]
        else:
            assert len(mine) == 1, (layout, names)
    for p in written:
        assert p.exists() and p.with_suffix(".json").exists()
