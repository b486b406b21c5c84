"""A calibrated metastasis threshold decides the scan's call and the segmentation gate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.config import LABEL_METASTASIS
from core.imaging.crops import crop_origins, gate_mask
from core.networks.calibrate import calibrated_config
from core.networks.inference import open_bands, predict_batch
from core.networks.models import LoadedModels
from tests.conftest import body_view


@pytest.fixture(scope="module")
def models(untrained_models: LoadedModels) -> LoadedModels:
    return untrained_models


_view = body_view


def test_gate_mask_takes_one_threshold_per_label() -> None:
    origins = [(0, 0), (128, 0)]
    mask = np.zeros((384, 256), np.uint8)
    mask[10, 10] = 1  # metastasis, only in crop 0
    mask[300, 10] = 2  # bladder, only in crop 1
    probs = np.array([[0.6, 0.0], [0.0, 0.6]])
    both = gate_mask(mask, probs, origins, threshold=(0.5, 0.5))
    assert both[10, 10] == 1 and both[300, 10] == 2
    # 0.6 is below a calibrated metastasis threshold of 0.7: the lesion is closed
    calibrated = gate_mask(mask, probs, origins, threshold=(0.7, 0.5))
    assert calibrated[10, 10] == 0 and calibrated[300, 10] == 2
    with pytest.raises(ValueError, match="one per label"):
        gate_mask(mask, probs, origins, threshold=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gate_mask(mask, probs, origins, threshold=(1.5, 0.5))


def test_open_bands_follow_each_labels_threshold() -> None:
    origins = crop_origins()
    probs = np.zeros((len(origins), 2))
    probs[3, 0] = 0.6  # rows 384-640 metastasis at 0.6
    assert open_bands(probs, origins, 256, (0.5, 0.5), 1024)
    assert open_bands(probs, origins, 256, (0.7, 0.5), 1024) == []


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_the_scan_call_and_the_gate_agree(models: LoadedModels, threshold: float) -> None:
    cfg = calibrated_config(models.classifier_config, threshold)
    calibrated = dataclasses.replace(models, classifier_config=cfg)
    (p,) = predict_batch(calibrated, [{"ANT": _view(1), "POST": _view(2)}], segment="full")
    assert p.thresholds == {"metastasis": threshold, "bladder": 0.5}
    assert p.positive["metastasis"] is (threshold == 0.0)
    assert p.positive["bladder"] is (p.probabilities["bladder"] >= 0.5)
    for view, mask in p.masks.items():
        ungated = p.masks_ungated[view] == LABEL_METASTASIS
        if threshold == 0.0:  # every crop open: the gate keeps every lesion pixel
            np.testing.assert_array_equal(mask == LABEL_METASTASIS, ungated)
        else:  # a scan called negative keeps no lesion
            assert not (mask == LABEL_METASTASIS).any()
