"""Phantom workstation layouts: the pixels follow the geometry contract and the truth is exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.imaging.display import grey_level_1
from core.imaging.resize import resize_bilinear
from core.phantom import layouts
from core.phantom.generate import generate_case
from core.phantom.layouts import (
    LAYOUTS,
    POLARITIES,
    SCALE_RANGE,
    SINGLE_VIEW_LAYOUTS,
    VIEW_LABELS,
    ExportedLayout,
    PanelTruth,
    render_layout,
    save_layout,
)

#: Seed 0 draws a hot-bright picture, seed 2 a hot-dark one (polarity is the first draw).
SEEDS = (0, 2)

Views = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def views() -> Views:
    return dict(generate_case(5, 0).views)


@pytest.fixture(scope="module")
def rendered(views: Views) -> dict[tuple[str, int], ExportedLayout]:
    return {(lay, s): render_layout(views, lay, s) for lay in LAYOUTS for s in SEEDS}


def _whole_body(e: ExportedLayout) -> list[PanelTruth]:
    return [p for p in e.panels if p.kind == "whole_body"]


def _crop(a: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    return a[box[0] : box[1], box[2] : box[3]]


def _label_mask(panel: PanelTruth) -> np.ndarray:
    r0, r1, c0, c1 = panel.box
    mask = np.zeros((r1 - r0, c1 - c0), bool)
    for _, (a, b, c, d) in panel.labels:
        mask[a - r0 : b - r0, c - c0 : d - c0] = True
    return mask


def _expected(views: Views, e: ExportedLayout, panel: PanelTruth) -> np.ndarray:
    """The panel's pixels recomputed from the documented contract alone."""
    assert panel.view is not None and panel.window is not None
    w0, w1, w2, w3 = panel.window
    r0, r1, c0, c1 = panel.image_box
    inner = resize_bilinear(views[panel.view][w0:w1, w2:w3], (r1 - r0, c1 - c0))
    # the pad columns (screen-4x3) are background: zero counts
    r = np.pad(inner.astype(np.float64), ((0, 0), panel.pad))
    if e.polarity == "hot-dark":
        p = float(np.percentile(views[panel.view].astype(np.float64), 99.9))
        if panel.clip is not None:
            value = np.floor(255.0 * r / (panel.clip * p) + 0.5).astype(np.int64)
            if panel.wrap:
                return np.mod(255 - value, 256).astype(np.uint8)
            return (255 - np.minimum(value, 255)).astype(np.uint8)
        return (255 - np.floor(255 * np.clip(r / p, 0, 1) + 0.5)).astype(np.uint8)
    # top is not part of the truth: find the one in 40..255 that reproduces the panel.
    peak = max(float(views["ANT"].max()), float(views["POST"].max()))
    got = _crop(e.image, panel.box)
    free = ~_label_mask(panel)
    guess = float(got[free].max()) * peak / float(r[free].max())
    for top in sorted(range(40, 256), key=lambda t: abs(t - guess)):
        cand = np.clip(np.floor(r * (top / peak) + 0.5), 0, 255).astype(np.uint8)
        if np.array_equal(cand[free], got[free]):
            return cand
    raise AssertionError("no hot-bright top in 40..255 reproduces the panel")


def _hotness(pixels: np.ndarray, polarity: str) -> np.ndarray:
    a = pixels.astype(np.int16)
    return a if polarity == "hot-bright" else 255 - a


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return (
        outer[0] <= inner[0] < inner[1] <= outer[1] and outer[2] <= inner[2] < inner[3] <= outer[3]
    )


