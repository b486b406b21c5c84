"""Pictures as workstations export them: panels found, views named, labels masked.

Every layout of :mod:`core.phantom.layouts` (side-by-side pairs, labelled, reversed,
bordered, tight crops, workstation screens with spot views and a header), PNG and JPEG
at quality 60, in both polarities, with exact truth: the layout finder must find each
whole-body panel within 2 pixels, name it right, and the reader must turn it into the
view the truth's window says, with burned-in text set to the background. Pictures it
cannot read with confidence are refused, never read as one body.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from core.imaging.display import detect_polarity
from core.imaging.quality import assess
from core.imaging.resize import resize_bilinear
from core.phantom.generate import PhantomCase, generate_case

# The classic layouts, whose panel edges are all visible: their boxes are exact. The
# layouts added after them are read in tests/test_read_real_layouts.py.
from core.phantom.layouts import CLASSIC_LAYOUTS as LAYOUTS
from core.phantom.layouts import ExportedLayout, PanelTruth, render_layout, save_layout
from core.reading.layout import (
    Layout,
    LayoutError,
    find_layout,
    pad_to_view,
    picture_to_view,
    to_heat,
)
from core.reading.readers import read_scan
from core.scan import ScanReadError

#: Panel boxes must be found within this many pixels of the truth.
BOX_TOLERANCE = 2
#: Seeds giving both polarities for every layout (checked by a test below).
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def case() -> PhantomCase:
    return generate_case(5, 0)


def _layout_of(image: np.ndarray) -> Layout:
    hot_dark = detect_polarity(image).polarity == "hot-dark"
    return find_layout(to_heat(image, hot_dark, 8))


def _whole_body(exported: ExportedLayout) -> dict[str, PanelTruth]:
    return {p.view: p for p in exported.panels if p.kind == "whole_body" and p.view}


def _close(box: tuple[int, ...], truth: tuple[int, ...]) -> bool:
    return max(abs(a - b) for a, b in zip(box, truth, strict=True)) <= BOX_TOLERANCE


def _shown(counts: np.ndarray, panel: PanelTruth) -> np.ndarray:
    """The panel as the exporter drew it, in counts (before the 8-bit mapping)."""
    assert panel.window is not None
    w0, w1, c0, c1 = panel.window
    r0, r1, b0, b1 = panel.box
    return resize_bilinear(counts[w0:w1, c0:c1], (r1 - r0, b1 - b0))


def _pads(counts: np.ndarray, panel: PanelTruth) -> tuple[int, int, int, int]:
    return pad_to_view(_shown(counts, panel))[1]


def _expected_view(counts: np.ndarray, panel: PanelTruth) -> np.ndarray:
    """What the reader should give for a panel: the truth's geometry, undone."""
    return resize_bilinear(pad_to_view(_shown(counts, panel))[0])


def _expected_mask(
    mask: np.ndarray, panel: PanelTruth, pads: tuple[int, int, int, int]
) -> np.ndarray:
    """A truth mask mapped into the view read from a panel (nearest neighbour)."""
    rows, cols = np.meshgrid(np.arange(1024) + 0.5, np.arange(256) + 0.5, indexing="ij")
    r0, r1, b0, b1 = panel.box
    assert panel.window is not None
    w0, w1, c0, c1 = panel.window
    # view -> picture: invert picture_to_view's affine map from two points
    (ar, ac) = picture_to_view(panel.box, pads, r0, b0)
    (br, bc) = picture_to_view(panel.box, pads, r1, b1)
    pic_r = r0 + (rows - ar) * (r1 - r0) / (br - ar)
    pic_c = b0 + (cols - ac) * (b1 - b0) / (bc - ac)
    # picture -> canonical window
    can_r = w0 + (pic_r - r0) * (w1 - w0) / (r1 - r0)
    can_c = c0 + (pic_c - b0) * (c1 - c0) / (b1 - b0)
    inside = (can_r >= w0) & (can_r < w1) & (can_c >= c0) & (can_c < c1)
    out = np.zeros((1024, 256), dtype=mask.dtype)
    rr = np.clip(can_r.astype(int), 0, 1023)
    cc = np.clip(can_c.astype(int), 0, 255)
    out[inside] = mask[rr[inside], cc[inside]]
    return out


def _save(tmp_path: Path, exported: ExportedLayout, quality: int | None) -> Path:
    suffix = ".png" if quality is None else ".jpg"
    return save_layout(tmp_path / f"{exported.layout}{suffix}", exported, quality)


