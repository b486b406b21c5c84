"""Segmenting only the rows the classifier opened gives the whole-view answer.

With a pointwise segmenter (no context at all) the two modes must agree exactly; the
bands themselves are checked against hand-computed cases.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from core.imaging.crops import crop_origins
from core.networks.inference import open_bands, predict_batch
from core.networks.models import ClassifierConfig, LoadedModels, SegmenterConfig

ORIGINS = crop_origins()  # rows 0, 128, ..., 768


def _probs(open_rows: set[int], label: int = 0) -> np.ndarray:
    p = np.zeros((len(ORIGINS), 2), np.float32)
    for k, (r, _) in enumerate(ORIGINS):
        if r in open_rows:
            p[k, label] = 0.9
    return p


@pytest.mark.parametrize(
    ("open_rows", "expected"),
    [
        (set(), []),
        ({256}, [(192, 576, 256, 512)]),  # 256-64 = 192; 512+64 = 576 (both multiples of 32)
        ({0, 128}, [(0, 448, 0, 384)]),  # merged; the top edge clips the context
        ({0, 768}, [(0, 320, 0, 256), (704, 1024, 768, 1024)]),
        ({128, 384}, [(64, 704, 128, 640)]),  # touching crops make one stretch
    ],
)
def test_bands_by_hand(open_rows: set[int], expected: list[tuple[int, int, int, int]]) -> None:
    assert open_bands(_probs(open_rows), ORIGINS, 256, 0.5, 1024) == expected


def test_either_label_opens_and_context_rounds_out() -> None:
    assert open_bands(_probs({512}, label=1), ORIGINS, 256, 0.5, 1024) == [(448, 832, 512, 768)]
    # 40 rows of context round out to the 32-row grid: 512-40 = 472 -> 448; 808 -> 832
    assert open_bands(_probs({512}), ORIGINS, 256, 0.5, 1024, context=40) == [(448, 832, 512, 768)]
    assert open_bands(_probs({512}), ORIGINS, 256, 0.5, 1024, context=0) == [(512, 768, 512, 768)]


def test_bad_band_arguments() -> None:
    with pytest.raises(ValueError, match="origins"):
        open_bands(np.zeros((3, 2)), ORIGINS, 256, 0.5, 1024)
    with pytest.raises(ValueError, match="context"):
        open_bands(_probs(set()), ORIGINS, 256, 0.5, 1000)


class _RowClassifier(nn.Module):
    """Crop 'probability' from the crop's mean: open where the crop holds a hot spot."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hot = (x.amax(dim=(1, 2, 3)) > 1.5).float() * 8 - 4  # logit +4 or -4
        return torch.stack([hot, torch.full_like(hot, -4.0)], dim=1)


class _PointwiseSegmenter(nn.Module):
    """Logits from each pixel alone: metastasis where the input is hot."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows += x.shape[0] * x.shape[2]
        met = (x > 1.5).float() * 2 - 1
        return torch.cat([-met, met, torch.full_like(met, -5.0)], dim=1)


def _models() -> LoadedModels:
    return LoadedModels(
        classifier=_RowClassifier(),
        segmenter=_PointwiseSegmenter(),
        classifier_config=ClassifierConfig(),
        segmenter_config=replace(SegmenterConfig()),
        device=torch.device("cpu"),
    )


def _view(spots: list[tuple[int, int]]) -> np.ndarray:
    v = np.full((1024, 256), 10.0, np.float32)
    v[100:950, 60:200] = 40.0
    for r, c in spots:
        v[r : r + 12, c : c + 12] = 4000.0
    return v


def test_gated_equals_full_for_a_pointwise_segmenter() -> None:
    models = _models()
    scans = [
        {"ANT": _view([(300, 100)]), "POST": _view([])},
        {"ANT": _view([(40, 80), (900, 120)])},
    ]
    full = predict_batch(models, scans, segment="full")
    seg = models.segmenter
    assert isinstance(seg, _PointwiseSegmenter)
    seg.rows = 0
    gated = predict_batch(models, scans, segment="gated")
    for f, g in zip(full, gated, strict=True):
        assert f.probabilities == g.probabilities
        for view in f.masks:
            np.testing.assert_array_equal(f.masks[view], g.masks[view])
    assert full[0].masks["ANT"].any() and not full[0].masks["POST"].any()
    # the view without a hot spot was not segmented, and far fewer rows were seen in all
    assert seg.rows < 3 * 1024 / 2


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="segment"):
        predict_batch(_models(), [{"ANT": _view([])}], segment="sometimes")
