"""The lesion network's inputs, scan score, config and files (core.networks.lesion_net)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.anatomy.regions import index_of, mirror_lut
from core.config import COLS, ROWS
from core.networks.files import ModelFileError, file_sha256
from core.networks.lesion_net import (
    LESION,
    LESION_INPUTS,
    MIN_BONE_PIXELS,
    RATIO_MAX,
    LesionNetConfig,
    bone_reference,
    build_network,
    lesion_inputs,
    load_lesion_network,
    save_lesion_network,
    scan_score,
)

SMALL = LesionNetConfig(channels=(4, 8, 16, 32, 64))
SPINE = index_of("thoracic_spine")
HUMERUS_R = index_of("humerus_right")  # image left on an anterior view
HUMERUS_L = index_of("humerus_left")

B = 40.0  # uniform normal-bone counts
SOFT = 0.25 * B
ARM = 1.5 * B  # the humeri are hotter than the spine, both sides alike
HOT = 3.0 * B
SPOT_ROWS, SPOT_COLS = slice(400, 410), slice(40, 50)  # a 10 x 10 spot on humerus_right
SPOT = (405, 44)
MIRROR_SPOT = (405, COLS - 1 - 44)  # mid-line at column 127.5: c -> 255 - c


def _symmetric_case() -> tuple[np.ndarray, np.ndarray]:
    """A symmetric skeleton (spine band, a humerus pair) and its view, one hot spot."""
    skeleton = np.zeros((ROWS, COLS), np.uint8)
    skeleton[100:900, 112:144] = SPINE  # 25 600 pixels: the bone median is B
    skeleton[200:700, 40:50] = HUMERUS_R
    skeleton[200:700, 206:216] = HUMERUS_L  # the mirror of columns 40..49
    assert mirror_lut()[HUMERUS_R] == HUMERUS_L
    view = np.full((ROWS, COLS), SOFT, np.float32)
    view[skeleton == SPINE] = B
    view[(skeleton == HUMERUS_R) | (skeleton == HUMERUS_L)] = ARM
    view[SPOT_ROWS, SPOT_COLS] = HOT
    view[950:980, 112:144] = 200.0 * B  # a bladder, off the skeleton, far above RATIO_MAX
    return view, skeleton


# --- bone_reference ----------------------------------------------------------------------


def test_bone_reference_is_the_median_over_skeleton_pixels() -> None:
    """With enough skeleton pixels the level is their median, whatever lies off bone."""
    view = np.full((64, 64), 5.0, np.float32)
    skeleton = np.zeros((64, 64), np.uint8)
    skeleton[:50, :40] = SPINE  # exactly MIN_BONE_PIXELS pixels
    assert skeleton.astype(bool).sum() == MIN_BONE_PIXELS
    view[:50, :40] = 30.0
    view[:10, :40] = 90.0  # a fifth of the bone hot: the median stays 30
    view[60:, 60:] = 1e5  # a hot bladder off the skeleton
    assert bone_reference(view, skeleton) == 30.0


def test_bone_reference_falls_back_when_the_skeleton_is_small_or_empty() -> None:
    """Too few skeleton pixels: twice the median of the positive pixels."""
    view = np.zeros((64, 64), np.float32)
    view[:, :32] = 7.0  # half the view at 7, the rest 0 (ignored: not positive)
    view[:4, :4] = 100.0
    small = np.zeros((64, 64), np.uint8)
    small[:10, :10] = SPINE  # 100 < MIN_BONE_PIXELS pixels, median 100 or 7: not used
    assert bone_reference(view, small) == 14.0
    assert bone_reference(view, np.zeros((64, 64), np.uint8)) == 14.0
    # one pixel fewer than the threshold falls back too
    edge = np.zeros((64, 64), np.uint8)
    edge.reshape(-1)[: MIN_BONE_PIXELS - 1] = SPINE
    assert bone_reference(view, edge) == 14.0


def test_bone_reference_falls_back_when_the_bone_median_is_zero() -> None:
    """A large skeleton over empty counts is not trusted: fallback to the positive pixels."""
    view = np.zeros((64, 64), np.float32)
    view[60:, :] = 3.0
    skeleton = np.zeros((64, 64), np.uint8)
    skeleton[:50, :] = SPINE  # 3200 pixels, all zero counts
    assert bone_reference(view, skeleton) == 6.0


def test_bone_reference_of_an_empty_view_is_one() -> None:
    """An all-zero view has level 1.0, with or without a skeleton."""
    view = np.zeros((64, 64), np.float32)
    skeleton = np.full((64, 64), SPINE, np.uint8)
    assert bone_reference(view, skeleton) == 1.0
    assert bone_reference(view, np.zeros_like(skeleton)) == 1.0


# --- lesion_inputs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def symmetric_inputs() -> np.ndarray:
    view, skeleton = _symmetric_case()
    return lesion_inputs(view, skeleton)


def test_inputs_have_the_documented_shape_dtype_and_range(symmetric_inputs: np.ndarray) -> None:
    """float32 (3, 1024, 256), each value in [0, log1p(RATIO_MAX)]."""
    x = symmetric_inputs
    assert x.shape == (3, ROWS, COLS) and x.dtype == np.float32
    assert float(x.min()) >= 0.0
    assert float(x.max()) <= np.float32(math.log1p(RATIO_MAX))
    # the bladder saturates at the top instead of going past it
    assert x[0, 960, 128] == pytest.approx(math.log1p(RATIO_MAX), rel=1e-6)


def test_view_channel_is_counts_over_the_bone_level(symmetric_inputs: np.ndarray) -> None:
    """Channel 0 is log1p(counts / b): log 2 on normal bone, log1p(3) on a 3x spot."""
    x = symmetric_inputs[0]
    assert x[500, 128] == pytest.approx(math.log(2.0), rel=1e-6)  # spine, at b
    assert x[300, 45] == pytest.approx(math.log1p(1.5), rel=1e-6)  # humerus at 1.5 b
    assert x[300, 210] == pytest.approx(math.log1p(1.5), rel=1e-6)
    assert x[SPOT] == pytest.approx(math.log1p(3.0), rel=1e-6)
    assert x[50, 5] == pytest.approx(math.log1p(0.25), rel=1e-6)  # soft tissue


def test_mirror_channel_shows_the_other_side(symmetric_inputs: np.ndarray) -> None:
    """A one-sided spot is in channel 0 but not channel 1 at its place, and in channel 1
    at its mirrored place; symmetric bone reads the same in both channels."""
    x0, x1 = symmetric_inputs[0], symmetric_inputs[1]
    assert x1[SPOT] == pytest.approx(math.log1p(1.5), abs=1e-3)  # the other arm: no spot
    assert x1[SPOT] < x0[SPOT] - 0.3
    assert x1[MIRROR_SPOT] == pytest.approx(math.log1p(3.0), abs=1e-3)
    assert x0[MIRROR_SPOT] == pytest.approx(math.log1p(1.5), rel=1e-6)
    # away from the spot and from edges, symmetric bone mirrors itself
    assert x1[600, 45] == pytest.approx(x0[600, 45], abs=1e-3)
    assert x1[500, 128] == pytest.approx(x0[500, 128], abs=1e-3)


def test_region_channel_is_the_region_median_on_bone_and_zero_off_it(
    symmetric_inputs: np.ndarray,
) -> None:
    """Channel 2 is log1p(region median / b) on bone (the spot does not move it), 0 off."""
    _, skeleton = _symmetric_case()
    x2 = symmetric_inputs[2]
    np.testing.assert_allclose(x2[skeleton == SPINE], math.log(2.0), rtol=1e-6)
    arm = (skeleton == HUMERUS_R) | (skeleton == HUMERUS_L)
    np.testing.assert_allclose(x2[arm], math.log1p(1.5), rtol=1e-6)
    assert x2[SPOT] == pytest.approx(math.log1p(1.5), rel=1e-6)
    assert not x2[skeleton == 0].any()


def test_inputs_refuse_a_wrong_shape() -> None:
    """A view or skeleton other than (1024, 256) raises ValueError."""
    view, skeleton = _symmetric_case()
    with pytest.raises(ValueError):
        lesion_inputs(view[:512], skeleton[:512])
    with pytest.raises(ValueError):
        lesion_inputs(view, skeleton[:, :128])
    with pytest.raises(ValueError):
        lesion_inputs(view.T, skeleton)


# --- scan_score --------------------------------------------------------------------------


def test_scan_score_is_the_hottest_three_by_three_average() -> None:
    """One pixel of 0.9 in zeros scores 0.9 / 9 inside the field."""
    p = np.zeros((7, 7), np.float32)
    p[3, 3] = 0.9
    assert scan_score(p) == pytest.approx(0.1, rel=1e-6)
    q = np.zeros((7, 7), np.float32)
    q[2:5, 2:5] = 0.6  # a 3 x 3 patch: its centre's window is all 0.6
    q[0, 6] = 0.0
    assert scan_score(q) == pytest.approx(0.6, rel=1e-6)


def test_scan_score_divides_by_the_pixels_inside_the_field() -> None:
    """count_include_pad=False: a corner window holds 4 pixels, an edge window 6."""
    corner = np.zeros((7, 7), np.float32)
    corner[0, 0] = 0.9
    assert scan_score(corner) == pytest.approx(0.9 / 4, rel=1e-6)
    edge = np.zeros((7, 7), np.float32)
    edge[0, 3] = 0.9
    assert scan_score(edge) == pytest.approx(0.9 / 6, rel=1e-6)


def test_scan_score_takes_the_maximum_over_leading_dimensions() -> None:
    """A stack of views scores its hottest view."""
    p = np.zeros((2, 3, 7, 7), np.float32)
    p[1, 2, 3, 3] = 0.9
    p[0, 0, 3, 3] = 0.45
    assert scan_score(p) == pytest.approx(0.1, rel=1e-6)


def test_scan_score_of_an_empty_array_is_zero() -> None:
    """No pixels: 0.0."""
    assert scan_score(np.zeros((0, 7, 7), np.float32)) == 0.0
    assert scan_score(np.zeros((4, 0), np.float32)) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=9),
        elements=st.floats(0.0, 1.0, width=32),
    )
)
def test_scan_score_lies_between_zero_and_the_input_maximum(p: np.ndarray) -> None:
    """The score is in [0, 1] and never above the hottest pixel."""
    s = scan_score(p)
    assert 0.0 <= s <= 1.0
    assert s <= float(p.max()) * (1 + 1e-6) + 1e-7


# --- LesionNetConfig ---------------------------------------------------------------------


def test_config_round_trips_through_json() -> None:
    """to_dict -> JSON -> from_dict gives the same config."""
    for cfg in (LesionNetConfig(), SMALL, LesionNetConfig(threshold=0.3, dropout=0.1)):
        assert LesionNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert LesionNetConfig().to_dict()["labels"] == ["background", "metastasis", "bladder"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 1.5},
        {"bladder_threshold": -0.1},
        {"labels": ("background", "lesion", "bladder")},
        {"labels": ("background", "metastasis")},
        {"in_channels": 1},
        {"architecture": "resnet"},
        {"orientation": "posterior"},
        {"dropout": 1.0},
        {"strides": (2, 2, 2)},
        {"channels": (4, 8), "strides": (3,)},  # 3 does not divide 1024
    ],
)
def test_config_rejects_invalid_values(kwargs: dict[str, object]) -> None:
    """Invalid values raise ValueError, from the constructor and from from_dict."""
    with pytest.raises(ValueError):
        LesionNetConfig(**kwargs)  # type: ignore[arg-type]
    data = {**LesionNetConfig().to_dict(), **kwargs}
    with pytest.raises(ValueError):
        LesionNetConfig.from_dict(json.loads(json.dumps(data)))


def test_config_from_dict_rejects_an_unknown_key() -> None:
    """A key the config does not have raises ValueError."""
    with pytest.raises(ValueError, match="unknown"):
        LesionNetConfig.from_dict({**LesionNetConfig().to_dict(), "depth": 5})


# --- save / load -------------------------------------------------------------------------


def _saved(tmp_path: Path) -> tuple[torch.nn.Module, dict[str, object]]:
    torch.manual_seed(0)
    model = build_network(SMALL).eval()
    card = save_lesion_network(tmp_path, model, SMALL, {"training": {"step": 7}})
    return model, card


def test_save_load_round_trip_gives_the_same_outputs(tmp_path: Path) -> None:
    """The loaded network answers as the saved one, to float16 precision."""
    model, _ = _saved(tmp_path)
    loaded, cfg = load_lesion_network(tmp_path)
    assert cfg == SMALL and not loaded.training
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    assert got.shape == (1, 3, 64, 64)
    torch.testing.assert_close(got, expected, rtol=1e-2, atol=1e-2)
    # rounding the saved model's weights to float16 makes the answers identical
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        assert torch.equal(model(x), loaded(x))


def test_card_names_the_network_and_its_weights(tmp_path: Path) -> None:
    """The card is "lesion", holds the config, the extra entries and the weights' sha256."""
    _, card = _saved(tmp_path)
    on_disk = json.loads((tmp_path / f"{LESION}.json").read_text(encoding="utf-8"))
    assert on_disk == card
    assert card["name"] == "lesion"
    assert card["config"] == SMALL.to_dict()
    assert card["training"] == {"step": 7}
    weights = card["weights"]
    assert isinstance(weights, dict)
    assert weights["sha256"] == file_sha256(tmp_path / f"{LESION}.safetensors")
    assert weights["dtype"] == "float16"


