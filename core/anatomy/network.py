"""The skeleton-segmentation network: config, input normalisation, inference, files.

A MONAI ``UNet`` labels every pixel of a whole-body view with a skeletal region of
:mod:`core.anatomy.regions` (index 0 background). It runs at a reduced resolution
(:attr:`SkeletonNetConfig.input_shape`, 512 x 128 by default: each side of the
1024 x 256 view halved) and its logits are upsampled back to the view.

**Orientation.** The network always sees a view in the *anterior orientation*, the
patient's right on the image left: the posterior view (stored mirrored, patient's
right on the image right) is flipped left-right before the network and its label map
flipped back after. Side labels (the patient's side) are then tied to the image side
on every input, which a single-channel network could not tell from the picture alone.
A left-right flip in training therefore swaps the left and right labels
(:func:`core.anatomy.regions.mirror_lut`).

**Normalisation** (:func:`normalise`), per view, robust to the bladder::

    ref = 98th percentile of the view averaged over 4 x 4 blocks
    x   = sqrt(clip(counts / ref, 0, 4))                  # float32 in [0, 2]

The bladder and a few hot lesions cover well under 2 % of the field, so the 98th
percentile sits on bone (unlike the 99.9th percentile of :mod:`core.imaging.normalise`,
which the bladder often sets); the block average keeps Poisson noise of a low-count
view from pushing the percentile up; the square root stabilises the variance.

A model folder holds ``skeleton.safetensors`` (weights, float16) and ``skeleton.json``
(card: format, config, sha256 of the weights, training entries), as the diagnosis
models of :mod:`core.networks.models` are stored; the sha256 is checked on load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import UNet
from torch import nn
from torch.nn import functional

from core.anatomy.regions import LABELS
from core.config import COLS, ROWS, VIEWS
from core.networks.files import (
    CardConfig,
    ModelFileError,
    read_network_config,
    ready_network,
    save_network_files,
)

#: File stem of the skeleton network in a model folder.
SKELETON = "skeleton"
#: Name of the input normalisation (a model trained with another one is refused).
SKELETON_NORMALISATION = "sqrt-ratio-p98-block4-clip4"
#: Percentile of the block-averaged view taken as its reference level.
REFERENCE_PERCENTILE = 98.0
#: Side of the square blocks averaged before the percentile, pixels.
REFERENCE_BLOCK = 4
#: Largest ratio counts / reference kept.
RATIO_CLIP = 4.0
#: Arithmetic of the forward pass: name -> autocast dtype (float32: no autocast).
PRECISIONS: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class SkeletonNetConfig(CardConfig):
    """How the skeleton network is built and applied.

    Attributes:
        architecture: Only ``"monai-unet"``.
        labels: Output channel names in order; the index is the label value.
        input_shape: (rows, columns) the view is resized to before the network; both
            multiples of ``2 ** len(strides)``.
        channels: Feature channels per UNet level.
        strides: Down-sampling stride between levels (one fewer than ``channels``).
        num_res_units: Residual units per level (MONAI ``UNet``).
        dropout: Dropout probability inside the UNet.
        normalisation: Name of the input normalisation (:data:`SKELETON_NORMALISATION`).
        orientation: Only ``"anterior"``: POST is flipped to the anterior orientation.
    """

    architecture: str = "monai-unet"
    labels: tuple[str, ...] = LABELS
    input_shape: tuple[int, int] = (ROWS // 2, COLS // 2)
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    dropout: float = 0.0
    normalisation: str = SKELETON_NORMALISATION
    orientation: str = "anterior"

    def __post_init__(self) -> None:
        if self.architecture != "monai-unet":
            raise ValueError(f"architecture must be 'monai-unet', got {self.architecture!r}")
        if self.orientation != "anterior":
            raise ValueError(f"orientation must be 'anterior', got {self.orientation!r}")
        if len(self.labels) < 2 or self.labels[0] != "background":
            raise ValueError("labels must start with 'background' and hold a region")
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError("strides must have one entry fewer than channels")
        multiple = int(np.prod(self.strides))
        if len(self.input_shape) != 2 or any(s <= 0 or s % multiple for s in self.input_shape):
            raise ValueError(
                f"input_shape sides must be positive multiples of {multiple}, "
                f"got {self.input_shape}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def build_network(cfg: SkeletonNetConfig | None = None) -> nn.Module:
    """Build the skeleton network (untrained).

    Args:
        cfg: Its config; the defaults when None.

    Returns:
        A MONAI ``UNet`` taking float32 (N, 1, H, W) normalised views (values in
        [0, 2], H x W = ``cfg.input_shape``) and returning logits
        (N, len(cfg.labels), H, W).
    """
    cfg = cfg or SkeletonNetConfig()
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=len(cfg.labels),
        channels=cfg.channels,
        strides=cfg.strides,
        num_res_units=cfg.num_res_units,
        dropout=cfg.dropout,
    )


def reference_levels(counts: torch.Tensor) -> torch.Tensor:
    """Return each view's reference level (the formula of the module docstring).

    Args:
        counts: Views (N, 1, H, W), float, >= 0, hot = high; H and W multiples of
            :data:`REFERENCE_BLOCK`.

    Returns:
        float32 (N,) levels; 0 for a blank view.
    """
    blocks = functional.avg_pool2d(counts.float(), REFERENCE_BLOCK)
    flat = blocks.reshape(blocks.shape[0], -1)
    return torch.quantile(flat, REFERENCE_PERCENTILE / 100.0, dim=1).clamp_min(0.0)


def normalise(counts: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Normalise views for the network: ``sqrt(clip(counts / reference, 0, 4))``.

    Args:
        counts: Views (N, 1, H, W), float, >= 0.
        reference: (N,) reference levels; :func:`reference_levels` of ``counts`` when
            None (training passes a jittered one). Items with reference <= 0 give 0.

    Returns:
        float32 (N, 1, H, W) in [0, 2].
    """
    ref = reference_levels(counts) if reference is None else reference.float()
    ref = ref.reshape(-1, 1, 1, 1)
    safe = torch.where(ref > 0, ref, torch.ones_like(ref))
    ratio = torch.where(
        ref > 0, counts.float() / safe, torch.zeros_like(counts, dtype=torch.float32)
    )
    return ratio.clamp(0.0, RATIO_CLIP).sqrt()


