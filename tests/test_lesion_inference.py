"""The lesion network in the product: a folder with ``lesion.json`` makes the calls with it.

Checks that :func:`core.networks.inference.predict_batch` dispatches to the lesion
network, that a scan it calls negative keeps no metastasis pixel, that
``load_models(lesion=False)`` gives back the paper's two networks, that the model
identity changes with the lesion weights, and that calibration writes the lesion card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.analysis import model_identity
from core.anatomy.regions import REGIONS
from core.config import COLS, ROWS
from core.networks.calibrate import ThresholdChoice, apply_calibration
from core.networks.inference import predict_batch, predict_lesions
from core.networks.lesion_net import (
    LESION,
    LesionNetConfig,
    build_network,
    save_lesion_network,
    set_lesion_thresholds,
)
from core.networks.models import DEFAULT_MODEL_DIR, load_models

SMALL = (4, 8, 16, 32, 64)


def _folder(tmp_path: Path, threshold: float) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for path in DEFAULT_MODEL_DIR.iterdir():
        if path.suffix in (".json", ".safetensors") and not path.name.startswith(LESION):
            shutil.copy(path, folder / path.name)
    cfg = LesionNetConfig(channels=SMALL, threshold=threshold, bladder_threshold=threshold)
    save_lesion_network(folder, build_network(cfg), cfg)
    return folder


def _scan() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    views = {v: rng.poisson(5.0, (ROWS, COLS)).astype(np.float32) for v in ("ANT", "POST")}
    spine = next(r.index for r in REGIONS if r.name == "thoracic_spine")
    skeleton = np.zeros((ROWS, COLS), dtype=np.uint8)
    skeleton[300:600, 118:138] = spine
    return views, {v: skeleton for v in views}


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_predict_batch_uses_the_lesion_network(tmp_path: Path, threshold: float) -> None:
    """Scores in [0, 1], calls by the card's threshold, no crops; negative keeps no lesion."""
    models = load_models(_folder(tmp_path, threshold), device="cpu")
    assert models.lesion is not None
    views, maps = _scan()
    (pred,) = predict_batch(models, [views], skeletons=[maps])
    assert pred.crop_origins == ()
    assert set(pred.probabilities) == {"metastasis", "bladder"}
    assert all(0.0 <= p <= 1.0 for p in pred.probabilities.values())
    assert pred.positive["metastasis"] is (pred.probabilities["metastasis"] >= threshold)
    for v in views:
        assert pred.masks[v].shape == (ROWS, COLS) and pred.masks[v].dtype == np.uint8
        if threshold == 1.0 and not pred.positive["metastasis"]:
            assert not (pred.masks[v] == 1).any()
        if threshold == 0.0:
            np.testing.assert_array_equal(pred.masks[v], pred.masks_ungated[v])


def test_lesion_false_loads_the_two_networks(tmp_path: Path) -> None:
    """``lesion=False`` leaves the lesion network out, and the identity differs."""
    folder = _folder(tmp_path, 0.5)
    with_lesion = load_models(folder, device="cpu")
    without = load_models(folder, device="cpu", lesion=False)
    assert without.lesion is None and without.lesion_card is None
    assert model_identity(with_lesion) != model_identity(without)
    assert "lesion:" in model_identity(with_lesion)[0]
    assert "lesion:" not in model_identity(without)[0]


def test_predict_lesions_refuses_bad_arguments(tmp_path: Path) -> None:
    """Missing maps, a length mismatch and a folder without a lesion network are refused."""
    models = load_models(_folder(tmp_path, 0.5), device="cpu")
    views, maps = _scan()
    with pytest.raises(ValueError, match="skeletons"):
        predict_lesions(models, [views], [])
    with pytest.raises(ValueError, match="no map"):
        predict_lesions(models, [views], [{"ANT": maps["ANT"]}])
    plain = load_models(tmp_path / "models", device="cpu", lesion=False)
    with pytest.raises(ValueError, match="no lesion network"):
        predict_lesions(plain, [views], [maps])


def test_calibration_writes_the_lesion_card(tmp_path: Path) -> None:
    """With a lesion network the chosen threshold goes into lesion.json, weights untouched."""
    folder = _folder(tmp_path, 0.5)
    before = json.loads((folder / "classifier.json").read_text())
    sha = json.loads((folder / "lesion.json").read_text())["weights"]["sha256"]
    choice = ThresholdChoice(threshold=0.3125, sensitivity=0.9, specificity=0.8, youden=0.7)
    card = apply_calibration(
        folder, choice, dataset="cal", n_cases=10, n_positive=5, command="calibrate cal"
    )
    assert card["config"]["threshold"] == 0.3125
    assert card["weights"]["sha256"] == sha
    assert card["calibration"]["metastasis_threshold"]["chosen_on"].startswith("10 scans")
    assert json.loads((folder / "classifier.json").read_text()) == before
    assert load_models(folder, device="cpu").lesion is not None


def test_set_lesion_thresholds_validates(tmp_path: Path) -> None:
    """A threshold outside [0, 1] is refused and the card is left as it was."""
    folder = _folder(tmp_path, 0.5)
    text = (folder / "lesion.json").read_text()
    with pytest.raises(ValueError, match="threshold"):
        set_lesion_thresholds(folder, threshold=1.5)
    assert (folder / "lesion.json").read_text() == text