def test_the_seeds_cover_both_polarities(case: PhantomCase) -> None:
    for layout in LAYOUTS:
        seen = {render_layout(case.views, layout, s).polarity for s in SEEDS}
        assert seen == {"hot-bright", "hot-dark"}, layout


@pytest.mark.parametrize("quality", [None, 60])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_panels_found_and_named(
    case: PhantomCase, tmp_path: Path, layout: str, seed: int, quality: int | None
) -> None:
    exported = render_layout(case.views, layout, seed)
    path = _save(tmp_path, exported, quality)
    found = _layout_of(np.asarray(Image.open(path).convert("L")))
    truth = _whole_body(exported)
    assert found.kind == "pair"
    assert set(found.views) == set(truth) == {"ANT", "POST"}
    for view, panel in truth.items():
        assert _close(found.views[view].box, panel.box), (view, found.views[view].box, panel.box)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_reader_gives_the_truths_views(case: PhantomCase, tmp_path: Path, layout: str) -> None:
    exported = render_layout(case.views, layout, 0)
    scan = read_scan(_save(tmp_path, exported, None))
    assert scan.meta.source_format == "layout-png"
    assert list(scan.views) == ["ANT", "POST"]
    for view, panel in _whole_body(exported).items():
        expected = _expected_view(case.views[view], panel)
        got = scan.views[view]
        # the picture is the counts in 8-bit display units; the shape must agree
        assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] >= 0.97, view
        # the truth masks land where the views show them: the bladder is hot
        bladder = _expected_mask(case.masks[view], panel, _pads(case.views[view], panel)) == 2
        assert bladder.any()
        body = expected > 0.05 * expected.max()
        assert got[bladder].mean() >= 2.0 * got[body].mean(), view


@pytest.mark.parametrize("layout", ["pair-labelled", "pair-reversed", "screen"])
def test_burned_in_labels_are_set_to_the_background(
    case: PhantomCase, tmp_path: Path, layout: str
) -> None:
    exported = render_layout(case.views, layout, 1)
    scan = read_scan(_save(tmp_path, exported, None))
    masked = 0
    for view, panel in _whole_body(exported).items():
        pads = _pads(case.views[view], panel)
        for _, (r0, r1, c0, c1) in panel.labels:
            top, left = picture_to_view(panel.box, pads, r0, c0)
            bottom, right = picture_to_view(panel.box, pads, r1, c1)
            inside = scan.views[view][int(top) + 1 : int(bottom), int(left) + 1 : int(right)]
            # the text was drawn at the picture's top; nothing of it is left
            assert inside.size, (view, panel.labels)
            assert float(inside.max()) <= 0.02 * float(scan.views[view].max()), view
            masked += 1
    assert masked >= 2


def test_header_and_spot_views_are_never_kept(case: PhantomCase, tmp_path: Path) -> None:
    exported = render_layout(case.views, "screen", 2)
    found = _layout_of(exported.image)
    chosen = [p.box for p in found.views.values()]
    outside = [box for _, box in exported.texts_outside]
    assert outside, "a screen has a header"
    for r0, r1, c0, c1 in outside:
        for a0, a1, b0, b1 in chosen:
            assert r1 <= a0 or r0 >= a1 or c1 <= b0 or c0 >= b1, "text outside a panel was kept"
    spots = [p for p in found.panels if p.kind == "spot"]
    assert len(spots) >= 2


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_gate_passes_every_layouts_views(
    case: PhantomCase, tmp_path: Path, layout: str
) -> None:
    for quality in (None, 60):
        scan = read_scan(_save(tmp_path, render_layout(case.views, layout, 3), quality))
        verdict = assess(scan)
        assert verdict.ok, (layout, quality, verdict.reason)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), layout=st.sampled_from(LAYOUTS))
def test_any_seed_is_found_within_two_pixels(seed: int, layout: str) -> None:
    case = generate_case(7, seed % 5)
    exported = render_layout(case.views, layout, seed)
    found = _layout_of(exported.image)
    for view, panel in _whole_body(exported).items():
        assert _close(found.views[view].box, panel.box), (view, seed)


# --- what is refused ------------------------------------------------------------------


def _png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _bright(counts: np.ndarray, top: float = 120.0) -> np.ndarray:
    return np.round(counts / counts.max() * top)


def test_three_whole_body_views_are_refused(case: PhantomCase, tmp_path: Path) -> None:
    ant = _bright(case.views["ANT"])
    picture = np.concatenate([ant, _bright(case.views["POST"]), ant], axis=1)
    with pytest.raises(ScanReadError, match="3 whole-body views"):
        read_scan(_png(tmp_path / "three.png", picture))


