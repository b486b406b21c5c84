from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from core.imaging.display import display_images, grey_level_1, grey_level_2
from core.imaging.resize import resize_bilinear
from core.reading.readers import read_scan, view_from_name
from core.scan import ScanReadError
from tests.readers_helpers import phantom_counts


def _save(path: Path, pixels: np.ndarray, quality: int = 95) -> Path:
    Image.fromarray(pixels).save(path, quality=quality)
    return path


@pytest.fixture
def bright() -> np.ndarray:
    """A black-background export: hot = bright, maximum far below 255."""
    return phantom_counts(top=120).astype(np.uint8)


def test_png_8bit_hot_bright(tmp_path: Path, bright: np.ndarray) -> None:
    scan = read_scan(_save(tmp_path / "scan.png", bright))
    meta = scan.meta
    assert meta.polarity == "hot-bright" and meta.bit_depth == 8
    assert meta.source_format == "png" and not meta.display_is_grey_level_1
    assert any(n.startswith("polarity detected: hot-bright") for n in meta.notes)
    assert np.array_equal(scan.views["ANT"], bright)


def test_png_8bit_hot_dark_is_grey_level_1(tmp_path: Path, bright: np.ndarray) -> None:
    dark = 255 - bright
    scan = read_scan(_save(tmp_path / "scan.png", dark))
    meta = scan.meta
    assert meta.polarity == "hot-dark" and meta.display_is_grey_level_1
    assert any(n.startswith("polarity detected: hot-dark") for n in meta.notes)
    assert np.array_equal(scan.views["ANT"], bright)  # counts = 255 - pixel
    images = display_images(scan)
    assert np.array_equal(images[("ANT", 1)], dark)
    assert np.array_equal(images[("ANT", 2)], grey_level_2(dark))


def test_png_16bit_both_polarities(tmp_path: Path) -> None:
    counts = phantom_counts(top=3000).astype(np.uint16)
    scan = read_scan(_save(tmp_path / "b.png", counts))
    assert scan.meta.bit_depth == 16 and scan.meta.polarity == "hot-bright"
    assert np.array_equal(scan.views["ANT"], counts)
    inverted = (4095 - counts).astype(np.uint16)  # a 12-bit white-background export
    scan = read_scan(_save(tmp_path / "d.png", inverted))
    assert scan.meta.polarity == "hot-dark" and not scan.meta.display_is_grey_level_1
    assert np.array_equal(scan.views["ANT"], counts)
    assert any("counts = 4095 - pixel" in n for n in scan.meta.notes)


def test_jpeg_hot_bright(tmp_path: Path, bright: np.ndarray) -> None:
    scan = read_scan(_save(tmp_path / "scan.jpg", bright, quality=95))
    assert scan.meta.source_format == "jpeg" and scan.meta.polarity == "hot-bright"
    assert np.abs(scan.views["ANT"] - bright).mean() < 2  # JPEG is lossy


def test_jpeg_hot_dark(tmp_path: Path, bright: np.ndarray) -> None:
    scan = read_scan(_save(tmp_path / "scan.jpeg", 255 - bright, quality=95))
    assert scan.meta.polarity == "hot-dark" and scan.meta.display_is_grey_level_1


def test_rgb_png_is_converted_to_grey(tmp_path: Path, bright: np.ndarray) -> None:
    rgb = np.repeat(bright[:, :, None], 3, axis=2)
    scan = read_scan(_save(tmp_path / "rgb.png", rgb))
    assert np.array_equal(scan.views["ANT"], bright)
    assert any("colour image converted to grey" in n for n in scan.meta.notes)


@pytest.mark.parametrize(
    ("name", "view"),
    [
        ("scan_ANT.png", "ANT"),
        ("x-post.png", "POST"),
        ("Posterior.jpg", "POST"),
        ("anterior2.png", "ANT"),
        ("ant/1.jpg", "ANT"),
        ("POST/17.jpg", "POST"),
        ("post/scan_ant.png", "ANT"),  # the file name comes before its folder
        ("plant.png", None),
        ("postgres.png", None),
        ("ant_post.png", None),
        ("a/b.png", None),
    ],
)
def test_view_from_name(name: str, view: str | None) -> None:
    assert view_from_name(Path("/data/patients") / name) == view


def test_single_file_view_from_name_or_anterior(tmp_path: Path, bright: np.ndarray) -> None:
    scan = read_scan(_save(tmp_path / "case_POST.png", bright))
    assert list(scan.views) == ["POST"]
    scan = read_scan(_save(tmp_path / "case.png", bright))
    assert list(scan.views) == ["ANT"]
    assert any("taken as anterior" in n for n in scan.meta.notes)


