"""Training pieces of the skeleton network: augmentation, one step, Dice, checkpoints.

The loop itself (a phantom cache, logging, evaluation, resuming) is
``scripts/train_skeleton.py``; what it is made of lives here so that tests call it.

**Augmentation** (:func:`augment_batch`) mimics what a camera and an export vary, on
full-resolution counts in the anterior orientation, in this order:

1. *Resolution blur* (Gaussian, a few pixels): other collimators, scan speeds.
2. *Count thinning* (binomial, :func:`thin`): a Poisson
   image thinned is Poisson at the lower mean, i.e. a shorter scan or smaller dose.
3. *8-bit display export* (window, gamma, rounding to 0..255,
   :func:`core.networks.augment.display_export`): a PNG/JPEG screenshot.
4. *Reference jitter* (log-uniform factor on the normalisation reference) and a
   *display gamma* on the normalised values: the intensity scale of another camera.
5. Normalise (:func:`core.anatomy.network.normalise`) and resize to the input shape.
6. *Geometry*: small zoom, aspect stretch and shift, and a left-right flip that
   swaps left and right labels (:func:`core.anatomy.regions.mirror_lut`), sampled
   from the full-resolution labels with the image's own grid (nearest neighbour).
7. *Scan length*: the top or bottom of the field blanked (image 0, labels
   background): a scan stopped above the feet, or started below the vertex.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from core.anatomy.network import SkeletonNetConfig, normalise, reference_levels, to_input
from core.anatomy.regions import mirror_lut
from core.networks.augment import display_export, gaussian_blur

#: Views below this reference level (counts) are not thinned: they are not raw counts.
MIN_THIN_REFERENCE = 5.0


@dataclass(frozen=True)
class SkeletonAugment:
    """Ranges of the training augmentation (module docstring); probabilities per item.

    Attributes:
        blur_prob: Probability of a resolution blur.
        blur_sigma: (low, high) Gaussian sigma, full-resolution pixels.
        thin_prob: Probability of count thinning.
        thin_keep: (low, high) fraction of counts kept.
        export_prob: Probability of an 8-bit display export.
        export_window: (low, high) window top as a multiple of the reference.
        export_gamma: (low, high) export gamma.
        gamma_prob: Probability of a display gamma on the normalised input.
        gamma: (low, high) that gamma.
        reference_range: (low, high) log-uniform factor on the reference level.
        zoom: (low, high) log-uniform zoom (> 1 enlarges the anatomy).
        stretch: Largest relative aspect-ratio change.
        shift: Largest shift, a fraction of each side.
        flip_prob: Probability of a left-right flip (labels swapped).
        truncate_prob: Probability that the scan is cut short at the bottom or top.
        keep_rows: (low, high) fraction of rows kept when cut.
    """

    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    thin_prob: float = 0.5
    thin_keep: tuple[float, float] = (0.15, 1.0)
    export_prob: float = 0.3
    export_window: tuple[float, float] = (0.5, 1.5)
    export_gamma: tuple[float, float] = (0.6, 1.5)
    gamma_prob: float = 0.3
    gamma: tuple[float, float] = (0.75, 1.33)
    reference_range: tuple[float, float] = (0.7, 1.4)
    zoom: tuple[float, float] = (0.9, 1.1)
    stretch: float = 0.1
    shift: float = 0.05
    flip_prob: float = 0.5
    truncate_prob: float = 0.15
    keep_rows: tuple[float, float] = (0.55, 0.95)


#: No augmentation (validation, tests): only orientation-free normalise and resize.
NO_AUGMENT = SkeletonAugment(
    blur_prob=0.0,
    thin_prob=0.0,
    export_prob=0.0,
    gamma_prob=0.0,
    reference_range=(1.0, 1.0),
    zoom=(1.0, 1.0),
    stretch=0.0,
    shift=0.0,
    flip_prob=0.0,
    truncate_prob=0.0,
)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _chosen(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def thin(counts: torch.Tensor, keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Binomially thin counts, each ``c`` becoming ``Binomial(round(c), keep)``.

    The same draw as :func:`core.networks.augment.thin_counts`, made by NumPy (several
    times faster than ``torch.binomial`` on a CPU) from a seed drawn from ``gen``, so
    that the generator's state still decides the result.

    Args:
        counts: Counts >= 0, float, shape (N, ...).
        keep: Fraction kept per item, shape (N,), in [0, 1].
        gen: CPU random generator.

    Returns:
        float32 tensor of ``counts``' shape holding whole numbers.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    rng = np.random.default_rng(seed)
    c = counts.float().clamp_min(0).round().numpy().astype(np.int64)
    p = keep.double().numpy().reshape((-1,) + (1,) * (c.ndim - 1))
    return torch.from_numpy(rng.binomial(c, np.broadcast_to(p, c.shape)).astype(np.float32))


def camera_augment(
    counts: torch.Tensor, aug: SkeletonAugment, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply what a camera and an export vary: resolution blur, count thinning, 8-bit export.

    Steps 1-3 of the module docstring; the skeleton and the lesion networks share them.

    Args:
        counts: float (N, 1, H, W) counts >= 0.
        aug: The ranges and probabilities (only ``blur_*``, ``thin_*``, ``export_*``).
        gen: CPU random generator.

    Returns:
        (views float32 (N, 1, H, W) >= 0, their reference levels (N,) of
        :func:`core.anatomy.network.reference_levels`).
    """
    n = counts.shape[0]
    x = counts.float()
    if aug.blur_prob > 0:
        sigma = _uniform(n, *aug.blur_sigma, gen) * _chosen(n, aug.blur_prob, gen)
        x = gaussian_blur(x, sigma)
    ref = reference_levels(x)
    if aug.thin_prob > 0:
        keep = _uniform(n, *aug.thin_keep, gen)
        chosen = _chosen(n, aug.thin_prob, gen) & (ref >= MIN_THIN_REFERENCE)
        if bool(chosen.any()):
            x = x.clone()
            x[chosen] = thin(x[chosen], keep[chosen], gen)
            ref = reference_levels(x)
    if aug.export_prob > 0:
        lo, hi = aug.export_window
        window = torch.exp(_uniform(n, math.log(lo), math.log(hi), gen))
        gamma = _uniform(n, *aug.export_gamma, gen)
        chosen = _chosen(n, aug.export_prob, gen)
        levels, _ = display_export(x, ref.clamp_min(1e-6), window, gamma)
        x = torch.where(chosen.reshape(n, 1, 1, 1), levels, x)
        ref = reference_levels(x)
    return x, ref


