"""A fine-tune's defaults: frozen early stages, a small batch and rate; options given win."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from cli import build_parser
from cli.models import _train_options
from core.networks import fine_tune
from core.networks.models import CLASSIFIER, SEGMENTER
from core.networks.sampling import TrainingData, build_training_data
from core.networks.trainer import (
    FREEZABLE_STAGES,
    TrainOptions,
    _Trainer,
    frozen_modules,
    set_train_mode,
    train,
)
from tests.test_train import TINY, _case


def test_fine_tune_options_are_the_documented_defaults() -> None:
    opts = fine_tune.fine_tune_options(1800.0, init_from="models")
    assert opts.init_from == "models" and opts.time_budget_s == 1800.0
    assert opts.freeze_stages == fine_tune.FREEZE_STAGES == 2
    assert opts.batch_size == 8 and opts.lr == pytest.approx(1e-4)
    assert opts.hard_negative_share == 0.5 and opts.positive_share == pytest.approx(0.3)
    assert opts.segmenter.train_crop == (256, 256)
    assert opts.checkpoint_every == 25 and opts.test_fraction == pytest.approx(0.1)


def test_explicit_options_win_and_bad_ones_are_refused() -> None:
    opts = fine_tune.fine_tune_options(None, init_from="m", lr=1e-3, batch_size=4)
    assert opts.lr == pytest.approx(1e-3) and opts.batch_size == 4
    assert opts.steps == fine_tune.MAX_STEPS and opts.time_budget_s is None
    with pytest.raises(ValueError, match="not training options"):
        fine_tune.fine_tune_options(10.0, init_from="m", learning_rate=1.0)
    with pytest.raises(ValueError, match="time_budget_s"):
        fine_tune.fine_tune_options(0.0, init_from="m")
    with pytest.raises(ValueError, match="init_from"):
        fine_tune.fine_tune_options(10.0, init_from=" ")
    with pytest.raises(ValueError, match="freeze_stages"):
        TrainOptions(freeze_stages=len(FREEZABLE_STAGES))


def test_train_command_uses_fine_tune_defaults_only_with_init_from() -> None:
    parser = build_parser()
    scratch = _train_options(parser.parse_args(["train", "d", "--out", "o"]))
    assert (scratch.lr, scratch.batch_size, scratch.steps, scratch.freeze_stages) == (
        0.01,
        16,
        3000,
        0,
    )
    assert scratch.hard_negative_share == 0.0
    args = ["train", "d", "--out", "o", "--init-from", "models", "--time-budget", "2400"]
    tuned = _train_options(parser.parse_args(args))
    assert tuned.freeze_stages == 2 and tuned.lr == pytest.approx(1e-4)
    assert tuned.hard_negative_share == 0.5
    assert tuned.time_budget_s == 2400 and tuned.init_from == "models"
    given = _train_options(parser.parse_args([*args, "--lr", "0.001", "--seg-crop-rows", "512"]))
    assert given.lr == pytest.approx(0.001) and given.segmenter.train_crop == (512, 256)
    assert given.batch_size == 8


@pytest.fixture(scope="module")
def data() -> TrainingData:
    rng = np.random.default_rng(0)
    cases = [(f"c{i}", f"p{i}", *_case(rng, 2 if i % 2 else 0)) for i in range(4)]
    return build_training_data(cases, {"dataset": "synthetic"})


@pytest.mark.slow
def test_frozen_stages_keep_weights_and_batch_norm_statistics(
    data: TrainingData, tmp_path: Path
) -> None:
    opts = dataclasses.replace(TINY, freeze_stages=2)
    t = _Trainer(data, tmp_path, opts)
    set_train_mode(t.classifier, t.frozen[CLASSIFIER])
    set_train_mode(t.segmenter, t.frozen[SEGMENTER])
    before = {
        name: {k: v.clone() for k, v in model.state_dict().items()}
        for name, model in ((CLASSIFIER, t.classifier), (SEGMENTER, t.segmenter))
    }
    t.step_classifier()
    t.step_segmenter()
    for name, model in ((CLASSIFIER, t.classifier), (SEGMENTER, t.segmenter)):
        prefix = "encoder." if name == SEGMENTER else ""
        after = model.state_dict()
        for key, value in after.items():
            frozen = any(key.startswith(f"{prefix}{s}.") for s in FREEZABLE_STAGES[2])
            if frozen:
                # weights and running statistics alike: eval-mode batch norm
                assert torch.equal(value, before[name][key]), key
        moved = [
            k
            for k, v in after.items()
            if k.startswith(f"{prefix}layer4.") and v.is_floating_point()
            if not torch.equal(v, before[name][k])
        ]
        assert moved, f"{name}: layer4 did not learn"
    assert all(not m.training for m in frozen_modules(t.classifier, 2))


@pytest.mark.slow
def test_a_frozen_run_resumes_only_with_the_same_freezing(
    data: TrainingData, tmp_path: Path
) -> None:
    opts = dataclasses.replace(TINY, freeze_stages=1, steps=2, keep_checkpoint=True)
    train(data, tmp_path, opts, stop_after=1)
    with pytest.raises(ValueError, match="other data or settings"):
        train(data, tmp_path, dataclasses.replace(opts, freeze_stages=0), resume=True)
    result = train(data, tmp_path, opts, resume=True)
    assert result.finished and result.step == 2
    assert (tmp_path / "progress.json").exists()
