"""Confusion figures, their formatting, ROC AUC and Dice (core.evaluation.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from monai.metrics import compute_dice

from core.evaluation.metrics import (
    Confusion,
    confusion,
    dice,
    dice_over_views,
    format_dice,
    format_rate,
    mean_dice_over_views,
    roc_auc,
)


def test_confusion_counts_and_figures() -> None:
    c = confusion([1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1, 0])
    assert c == Confusion(tp=2, fp=1, tn=3, fn=1)
    assert c.n == 7
    assert c.sensitivity == pytest.approx(2 / 3)
    assert c.specificity == pytest.approx(3 / 4)
    assert c.accuracy == pytest.approx(5 / 7)
    assert c.ppv == pytest.approx(2 / 3)
    assert c.npv == pytest.approx(3 / 4)


def test_undefined_figures_are_none() -> None:
    c = confusion([0, 0], [0, 0])
    assert c.sensitivity is None and c.ppv is None
    assert c.specificity == 1.0 and c.npv == 1.0
    assert Confusion(0, 0, 0, 0).accuracy is None
    assert c.formatted("sensitivity") == "n/a"


def test_confusion_refuses() -> None:
    with pytest.raises(ValueError, match="lengths"):
        confusion([1, 0], [1])
    with pytest.raises(ValueError, match="y_pred"):
        confusion([1, 0], [1, 2])
    with pytest.raises(ValueError, match="tp"):
        Confusion(-1, 0, 0, 0)
    with pytest.raises(ValueError, match="figure"):
        Confusion(1, 0, 0, 0).fraction("f1")


def test_confusion_adds() -> None:
    assert Confusion(1, 2, 3, 4) + Confusion(10, 20, 30, 40) == Confusion(11, 22, 33, 44)


@pytest.mark.parametrize(
    ("num", "den", "text"),
    [
        (50, 54, "92.59 % (50/54)"),
        (2, 2, "2/2"),
        (12, 13, "12/13"),
        (19, 19, "19/19"),
        (20, 20, "100.00 % (20/20)"),
        (0, 25, "0.00 % (0/25)"),
        (1, 40, "2.50 % (1/40)"),  # exact half written as it is
        (1, 8000, "0.01 % (1/8000)"),  # 0.0125 -> half up
        (0, 0, "n/a"),
    ],
)
def test_format_rate(num: int, den: int, text: str) -> None:
    assert format_rate(num, den) == text


def test_format_rate_refuses() -> None:
    with pytest.raises(ValueError, match="numerator"):
        format_rate(3, 2)


def test_format_dice() -> None:
    assert format_dice(0.7385) == "0.739"  # half up on the decimal written
    assert format_dice(0.7174) == "0.717"
    assert format_dice(None) == "n/a"
    assert format_dice(math.nan) == "n/a"


def test_roc_auc_hand_computed() -> None:
    # Positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3/4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # A tie between a positive and a negative counts one half: (0.5 + 1) / 2.
    assert roc_auc([0, 1, 1], [0.5, 0.5, 0.9]) == pytest.approx(0.75)
    assert roc_auc([True, False], [0.9, 0.1]) == 1.0


def test_roc_auc_one_class_is_nan() -> None:
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_roc_auc_refuses() -> None:
    with pytest.raises(ValueError, match="scores"):
        roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="scores"):
        roc_auc([0, 1], [0.1, float("nan")])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=20))
def test_roc_auc_is_the_pair_probability(pairs: list[tuple[bool, int]]) -> None:
    y = [p[0] for p in pairs]
    s = [float(p[1]) for p in pairs]
    pos = [v for t, v in zip(y, s, strict=True) if t]
    neg = [v for t, v in zip(y, s, strict=True) if not t]
    if not pos or not neg:
        assert math.isnan(roc_auc(y, s))
        return
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert roc_auc(y, s) == pytest.approx(wins / (len(pos) * len(neg)))


def test_dice_hand_computed() -> None:
    p = np.array([[1, 1, 0], [0, 0, 0]], np.uint8)
    t = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)
    assert dice(p, t) == pytest.approx(2 * 1 / (2 + 3))
    assert dice(p, p) == 1.0
    assert dice(p, np.zeros_like(p)) == 0.0
    assert dice(np.zeros_like(p), np.zeros_like(p)) == 1.0


def test_dice_refuses() -> None:
    with pytest.raises(ValueError, match="shapes"):
        dice(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="pred_mask"):
        dice(np.full((2, 2), 2, np.uint8), np.zeros((2, 2), bool))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.bool_, (6, 5)), hnp.arrays(np.bool_, (6, 5)))
def test_dice_agrees_with_monai(p: np.ndarray, t: np.ndarray) -> None:
    if not t.any():
        return  # MONAI (ignore_empty=True) gives NaN there; ours is documented apart
    ref = compute_dice(
        torch.from_numpy(p)[None, None].float(), torch.from_numpy(t)[None, None].float()
    )
    assert dice(p, t) == pytest.approx(float(ref.item()), abs=1e-6)


def test_mean_dice_over_views_skips_views_without_the_class() -> None:
    truth_ant = np.array([[1, 1], [0, 2]], np.uint8)
    truth_post = np.array([[0, 0], [0, 2]], np.uint8)  # no metastasis: not counted
    pred_ant = np.array([[1, 0], [0, 2]], np.uint8)  # Dice 2*1/(1+2) = 2/3
    pred_post = np.array([[1, 1], [0, 0]], np.uint8)  # bladder Dice 0
    truth = {"ANT": truth_ant, "POST": truth_post}
    pred = {"ANT": pred_ant, "POST": pred_post}
    assert dice_over_views(pred, truth) == pytest.approx([2 / 3])
    assert mean_dice_over_views(pred, truth) == pytest.approx(2 / 3)
    assert mean_dice_over_views(pred, truth, label=2) == pytest.approx((1.0 + 0.0) / 2)
    assert mean_dice_over_views(pred, {"POST": truth_post}) is None
    with pytest.raises(ValueError, match="POST"):
        mean_dice_over_views({"ANT": pred_ant}, truth)
