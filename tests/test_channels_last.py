"""Loaded models run channels-last; their outputs equal the NCHW model's within rounding."""

from __future__ import annotations

from pathlib import Path

import torch

from core.networks.models import build_classifier, build_segmenter, load_model


def test_loaded_models_are_channels_last_and_agree_with_nchw(untrained_model_dir: Path) -> None:
    torch.manual_seed(0)
    for name, build, shape in (
        ("classifier", build_classifier, (3, 1, 256, 256)),
        ("segmenter", build_segmenter, (1, 1, 256, 256)),
    ):
        model, _, _ = load_model(untrained_model_dir, name, "cpu")
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        nchw = build().eval()
        nchw.load_state_dict(model.state_dict())
        x = torch.rand(shape) * 2  # normalised counts lie in [0, 2]
        with torch.inference_mode():
            got, want = model(x), nchw(x)
        # the stated tolerance: 1e-4 absolute on logits of order 1
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
