"""One seed fixes every batch and the trained weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from core.networks.augment import AugmentConfig
from core.networks.models import read_card
from core.networks.sampling import BatchSampler, TrainingData, build_training_data
from core.networks.trainer import train
from tests.test_train import TINY, _case

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> TrainingData:
    rng = np.random.default_rng(0)
    cases = [(f"c{i}", f"p{i}", *_case(rng, 2 if i % 2 else 0)) for i in range(4)]
    return build_training_data(cases, {"dataset": "synthetic"})


def _sampler(data: TrainingData, seed: int) -> BatchSampler:
    return BatchSampler(
        data,
        np.arange(len(data.view_names)),
        256,
        (256, 256),
        batch_size=3,
        positive_share=0.5,
        hard_negative_share=0.5,
        augment=AugmentConfig(),
        seed=seed,
        device=torch.device("cpu"),
        channels_last=False,
    )


def test_one_seed_draws_the_same_batches(data: TrainingData) -> None:
    a, b, other = _sampler(data, 3), _sampler(data, 3), _sampler(data, 4)
    for _ in range(2):
        xa, ma, pa = a.classifier_batch()
        xb, mb, pb = b.classifier_batch()
        assert torch.equal(xa, xb) and torch.equal(ma, mb)
        np.testing.assert_array_equal(pa, pb)
        xs, _, _ = a.segmenter_batch()
        assert torch.equal(xs, b.segmenter_batch()[0])
    assert not torch.equal(other.classifier_batch()[0], _sampler(data, 3).classifier_batch()[0])


def test_one_seed_trains_the_same_weights(data: TrainingData, tmp_path: Path) -> None:
    opts = dataclasses.replace(TINY, seed=7)
    for run in ("a", "b"):
        train(data, tmp_path / run, opts)
    for name in ("classifier", "segmenter"):
        a, b = (read_card(tmp_path / r, name)["weights"]["sha256"] for r in "ab")
        assert a == b, f"{name}: two runs with one seed differ"