def to_input(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Resize normalised full views (N, 1, H, W) to the network's input ``shape``.

    An integer factor is a block average (no aliasing of the noise); any other
    factor is an antialiased bilinear resize.
    """
    h, w = x.shape[-2:]
    if (h, w) == tuple(shape):
        return x
    if h % shape[0] == 0 and w % shape[1] == 0 and h // shape[0] == w // shape[1]:
        return functional.avg_pool2d(x, h // shape[0])
    return functional.interpolate(x, size=shape, mode="bilinear", antialias=True)


def oriented(view: str, a: np.ndarray) -> np.ndarray:
    """Return a view's array in the anterior orientation (POST flipped), or back again.

    The flip is its own inverse, so the same call turns a network map back into the
    view's orientation.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return np.ascontiguousarray(a[:, ::-1]) if view == "POST" else a


@torch.no_grad()
def predict_logits(
    model: nn.Module, cfg: SkeletonNetConfig, counts: np.ndarray, precision: str = "float32"
) -> torch.Tensor:
    """Run the network on views already in the anterior orientation.

    Args:
        model: The network (eval mode).
        cfg: Its config.
        counts: float (N, H, W) counts, hot = high, anterior orientation.
        precision: The forward pass's arithmetic, one of :data:`PRECISIONS` (autocast
            on the model's device); the upsampling is float32 in every case.

    Returns:
        float32 logits (N, len(labels), H, W) upsampled bilinearly to the views' size,
        in channels-last memory order.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dev = next(model.parameters()).device
    t = torch.from_numpy(np.ascontiguousarray(counts, dtype=np.float32))[:, None].to(dev)
    x = to_input(normalise(t), cfg.input_shape)
    with torch.autocast(dev.type, dtype=PRECISIONS[precision], enabled=precision != "float32"):
        out = model(x)
    # Channels-last keeps each pixel's label scores together: the full-size upsampling
    # and the argmax over them take half the time (measured, same labels).
    logits = out.float().contiguous(memory_format=torch.channels_last)
    return functional.interpolate(
        logits, size=tuple(counts.shape[-2:]), mode="bilinear", align_corners=False
    )


def predict_labels(
    loaded: tuple[nn.Module, SkeletonNetConfig],
    views: Mapping[str, np.ndarray],
    precision: str = "float32",
) -> dict[str, np.ndarray]:
    """Label every pixel of each view with its skeletal region.

    Args:
        loaded: (model, config), e.g. from :func:`load_skeleton_network`.
        views: ``{"ANT"?, "POST"?}`` float32 (1024, 256) counts, hot = high, in the
            product's canonical orientation (POST mirrored: patient's right on the
            image right).
        precision: The forward pass's arithmetic (:func:`predict_logits`).

    Returns:
        ``{view: uint8 (H, W)}`` label maps (:data:`core.anatomy.regions.LABELS`),
        each in its view's orientation: the argmax of the logits upsampled to the view.
    """
    model, cfg = loaded
    names = [v for v in VIEWS if v in views]
    shapes = {views[v].shape for v in names}
    if len(shapes) != 1:
        raise ValueError(f"views must share one 2-D shape, got {shapes}")
    stack = np.stack([oriented(v, np.asarray(views[v], dtype=np.float32)) for v in names])
    labels = predict_logits(model, cfg, stack, precision).argmax(1).to(torch.uint8).cpu().numpy()
    return {v: oriented(v, labels[k]) for k, v in enumerate(names)}


def save_skeleton_network(
    directory: Path | str,
    model: nn.Module,
    cfg: SkeletonNetConfig,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the network's fp16 weights and its JSON card into a model folder.

    Args:
        directory: The folder (created if missing).
        model: The network; floating tensors are stored as float16.
        cfg: Its config.
        extra: More JSON-ready card entries (``training``, ``metrics`` ...); must not
            use ``format``, ``name``, ``config`` or ``weights``.

    Returns:
        The card as written to ``<directory>/skeleton.json``.

    Raises:
        ValueError: If ``extra`` uses a reserved key or is not JSON-serialisable.
    """
    return save_network_files(directory, SKELETON, model, cfg.to_dict(), extra)


def load_skeleton_network(
    directory: Path | str, device: torch.device | str = "cpu"
) -> tuple[nn.Module, SkeletonNetConfig]:
    """Load the skeleton network from a model folder, checking the weights' sha256.

    Args:
        directory: The model folder.
        device: Where to put it.

    Returns:
        (model in eval mode with float32 weights on ``device``, config).

    Raises:
        ModelFileError: If a file is missing, the sha256 differs from the card's, the
            config is invalid, the normalisation differs from this code's, or the
            weights do not fit the config.
    """
    cfg, weights = read_network_config(directory, SKELETON, SkeletonNetConfig)
    if cfg.normalisation != SKELETON_NORMALISATION:
        raise ModelFileError(
            f"{Path(directory) / f'{SKELETON}.json'}: trained with normalisation "
            f"{cfg.normalisation!r}, this code uses {SKELETON_NORMALISATION!r}"
        )
    return ready_network(build_network(cfg), weights, "the config", device), cfg