# --- every layout ----------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_same_arguments_same_bytes(views: Views, layout: str) -> None:
    a, b = render_layout(views, layout, 11), render_layout(views, layout, 11)
    assert a.image.dtype == np.uint8 and a.image.ndim == 2
    assert a.image.tobytes() == b.image.tobytes() and a.truth() == b.truth()
    assert render_layout(views, layout, 12).image.tobytes() != a.image.tobytes()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_whole_body_pixels_follow_the_contract(
    views: Views, rendered: dict[tuple[str, int], ExportedLayout], layout: str, seed: int
) -> None:
    e = rendered[(layout, seed)]
    polarity = "hot-dark" if layout == "pair-white-clipped" else POLARITIES[SEEDS.index(seed)]
    assert e.layout == layout and e.polarity == polarity
    panels = _whole_body(e)
    single = layout in SINGLE_VIEW_LAYOUTS
    assert sorted(str(p.view) for p in panels) == (["ANT"] if single else ["ANT", "POST"])
    sizes = {(p.image_box[1] - p.image_box[0], p.image_box[3] - p.image_box[2]) for p in panels}
    windows = {p.window for p in panels}
    assert len(sizes) == 1 and len(windows) == 1  # one scale, one window size
    (ph, pw), (window,) = sizes.pop(), windows
    assert window is not None
    wr, wc = window[1] - window[0], window[3] - window[2]
    # One uniform factor s gives both sizes: floor(s * n + 0.5) == size on both axes.
    lo = max((ph - 0.5) / wr, (pw - 0.5) / wc)
    hi = min((ph + 0.5) / wr, (pw + 0.5) / wc)
    assert lo < hi and lo < SCALE_RANGE[1]
    if layout not in ("screen", "screen-4x3"):  # only screens may set s to fit
        assert hi > SCALE_RANGE[0]
    for p in panels:
        want = _expected(views, e, p)
        got = _crop(e.image, p.box)
        labels = _label_mask(p)
        np.testing.assert_array_equal(got[~labels], want[~labels])
        # Text only pushes pixels towards the hot extreme.
        if e.polarity == "hot-bright":
            assert (got[labels] >= want[labels]).all()
        else:
            assert (got[labels] <= want[labels]).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_boxes_inside_and_apart(
    rendered: dict[tuple[str, int], ExportedLayout], layout: str, seed: int
) -> None:
    e = rendered[(layout, seed)]
    h, w = e.image.shape
    for p in e.panels:
        assert _inside(p.box, (0, h, 0, w)), p
        if p.window is not None:
            assert _inside(p.window, (0, 1024, 0, 256))
        assert (p.kind == "whole_body") == (p.view is not None) == (p.window is not None)
    for i, a in enumerate(e.panels):
        for b in e.panels[i + 1 :]:
            assert not _overlap(a.box, b.box), (a.box, b.box)
    bands = [b for p in e.panels for b in p.bands]
    for band in bands:
        assert _inside(band, (0, h, 0, w))
        assert not any(_overlap(band, p.box) for p in e.panels)
    for _, box in e.texts_outside:
        assert _inside(box, (0, h, 0, w))
        assert not any(_overlap(box, p.box) for p in _whole_body(e))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_labels_inside_their_panel_and_off_the_body(
    views: Views, rendered: dict[tuple[str, int], ExportedLayout], layout: str, seed: int
) -> None:
    e = rendered[(layout, seed)]
    for p in e.panels:
        boxes = [b for _, b in p.labels]
        for i, box in enumerate(boxes):
            assert _inside(box, p.box)
            assert not any(_overlap(box, other) for other in boxes[i + 1 :])
    for p in _whole_body(e):
        want = _expected(views, e, p)
        hot = _hotness(want, e.polarity)
        body = hot > 0.1 * hot.max()
        r0, c0 = p.box[0], p.box[2]
        for text, (a, b, c, d) in p.labels:
            assert not body[a - r0 : b - r0, c - c0 : d - c0].any(), text
            # The ink reaches every edge of its box and holds the hot extreme.
            ink = _crop(e.image, (a, b, c, d)) != want[a - r0 : b - r0, c - c0 : d - c0]
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()
            hot_value = 255 if e.polarity == "hot-bright" else 0
            assert (_crop(e.image, (a, b, c, d)) == hot_value).any()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_truth_round_trips_through_json(
    rendered: dict[tuple[str, int], ExportedLayout], layout: str
) -> None:
    for seed in SEEDS:
        e = rendered[(layout, seed)]
        d = e.truth()
        assert json.loads(json.dumps(d)) == d
        assert d["image_shape"] == list(e.image.shape) and d["layout"] == layout
        assert len(d["panels"]) == len(e.panels)


# --- each layout -----------------------------------------------------------------------


def _left_to_right(e: ExportedLayout) -> list[str | None]:
    return [p.view for p in sorted(_whole_body(e), key=lambda p: p.box[2])]


@pytest.mark.parametrize("seed", SEEDS)
def test_pair_is_two_bare_full_panels(
    rendered: dict[tuple[str, int], ExportedLayout], seed: int
) -> None:
    e = rendered[("pair", seed)]
    (a, b) = e.panels
    ph, pw = a.box[1] - a.box[0], a.box[3] - a.box[2]
    assert (
        e.image.shape == (ph, 2 * pw) and a.box == (0, ph, 0, pw) and b.box == (0, ph, pw, 2 * pw)
    )
    assert a.window == b.window == (0, 1024, 0, 256)
    assert _left_to_right(e) == ["ANT", "POST"] and not a.labels and not b.labels
    assert not e.texts_outside


