"""The one input normalisation that training and inference share.

A view's counts are divided by the view's robust maximum (its 99.9th percentile,
the level the display's grey level 1 maps to black: :data:`REFERENCE_PERCENTILE`
is imported from :mod:`core.imaging.display`), clipped to ``[0, RATIO_CLIP]`` and passed
through a square root::

    x = sqrt(clip(counts / p99.9(view), 0, 4))       # float32 in [0, 2]

Why this form:

* Dividing by a per-view reference removes the injected activity, the scan speed
  and the delay after injection, which change total counts several-fold between
  patients; the 99.9th percentile is what a reader's display calls "black", so the
  network sees what the physician sees.
* The square root is the variance-stabilising transform of Poisson counts: the
  noise of the faint bone background and of hot spots becomes comparable, and the
  background (typically 5-30 % of the reference) is spread over a useful range.
* Clipping the ratio at 4 keeps a hot bladder or injection site from dominating
  while still telling "as hot as the hottest bone" (1) from "much hotter" (up to 2).

The reference is always taken over the *whole view*, never over a crop, so a
crop's values mean the same whichever crop it is; training passes the reference
alongside each crop (and scales it when augmentation thins or scales counts).
"""

from __future__ import annotations

import numpy as np
import torch

from core.imaging.display import GREY_LEVEL_1_PERCENTILE

#: Name stored in model configs; a model trained with another name is refused.
NORMALISATION_NAME = "sqrt-ratio-p99.9-clip4"
#: Percentile of a view's counts used as its reference (the display's grey level 1).
REFERENCE_PERCENTILE = GREY_LEVEL_1_PERCENTILE
#: Largest ratio counts / reference kept; higher values are clipped.
RATIO_CLIP = 4.0
#: Largest normalised value, ``sqrt(RATIO_CLIP)``.
MAX_VALUE = float(np.sqrt(RATIO_CLIP))


def reference_level(counts: np.ndarray) -> float:
    """Return a view's reference level: the 99.9th percentile of its counts.

    Args:
        counts: 2-D counts of one whole view (e.g. float32 (1024, 256)), hot = high.

    Returns:
        The percentile as a float; 0.0 when the view is blank (percentile <= 0).

    Raises:
        ValueError: If ``counts`` is not a non-empty 2-D array of finite values.
    """
    a = np.asarray(counts)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"counts must be a non-empty 2-D array, got shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ValueError("counts must hold only finite values (no NaN or infinity)")
    return max(0.0, float(np.percentile(a, REFERENCE_PERCENTILE)))


def normalise_tensor(counts: torch.Tensor, reference: torch.Tensor | float) -> torch.Tensor:
    """Normalise counts by a reference level (the formula of this module).

    Args:
        counts: Counts, any shape, any floating dtype, on any device; typically
            (N, 1, H, W).
        reference: The reference of each item's view: a float, or a tensor that
            broadcasts against ``counts`` (e.g. shape (N, 1, 1, 1)). Items whose
            reference is <= 0 (blank views) come out all zero.

    Returns:
        float32 tensor of ``counts``' shape, values in ``[0, MAX_VALUE]`` (= [0, 2]).
    """
    ref = torch.as_tensor(reference, dtype=torch.float32, device=counts.device)
    safe = torch.where(ref > 0, ref, torch.ones_like(ref))
    ratio = torch.where(ref > 0, counts.float() / safe, torch.zeros((), device=counts.device))
    return ratio.clamp(0.0, RATIO_CLIP).sqrt()


def normalise_view(counts: np.ndarray) -> np.ndarray:
    """Normalise one whole view for the networks.

    Args:
        counts: 2-D counts of one view, e.g. float32 (1024, 256), >= 0, hot = high.

    Returns:
        float32 array of the same shape, values in ``[0, 2]``:
        ``sqrt(clip(counts / reference_level(counts), 0, 4))``; all zero for a blank
        view.

    Raises:
        ValueError: If ``counts`` is not a non-empty 2-D array of finite values.
    """
    ref = reference_level(counts)
    t = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32))
    return normalise_tensor(t, ref).numpy()


def normalise_views(views: list[np.ndarray]) -> np.ndarray:
    """Normalise several whole views into one network batch.

    Args:
        views: Views of equal 2-D shape (H, W), counts >= 0.

    Returns:
        float32 array (N, 1, H, W), values in ``[0, 2]``.

    Raises:
        ValueError: If ``views`` is empty or the shapes differ.
    """
    if not views:
        raise ValueError("views must hold at least one view")
    shapes = {np.shape(v) for v in views}
    if len(shapes) != 1:
        raise ValueError(f"views must share one shape, got {sorted(shapes)}")
    return np.stack([normalise_view(v) for v in views])[:, None]
