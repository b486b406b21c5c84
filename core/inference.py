"""Run the two networks on scans: crop probabilities, scan probabilities, gated masks.

For each view (1024 x 256 counts) the input is normalised once
(:mod:`core.normalise`), cut into the classifier's overlapping 256 x 256 crops
(:mod:`core.crops`: 7 per view) and also segmented whole. A label's scan
probability is the maximum over the crops of all the scan's views; the label mask
is the segmenter's argmax, gated crop by crop by the classifier
(:func:`core.crops.gate_mask`). Crops and views of many scans are batched together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.config import VIEWS
from core.crops import crop_origins, extract_crops, gate_mask, scan_probabilities
from core.models import LoadedModels
from core.normalise import normalise_view

#: Crops per classifier forward pass.
CLASSIFIER_BATCH = 64
#: Whole views per segmenter forward pass.
SEGMENTER_BATCH = 8


@dataclass(frozen=True)
class Prediction:
    """What the networks say about one scan.

    Attributes:
        probabilities: ``{"metastasis": p, "bladder": p}``, each the maximum crop
            probability over the scan's views, in [0, 1].
        positive: ``{label: probability >= threshold}``.
        threshold: The threshold used (from the classifier config).
        crop_origins: Top-left (row, col) of each crop, same for every view.
        crop_probabilities: ``{view: float32 (n_crops, 2)}``; columns are
            (metastasis, bladder), rows follow ``crop_origins``.
        masks: ``{view: uint8 (1024, 256)}`` label masks after gating (0 background,
            1 metastasis, 2 bladder).
        masks_ungated: ``{view: uint8 (1024, 256)}``, the segmenter's argmax before
            gating (for inspection).
    """

    probabilities: dict[str, float]
    positive: dict[str, bool]
    threshold: float
    crop_origins: tuple[tuple[int, int], ...]
    crop_probabilities: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    masks_ungated: dict[str, np.ndarray]


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    # half precision only where it is fast and safe: CUDA; the CPU stays float32
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _check_scan(i: int, views: Mapping[str, np.ndarray], shape: tuple[int, int]) -> None:
    if not views:
        raise ValueError(f"scans[{i}] holds no view")
    for name, arr in views.items():
        if name not in VIEWS:
            raise ValueError(f"scans[{i}]: unknown view {name!r}, expected one of {VIEWS}")
        if np.shape(arr) != shape:
            raise ValueError(f"scans[{i}][{name!r}] must have shape {shape}, got {np.shape(arr)}")


def predict_batch(
    models: LoadedModels,
    scans: Sequence[Mapping[str, np.ndarray]],
    classifier_batch: int = CLASSIFIER_BATCH,
    segmenter_batch: int = SEGMENTER_BATCH,
) -> list[Prediction]:
    """Run both networks on several scans at once.

    Args:
        models: From :func:`core.models.load_models`.
        scans: Each ``{view: counts}`` with views among ``"ANT"``, ``"POST"``; counts
            2-D float arrays of the segmenter's input shape (1024, 256), >= 0, hot =
            high. A scan may hold one view only.
        classifier_batch: Crops per classifier forward pass (>= 1).
        segmenter_batch: Views per segmenter forward pass (>= 1).

    Returns:
        One :class:`Prediction` per scan, same order.

    Raises:
        ValueError: If a scan is empty, names an unknown view, has a view of the wrong
            shape or non-finite counts, or a batch size is < 1.
    """
    if classifier_batch < 1 or segmenter_batch < 1:
        raise ValueError("classifier_batch and segmenter_batch must be >= 1")
    c_cfg, s_cfg = models.classifier_config, models.segmenter_config
    shape = tuple(s_cfg.input_shape)
    assert len(shape) == 2
    for i, views in enumerate(scans):
        _check_scan(i, views, (shape[0], shape[1]))
    if not scans:
        return []
    keys = [(i, name) for i, views in enumerate(scans) for name in VIEWS if name in views]
    normalised = np.stack([normalise_view(np.asarray(scans[i][name])) for i, name in keys])
    origins = crop_origins((shape[0], shape[1]), c_cfg.crop_size, c_cfg.crop_stride)
    crops = np.concatenate([extract_crops(v, origins, c_cfg.crop_size) for v in normalised])
    device = models.device
    models.classifier.eval()
    models.segmenter.eval()
    crop_probs = np.empty((len(crops), len(c_cfg.labels)), dtype=np.float32)
    labels_ = np.empty(normalised.shape, dtype=np.uint8)
    with torch.inference_mode(), _autocast(device):
        for sl in _chunks(len(crops), classifier_batch):
            x = torch.from_numpy(crops[sl][:, None]).to(device)
            crop_probs[sl] = torch.sigmoid(models.classifier(x).float()).cpu().numpy()
        for sl in _chunks(len(normalised), segmenter_batch):
            x = torch.from_numpy(normalised[sl][:, None]).to(device)
            labels_[sl] = models.segmenter(x).argmax(dim=1).to(torch.uint8).cpu().numpy()
    per_view = crop_probs.reshape(len(keys), len(origins), len(c_cfg.labels))
    out: list[Prediction] = []
    for i in range(len(scans)):
        idx = [k for k, (j, _) in enumerate(keys) if j == i]
        probs = scan_probabilities([per_view[k] for k in idx])
        by_view = {keys[k][1]: per_view[k].copy() for k in idx}
        ungated = {keys[k][1]: labels_[k] for k in idx}
        gated = {
            name: gate_mask(m, by_view[name], origins, c_cfg.crop_size, s_cfg.threshold)
            for name, m in ungated.items()
        }
        named = {label: float(p) for label, p in zip(c_cfg.labels, probs, strict=True)}
        out.append(
            Prediction(
                probabilities=named,
                positive={label: p >= c_cfg.threshold for label, p in named.items()},
                threshold=c_cfg.threshold,
                crop_origins=tuple(origins),
                crop_probabilities=by_view,
                masks=gated,
                masks_ungated=ungated,
            )
        )
    return out


def predict(models: LoadedModels, views: Mapping[str, np.ndarray]) -> Prediction:
    """Run both networks on one scan.

    Args:
        models: From :func:`core.models.load_models`.
        views: ``{view: counts}``, counts float (1024, 256) >= 0, hot = high; e.g.
            ``scan.views``.

    Returns:
        The scan's :class:`Prediction`.

    Raises:
        ValueError: As :func:`predict_batch`.
    """
    return predict_batch(models, [views])[0]