def test_a_changed_weights_byte_is_refused(tmp_path: Path) -> None:
    """Editing one byte of the weights makes load raise ModelFileError."""
    _saved(tmp_path)
    path = tmp_path / f"{LESION}.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_lesion_network(tmp_path)


def _edit_card(folder: Path, edit: dict[str, object], where: str) -> None:
    path = folder / f"{LESION}.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    card[where].update(edit)
    path.write_text(json.dumps(card), encoding="utf-8")


def test_a_changed_card_sha256_is_refused(tmp_path: Path) -> None:
    """A card whose sha256 does not match the weights makes load raise ModelFileError."""
    _saved(tmp_path)
    _edit_card(tmp_path, {"sha256": "0" * 64}, "weights")
    with pytest.raises(ModelFileError, match="sha256"):
        load_lesion_network(tmp_path)


def test_a_card_with_other_inputs_is_refused(tmp_path: Path) -> None:
    """A network trained on another input construction is refused."""
    _saved(tmp_path)
    _edit_card(tmp_path, {"inputs": LESION_INPUTS + "-old"}, "config")
    with pytest.raises(ModelFileError, match="inputs"):
        load_lesion_network(tmp_path)


def test_a_card_with_an_invalid_config_is_refused(tmp_path: Path) -> None:
    """An invalid config in the card raises ModelFileError, not a bare ValueError."""
    _saved(tmp_path)
    _edit_card(tmp_path, {"threshold": 1.5}, "config")
    with pytest.raises(ModelFileError, match="not a valid card"):
        load_lesion_network(tmp_path)


def test_a_missing_card_is_refused(tmp_path: Path) -> None:
    """An empty folder raises ModelFileError."""
    with pytest.raises(ModelFileError):
        load_lesion_network(tmp_path)
