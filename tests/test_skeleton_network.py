from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.anatomy.network import (
    SKELETON,
    SkeletonNetConfig,
    build_network,
    load_skeleton_network,
    normalise,
    oriented,
    predict_labels,
    reference_levels,
    save_skeleton_network,
    to_input,
)
from core.anatomy.regions import N_LABELS
from core.config import COLS, ROWS
from core.networks.models import ModelFileError

SMALL = SkeletonNetConfig(input_shape=(64, 16), channels=(4, 8, 16), strides=(2, 2))


def _views(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    body = np.zeros((ROWS, COLS), np.float32)
    body[100:900, 90:170] = 20.0
    body[300:700, 40:60] = 35.0  # an arm on the image left only: not symmetric
    ant = rng.poisson(body).astype(np.float32)
    return {"ANT": ant, "POST": rng.poisson(body[:, ::-1]).astype(np.float32)}


def test_config_round_trips_and_rejects_bad_values() -> None:
    cfg = SkeletonNetConfig()
    assert cfg.input_shape == (512, 128) and len(cfg.labels) == N_LABELS
    assert SkeletonNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        SkeletonNetConfig(input_shape=(500, 128))
    with pytest.raises(ValueError):
        SkeletonNetConfig(strides=(2, 2))
    with pytest.raises(ValueError):
        SkeletonNetConfig.from_dict({"depth": 3})


def test_network_maps_input_shape_to_label_logits() -> None:
    model = build_network(SMALL).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, *SMALL.input_shape))
    assert out.shape == (2, N_LABELS, *SMALL.input_shape)


def test_normalisation_is_bounded_and_ignores_a_hot_bladder() -> None:
    v = _views()["ANT"]
    hot = v.copy()
    hot[880:920, 110:150] = 5000.0  # a bladder far hotter than bone, 0.6 % of the field
    t = torch.from_numpy(np.stack([v, hot]))[:, None]
    ref = reference_levels(t)
    assert float(ref[1]) == pytest.approx(float(ref[0]), rel=0.1)
    x = normalise(t)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 2.0
    assert to_input(x, (512, 128)).shape == (2, 1, 512, 128)
    assert float(normalise(torch.zeros(1, 1, 8, 8)).abs().max()) == 0.0


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_network(SMALL).eval()
    # the files hold float16: compare with the model rounded the same way
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    card = save_skeleton_network(tmp_path, model, SMALL, {"training": {"step": 3}})
    assert card["weights"]["dtype"] == "float16" and card["training"] == {"step": 3}
    loaded, cfg = load_skeleton_network(tmp_path)
    assert cfg == SMALL
    x = torch.rand(2, 1, *SMALL.input_shape)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    views = _views()
    a, b = predict_labels((model, SMALL), views), predict_labels((loaded, cfg), views)
    for v in views:
        assert a[v].shape == (ROWS, COLS) and a[v].dtype == np.uint8
        np.testing.assert_array_equal(a[v], b[v])


def test_a_changed_weights_file_is_refused(tmp_path: Path) -> None:
    save_skeleton_network(tmp_path, build_network(SMALL), SMALL)
    path = tmp_path / f"{SKELETON}.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_skeleton_network(tmp_path)


def test_post_is_labelled_in_the_anterior_orientation() -> None:
    torch.manual_seed(1)
    model = build_network(SMALL).eval()
    ant = _views()["ANT"]
    # the same picture given as ANT, and as the POST view of the same patient
    out = predict_labels((model, SMALL), {"ANT": ant, "POST": ant[:, ::-1].copy()})
    np.testing.assert_array_equal(out["POST"], out["ANT"][:, ::-1])
    np.testing.assert_array_equal(oriented("POST", oriented("POST", ant)), ant)
    with pytest.raises(ValueError):
        oriented("LAT", ant)