@pytest.mark.parametrize("seed", [*SEEDS, 5, 6])
@pytest.mark.parametrize("layout", ["pair-labelled", "pair-reversed"])
def test_labelled_pairs_name_their_views(views: Views, layout: str, seed: int) -> None:
    e = render_layout(views, layout, seed)
    want = ["POST", "ANT"] if layout == "pair-reversed" else ["ANT", "POST"]
    assert _left_to_right(e) == want
    for p in _whole_body(e):
        assert p.view is not None
        texts = [t for t, _ in p.labels]
        assert sum(t in VIEW_LABELS[p.view] for t in texts) == 1
        assert set(texts) <= {*VIEW_LABELS[p.view], "R"}


def test_r_marker_sits_on_the_patients_right(views: Views) -> None:
    seen = 0
    for seed in range(12):
        e = render_layout(views, "pair-labelled", seed)
        for p in _whole_body(e):
            for text, box in p.labels:
                if text == "R":
                    seen += 1
                    mid = (box[2] + box[3]) / 2
                    centre = (p.box[2] + p.box[3]) / 2
                    assert (mid < centre) == (p.view == "ANT")
    assert seen > 0


def test_bordered_panels_have_lines_around_them(views: Views) -> None:
    for seed in range(4):
        e = render_layout(views, "pair-bordered", seed)
        bg = 0 if e.polarity == "hot-bright" else 255
        for p in _whole_body(e):
            r0, r1, c0, c1 = p.box
            ring = [e.image[r0 - 1, c0 - 1 : c1 + 1], e.image[r1, c0 - 1 : c1 + 1]]
            ring += [e.image[r0:r1, c0 - 1], e.image[r0:r1, c1]]
            values = np.unique(np.concatenate(ring))
            assert len(values) == 1 and values[0] != bg
            grey = int(values[0]) if bg == 0 else 255 - int(values[0])
            assert 80 <= grey <= 200


def test_tight_windows_hug_the_body(views: Views) -> None:
    from scipy import ndimage

    extents = []
    for v in ("ANT", "POST"):
        smooth = ndimage.gaussian_filter(views[v].astype(np.float64), 2.0)
        body = smooth > 0.05 * np.percentile(smooth, 99.5)
        rows, cols = np.flatnonzero(body.any(1)), np.flatnonzero(body.any(0))
        extents.append((rows[0], rows[-1] + 1, cols[0], cols[-1] + 1))
    t, b = min(e[0] for e in extents), max(e[1] for e in extents)
    left, right = min(e[2] for e in extents), max(e[3] for e in extents)
    for seed in range(4):
        e = render_layout(views, "pair-tight", seed)
        (window,) = {p.window for p in _whole_body(e)}
        assert window is not None
        assert 0 <= t - window[0] <= 6 and 0 <= window[1] - b <= 6
        assert max(0, left - 20) <= window[2] <= max(0, left - 4)
        assert min(256, right + 4) <= window[3] <= min(256, right + 20)


@pytest.mark.parametrize("seed", [*SEEDS, 3, 4, 5])
def test_screen_has_header_spots_and_ui_grey(views: Views, seed: int) -> None:
    e = render_layout(views, "screen", seed)
    h, w = e.image.shape
    assert abs(h - 1035) <= 104 and abs(w - 1640) <= 164
    kinds = [p.kind for p in e.panels]
    assert kinds.count("header") == 1 and kinds.count("whole_body") == 2
    assert 2 <= kinds.count("spot") <= 3
    header = e.panels[0]
    assert header.kind == "header" and 28 <= header.box[1] <= 40 and header.labels
    text, box = header.labels[0]
    assert text.startswith("PHANTOM^") and (text, box) in e.texts_outside
    assert _inside(box, header.box)
    for p in e.panels:
        if p.kind == "spot":
            assert p.view is None and p.window is None
            assert p.labels[0][0] in layouts.SPOT_LABELS
            assert 0.8 < (p.box[1] - p.box[0]) / (p.box[3] - p.box[2]) < 1.25
        if p.kind == "whole_body":
            assert p.window == (0, 1024, 0, 256)
            assert p.view is not None
            assert any(t in VIEW_LABELS[p.view] for t, _ in p.labels)
    # The UI grey is neither background: the finder can tell a viewport from the desk.
    ui = int(np.bincount(e.image[header.box[1] :].ravel()).argmax())
    assert ui not in (0, 255)
    wb = sorted(_whole_body(e), key=lambda p: p.box[2])
    spots = [p for p in e.panels if p.kind == "spot"]
    left_of = all(s.box[3] <= wb[0].box[2] for s in spots)
    right_of = all(s.box[2] >= wb[-1].box[3] for s in spots)
    assert left_of or right_of


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_screen_boxes_stay_inside_for_any_seed(views: Views, seed: int) -> None:
    e = render_layout(views, "screen", seed)
    h, w = e.image.shape
    boxes = [p.box for p in e.panels]
    for p in e.panels:
        assert _inside(p.box, (0, h, 0, w))
        for _, box in p.labels:
            assert _inside(box, p.box)
    for _, box in e.texts_outside:
        assert _inside(box, (0, h, 0, w))
    for i, a in enumerate(boxes):
        assert not any(_overlap(a, b) for b in boxes[i + 1 :])


