"""The lesion scorer: its config and files, and the calls it makes in the product.

A folder with ``scorer.json`` runs the segmenter on whole views and keeps a mark only
when the scorer's probability reaches the threshold; the scan's probability is its
highest mark score, so a scan is positive exactly when it keeps a mark.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.analysis import model_identity
from core.anatomy.regions import index_of
from core.config import COLS, ROWS
from core.lesions.features import FEATURES
from core.lesions.scorer import (
    SCORER,
    ScorerConfig,
    build_scorer,
    load_scorer,
    save_scorer,
    score,
    set_scorer_threshold,
)
from core.networks.calibrate import ThresholdChoice, apply_calibration
from core.networks.files import ModelFileError
from core.networks.inference import predict_batch, predict_scored
from core.networks.lesion_net import LESION
from core.networks.models import DEFAULT_MODEL_DIR, load_models
from workflow.model_versions import folder_identity


def _constant_scorer(value: float, threshold: float = 0.5) -> tuple[torch.nn.Module, ScorerConfig]:
    """A scorer whose every score is ``value`` (output bias = logit(value), weights 0)."""
    cfg = ScorerConfig(threshold=threshold, dropout=0.0)
    model = build_scorer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        output = model.get_submodule("output")
        assert isinstance(output, torch.nn.Linear)
        output.bias.fill_(float(np.log(value / (1 - value))))
    return model, cfg


def _folder(tmp_path: Path, value: float, threshold: float = 0.5) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for path in DEFAULT_MODEL_DIR.iterdir():
        stem = path.name.split(".")[0]
        if path.suffix in (".json", ".safetensors") and stem not in (LESION, SCORER):
            shutil.copy(path, folder / path.name)
    model, cfg = _constant_scorer(value, threshold)
    save_scorer(folder, model, cfg)
    return folder


def _scan() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A body-like view: bone on a spine band and both humeri, one hot spot on the left."""
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    skeleton[200:800, 118:138] = index_of("thoracic_spine")
    skeleton[250:600, 60:76] = index_of("humerus_right")
    skeleton[250:600, 180:196] = index_of("humerus_left")
    lam = np.where(skeleton > 0, 60.0, 8.0)
    lam[400:412, 182:194] = 600.0
    rng = np.random.default_rng(0)
    views = {v: rng.poisson(lam).astype(np.float32) for v in ("ANT", "POST")}
    return views, {v: skeleton for v in views}


def test_config_round_trip_and_validation() -> None:
    """to_dict/from_dict round-trips; other features, bad scales or thresholds are refused."""
    cfg = ScorerConfig(threshold=0.25)
    assert ScorerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="features"):
        ScorerConfig(features=FEATURES[:-1])
    with pytest.raises(ValueError, match="scale"):
        ScorerConfig(scale=tuple(0.0 for _ in FEATURES))
    with pytest.raises(ValueError, match="threshold"):
        ScorerConfig(threshold=1.2)
    with pytest.raises(ValueError, match="unknown"):
        ScorerConfig.from_dict({**cfg.to_dict(), "colour": "red"})


def test_score_is_the_sigmoid_of_the_network() -> None:
    """A constant scorer gives its value to every row; no rows give an empty array."""
    model, cfg = _constant_scorer(0.8)
    out = score(model, cfg, np.random.default_rng(1).normal(size=(5, len(FEATURES))))
    np.testing.assert_allclose(out, 0.8, rtol=1e-5)
    assert score(model, cfg, np.zeros((0, len(FEATURES)))).shape == (0,)


def test_files_round_trip_and_refuse_changes(tmp_path: Path) -> None:
    """Saved weights load back; an edited weights file is refused by its sha256."""
    model, cfg = _constant_scorer(0.3)
    card = save_scorer(tmp_path, model, cfg, {"metrics": {"mark_auc": 0.9}})
    loaded, cfg2 = load_scorer(tmp_path)
    assert cfg2 == cfg and card["name"] == SCORER
    x = np.zeros((2, len(FEATURES)))
    np.testing.assert_allclose(score(loaded, cfg2, x), score(model, cfg, x), atol=1e-3)
    weights = tmp_path / f"{SCORER}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_scorer(tmp_path)


@pytest.mark.parametrize(("value", "positive"), [(0.9, True), (0.1, False)])
def test_calls_and_masks_follow_the_mark_scores(
    tmp_path: Path, value: float, positive: bool
) -> None:
    """Kept marks are those at or above the threshold; the scan's call follows them."""
    models = load_models(_folder(tmp_path, value), device="cpu")
    assert models.scorer is not None and models.lesion is None
    views, maps = _scan()
    (pred,) = predict_batch(models, [views], skeletons=[maps])
    marks = sum(int((m == 1).sum()) for m in pred.masks_ungated.values())
    kept = sum(int((m == 1).sum()) for m in pred.masks.values())
    assert pred.crop_origins == ()
    if marks == 0:  # the segmenter found nothing: nothing to score, a negative scan
        assert pred.probabilities["metastasis"] == 0.0 and not pred.positive["metastasis"]
        return
    assert pred.probabilities["metastasis"] == pytest.approx(value, abs=1e-4)
    assert pred.positive["metastasis"] is positive
    assert kept == (marks if positive else 0)
    for v in views:  # the bladder is never removed
        np.testing.assert_array_equal(pred.masks[v] == 2, pred.masks_ungated[v] == 2)


def test_identity_includes_the_scorer(tmp_path: Path) -> None:
    """The loaded identity and the folder's identity from its cards agree, scorer included."""
    folder = _folder(tmp_path, 0.5)
    models = load_models(folder, device="cpu")
    assert "scorer:" in model_identity(models)[0]
    assert folder_identity(folder) == model_identity(models)
    plain = load_models(folder, device="cpu", lesion=False)
    assert plain.scorer is None and "scorer:" not in model_identity(plain)[0]


def test_predict_scored_refuses_bad_arguments(tmp_path: Path) -> None:
    """Length mismatch, a missing map and a folder without a scorer are refused."""
    folder = _folder(tmp_path, 0.5)
    models = load_models(folder, device="cpu")
    views, maps = _scan()
    with pytest.raises(ValueError, match="skeletons"):
        predict_scored(models, [views], [])
    with pytest.raises(ValueError, match="no map"):
        predict_scored(models, [views], [{"ANT": maps["ANT"]}])
    with pytest.raises(ValueError, match="no lesion scorer"):
        predict_scored(load_models(folder, device="cpu", lesion=False), [views], [maps])


def test_calibration_writes_the_scorer_card(tmp_path: Path) -> None:
    """Calibrating a folder with a scorer sets the scorer's threshold, weights untouched."""
    folder = _folder(tmp_path, 0.5)
    sha = json.loads((folder / "scorer.json").read_text())["weights"]["sha256"]
    choice = ThresholdChoice(threshold=0.625, sensitivity=0.9, specificity=0.85, youden=0.75)
    card = apply_calibration(
        folder, choice, dataset="cal", n_cases=20, n_positive=9, command="calibrate cal"
    )
    assert card["config"]["threshold"] == 0.625
    assert card["weights"]["sha256"] == sha
    assert load_models(folder, device="cpu").scorer is not None
    with pytest.raises(ValueError, match="threshold"):
        set_scorer_threshold(folder, 1.5)
