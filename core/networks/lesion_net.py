"""The lesion network: one UNet that sees a view beside its mirror and its bones' norm.

Issue 26. The paper's two networks see one view, scaled to its 99.9th percentile, and
nothing else; on real scans they mark every joint that is hot on both sides. A
physician calls a hot spot a metastasis by comparing it with the same place on the
other side of the body and with the rest of its bone, so this network is given both:

* channel 0, **the view relative to the patient's own normal bone**:
  ``log1p(counts / b)``, ``b`` the median count over the view's skeleton pixels
  (:func:`bone_reference`). Normal bone sits near ``log 2 = 0.69``, a lesion 3 times
  its bone near 1.4, the bladder far above. No percentile: a hot bladder, a lesion or
  an export's clipping does not move ``b``.
* channel 1, **the mirror**: channel 0 mirrored about the body's mid-line
  (:func:`core.anatomy.references.mirrored_uptake`, lightly smoothed), 0 outside the
  field. Paired uptake looks the same in channels 0 and 1; a one-sided spot does not.
  The network learns when that matters (bilateral metastases exist).
* channel 2, **the region's normal uptake**: ``log1p(r / b)``, ``r`` the median of the
  pixel's skeletal region, both sides pooled
  (:func:`core.anatomy.references.region_reference`), 0 off the skeleton. It also tells
  the network where the bones are.

The skeleton map comes from the skeleton network (issue 25). Views are taken in the
anterior orientation (POST flipped, :func:`core.anatomy.network.oriented`), full
resolution (1024 x 256). The output is three softmax classes (background, metastasis,
bladder), as the paper's segmenter; a scan's probability of metastasis comes from its
hot spots' scores (:func:`scan_score`), not from a crop classifier.

A model folder holds ``lesion.safetensors`` (fp16) and ``lesion.json`` (config, sha256,
training, figures); :func:`save_lesion_network` / :func:`load_lesion_network`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import UNet
from torch import nn
from torch.nn import functional

from core.anatomy.network import oriented
from core.anatomy.references import midline_column, mirrored_uptake, region_reference
from core.anatomy.regions import BACKGROUND
from core.config import COLS, ROWS, VIEWS
from core.networks.files import (
    CardConfig,
    ModelFileError,
    load_network_card,
    read_network_config,
    ready_network,
    save_network_files,
    update_network_card,
)

#: File stem of the lesion network in a model folder.
LESION = "lesion"
#: Name of the input construction (a model trained with another one is refused).
LESION_INPUTS = "log-bone-ratio+mirror+region-v1"
#: Output classes, in channel order; the index is the mask label.
LESION_LABELS = ("background", "metastasis", "bladder")
#: Fewest skeleton pixels whose median is trusted as the normal-bone level.
MIN_BONE_PIXELS = 2000
#: Largest counts / bone-level ratio kept (the bladder saturates, lesions never do).
RATIO_MAX = 60.0
#: Gaussian sigma (pixels) of the mirrored channel: a mid-line a pixel off, or a
#: slightly asymmetric bone, must not look like a one-sided spot.
MIRROR_SIGMA = 1.0
#: Side of the square average taken over the metastasis probability before the scan's
#: maximum, so that one noisy pixel cannot call a scan positive.
SCORE_POOL = 3


@dataclass(frozen=True)
class LesionNetConfig(CardConfig):
    """How the lesion network is built and applied.

    Attributes:
        architecture: Only ``"monai-unet"``.
        labels: Output classes in order (:data:`LESION_LABELS`).
        in_channels: Input channels (3: view, mirror, region norm).
        channels: Feature channels per UNet level.
        strides: Down-sampling stride between levels (one fewer than ``channels``).
        num_res_units: Residual units per level (MONAI ``UNet``).
        dropout: Dropout probability inside the UNet.
        norm: Normalisation layer, ``"batch"`` or ``"instance"``. Batch: the network
            trains on small crops and runs on whole views, and a batch norm's running
            statistics are the same for both, where an instance norm's statistics of a
            whole view (mostly background) differ from a lesion-centred crop's.
        inputs: Name of the input construction (:data:`LESION_INPUTS`).
        orientation: Only ``"anterior"``: POST is flipped to the anterior orientation.
        threshold: Scan score (:func:`scan_score`) at or above which a scan is called
            metastatic; calibrated on phantom scans of settings not used in training.
        bladder_threshold: The same for the bladder.
    """

    architecture: str = "monai-unet"
    labels: tuple[str, ...] = LESION_LABELS
    in_channels: int = 3
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    dropout: float = 0.0
    norm: str = "batch"
    inputs: str = LESION_INPUTS
    orientation: str = "anterior"
    threshold: float = 0.5
    bladder_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.architecture != "monai-unet":
            raise ValueError(f"architecture must be 'monai-unet', got {self.architecture!r}")
        if self.orientation != "anterior":
            raise ValueError(f"orientation must be 'anterior', got {self.orientation!r}")
        if tuple(self.labels) != LESION_LABELS:
            raise ValueError(f"labels must be {LESION_LABELS}, got {self.labels}")
        if self.in_channels != 3:
            raise ValueError(f"in_channels must be 3, got {self.in_channels}")
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError("strides must have one entry fewer than channels")
        if ROWS % self.size_multiple or COLS % self.size_multiple:
            raise ValueError(f"strides must divide the view ({ROWS} x {COLS}), got {self.strides}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.norm not in ("batch", "instance"):
            raise ValueError(f"norm must be 'batch' or 'instance', got {self.norm!r}")
        for name in ("threshold", "bladder_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this."""
        return int(np.prod(self.strides))