def test_hot_dark_full_window_is_grey_level_1(views: Views) -> None:
    p = {v: float(np.percentile(views[v].astype(np.float64), 99.9)) for v in ("ANT", "POST")}
    style = layouts._Style("hot-dark", 255, 1.0, p)
    for v in ("ANT", "POST"):
        assert np.array_equal(style.pixels(views[v], v), grey_level_1(views[v]))


# --- saving ----------------------------------------------------------------------------


def test_save_png_is_exact_and_writes_truth(
    tmp_path: Path, rendered: dict[tuple[str, int], ExportedLayout]
) -> None:
    e = rendered[("screen", 0)]
    out = save_layout(tmp_path / "sub" / "shot.png", e)
    assert out == tmp_path / "sub" / "shot.png"
    assert np.array_equal(np.asarray(Image.open(out)), e.image)
    truth = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert truth.pop("file") == {"name": "shot.png", "format": "png", "jpeg_quality": None}
    assert truth == e.truth()


@pytest.mark.parametrize("quality", [60, 95])
def test_save_jpeg(
    tmp_path: Path, rendered: dict[tuple[str, int], ExportedLayout], quality: int
) -> None:
    e = rendered[("pair-labelled", 2)]
    out = save_layout(tmp_path / "shot", e, jpeg_quality=quality)
    assert out.suffix == ".jpg" and out.read_bytes()[:2] == b"\xff\xd8"
    img = np.asarray(Image.open(out)).astype(np.int16)
    assert img.shape == e.image.shape
    assert math.isclose(float(np.abs(img - e.image).mean()), 0.0, abs_tol=3.0)
    truth = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert truth["file"]["jpeg_quality"] == quality and truth["panels"] == e.truth()["panels"]


@pytest.mark.parametrize("quality", [59, 96, 80.0, True])
def test_save_refuses_bad_quality(
    tmp_path: Path, rendered: dict[tuple[str, int], ExportedLayout], quality: object
) -> None:
    with pytest.raises(ValueError, match="jpeg_quality"):
        save_layout(tmp_path / "x.jpg", rendered[("pair", 0)], jpeg_quality=quality)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_suffix_of_the_other_format(
    tmp_path: Path, rendered: dict[tuple[str, int], ExportedLayout]
) -> None:
    with pytest.raises(ValueError, match="path"):
        save_layout(tmp_path / "x.jpg", rendered[("pair", 0)])
    with pytest.raises(ValueError, match="path"):
        save_layout(tmp_path / "x.png", rendered[("pair", 0)], jpeg_quality=80)


# --- refusals --------------------------------------------------------------------------


def test_refuses_bad_arguments(views: Views) -> None:
    with pytest.raises(ValueError, match="layout"):
        render_layout(views, "triptych", 0)
    with pytest.raises(ValueError, match="views"):
        render_layout({"ANT": views["ANT"]}, "pair", 0)
    with pytest.raises(ValueError, match="views"):
        render_layout({"ANT": views["ANT"], "POST": views["POST"][:512]}, "pair", 0)
    with pytest.raises(ValueError, match="views"):
        render_layout({"ANT": -views["ANT"], "POST": views["POST"]}, "pair", 0)
    with pytest.raises(ValueError, match="seed"):
        render_layout(views, "pair", -1)
