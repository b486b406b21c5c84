"""The lesion scorer: each candidate mark's probability of being a metastasis.

Issue 26. A small MONAI ``FullyConnectedNet`` over the standardised features of
:mod:`core.lesions.features` (one row per candidate mark). The scan's probability of
metastasis is the highest score among its marks (0 without any), and a mark is kept
when its score reaches the scorer's threshold, so that a scan called negative keeps no
mark and a scan called positive keeps only the marks that made it so.

A model folder holds ``scorer.safetensors`` (fp16) and ``scorer.json`` (config with the
feature names, means and scales; sha256; training; figures), written and read with the
shared helpers of :mod:`core.networks.files`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import FullyConnectedNet
from torch import nn
from torch.nn import functional

from core.lesions.features import FEATURES
from core.networks.files import (
    CardConfig,
    load_network_card,
    read_network_config,
    ready_network,
    save_network_files,
    update_network_card,
)

#: File stem of the scorer in a model folder.
SCORER = "scorer"


@dataclass(frozen=True)
class ScorerConfig(CardConfig):
    """How the scorer is built and applied.

    Attributes:
        features: Feature names in input order; must equal :data:`FEATURES`.
        mean: Per-feature mean subtracted before the network (training set's).
        scale: Per-feature scale divided by (training set's standard deviation, > 0).
        hidden: Hidden layer widths.
        dropout: Dropout probability between layers.
        threshold: Score at or above which a mark is kept and the scan called
            metastatic; calibrated on phantom scans of settings not used in training.
    """

    features: tuple[str, ...] = FEATURES
    mean: tuple[float, ...] = tuple(0.0 for _ in FEATURES)
    scale: tuple[float, ...] = tuple(1.0 for _ in FEATURES)
    hidden: tuple[int, ...] = (32, 32)
    dropout: float = 0.1
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            raise ValueError(f"features must be {FEATURES}, got {self.features}")
        if len(self.mean) != len(FEATURES) or len(self.scale) != len(FEATURES):
            raise ValueError("mean and scale must hold one value per feature")
        if not all(s > 0 for s in self.scale):
            raise ValueError("scale values must be > 0")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be positive widths, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")


def build_scorer(cfg: ScorerConfig | None = None) -> nn.Module:
    """Build the scorer (untrained).

    Returns:
        A MONAI ``FullyConnectedNet`` taking float32 (n, len(FEATURES)) standardised
        features and returning one logit per row, shape (n, 1).
    """
    cfg = cfg or ScorerConfig()
    return FullyConnectedNet(len(cfg.features), 1, cfg.hidden, dropout=cfg.dropout)


def standardise(features: np.ndarray, cfg: ScorerConfig) -> torch.Tensor:
    """Return ``(features - mean) / scale`` as a float32 tensor (n, len(FEATURES))."""
    x = np.asarray(features, dtype=np.float32).reshape(-1, len(cfg.features))
    mean = np.asarray(cfg.mean, dtype=np.float32)
    scale = np.asarray(cfg.scale, dtype=np.float32)
    return torch.from_numpy((x - mean) / scale)


@torch.no_grad()
def score(model: nn.Module, cfg: ScorerConfig, features: np.ndarray) -> np.ndarray:
    """Score candidate marks.

    Args:
        model: The scorer (eval mode).
        cfg: Its config.
        features: float (n, len(FEATURES)) rows of :mod:`core.lesions.features`.

    Returns:
        float32 (n,) probabilities in [0, 1] (empty for no rows).
    """
    if len(features) == 0:
        return np.zeros(0, dtype=np.float32)
    model.eval()
    logits = model(standardise(features, cfg)).float()[:, 0]
    return torch.sigmoid(logits).numpy().astype(np.float32)


def save_scorer(
    directory: Path | str,
    model: nn.Module,
    cfg: ScorerConfig,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the scorer's fp16 weights and its card into a model folder.

    Returns:
        The card as written to ``<directory>/scorer.json``.
    """
    return save_network_files(directory, SCORER, model, cfg.to_dict(), extra)


def load_scorer(
    directory: Path | str, device: torch.device | str = "cpu"
) -> tuple[nn.Module, ScorerConfig]:
    """Load the scorer of a model folder, checking its sha256.

    Raises:
        ModelFileError: If a file is missing, the sha256 differs, the config is
            invalid (other features than this code computes) or the weights do not fit.
    """
    cfg, weights = read_network_config(directory, SCORER, ScorerConfig)
    return ready_network(build_scorer(cfg), weights, "the scorer config", device), cfg


def set_scorer_threshold(directory: Path | str, threshold: float, **entries: Any) -> dict[str, Any]:
    """Write a calibrated threshold into a folder's scorer card (the weights are untouched).

    Raises:
        ModelFileError: If the card is missing or invalid.
        ValueError: If ``threshold`` is outside [0, 1].
    """
    card, _ = load_network_card(directory, SCORER)
    cfg = dataclasses.replace(ScorerConfig.from_dict(card["config"]), threshold=float(threshold))
    return update_network_card(directory, SCORER, cfg.to_dict(), **entries)


#: Full-batch epochs of a scorer trained from scratch (the shipped one; 40 s of one core
#: on 10,663 marks).
EPOCHS = 600
#: Adam's learning rate from scratch.
LEARNING_RATE = 3e-3
#: Adam's weight decay.
WEIGHT_DECAY = 1e-4


def fit_scorer(
    features: np.ndarray,
    truth: np.ndarray,
    *,
    init: tuple[nn.Module, ScorerConfig] | None = None,
    epochs: int = EPOCHS,
    lr: float = LEARNING_RATE,
    weight_decay: float = WEIGHT_DECAY,
    hidden: tuple[int, ...] = (32, 32),
    seed: int = 0,
    every: int = 100,
    report: Callable[[int, float, nn.Module, ScorerConfig], None] | None = None,
) -> tuple[nn.Module, ScorerConfig]:
    """Train a scorer on labelled marks with full-batch binary cross-entropy (Adam).

    Args:
        features: float (n, len(FEATURES)) marks' features, n >= 1.
        truth: bool (n,) whether each mark is a true metastasis.
        init: A scorer to start from (a centre's fine-tune): its weights, feature
            standardisation and threshold are kept, and ``hidden`` is ignored. None
            trains from scratch, standardising by these marks' mean and deviation.
        epochs: Full passes over the marks (>= 1).
        lr: Adam's learning rate (> 0).
        weight_decay: Adam's weight decay (>= 0).
        hidden: Hidden widths of a scorer trained from scratch.
        seed: Seed of the weights' initialisation and of dropout.
        every: Epochs between calls of ``report``.
        report: Called as ``report(epoch, loss, model, cfg)`` every ``every`` epochs and
            after the last.

    Returns:
        The trained scorer (eval mode) and its config.

    Raises:
        ValueError: If the shapes do not match, there is no mark, or a setting is out
            of range.
    """
    x = np.asarray(features, dtype=np.float32)
    y = np.asarray(truth, dtype=bool)
    if x.ndim != 2 or x.shape[1] != len(FEATURES):
        raise ValueError(f"features: expected (n, {len(FEATURES)}), got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"truth: expected ({len(x)},), got {y.shape}")
    if len(x) == 0:
        raise ValueError("features: no mark to learn from")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0 or weight_decay < 0:
        raise ValueError(f"lr must be > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
    torch.manual_seed(seed)
    if init is not None:
        model, cfg = copy.deepcopy(init[0]), init[1]
    else:
        scale = x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        cfg = ScorerConfig(
            mean=tuple(float(v) for v in x.mean(axis=0)),
            scale=tuple(float(v) for v in scale),
            hidden=tuple(hidden),
        )
        model = build_scorer(cfg)
    model = model.float().cpu()
    inputs = standardise(x, cfg)
    target = torch.from_numpy(y.astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for epoch in range(1, epochs + 1):
        model.train()
        loss = functional.binary_cross_entropy_with_logits(model(inputs)[:, 0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if report is not None and (epoch % every == 0 or epoch == epochs):
            model.eval()
            report(epoch, float(loss.detach()), model, cfg)
    model.eval()
    return model, cfg
