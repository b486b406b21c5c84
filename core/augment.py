"""Training augmentation that suits planar whole-body bone scans.

Applied to a batch of raw count crops with their views' reference levels
(:func:`core.normalise.reference_level`) and label masks, on whatever device the
batch is on (so a GPU does it too), in this order:

1. **Count thinning** (with probability ``thin_prob``): every pixel's count is
   replaced by a binomial draw ``Binomial(round(counts), keep)``, ``keep`` uniform
   in ``thin_range``: exactly what a shorter acquisition or a smaller dose gives
   (a Poisson image thinned is Poisson with the lower mean), so noise grows as it
   would. The reference scales with ``keep``. Views whose reference is below
   :data:`MIN_THIN_REFERENCE` counts (already scaled exports) are not thinned.
2. **Intensity scaling**: the reference is divided by a log-uniform factor from
   ``intensity_range``; this mimics a view whose 99.9th percentile sits on the
   bladder or a hot lesion rather than on bone, which shifts every ratio.
3. **Normalisation** (:func:`core.normalise.normalise_tensor`).
4. **Geometry**: a small random scale (``scale_range``) and shift (``shift``, a
   fraction of each side), and a left-right flip (``flip_prob``). A mirrored
   whole-body view is still a plausible whole-body view (a posterior view is an
   anterior view mirrored), so left-right is the only flip. The image is resampled
   bilinearly, the mask by nearest neighbour with the *same* grid; outside the
   crop is 0 (no counts, background).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional

from core.normalise import normalise_tensor

#: Views with a reference below this many counts are never thinned (not Poisson counts).
MIN_THIN_REFERENCE = 20.0


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation (see the module docstring).

    Attributes:
        thin_prob: Probability that an item is thinned.
        thin_range: (low, high) fraction of counts kept when thinned, in (0, 1].
        intensity_range: (low, high) factor on counts/reference, log-uniform, > 0.
        scale_range: (low, high) zoom factor; > 1 enlarges the anatomy.
        shift: Largest shift as a fraction of each side, in [0, 0.5).
        flip_prob: Probability of a left-right flip.
    """

    thin_prob: float = 0.5
    thin_range: tuple[float, float] = (0.5, 1.0)
    intensity_range: tuple[float, float] = (0.75, 1.33)
    scale_range: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.05
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("thin_prob", "flip_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.thin_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"thin_range must satisfy 0 < low <= high <= 1, got {self.thin_range}")
        for name in ("intensity_range", "scale_range"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if not 0.0 <= self.shift < 0.5:
            raise ValueError(f"shift must be in [0, 0.5), got {self.shift}")


#: No augmentation at all (validation, tests).
NO_AUGMENTATION = AugmentConfig(
    thin_prob=0.0,
    thin_range=(1.0, 1.0),
    intensity_range=(1.0, 1.0),
    scale_range=(1.0, 1.0),
    shift=0.0,
    flip_prob=0.0,
)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)


def thin_counts(counts: torch.Tensor, keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Binomially thin counts: each count ``c`` becomes ``Binomial(round(c), keep)``.

    Args:
        counts: Counts >= 0, float, shape (N, ...).
        keep: Fraction kept per item, shape (N,), values in [0, 1].
        gen: Random generator on ``counts``' device.

    Returns:
        float32 tensor of ``counts``' shape holding whole numbers; its mean is
        ``keep * round(counts)``.
    """
    c = counts.float().clamp_min(0).round()
    p = keep.float().reshape((-1,) + (1,) * (c.ndim - 1)).expand_as(c).contiguous()
    return torch.binomial(c, p, generator=gen)


def geometric_grid(
    n: int, shape: tuple[int, int], cfg: AugmentConfig, gen: torch.Generator, dev: torch.device
) -> torch.Tensor:
    """Draw random scale/shift/flip transforms as a sampling grid.

    Args:
        n: Batch size.
        shape: (H, W) of the crops.
        cfg: Ranges.
        gen: Random generator on ``dev``.
        dev: Device of the grid.

    Returns:
        float32 grid (n, H, W, 2) for :func:`torch.nn.functional.grid_sample`
        (``align_corners=False``); the identity grid samples pixels exactly.
    """
    lo, hi = cfg.scale_range
    zoom = torch.exp(_uniform(n, math.log(lo), math.log(hi), gen, dev))
    flip = torch.rand(n, generator=gen, device=dev) < cfg.flip_prob
    sign = torch.where(flip, -1.0, 1.0)
    tx = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, gen, dev)
    ty = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, gen, dev)
    theta = torch.zeros(n, 2, 3, device=dev)
    # the grid maps output to input coordinates, so a zoom of z samples 1/z of the input
    theta[:, 0, 0] = sign / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    return functional.affine_grid(theta, [n, 1, shape[0], shape[1]], align_corners=False)


def augment_batch(
    counts: torch.Tensor,
    reference: torch.Tensor,
    masks: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment and normalise a batch of count crops and move their masks with them.

    Args:
        counts: Raw counts (N, 1, H, W), float, >= 0.
        reference: Reference level of each item's whole view, shape (N,), > 0 for
            real views.
        masks: Label masks (N, H, W), integer (0 background, 1 metastasis,
            2 bladder).
        cfg: Augmentation ranges; :data:`NO_AUGMENTATION` only normalises.
        gen: Random generator on ``counts``' device.

    Returns:
        (inputs float32 (N, 1, H, W) in [0, 2], masks int64 (N, H, W)).

    Raises:
        ValueError: If the shapes disagree.
    """
    if counts.ndim != 4 or counts.shape[1] != 1:
        raise ValueError(f"counts must be (N, 1, H, W), got {tuple(counts.shape)}")
    n, _, h, w = counts.shape
    if tuple(masks.shape) != (n, h, w) or tuple(reference.shape) != (n,):
        raise ValueError(
            f"masks must be {(n, h, w)} and reference ({n},), "
            f"got {tuple(masks.shape)} and {tuple(reference.shape)}"
        )
    dev = counts.device
    ref = reference.float().clone()
    x = counts.float()
    if cfg.thin_prob > 0:
        keep = _uniform(n, cfg.thin_range[0], cfg.thin_range[1], gen, dev)
        chosen = (torch.rand(n, generator=gen, device=dev) < cfg.thin_prob) & (
            ref >= MIN_THIN_REFERENCE
        )
        keep = torch.where(chosen, keep, torch.ones_like(keep))
        if bool(chosen.any()):
            thinned = thin_counts(x[chosen], keep[chosen], gen)
            x = x.clone()
            x[chosen] = thinned
            ref = ref * keep
    lo, hi = cfg.intensity_range
    if lo != 1.0 or hi != 1.0:
        ref = ref / torch.exp(_uniform(n, math.log(lo), math.log(hi), gen, dev))
    x = normalise_tensor(x, ref.reshape(n, 1, 1, 1))
    m = masks.long()
    if cfg == NO_AUGMENTATION or (
        cfg.scale_range == (1.0, 1.0) and cfg.shift == 0 and cfg.flip_prob == 0
    ):
        return x, m
    grid = geometric_grid(n, (h, w), cfg, gen, dev)
    x = functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = functional.grid_sample(
        m[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return x, m[:, 0].round().long()