def augment_batch(
    counts: torch.Tensor,
    labels: torch.Tensor,
    cfg: SkeletonNetConfig,
    aug: SkeletonAugment,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment full views and bring them and their labels to the network's input shape.

    Args:
        counts: float (N, 1, H, W) counts >= 0, anterior orientation (1024 x 256).
        labels: integer (N, H, W) skeleton labels of the same views.
        cfg: The network config (input shape).
        aug: Augmentation ranges; :data:`NO_AUGMENT` only normalises and resizes.
        gen: CPU random generator (its state makes a run reproducible).

    Returns:
        (inputs float32 (N, 1, h, w) in [0, 2], labels int64 (N, h, w)),
        ``(h, w) = cfg.input_shape``.
    """
    n = counts.shape[0]
    x, ref = camera_augment(counts, aug, gen)
    lo, hi = aug.reference_range
    ref = ref * torch.exp(_uniform(n, math.log(lo), math.log(hi), gen))
    x = normalise(x, ref)
    if aug.gamma_prob > 0:
        g = torch.where(
            _chosen(n, aug.gamma_prob, gen), _uniform(n, *aug.gamma, gen), torch.ones(n)
        )
        x = 2.0 * (x / 2.0).clamp_min(0.0) ** g.reshape(n, 1, 1, 1)
    x = to_input(x, cfg.input_shape)
    h, w = cfg.input_shape
    zoom = torch.exp(_uniform(n, math.log(aug.zoom[0]), math.log(aug.zoom[1]), gen))
    half = math.log(1.0 + aug.stretch) / 2
    aspect = torch.exp(_uniform(n, -half, half, gen))
    flip = _chosen(n, aug.flip_prob, gen)
    tx = _uniform(n, -2 * aug.shift, 2 * aug.shift, gen)
    ty = _uniform(n, -2 * aug.shift, 2 * aug.shift, gen)
    theta = torch.zeros(n, 2, 3)
    # the grid maps output to input coordinates: a zoom z samples 1/z of the input
    theta[:, 0, 0] = torch.where(flip, -1.0, 1.0) / (zoom * aspect)
    theta[:, 1, 1] = aspect / zoom
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = functional.affine_grid(theta, [n, 1, h, w], align_corners=False)
    x = functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # labels come from the FULL resolution map through the same normalised grid
    y = functional.grid_sample(
        labels[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )[:, 0].long()
    if bool(flip.any()):
        lut = torch.tensor(mirror_lut(), dtype=torch.long)
        y[flip] = lut[y[flip]]
    if aug.truncate_prob > 0:
        cut_short = _chosen(n, aug.truncate_prob, gen).tolist()
        kept = _uniform(n, *aug.keep_rows, gen).tolist()
        bottom = _chosen(n, 0.75, gen).tolist()  # most short scans stop above the feet
        for i in range(n):
            if not cut_short[i]:
                continue
            cut = round(h * kept[i]) if bottom[i] else round(h * (1.0 - kept[i]))
            rows = slice(cut, h) if bottom[i] else slice(0, cut)
            x[i, :, rows] = 0.0
            y[i, rows] = 0
    return x.contiguous(), y


def autocast(precision: str) -> torch.autocast:
    """Return the CPU autocast context of ``precision`` (``float32``: disabled)."""
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: str = "float32",
) -> float:
    """Run one optimisation step.

    Args:
        model: The network (train mode is set).
        optimizer: Its optimizer.
        loss_fn: E.g. ``monai.losses.DiceCELoss(to_onehot_y=True, softmax=True)``.
        x: float32 inputs (N, 1, h, w).
        y: int64 labels (N, h, w).
        precision: ``"float32"`` or ``"bfloat16"`` (CPU autocast of the forward pass;
            the loss is computed in float32).

    Returns:
        The loss before the step.
    """
    model.train()
    with autocast(precision):
        logits = model(x)
    loss = loss_fn(logits.float(), y[:, None])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def overlap_counts(pred: np.ndarray, truth: np.ndarray, n_labels: int) -> np.ndarray:
    """Return per-label (intersection, predicted, true) pixel counts, shape (n_labels, 3).

    Sum these over a data set and pass them to :func:`dice_from_counts`.
    """
    p = pred.astype(np.int64).ravel()
    t = truth.astype(np.int64).ravel()
    both = np.bincount(t[p == t], minlength=n_labels)
    return np.stack(
        [both, np.bincount(p, minlength=n_labels), np.bincount(t, minlength=n_labels)], axis=1
    )


def dice_from_counts(counts: np.ndarray) -> dict[int, float]:
    """Return ``{label: Dice}`` for every label with true or predicted pixels (0 excluded)."""
    out = {}
    for k in range(1, counts.shape[0]):
        inter, pred, true = (float(v) for v in counts[k])
        if pred + true > 0:
            out[k] = 2.0 * inter / (pred + true)
    return out


def save_checkpoint(
    path: Path | str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    state: Mapping[str, Any],
) -> None:
    """Write a resumable checkpoint atomically (a temporary file, then a rename).

    Args:
        path: The checkpoint file.
        model: The network.
        optimizer: Its optimizer (moments and step counts are saved).
        step: Steps done.
        state: More to restore (random generator states, config, arguments).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "step": int(step),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "state": dict(state),
        },
        tmp,
    )
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    # a kill mid-write leaves the previous checkpoint whole
    os.replace(tmp, path)


def load_checkpoint(
    path: Path | str, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, Any]]:
    """Restore a checkpoint of :func:`save_checkpoint` into ``model`` and ``optimizer``.

    Returns:
        (steps done, the saved ``state``).
    """
    data = torch.load(Path(path), map_location="cpu", weights_only=False)
    model.load_state_dict(data["model"])
    optimizer.load_state_dict(data["optimizer"])
    return int(data["step"]), dict(data["state"])
