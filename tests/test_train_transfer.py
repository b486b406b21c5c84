"""Fine-tuning, CPU bfloat16, hard-negative mining and the transfer switches of training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli import build_parser, main
from core.networks.augment import TRANSFER_AUGMENTATION
from core.networks.device import native_bfloat16
from core.networks.models import ClassifierConfig, load_model, read_card
from core.networks.sampling import HardNegatives, TrainingData
from core.networks.trainer import CHECKPOINT_NAME, TrainOptions, _Trainer, train
from tests.test_train import TINY, _write_dataset, synthetic_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return synthetic_data()


@pytest.fixture(scope="module")
def init_dir(data: TrainingData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder to fine-tune from (a tiny run with another seed)."""
    out = tmp_path_factory.mktemp("init")
    train(data, out, dataclasses.replace(TINY, seed=5, steps=1))
    return out


def test_hard_draws_prefer_high_scores() -> None:
    positions = np.array([[v, r] for v in range(4) for r in (0, 32, 64)], dtype=np.int64)
    hard = HardNegatives(positions[::-1].copy())  # any order in
    scores = np.full(len(positions), 0.01)
    hot = hard.index(np.array([[1, 32], [3, 64]]))
    assert (hot >= 0).all()
    scores[hot] = [3.0, 1.0]  # a fake scoring: two hard positions
    hard.scores = scores
    drawn = hard.draw(np.random.default_rng(0), 20000)
    share = {(1, 32): 0.0, (3, 64): 0.0}
    for key in share:
        share[key] = float(np.mean((drawn[:, 0] == key[0]) & (drawn[:, 1] == key[1])))
    total = scores.sum()
    assert share[(1, 32)] == pytest.approx(3.0 / total, abs=0.015)
    assert share[(3, 64)] == pytest.approx(1.0 / total, abs=0.015)
    assert share[(1, 32)] > 10 * 0.01 / total  # far above a cold position's chance


def test_replace_and_update_touch_negative_positions_only() -> None:
    hard = HardNegatives(np.array([[0, 0], [0, 32], [1, 0]], dtype=np.int64))
    picks = np.array([[0, 0], [5, 64], [1, 0], [0, 32]], dtype=np.int64)  # (5, 64) positive
    out = hard.replace(picks, np.random.default_rng(0), share=1.0)
    assert tuple(out[1]) == (5, 64)
    assert all(hard.index(out[[0, 2, 3]]) >= 0)
    assert hard.replace(picks, np.random.default_rng(0), share=0.0) is picks
    # crops whose (jittered, augmented) target held metastasis do not score the position
    hard.update(picks, np.array([0.7, 0.9, 0.0, 2.0]), np.array([True, True, True, False]))
    np.testing.assert_allclose(hard.scores, [0.7, 1.0, HardNegatives.FLOOR])


def test_share_zero_samples_exactly_as_before(data: TrainingData, tmp_path: Path) -> None:
    s = _Trainer(data, tmp_path, TINY).sampler
    assert s.hard is None
    expected = s.classifier_strata.sample(np.random.default_rng(0), TINY.batch_size)
    s.rng = np.random.default_rng(0)
    _, _, picks = s.batch(s.classifier_strata, (256, 256), 16)
    np.testing.assert_array_equal(picks, expected)


def test_classifier_step_scores_its_negatives(data: TrainingData, tmp_path: Path) -> None:
    opts = dataclasses.replace(TINY, batch_size=4, hard_negative_share=0.5, positive_share=0.0)
    t = _Trainer(data, tmp_path, opts)
    hard = t.sampler.hard
    assert hard is not None
    t.step_classifier()
    changed = hard.scores != HardNegatives.INITIAL
    assert 1 <= changed.sum() <= 4
    assert (hard.scores[changed] > 0).all() and (hard.scores[changed] < 50).all()


def test_fine_tuning_starts_from_the_folder_and_resumes_exactly(
    data: TrainingData, init_dir: Path, tmp_path: Path
) -> None:
    opts = dataclasses.replace(
        TINY, init_from=str(init_dir), hard_negative_share=0.5, augment=TRANSFER_AUGMENTATION
    )
    t = _Trainer(data, tmp_path / "probe", opts)
    start, _, _ = load_model(init_dir, "classifier", "cpu")
    for k, v in start.state_dict().items():
        assert torch.equal(t.classifier.state_dict()[k], v), k
    assert t.amp == native_bfloat16()  # bfloat16 autocast on a CPU that has it natively

    straight = train(data, tmp_path / "a", opts)
    assert straight.finished
    train(data, tmp_path / "b", opts, stop_after=1)
    ckpt = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=False)
    assert ckpt["hard_scores"] is not None and (ckpt["hard_scores"] != 1.0).any()
    with pytest.raises(ValueError, match="other data or settings"):
        train(data, tmp_path / "b", TINY, resume=True)  # another starting point
    train(data, tmp_path / "b", opts, resume=True)
    for name in ("classifier", "segmenter"):
        a, b = read_card(tmp_path / "a", name), read_card(tmp_path / "b", name)
        assert a["weights"]["sha256"] == b["weights"]["sha256"], name
        init = a["training"]["init_from"]
        assert init["path"] == str(init_dir)
        assert init[f"{name}_sha256"] == read_card(init_dir, name)["weights"]["sha256"]
        assert a["training"]["amp_dtype"] == ("bfloat16" if native_bfloat16() else "float32")
        assert a["training"]["hard_negative_share"] == 0.5
        assert a["training"]["augmentation"]["export_prob"] > 0


def test_fine_tuning_refuses_another_architecture(
    data: TrainingData, init_dir: Path, tmp_path: Path
) -> None:
    opts = dataclasses.replace(
        TINY, init_from=str(init_dir), classifier=ClassifierConfig(stem_kernel=3)
    )
    with pytest.raises(ValueError, match="stem_kernel"):
        _Trainer(data, tmp_path, opts)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="hard_negative_share"):
        TrainOptions(hard_negative_share=1.5)
    with pytest.raises(ValueError, match="init_from"):
        TrainOptions(init_from=" ")


def test_train_command_passes_the_new_switches(tmp_path: Path, init_dir: Path) -> None:
    args = build_parser().parse_args(["train", "d", "--out", "o"])
    assert args.augment == "standard" and args.hard_negative_share is None
    assert args.init_from is None
    dataset, out = tmp_path / "dataset", tmp_path / "model"
    _write_dataset(dataset, n=4)
    argv = [
        "train", str(dataset), "--out", str(out), "--steps", "1", "--batch-size", "2",
        "--val-cases", "0", "--device", "cpu", "--quiet", "--init-from", str(init_dir),
        "--hard-negative-share", "0.5", "--augment", "transfer", "--positive-share", "0.3",
    ]  # fmt: skip
    assert main(argv) == 0
    card = read_card(out, "classifier")
    assert card["training"]["init_from"]["path"] == str(init_dir)
    assert card["training"]["positive_share"] == 0.3
    transfer = json.loads(json.dumps(dataclasses.asdict(TRANSFER_AUGMENTATION)))
    assert card["training"]["augmentation"] == transfer
