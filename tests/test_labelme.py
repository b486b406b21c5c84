"""LabelMe files <-> label masks (core.reading.labelme)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from core.reading.labelme import (
    LABELME_VERSION,
    load_labelme,
    mask_to_polygons,
    read_labelme,
    read_labelme_for_image,
    trace_boundary,
    write_labelme,
)


def _shape(label: str, points: list[list[float]], shape_type: str = "polygon") -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "shape_type": shape_type,
        "flags": {},
    }


def _write(path: Path, shapes: list[dict[str, Any]], h: int | None = 8, w: int | None = 6) -> Path:
    doc: dict[str, Any] = {
        "version": "5.0.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": "img.png",
        "imageData": None,
    }
    if h is not None:
        doc["imageHeight"], doc["imageWidth"] = h, w
    path.write_text(json.dumps(doc))
    return path


def test_polygon_rasterised_like_labelme(tmp_path: Path) -> None:
    # A right triangle with vertices on pixel centres (x = column, y = row): PIL fills
    # the pixels on or under the diagonal from (1,1) to (4,4), outline included.
    path = _write(tmp_path / "a.json", [_shape("Metastasis", [[1, 1], [1, 4], [4, 4]])])
    expected = np.zeros((8, 6), np.uint8)
    for r in range(1, 5):
        expected[r, 1 : r + 1] = 1
    np.testing.assert_array_equal(read_labelme(path), expected)


def test_rectangle_circle_and_bladder_wins(tmp_path: Path) -> None:
    shapes = [
        _shape("metastasis", [[4, 3], [1, 1]], "rectangle"),  # corners in any order
        _shape(" BLADDER ", [[1, 6], [1, 7]], "circle"),  # centre (1,6), radius 1
        _shape("bladder", [[3, 3], [5, 3], [5, 5]]),  # overlaps the rectangle
    ]
    mask = read_labelme(_write(tmp_path / "a.json", shapes))
    assert mask.dtype == np.uint8 and mask.shape == (8, 6)
    assert (mask[1:4, 1:5] > 0).all()
    assert mask[3, 3] == 2 and mask[3, 4] == 2 and mask[3, 2] == 1
    assert mask[6, 1] == 2 and mask[5, 1] == 2 and mask[6, 0] == 2 and mask[6, 2] == 2
    assert mask[0].sum() == 0


def test_other_labels_and_types_are_ignored_and_reported(tmp_path: Path) -> None:
    shapes = [
        _shape("fracture", [[1, 1], [1, 4], [4, 4]]),
        _shape("metastasis", [[1, 1], [3, 3]], "line"),
        _shape("metastasis", [[1, 1], [3, 3]]),
        _shape("metastasis", [[2, 2], [3, 2], [3, 3]]),
    ]
    result = load_labelme(_write(tmp_path / "a.json", shapes))
    assert len(result.ignored) == 3
    assert "fracture" in result.ignored[0]
    assert "line" in result.ignored[1]
    assert "fewer than 3" in result.ignored[2]
    assert result.mask.sum() == 3  # only the last triangle


def test_points_scaled_to_target_shape(tmp_path: Path) -> None:
    # Annotated on a 16 x 12 image and read onto 8 x 6: x' = (x + 0.5) * 6 / 12 - 0.5, so
    # the corners x = 2.5, 4.5 and y = 4.5, 6.5 land on pixel centres 1, 2 and 2, 3.
    rect = _shape("metastasis", [[2.5, 4.5], [4.5, 6.5]], "rectangle")
    path = _write(tmp_path / "a.json", [rect], 16, 12)
    mask = read_labelme(path, (8, 6))
    expected = np.zeros((8, 6), np.uint8)
    expected[2:4, 1:3] = 1
    np.testing.assert_array_equal(mask, expected)
    assert read_labelme(path).shape == (16, 12)


def test_missing_size_uses_source_shape_or_image(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "scan.json", [_shape("metastasis", [[0, 0], [1, 1]], "rectangle")], None
    )
    with pytest.raises(ValueError, match="imageHeight"):
        read_labelme(path)
    assert read_labelme(path, (4, 4)).sum() == 4
    Image.new("L", (6, 8)).save(tmp_path / "scan.png")  # PIL size is (width, height)
    assert read_labelme_for_image(tmp_path / "scan.png", (4, 3)).sum() == 1


def test_no_sibling_json_means_nothing_annotated(tmp_path: Path) -> None:
    mask = read_labelme_for_image(tmp_path / "nothing.png", (10, 4))
    assert mask.shape == (10, 4) and mask.dtype == np.uint8 and not mask.any()


@pytest.mark.parametrize(
    ("content", "word"),
    [
        ("{not json", "readable"),
        ('{"version": "5"}', "shapes"),
        ('{"shapes": [{"label": "bladder", "points": [[1, "a"]]}]}', r"shapes\[0\]"),
    ],
)
def test_malformed_files_refused(tmp_path: Path, content: str, word: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=word):
        read_labelme(path, (4, 4))


def test_trace_boundary_of_a_square_and_a_pixel() -> None:
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True
    assert trace_boundary(square) == [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 3),
        (3, 3),
        (3, 2),
        (3, 1),
        (2, 1),
    ]
    dot = np.zeros((3, 3), bool)
    dot[1, 1] = True
    assert trace_boundary(dot) == [(1, 1)]
    assert trace_boundary(np.zeros((2, 2), bool)) == []


def test_polygons_one_per_component() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[1:3, 1:3] = 1
    mask[3, 3] = 1  # touches the first by a corner: same component
    mask[6:9, 6:9] = 1
    mask[0, 9] = 2
    polys = mask_to_polygons(mask)
    assert [name for name, _ in polys] == ["metastasis", "metastasis", "bladder"]
    assert sorted(polys[1][1]) == [(6, 6), (6, 8), (8, 6), (8, 8)]  # straight runs dropped
    assert polys[2][1] == [(0, 9)] * 3


def test_written_file_is_labelme(tmp_path: Path) -> None:
    mask = np.zeros((20, 10), np.uint8)
    mask[2:6, 2:5] = 1
    mask[15:18, 3:8] = 2
    write_labelme(tmp_path / "v.json", mask, "v.png", (40, 20))
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["version"] == LABELME_VERSION == "5.4.1"
    assert doc["imageData"] is None and doc["imagePath"] == "v.png"
    assert (doc["imageHeight"], doc["imageWidth"]) == (40, 20)
    assert {s["label"] for s in doc["shapes"]} == {"metastasis", "bladder"}
    assert all(s["shape_type"] == "polygon" and len(s["points"]) >= 3 for s in doc["shapes"])
    # Scaled to the 40 x 20 image and read back onto the mask's grid: the same mask.
    np.testing.assert_array_equal(read_labelme(tmp_path / "v.json", (20, 10)), mask)


def test_write_refuses_bad_mask(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mask"):
        write_labelme(tmp_path / "x.json", np.zeros((4, 4), np.int32), "x.png", (4, 4))
    with pytest.raises(ValueError, match="image_shape"):
        write_labelme(tmp_path / "x.json", np.zeros((4, 4), np.uint8), "x.png", (4, 0))


def _expected_after_round_trip(mask: np.ndarray) -> np.ndarray:
    """Components with their holes filled, bladder drawn over metastasis."""
    out = np.zeros_like(mask)
    for value in (1, 2):
        labelled, n = ndimage.label(mask == value, structure=np.ones((3, 3)))
        for i in range(1, n + 1):
            out[ndimage.binary_fill_holes(labelled == i)] = value
    out[mask == 2] = 2
    return out


@st.composite
def blob_masks(draw: st.DrawFn) -> np.ndarray:
    h, w = draw(st.integers(3, 40)), draw(st.integers(3, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    smooth = ndimage.gaussian_filter(rng.random((h, w)), draw(st.floats(0.3, 3.0)))
    mask = np.zeros((h, w), np.uint8)
    mask[smooth > np.quantile(smooth, draw(st.floats(0.4, 0.95)))] = 1
    mask[smooth < np.quantile(smooth, draw(st.floats(0.0, 0.3)))] = 2
    if draw(st.booleans()):  # speckle: single pixels, thin lines, corner contacts
        mask[rng.random((h, w)) < 0.08] = draw(st.sampled_from([0, 1, 2]))
    return mask


@settings(max_examples=60, deadline=None)
@given(blob_masks())
def test_round_trip_is_exact_up_to_holes(
    tmp_path_factory: pytest.TempPathFactory, mask: np.ndarray
) -> None:
    path = tmp_path_factory.mktemp("rt") / "m.json"
    write_labelme(path, mask, "m.png", mask.shape)
    np.testing.assert_array_equal(read_labelme(path, mask.shape), _expected_after_round_trip(mask))


def test_round_trip_of_convex_blobs_on_the_canonical_grid(tmp_path: Path) -> None:
    mask = np.zeros((1024, 256), np.uint8)
    yy, xx = np.ogrid[:1024, :256]
    mask[(yy - 200) ** 2 / 4 + (xx - 80) ** 2 <= 15**2] = 1
    mask[(yy - 600) ** 2 + (xx - 180) ** 2 <= 9**2] = 1
    mask[(yy - 900) ** 2 + (xx - 128) ** 2 / 3 <= 30**2] = 2
    write_labelme(tmp_path / "c.json", mask, "c.png", (1024, 256))
    np.testing.assert_array_equal(read_labelme(tmp_path / "c.json"), mask)


def test_trace_boundary_lists_one_pixel_wide_parts_twice() -> None:
    line = np.zeros((3, 5), bool)
    line[1, 1:4] = True
    assert trace_boundary(line) == [(1, 1), (1, 2), (1, 3), (1, 2)]
    with pytest.raises(ValueError, match="component"):
        trace_boundary(np.zeros(4, bool))


def test_a_ring_gives_its_outer_polygon_only() -> None:
    mask = np.zeros((7, 7), np.uint8)
    mask[1:6, 1:6] = 1
    mask[2:5, 2:5] = 0  # a hole
    mask[3, 3] = 2  # bladder inside the hole: its own polygon
    polys = mask_to_polygons(mask)
    assert polys == [("metastasis", [(1, 1), (1, 5), (5, 5), (5, 1)]), ("bladder", [(3, 3)] * 3)]