def build_network(cfg: LesionNetConfig | None = None) -> nn.Module:
    """Build the lesion network (untrained).

    Args:
        cfg: Its config; the defaults when None.

    Returns:
        A MONAI ``UNet`` taking float32 (N, 3, H, W) inputs of :func:`lesion_inputs`
        (values in [0, log1p(RATIO_MAX)], H and W multiples of ``cfg.size_multiple``)
        and returning logits (N, 3, H, W).
    """
    cfg = cfg or LesionNetConfig()
    return UNet(
        spatial_dims=2,
        in_channels=cfg.in_channels,
        out_channels=len(cfg.labels),
        channels=cfg.channels,
        strides=cfg.strides,
        num_res_units=cfg.num_res_units,
        dropout=cfg.dropout,
        norm=cfg.norm,
    )


def bone_reference(view: np.ndarray, skeleton: np.ndarray) -> float:
    """Return the view's normal-bone level: the median count over its skeleton.

    Args:
        view: Counts, float (1024, 256), finite, >= 0.
        skeleton: Its skeleton label map, uint8 (1024, 256), same orientation.

    Returns:
        The median over skeleton pixels when there are at least
        :data:`MIN_BONE_PIXELS` with a positive median; else (a view the skeleton
        network cannot read) the median of the view's positive pixels times 2, bone
        being about twice the soft tissue; 1.0 for an empty view. Always > 0.
    """
    bone = view[skeleton != BACKGROUND]
    if bone.size >= MIN_BONE_PIXELS:
        level = float(np.median(bone))
        if level > 0.0:
            return level
    positive = view[view > 0]
    if positive.size:
        return max(2.0 * float(np.median(positive)), 1e-6)
    return 1.0