def test_pair_first_is_ant_second_is_post(tmp_path: Path, bright: np.ndarray) -> None:
    other = phantom_counts(top=60, seed=7).astype(np.uint8)
    a = _save(tmp_path / "one.png", bright)
    p = _save(tmp_path / "two.jpg", other, quality=100)
    scan = read_scan(a, posterior=p)
    assert np.array_equal(scan.views["ANT"], bright)
    assert np.abs(scan.views["POST"] - other).mean() < 1
    assert scan.meta.source_files == (str(a), str(p))
    assert scan.meta.source_format == "png+jpeg"


def test_pair_names_that_disagree_are_noted(tmp_path: Path, bright: np.ndarray) -> None:
    a = _save(tmp_path / "x_post.png", bright)
    p = _save(tmp_path / "x_ant.png", bright)
    scan = read_scan(a, posterior=p)
    assert set(scan.views) == {"ANT", "POST"}
    assert any("named like a POST view but was given as ANT" in n for n in scan.meta.notes)


def _composite(ant: np.ndarray, post: np.ndarray) -> np.ndarray:
    g1a, g1p = grey_level_1(ant), grey_level_1(post)
    return np.hstack([g1a, grey_level_2(g1a), g1p, grey_level_2(g1p)])


def test_composite_is_split_into_views(tmp_path: Path) -> None:
    ant, post = phantom_counts(top=400), phantom_counts(top=250, seed=5)
    composite = _composite(ant, post)
    assert composite.shape == (1024, 1024)
    scan = read_scan(_save(tmp_path / "export.png", composite))
    meta = scan.meta
    assert meta.source_format == "composite-png" and meta.display_is_grey_level_1
    assert set(scan.views) == {"ANT", "POST"}
    images = display_images(scan)
    for i, key in enumerate([("ANT", 1), ("ANT", 2), ("POST", 1), ("POST", 2)]):
        assert np.array_equal(images[key], composite[:, 256 * i : 256 * (i + 1)]), key
    assert not any("does not look like grey level 2" in n for n in meta.notes)
    assert "panels 2 and 4 are grey level 2 of panels 1 and 3, as documented" in meta.notes


def test_square_picture_whose_panels_are_not_grey_levels_is_not_a_composite(
    tmp_path: Path,
) -> None:
    # Never guessed: four panels that are not grey levels of each other are refused
    # (or read by the layout finder), never read by the composite rule.
    ant, post = phantom_counts(top=400), phantom_counts(top=250, seed=5)
    composite = _composite(ant, post)
    composite[:, 256:512] = grey_level_1(ant)  # panel 2 is not grey level 2
    with pytest.raises(ScanReadError, match="not the paper's four-panel composite") as err:
        read_scan(_save(tmp_path / "export.jpg", composite, quality=95))
    assert "panel 2 is not grey level 2 of panel 1" in str(err.value)


def test_small_image_is_resized_bilinearly(tmp_path: Path) -> None:
    small = phantom_counts(512, 128, top=200).astype(np.uint8)
    scan = read_scan(_save(tmp_path / "small.png", small))
    ant = scan.views["ANT"]
    assert ant.shape == (1024, 256) and ant.dtype == np.float32
    assert np.allclose(ant, resize_bilinear(small))
    assert any("resized from 128 x 512 to 256 x 1024" in n for n in scan.meta.notes)


def _torch_bilinear(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    t = torch.from_numpy(a.astype(np.float32))[None, None]
    out = torch.nn.functional.interpolate(t, size=shape, mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def test_resize_matches_torch_bilinear() -> None:
    a = phantom_counts(512, 128, top=200).astype(np.float32)
    assert np.allclose(resize_bilinear(a), _torch_bilinear(a, (1024, 256)), atol=1e-3)
    tiny = np.array([[0.0, 4.0], [8.0, 12.0]])
    # hand-computed: pixel centres at 1/4 and 3/4 of each input pixel, edges clamped
    expected = [[0, 1, 3, 4], [2, 3, 5, 6], [6, 7, 9, 10], [8, 9, 11, 12]]
    assert resize_bilinear(tiny, (4, 4)).tolist() == expected


@settings(max_examples=30, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(2, 40), st.integers(2, 12)),
        elements=st.floats(0, 1e3, width=32),
    ),
    st.integers(8, 64),
    st.integers(2, 16),
)
def test_resize_stays_within_input_range(a: np.ndarray, rows: int, cols: int) -> None:
    out = resize_bilinear(a, (rows, cols))
    assert out.shape == (rows, cols) and out.dtype == np.float32
    assert out.min() >= a.min() - 1e-3 and out.max() <= a.max() + 1e-3
    assert np.allclose(out, _torch_bilinear(a, (rows, cols)), atol=1e-2)


def test_resize_bilinear_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="a must"):
        resize_bilinear(np.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        resize_bilinear(np.zeros((4, 4)), (0, 3))
