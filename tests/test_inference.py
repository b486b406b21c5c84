from __future__ import annotations

import numpy as np
import pytest

from core.imaging.crops import crop_origins, gate_mask
from core.networks.inference import predict, predict_batch
from core.networks.models import (
    LoadedModels,
)
from tests.conftest import body_view


@pytest.fixture(scope="module")
def models(untrained_models: LoadedModels) -> LoadedModels:
    return untrained_models


_view = body_view


def test_one_scan_prediction_is_consistent(models: LoadedModels) -> None:
    p = predict(models, {"ANT": _view(1), "POST": _view(2)})
    assert p.crop_origins == tuple(crop_origins())
    assert set(p.masks) == set(p.masks_ungated) == {"ANT", "POST"}
    for view in ("ANT", "POST"):
        probs = p.crop_probabilities[view]
        assert probs.shape == (7, 2) and probs.dtype == np.float32
        assert ((probs >= 0) & (probs <= 1)).all()
        mask = p.masks[view]
        assert mask.shape == (1024, 256) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1, 2}
        np.testing.assert_array_equal(mask, gate_mask(p.masks_ungated[view], probs, p.crop_origins))
    both = np.concatenate([p.crop_probabilities["ANT"], p.crop_probabilities["POST"]])
    assert p.probabilities["metastasis"] == pytest.approx(float(both[:, 0].max()))
    assert p.probabilities["bladder"] == pytest.approx(float(both[:, 1].max()))
    assert p.positive == {k: v >= 0.5 for k, v in p.probabilities.items()}


def test_batch_equals_one_by_one(models: LoadedModels) -> None:
    scans = [{"ANT": _view(3)}, {"POST": _view(4)}]
    batch = predict_batch(models, scans, classifier_batch=5, segmenter_batch=1)
    for scan, got in zip(scans, batch, strict=True):
        alone = predict(models, scan)
        assert set(got.masks) == set(scan)
        for view in scan:
            np.testing.assert_allclose(
                got.crop_probabilities[view], alone.crop_probabilities[view], atol=1e-5
            )
            np.testing.assert_array_equal(got.masks_ungated[view], alone.masks_ungated[view])


def test_bad_input_is_refused(models: LoadedModels) -> None:
    with pytest.raises(ValueError, match="shape"):
        predict(models, {"ANT": np.zeros((512, 256), np.float32)})
    with pytest.raises(ValueError, match="unknown view"):
        predict(models, {"LAT": _view(0)})
    with pytest.raises(ValueError, match="no view"):
        predict(models, {})
    assert predict_batch(models, []) == []