def lesion_inputs(view: np.ndarray, skeleton: np.ndarray) -> np.ndarray:
    """Build the network's three input channels of one view (module docstring).

    Args:
        view: Counts, float (1024, 256), finite, >= 0, anterior orientation.
        skeleton: Its skeleton label map, uint8 (1024, 256), same orientation.

    Returns:
        float32 (3, 1024, 256): view, mirror and region norm, each in
        [0, log1p(RATIO_MAX)].

    Raises:
        ValueError: If an array is malformed.
    """
    view = np.asarray(view, dtype=np.float32)
    if view.shape != (ROWS, COLS) or skeleton.shape != (ROWS, COLS):
        raise ValueError(
            f"view and skeleton must be {(ROWS, COLS)}, got {view.shape} and {skeleton.shape}"
        )
    ref = bone_reference(view, skeleton)
    top = float(np.log1p(RATIO_MAX))
    x = np.log1p(np.clip(view / ref, 0.0, RATIO_MAX)).astype(np.float32)
    mirror = mirrored_uptake(x, skeleton, midline=midline_column(skeleton), sigma=MIRROR_SIGMA)
    region = region_reference(view, skeleton, pool_pairs=True)
    region = np.log1p(np.clip(region / ref, 0.0, RATIO_MAX))
    out = np.stack([x, np.nan_to_num(mirror, nan=0.0), np.nan_to_num(region, nan=0.0)])
    return np.clip(out, 0.0, top).astype(np.float32)


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    inputs: np.ndarray,
    batch: int = 2,
) -> np.ndarray:
    """Run the network on views' inputs.

    Args:
        model: The network (eval mode), on any device.
        inputs: float32 (N, 3, 1024, 256) from :func:`lesion_inputs`.
        batch: Views per forward pass (>= 1).

    Returns:
        float32 (N, 3, 1024, 256) softmax probabilities (background, metastasis,
        bladder), summing to 1 per pixel.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    dev = next(model.parameters()).device
    out = np.empty(inputs.shape, dtype=np.float32)
    for start in range(0, len(inputs), batch):
        x = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch])).to(dev)
        out[start : start + batch] = torch.softmax(model(x).float(), dim=1).cpu().numpy()
    return out


def scan_score(probabilities: np.ndarray) -> float:
    """Return a view's (or scan's) score of one class: its hottest 3 x 3 average.

    Args:
        probabilities: float (..., H, W) probabilities of one class, in [0, 1].

    Returns:
        The maximum over pixels of the :data:`SCORE_POOL`-square average, in [0, 1];
        0 for an empty array.
    """
    p = torch.from_numpy(np.ascontiguousarray(probabilities, dtype=np.float32))
    if p.numel() == 0:
        return 0.0
    p = p.reshape(-1, 1, *p.shape[-2:])
    pooled = functional.avg_pool2d(p, SCORE_POOL, stride=1, padding=SCORE_POOL // 2,
                                   count_include_pad=False)  # fmt: skip
    return float(pooled.max())


def views_inputs(
    views: Mapping[str, np.ndarray], skeletons: Mapping[str, np.ndarray]
) -> tuple[list[str], np.ndarray]:
    """Return (view names, inputs (N, 3, 1024, 256)) of a scan, anterior orientation."""
    names = [v for v in VIEWS if v in views]
    stack = [
        lesion_inputs(
            oriented(v, np.asarray(views[v], dtype=np.float32)), oriented(v, skeletons[v])
        )
        for v in names
    ]
    return names, np.stack(stack)


def save_lesion_network(
    directory: Path | str,
    model: nn.Module,
    cfg: LesionNetConfig,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the network's fp16 weights and its JSON card into a model folder.

    Returns:
        The card as written to ``<directory>/lesion.json``.

    Raises:
        ValueError: If ``extra`` uses a reserved key or is not JSON-serialisable.
    """
    return save_network_files(directory, LESION, model, cfg.to_dict(), extra)


def load_lesion_network(
    directory: Path | str, device: torch.device | str = "cpu"
) -> tuple[nn.Module, LesionNetConfig]:
    """Load the lesion network from a model folder, checking the weights' sha256.

    Returns:
        (model in eval mode with float32 weights on ``device``, config).

    Raises:
        ModelFileError: If a file is missing, the sha256 differs from the card's, the
            config is invalid, the inputs differ from this code's, or the weights do
            not fit the config.
    """
    cfg, weights = read_network_config(directory, LESION, LesionNetConfig)
    if cfg.inputs != LESION_INPUTS:
        raise ModelFileError(
            f"{directory}/{LESION}.json: trained with inputs {cfg.inputs!r}, "
            f"this code builds {LESION_INPUTS!r}"
        )
    return ready_network(build_network(cfg), weights, "the config", device), cfg


def set_lesion_thresholds(
    directory: Path | str,
    *,
    threshold: float | None = None,
    bladder_threshold: float | None = None,
    **entries: Any,
) -> dict[str, Any]:
    """Write calibrated thresholds into a folder's lesion card (the weights are untouched).

    Args:
        directory: The model folder (with ``lesion.json``).
        threshold: The new metastasis threshold in [0, 1]; None keeps it.
        bladder_threshold: The new bladder threshold in [0, 1]; None keeps it.
        **entries: More JSON-ready card entries to set (e.g. ``calibration``).

    Returns:
        The card as written.

    Raises:
        ModelFileError: If the card is missing or invalid.
        ValueError: If a threshold is outside [0, 1].
    """
    card, _ = load_network_card(directory, LESION)
    cfg = LesionNetConfig.from_dict(card["config"])
    changes: dict[str, Any] = {}
    if threshold is not None:
        changes["threshold"] = float(threshold)
    if bladder_threshold is not None:
        changes["bladder_threshold"] = float(bladder_threshold)
    new = dataclasses.replace(cfg, **changes)
    return update_network_card(directory, LESION, new.to_dict(), **entries)
