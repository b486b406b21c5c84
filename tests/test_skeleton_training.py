from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from monai.losses import DiceCELoss

from core.anatomy.network import SkeletonNetConfig, build_network
from core.anatomy.regions import N_LABELS, index_of, mirror_lut
from core.anatomy.training import (
    NO_AUGMENT,
    SkeletonAugment,
    augment_batch,
    dice_from_counts,
    load_checkpoint,
    overlap_counts,
    save_checkpoint,
    train_step,
)
from core.config import COLS, ROWS

SMALL = SkeletonNetConfig(input_shape=(64, 16), channels=(4, 8, 16), strides=(2, 2))
ROOT = Path(__file__).resolve().parent.parent


def _batch(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(n, ROWS, COLS, dtype=torch.long)
    labels[:, 200:800, 40:120] = index_of("humerus_right")  # image left: patient's right
    labels[:, 200:800, 136:216] = index_of("humerus_left")
    labels[:, 20:150, 100:156] = index_of("skull")
    counts = torch.poisson(5.0 + 40.0 * (labels > 0).float(), generator=gen)[:, None]
    return counts, labels


def test_augmented_batch_has_the_input_shape_and_valid_labels() -> None:
    counts, labels = _batch(4)
    x, y = augment_batch(counts, labels, SMALL, SkeletonAugment(), torch.Generator().manual_seed(1))
    assert x.shape == (4, 1, *SMALL.input_shape) and x.dtype == torch.float32
    assert y.shape == (4, *SMALL.input_shape) and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 2.0
    assert int(y.min()) >= 0 and int(y.max()) < N_LABELS


def test_flip_swaps_left_and_right_labels() -> None:
    counts, labels = _batch(1)
    gen = torch.Generator().manual_seed(0)
    _, plain = augment_batch(counts, labels, SMALL, NO_AUGMENT, gen)
    flip = SkeletonAugment(**{**NO_AUGMENT.__dict__, "flip_prob": 1.0})
    _, flipped = augment_batch(counts, labels, SMALL, flip, gen)
    lut = torch.tensor(mirror_lut())
    assert torch.equal(flipped, lut[plain.flip(-1)])
    # the patient's right stays on the image left after the flip
    cols = (flipped[0] == index_of("humerus_right")).nonzero()[:, 1].float().mean()
    assert float(cols) < SMALL.input_shape[1] / 2


def test_one_step_reduces_the_loss() -> None:
    torch.manual_seed(0)
    model = build_network(SMALL)
    counts, labels = _batch(2)
    x, y = augment_batch(counts, labels, SMALL, NO_AUGMENT, torch.Generator().manual_seed(0))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = train_step(model, opt, loss_fn, x, y)
    with torch.no_grad():
        after = float(loss_fn(model(x), y[:, None]))
    assert after < first


def test_dice_counts() -> None:
    truth = np.array([[0, 1, 1], [2, 2, 0]])
    pred = np.array([[0, 1, 0], [2, 2, 2]])
    dice = dice_from_counts(overlap_counts(pred, truth, 3))
    assert dice == pytest.approx({1: 2 / 3, 2: 0.8})


def test_checkpoint_resumes_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    counts, labels = _batch(2)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        model = build_network(SMALL)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3)

    model, opt = fresh()
    gen = torch.Generator().manual_seed(5)
    for _ in range(2):
        x, y = augment_batch(counts, labels, SMALL, SkeletonAugment(), gen)
        train_step(model, opt, loss_fn, x, y)
    save_checkpoint(tmp_path / "ck.pt", model, opt, 2, {"gen": gen.get_state()})
    assert not (tmp_path / "ck.pt.tmp").exists()
    x, y = augment_batch(counts, labels, SMALL, SkeletonAugment(), gen)
    train_step(model, opt, loss_fn, x, y)

    model2, opt2 = fresh()
    step, state = load_checkpoint(tmp_path / "ck.pt", model2, opt2)
    assert step == 2
    gen2 = torch.Generator()
    gen2.set_state(state["gen"])
    x2, y2 = augment_batch(counts, labels, SMALL, SkeletonAugment(), gen2)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    train_step(model2, opt2, loss_fn, x2, y2)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "train_skeleton", ROOT / "scripts/train_skeleton.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_skeleton"] = module
    spec.loader.exec_module(module)
    return module


def test_script_resumes_with_the_same_step_counter(tmp_path: Path) -> None:
    script = _script()
    common = [
        "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"),
        "--cases", "1", "--val-cases", "1", "--batch", "2", "--input-shape", "64", "16",
        "--ckpt-every", "2", "--eval-every", "3", "--bench-steps", "1",
    ]  # fmt: skip
    assert script.main([*common, "--steps", "3"]) == 0
    data = torch.load(tmp_path / "run/checkpoint.pt", weights_only=False)
    assert data["step"] == 3
    assert script.main([*common, "--steps", "5", "--resume"]) == 0
    assert torch.load(tmp_path / "run/checkpoint.pt", weights_only=False)["step"] == 5
    with open(tmp_path / "run/train.csv", newline="") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == [1, 2, 3, 4, 5]
    assert (tmp_path / "run/model/skeleton.safetensors").exists()
    assert "bench" in (tmp_path / "run/train.log").read_text()