def test_two_bodies_run_together_are_never_one_view(case: PhantomCase, tmp_path: Path) -> None:
    ant, post = _bright(case.views["ANT"]), _bright(case.views["POST"])
    picture = np.zeros((1024, 400))
    picture[:, :256] = ant
    picture[:, 144:] = np.maximum(picture[:, 144:], post)  # overlapping by 112 columns
    with pytest.raises(ScanReadError, match="more than one body"):
        read_scan(_png(tmp_path / "overlap.png", picture))


def _with_text(picture: np.ndarray, texts: list[tuple[str, int, int]]) -> np.ndarray:
    im = Image.fromarray(picture.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=22)
    for text, row, col in texts:
        draw.text((col, row), text, fill=255, font=font)
    return np.asarray(im)


def test_side_markers_name_the_views(case: PhantomCase, tmp_path: Path) -> None:
    ant, post = _bright(case.views["ANT"]), _bright(case.views["POST"])
    # posterior on the left: its patient's right is on the viewer's right
    picture = _with_text(np.concatenate([post, ant], axis=1), [("R", 8, 230), ("R", 8, 262)])
    scan = read_scan(_png(tmp_path / "markers.png", picture))
    assert np.corrcoef(scan.views["POST"].ravel(), post.ravel())[0, 1] > 0.99
    assert any("'R' marker" in n for n in scan.meta.notes)


def test_two_panels_labelled_alike_are_refused(case: PhantomCase, tmp_path: Path) -> None:
    ant, post = _bright(case.views["ANT"]), _bright(case.views["POST"])
    picture = _with_text(np.concatenate([ant, post], axis=1), [("ANT", 8, 8), ("ANT", 8, 264)])
    with pytest.raises(ScanReadError, match="both whole-body views are labelled ANT"):
        read_scan(_png(tmp_path / "same.png", picture))


def test_an_unlabelled_pair_is_read_in_order_and_says_so(case: PhantomCase, tmp_path: Path) -> None:
    ant, post = _bright(case.views["ANT"]), _bright(case.views["POST"])
    scan = read_scan(_png(tmp_path / "plain.png", np.concatenate([ant, post], axis=1)))
    assert np.corrcoef(scan.views["ANT"].ravel(), ant.ravel())[0, 1] > 0.99
    assert any("usual export order" in n for n in scan.meta.notes)


def test_noise_pair_is_still_refused_by_the_gate(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    picture = rng.poisson(3.0, size=(1024, 512)).astype(np.uint8)
    try:
        scan = read_scan(_png(tmp_path / "noise.png", picture))
    except ScanReadError:
        return  # refused by the reader: also not read
    assert assess(scan).code in {"noise_only", "no_body", "not_whole_body"}


def test_finder_refuses_a_blank_picture() -> None:
    with pytest.raises(LayoutError, match="no body"):
        find_layout(np.zeros((200, 100), dtype=np.float32))
    with pytest.raises(ValueError, match="heat"):
        find_layout(np.full((10, 10), np.nan, dtype=np.float32))


def test_labels_are_cleared_in_a_pair_of_single_view_files(
    case: PhantomCase, tmp_path: Path
) -> None:
    ant, post = _bright(case.views["ANT"]), _bright(case.views["POST"])
    labelled = _with_text(ant, [("ANT", 8, 8)])
    a = _png(tmp_path / "a_ANT.png", labelled)
    p = _png(tmp_path / "a_POST.png", post)
    scan = read_scan(a, posterior=p)
    top_left = scan.views["ANT"][:40, :80]
    assert float(top_left.max()) <= 0.02 * float(scan.views["ANT"].max())
    assert any("burned-in text (1 label(s))" in n for n in scan.meta.notes)
    # the unlabelled view is read exactly as before
    assert np.array_equal(scan.views["POST"], post.astype(np.float32))


def test_a_side_by_side_picture_is_not_one_view_of_a_pair(
    case: PhantomCase, tmp_path: Path
) -> None:
    ant, post = _bright(case.views["ANT"]), _bright(case.views["POST"])
    pair = _png(tmp_path / "both.png", np.concatenate([ant, post], axis=1))
    other = _png(tmp_path / "b_POST.png", post)
    with pytest.raises(ScanReadError, match="two whole-body views side by side"):
        read_scan(pair, posterior=other)
