"""Label masks from segmenter logits: argmax, or a calibrated metastasis threshold."""

from __future__ import annotations

import math

import pytest
import torch

from core.networks.inference import segment_labels
from core.networks.models import SegmenterConfig, config_from_dict, config_to_dict


def _logits(*probs: tuple[float, float, float]) -> torch.Tensor:
    """Logits (1, 3, 1, n) whose softmax is the given (bg, met, bladder) per pixel."""
    x = torch.tensor([[math.log(p) for p in px] for px in probs]).T
    return x[None, :, None, :]


PIXELS = _logits(
    (0.60, 0.35, 0.05),  # background by argmax; metastasis at threshold 0.3
    (0.75, 0.20, 0.05),  # background either way
    (0.30, 0.32, 0.38),  # bladder by argmax: stays bladder
    (0.20, 0.70, 0.10),  # metastasis either way
)


def test_argmax_without_a_threshold() -> None:
    assert segment_labels(PIXELS, SegmenterConfig()).flatten().tolist() == [0, 0, 2, 1]


def test_a_calibrated_threshold_adds_confident_enough_metastasis() -> None:
    cfg = SegmenterConfig(metastasis_pixel_threshold=0.3)
    assert segment_labels(PIXELS, cfg).flatten().tolist() == [1, 0, 2, 1]
    strict = SegmenterConfig(metastasis_pixel_threshold=0.8)  # above every pixel's 0.70
    assert segment_labels(PIXELS, strict).flatten().tolist() == [0, 0, 2, 0]
    assert segment_labels(PIXELS, cfg).dtype == torch.uint8


def test_the_threshold_is_checked_and_round_trips() -> None:
    with pytest.raises(ValueError, match="metastasis_pixel_threshold"):
        SegmenterConfig(metastasis_pixel_threshold=1.0)
    cfg = SegmenterConfig(metastasis_pixel_threshold=0.35)
    assert config_from_dict("segmenter", config_to_dict(cfg)) == cfg
    old_card = {k: v for k, v in config_to_dict(SegmenterConfig()).items()}
    del old_card["metastasis_pixel_threshold"]  # cards written before the field existed
    assert config_from_dict("segmenter", old_card).metastasis_pixel_threshold is None
