"""The BSI's regions as a table and a small body map (core/burden/body_map.py, ui/body_map.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from core.anatomy.regions import LABELS, index_of
from core.burden.body_map import (
    BACKGROUND_RGB,
    BONE_RGB,
    EDGE_SIDES,
    MAP_WIDTH_PX,
    body_map_pair,
    body_map_rgb,
    involvement_rgb,
    label_colours,
    skeleton_rows,
)
from core.burden.charts import bsi_region_rows
from ui.body_map import BONE_LEGEND, body_map_figure, bsi_absent_reason, region_table

#: A tiny two-region skeleton on a 1024 x 256 view: lumbar spine and left pelvis blocks.
LUMBAR = (slice(500, 520), slice(118, 138))
PELVIS = (slice(600, 620), slice(140, 160))


def skeleton() -> np.ndarray:
    labels = np.zeros((1024, 256), np.uint8)
    labels[LUMBAR] = index_of("lumbar_spine")
    labels[PELVIS] = index_of("pelvis_left")
    return labels


def test_the_scale_runs_from_a_clear_yellow_to_dark_brown_never_grey() -> None:
    assert involvement_rgb(0.0) == BONE_RGB
    low, high = involvement_rgb(1e-6), involvement_rgb(1.0)
    assert low != BONE_RGB and low[0] > 240 and low[2] < 160  # yellow, not grey or white
    assert sum(high) < sum(involvement_rgb(0.5)) < sum(low)  # darker as involvement grows
    with pytest.raises(ValueError, match="fraction"):
        involvement_rgb(1.2)


def test_each_label_gets_its_colour_background_white_uninvolved_grey() -> None:
    lut = label_colours({"lumbar_spine": 0.25, "skull": 0.0})
    assert lut.shape == (len(LABELS), 3)
    assert tuple(lut[0]) == BACKGROUND_RGB
    assert tuple(lut[index_of("skull")]) == BONE_RGB
    assert tuple(lut[index_of("ribs_left")]) == BONE_RGB  # not named: uninvolved
    assert tuple(lut[index_of("lumbar_spine")]) == involvement_rgb(0.25)
    with pytest.raises(ValueError, match="lumbar_spine"):
        label_colours({"lumbar_spine": -0.1})


def test_the_map_is_the_skeleton_coloured_and_scaled_to_its_width() -> None:
    rgb = body_map_rgb(skeleton(), {"pelvis_left": 1.0}, width=MAP_WIDTH_PX)
    assert rgb.shape == (512, 128, 3) and rgb.dtype == np.uint8
    # the blocks, halved: the pelvis in the darkest colour, the spine grey, the rest white
    assert tuple(rgb[305, 75]) == involvement_rgb(1.0)
    assert tuple(rgb[255, 64]) == BONE_RGB
    assert tuple(rgb[10, 10]) == BACKGROUND_RGB
    with pytest.raises(ValueError, match="skeleton"):
        body_map_rgb(np.zeros((4, 4), np.float32), {})
    with pytest.raises(ValueError, match="labels"):
        body_map_rgb(np.full((4, 4), 200, np.uint8), {})


def test_the_map_is_cropped_to_the_rows_holding_bone() -> None:
    assert skeleton_rows({"ANT": skeleton()}, margin=8) == (492, 628)
    assert skeleton_rows({"ANT": np.zeros((10, 4), np.uint8)}) == (0, 10)
    with pytest.raises(ValueError, match="one height"):
        skeleton_rows({"ANT": skeleton(), "POST": np.zeros((10, 256), np.uint8)})


def test_the_figure_shows_both_views_their_sides_and_the_scale() -> None:
    fig = body_map_figure({"POST": skeleton(), "ANT": skeleton()}, {"lumbar_spine": 0.4})
    images = [t for t in fig.data if t.type == "image"]
    assert [t.name for t in images] == ["ANT", "POST"]  # in VIEWS order
    png = Image.open(io.BytesIO(base64.b64decode(images[0].source.split(",", 1)[1])))
    assert png.size == (MAP_WIDTH_PX, round((628 - 492) / 2))
    bar = next(t for t in fig.data if t.name == "Involvement").marker
    assert bar.showscale and (bar.cmin, bar.cmax) == (0.0, 100.0)
    assert any(t.name == BONE_LEGEND and t.showlegend is not False for t in fig.data)
    sides = [a.text for a in fig.layout.annotations if a.text in ("R", "L")]
    assert sides == [*EDGE_SIDES["ANT"], *EDGE_SIDES["POST"]]
    assert fig.layout.width < 500  # a small map
    with pytest.raises(ValueError, match="skeletons"):
        body_map_figure({}, {})


def test_the_table_lists_involved_regions_head_to_feet() -> None:
    stored = {
        "pelvis_left": {"involvement": 0.5, "percent": 1.8731},
        "skull": {"involvement": 0.0, "percent": 0.0},
        "lumbar_spine": {"involvement": 0.25, "percent": 0.6841},
    }
    rows = bsi_region_rows(stored)
    assert [r.region for r in rows] == ["lumbar_spine", "pelvis_left"]
    assert region_table(rows) == [
        {"bone": "lumbar spine", "side": "mid", "involvement_pct": 25.0, "bsi_pct": 0.6841},
        {"bone": "pelvis", "side": "left", "involvement_pct": 50.0, "bsi_pct": 1.8731},
    ]
    assert len(bsi_region_rows(stored, involved_only=False)) == 3
    with pytest.raises(ValueError, match="skull"):
        bsi_region_rows({"skull": {"involvement": 2.0, "percent": 0.0}})


def test_a_missing_bsi_is_explained_in_words() -> None:
    assert bsi_absent_reason({"quality": "ok", "bsi": 1.2}) is None
    refused = bsi_absent_reason({"quality": "Not a bone scan.", "bsi": None})
    assert refused is not None and "quality gate" in refused
    none = bsi_absent_reason({"quality": "ok", "bsi": None}, skeleton_network=False)
    assert none is not None and "no skeleton network" in none
    lost = bsi_absent_reason({"quality": "ok", "bsi": None}, skeleton_network=True)
    assert lost is not None and "did not find the skeleton" in lost
    unknown = bsi_absent_reason({"quality": "ok", "bsi": None})
    assert unknown is not None and "or it did not find" in unknown


def test_the_pair_puts_anterior_then_posterior_side_by_side_cropped_to_the_body() -> None:
    ant = skeleton()
    post = np.zeros_like(ant)  # the posterior view: only the lumbar spine
    post[LUMBAR] = index_of("lumbar_spine")
    pair = body_map_pair({"POST": post, "ANT": ant}, {"pelvis_left": 1.0}, width=32, gap=4)
    rows = skeleton_rows({"ANT": ant, "POST": post})
    height = round((rows[1] - rows[0]) * 32 / 256)
    assert pair.shape == (height, 32 + 4 + 32, 3) and pair.dtype == np.uint8
    assert (pair[:, 32:36] == BACKGROUND_RGB).all()  # the gap
    left, right = pair[:, :32], pair[:, 36:]
    np.testing.assert_array_equal(
        left, body_map_rgb(ant, {"pelvis_left": 1.0}, width=32, rows=rows)
    )
    # the pelvis is involved on the anterior map (left) only: no brown on the right
    brown = np.asarray(involvement_rgb(1.0))
    assert (np.abs(left.astype(int) - brown).sum(axis=-1) < 40).any()
    assert not (np.abs(right.astype(int) - brown).sum(axis=-1) < 40).any()
    with pytest.raises(ValueError, match="skeletons"):
        body_map_pair({}, {})
