"""Run the two networks on scans: crop probabilities, scan probabilities, gated masks.

For each view (1024 x 256 counts) the input is normalised once
(:mod:`core.imaging.normalise`), cut into the classifier's overlapping 256 x 256 crops
(:mod:`core.imaging.crops`: 7 per view) and also segmented whole. A label's scan
probability is the maximum over the crops of all the scan's views; the label mask
is the segmenter's argmax, gated crop by crop by the classifier
(:func:`core.imaging.crops.gate_mask`). Crops and views of many scans are batched together.

**Segmenting only where the gate is open** (``segment="gated"``, the default on the
CPU): since gating turns every pixel outside the crops the classifier opened into
background, the segmenter need not see those rows at all. The classifier runs
first; the segmenter then runs on row bands that cover the open crops plus
:data:`CONTEXT_ROWS` rows of context on each side (rounded out to multiples of 32),
and only the open rows of each band are kept. A view with no open crop is not
segmented. Mask values can differ from a whole-view pass only through the context
the network sees beyond the band (the agreement on the shipped models is measured in
docs/benchmarks.md); ``segment="full"`` (the default on a GPU, where a whole-view
batch costs less than many bands) segments every view whole.

**Screening in reduced precision, deciding in float32**: where the hardware does it
fast (``models.precision``: bfloat16 on a CPU with bfloat16 instructions, float16 on a
GPU; :func:`core.networks.device.resolve_precision`) the classifier first runs every crop in that
precision. A crop's logit then differs from float32's by a little (at most 0.12 over the
9,800 crops of 700 phantom scans with the shipped weights, docs/benchmarks.md); every
crop whose screened logit lies within :data:`CONFIRM_MARGIN` of a label's decision logit
(``logit(threshold)``) is run again in float32 and takes that value. So, as long as the
screening error stays below the margin (four times the largest measured), every crop
lies on the same side of every threshold as in float32: the scan's calls, the gate, the
segmenter's bands and so the masks, lesions and BSTBI are float32's; only the reported
probabilities of crops not run again carry the screening error (scan probabilities
within 0.012 of float32's on those 700 scans).

**The lesion scorer's path** (:func:`predict_scored`, a folder with ``scorer.json``) has
no crops: the segmenter reads whole views, in bfloat16 on a CPU that does it natively
(:func:`whole_view_precision`; about 4 x faster than float32 there, with its weights
cast once: :attr:`core.networks.models.LoadedModels.segmenter_bfloat16`), and nothing
is run again, so its calls and masks are bfloat16's; the skeleton network runs in the
same arithmetic (:func:`skeleton_labels`). ``BONESCAN_PRECISION=float32`` keeps float32.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from core.anatomy.network import oriented, predict_labels
from core.config import COLS, ROWS, VIEWS
from core.imaging.crops import (
    THRESHOLD,
    crop_origins,
    extract_crops,
    gate_mask,
    scan_probabilities,
)
from core.imaging.normalise import normalise_view
from core.lesions.features import Candidates, view_candidates
from core.lesions.scorer import score
from core.networks.device import ARITHMETICS
from core.networks.lesion_net import predict_probabilities, scan_score, views_inputs
from core.networks.models import LoadedModels, SegmenterConfig

#: Crops per classifier forward pass on the CPU.
CLASSIFIER_BATCH = 64
#: Whole views per segmenter forward pass on the CPU.
SEGMENTER_BATCH = 8
#: The same on a GPU, where small passes leave it idle: 448 crops (32 scans) and 64
#: views take a few GB in half precision.
CLASSIFIER_BATCH_GPU = 448
SEGMENTER_BATCH_GPU = 64
#: Rows of context the segmenter sees beyond an open band, on each side (gated mode).
CONTEXT_ROWS = 64
#: How the segmenter covers a view: "full" (whole views), "gated" (open bands only),
#: "auto" (gated on the CPU, full on a GPU).
SEGMENT_MODES = ("auto", "full", "gated")
#: Logit distance from a decision within which a screened crop is run again in float32:
#: four times the largest screening error measured (0.12, module notes).
CONFIRM_MARGIN = 0.5


@dataclass(frozen=True)
class Prediction:
    """What the networks say about one scan.

    Attributes:
        probabilities: ``{"metastasis": p, "bladder": p}``, each the maximum crop
            probability over the scan's views, in [0, 1].
        positive: ``{label: probability >= that label's threshold}``.
        thresholds: ``{label: threshold}`` used (from the classifier config).
        crop_origins: Top-left (row, col) of each crop, same for every view.
        crop_probabilities: ``{view: float32 (n_crops, 2)}``; columns are
            (metastasis, bladder), rows follow ``crop_origins``.
        masks: ``{view: uint8 (1024, 256)}`` label masks after gating (0 background,
            1 metastasis, 2 bladder).
        masks_ungated: ``{view: uint8 (1024, 256)}``, the segmenter's argmax before
            gating (for inspection).
        precision: The classifier's screening arithmetic (``models.precision``); with
            the lesion scorer, the whole-view segmentation's (:func:`whole_view_precision`).
        confirmed_crops: Crops of this scan run again in float32 because their screened
            logit lay within :data:`CONFIRM_MARGIN` of a decision (0 in float32).
    """

    probabilities: dict[str, float]
    positive: dict[str, bool]
    thresholds: dict[str, float]
    crop_origins: tuple[tuple[int, int], ...]
    crop_probabilities: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    masks_ungated: dict[str, np.ndarray]
    precision: str = "float32"
    confirmed_crops: int = 0

    @classmethod
    def without_crops(
        cls,
        probabilities: dict[str, float],
        thresholds: dict[str, float],
        masks: dict[str, np.ndarray],
        masks_ungated: dict[str, np.ndarray],
        precision: str,
    ) -> Prediction:
        """A prediction made from whole views (the lesion scorer, the lesion network).

        Each label is present at or above its threshold; there are no crops
        (``crop_origins`` empty, each view's ``crop_probabilities`` of shape (0, 2)).
        """
        return cls(
            probabilities=probabilities,
            positive={label: p >= thresholds[label] for label, p in probabilities.items()},
            thresholds=thresholds,
            crop_origins=(),
            crop_probabilities={v: np.zeros((0, 2), dtype=np.float32) for v in masks_ungated},
            masks=masks,
            masks_ungated=masks_ungated,
            precision=precision,
        )


@dataclass(frozen=True)
class CropProbabilities:
    """The classifier's output on every crop of some views.

    Attributes:
        origins: Top-left (row, col) of each crop, the same for every view.
        probabilities: float32 (n_views, n_crops, n_labels) sigmoid probabilities in
            [0, 1], crops in origin order.
        confirmed: bool (n_views, n_crops): crops run again in float32 after screening.
        precision: The screening arithmetic (``float32``: nothing screened).
    """

    origins: list[tuple[int, int]]
    probabilities: np.ndarray
    confirmed: np.ndarray
    precision: str


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "float32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _segmenter_precision(device: torch.device) -> str:
    # half precision only where it is fast and safe (CUDA); on the CPU the segmenter
    # stays float32, so that masks are float32's
    return "float16" if device.type == "cuda" else "float32"


def whole_view_precision(models: LoadedModels) -> str:
    """The arithmetic of the scorer's whole-view segmentation (:func:`segment_marks`).

    float16 on CUDA, as every segmentation there. On a CPU, the models' precision:
    bfloat16 where the CPU does it natively (AMX or AVX-512 BF16:
    :func:`core.networks.device.resolve_precision`), where the segmenter runs about 3 x
    faster than in float32; float32 elsewhere, and wherever ``BONESCAN_PRECISION=float32``.
    Unlike the crop classifier's screening, nothing is run again in float32: on 80
    second-centre phantom scans the calls agreed on 78 and the masks' metastasis Dice
    between the two was 0.948 (docs/benchmarks.md).
    """
    if models.device.type == "cuda":
        return "float16"
    return "bfloat16" if models.precision == "bfloat16" else "float32"


def skeleton_labels(models: LoadedModels, views: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Label each view's pixels with skeletal regions, in :func:`whole_view_precision`.

    The skeleton network runs in the arithmetic of the whole-view segmentation: in
    bfloat16 on a CPU that does it natively its forward pass takes about half the time,
    and the label maps of 8 second-centre phantom scans differed from float32's on 0.24 %
    of their bone pixels (docs/benchmarks.md).

    Args:
        models: Loaded models with a skeleton network.
        views: As :func:`core.anatomy.network.predict_labels`.

    Returns:
        ``{view: uint8 (H, W)}`` label maps (:func:`core.anatomy.network.predict_labels`).

    Raises:
        ValueError: If ``models`` has no skeleton network.
    """
    if models.skeleton is None:
        raise ValueError("models: no skeleton network")
    return predict_labels(models.skeleton, views, whole_view_precision(models))


def precision_note(precision: str) -> str:
    """Return how the classifier's arithmetic is described beside the device, or "".

    Args:
        precision: ``float32``, ``bfloat16`` or ``float16``.

    Returns:
        ``""`` for float32, else e.g. ``"bfloat16 screen, float32 decisions"``.
    """
    return "" if precision == "float32" else f"{precision} screen, float32 decisions"


def rows_to_confirm(
    logits: np.ndarray, thresholds: Sequence[float], margin: float = CONFIRM_MARGIN
) -> np.ndarray:
    """Crops whose screened logits lie too near a decision to trust their side of it.

    Args:
        logits: float (n_crops, n_labels) logits from the screening pass.
        thresholds: One probability threshold per label, each in [0, 1]; its decision
            logit is ``log(t / (1 - t))`` (0 and 1 give -inf and +inf: never near).
        margin: Logit distance (finite, >= 0) below which a crop is run again.

    Returns:
        int64 indices of the crops to run again in float32, ascending: those with a
        label's logit within ``margin`` of its decision logit, or any non-finite logit.

    Raises:
        ValueError: If the shapes disagree or a value is out of range.
    """
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if z.ndim != 2 or t.shape != (z.shape[1],):
        raise ValueError(
            f"logits must be (n_crops, n_labels) with one threshold per label; got logits "
            f"{z.shape}, thresholds {t.shape}"
        )
    if not np.all((t >= 0) & (t <= 1)):
        raise ValueError(f"thresholds must lie in [0, 1], got {t.tolist()}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    with np.errstate(divide="ignore"):
        decision = np.log(t) - np.log1p(-t)
    finite = np.isfinite(z)
    near = np.zeros(z.shape, dtype=bool)
    np.less(np.abs(z - decision), margin, out=near, where=finite)
    return np.flatnonzero((near | ~finite).any(axis=1))


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


def open_bands(
    crop_probs: np.ndarray,
    origins: Sequence[tuple[int, int]],
    crop_size: int,
    threshold: float | Sequence[float],
    rows: int,
    context: int = CONTEXT_ROWS,
    multiple: int = 32,
) -> list[tuple[int, int, int, int]]:
    """Row bands of a view that the segmenter must see for the gate's open crops.

    Args:
        crop_probs: float (n_crops, n_labels) crop probabilities of one view.
        origins: Top-left (row, col) of each crop.
        crop_size: Side of a crop, pixels.
        threshold: Probability at or above which a crop opens the gate of a label: one
            value, or one per label (the columns of ``crop_probs``).
        rows: Rows of the view (a multiple of ``multiple``).
        context: Rows of context added on each side of an open stretch (>= 0).
        multiple: Band heights are rounded out to multiples of this (> 0).

    Returns:
        ``(start, stop, keep_start, keep_stop)`` per band, sorted: the segmenter sees
        rows ``start:stop`` (a multiple of ``multiple`` tall) and its output is kept on
        rows ``keep_start:keep_stop`` (the open stretch). Empty when no crop is open.

    Raises:
        ValueError: If the arguments disagree or are out of range.
    """
    if len(crop_probs) != len(origins):
        raise ValueError(f"crop_probs has {len(crop_probs)} rows for {len(origins)} origins")
    if context < 0 or multiple < 1 or rows % multiple or rows < crop_size:
        raise ValueError(
            f"need context >= 0, multiple >= 1, rows a multiple of it and >= crop_size; got "
            f"context={context}, multiple={multiple}, rows={rows}, crop_size={crop_size}"
        )
    stretches: list[list[int]] = []
    probs = np.asarray(crop_probs)
    limits = np.asarray(threshold, dtype=np.float64)
    opened = sorted(r for (r, _), p in zip(origins, probs, strict=True) if (p >= limits).any())
    for r in opened:
        if stretches and r <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], r + crop_size)
        else:
            stretches.append([r, r + crop_size])
    bands = []
    for keep_start, keep_stop in stretches:
        start = max(0, keep_start - context) // multiple * multiple
        stop = min(rows, -(-(keep_stop + context) // multiple) * multiple)
        bands.append((start, stop, keep_start, keep_stop))
    return bands


#: Threads that normalise the views of a batch (numpy's partition and torch's arithmetic
#: release the GIL); a batch of many scans on a GPU machine would otherwise wait on it.
NORMALISE_THREADS = min(8, os.cpu_count() or 1)


def _normalise_all(views: list[np.ndarray]) -> np.ndarray:
    if len(views) <= 2 or NORMALISE_THREADS == 1:
        return np.stack([normalise_view(v) for v in views])
    with ThreadPoolExecutor(NORMALISE_THREADS) as pool:
        return np.stack(list(pool.map(normalise_view, views)))


def _logits(models: LoadedModels, crops: np.ndarray, batch: int, precision: str) -> np.ndarray:
    out = np.empty((len(crops), len(models.classifier_config.labels)), dtype=np.float32)
    with torch.inference_mode(), _autocast(models.device, precision):
        for sl in _chunks(len(crops), batch):
            x = torch.from_numpy(crops[sl][:, None]).to(models.device)
            out[sl] = models.classifier(x).float().cpu().numpy()
    return out


def crop_probabilities(
    models: LoadedModels,
    normalised: np.ndarray,
    batch: int | None = None,
    precision: str | None = None,
) -> CropProbabilities:
    """Run the classifier on every crop of normalised views.

    Args:
        models: From :func:`core.networks.models.load_models`.
        normalised: float32 (n_views, rows, cols) views from
            :func:`core.imaging.normalise.normalise_view` (values in [0, 2]).
        batch: Crops per forward pass (>= 1); None: :data:`CLASSIFIER_BATCH` on the CPU,
            :data:`CLASSIFIER_BATCH_GPU` on a GPU.
        precision: Screening arithmetic (``float32``, ``bfloat16``, ``float16``); None:
            ``models.precision``. Crops near a decision are run again in float32
            (module notes).

    Returns:
        The probabilities, which crops were run again, and the precision.

    Raises:
        ValueError: If ``normalised`` is not 3-D, ``batch`` < 1 or ``precision`` unknown.
    """
    if normalised.ndim != 3:
        raise ValueError(f"normalised must be (n_views, rows, cols), got {normalised.shape}")
    if batch is None:
        batch = CLASSIFIER_BATCH_GPU if models.device.type == "cuda" else CLASSIFIER_BATCH
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    precision = models.precision if precision is None else precision
    if precision not in ARITHMETICS:
        raise ValueError(f"precision must be one of {ARITHMETICS}, got {precision!r}")
    c_cfg = models.classifier_config
    origins = crop_origins(normalised.shape[1:], c_cfg.crop_size, c_cfg.crop_stride)
    crops = np.concatenate([extract_crops(v, origins, c_cfg.crop_size) for v in normalised])
    models.classifier.eval()
    logits = _logits(models, crops, batch, precision)
    confirmed = np.zeros(len(crops), dtype=bool)
    if precision != "float32":
        rows = rows_to_confirm(logits, tuple(c_cfg.thresholds().values()))
        if rows.size:
            logits[rows] = _logits(models, crops[rows], batch, "float32")
            confirmed[rows] = True
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    shape = (len(normalised), len(origins))
    return CropProbabilities(
        origins=origins,
        probabilities=probs.reshape(*shape, len(c_cfg.labels)),
        confirmed=confirmed.reshape(shape),
        precision=precision,
    )


def predict_batch(
    models: LoadedModels,
    scans: Sequence[Mapping[str, np.ndarray]],
    classifier_batch: int | None = None,
    segmenter_batch: int | None = None,
    segment: str = "auto",
    skeletons: Sequence[Mapping[str, np.ndarray] | None] | None = None,
) -> list[Prediction]:
    """Run both networks on several scans at once (or the lesion network, when loaded).

    A model folder with a lesion network (``models.lesion``) is run by
    :func:`predict_lesions` instead: one network makes the masks and the calls.

    Args:
        models: From :func:`core.networks.models.load_models`.
        scans: Each ``{view: counts}`` with views among ``"ANT"``, ``"POST"``; counts
            2-D float arrays of the segmenter's input shape (1024, 256), >= 0, hot =
            high. A scan may hold one view only.
        classifier_batch: Crops per classifier forward pass (>= 1); None: the
            device's default (:data:`CLASSIFIER_BATCH`, :data:`CLASSIFIER_BATCH_GPU`).
        segmenter_batch: Views per segmenter forward pass (>= 1; whole-view mode);
            None: the device's default (:data:`SEGMENTER_BATCH`, :data:`SEGMENTER_BATCH_GPU`).
        segment: One of :data:`SEGMENT_MODES` (see the module notes).
        skeletons: Each scan's skeleton maps, for the lesion network; None (or a None
            item) runs the skeleton network here. Ignored without a lesion network.

    Returns:
        One :class:`Prediction` per scan, same order. In gated mode
        ``masks_ungated`` is background outside the bands the segmenter saw.

    Raises:
        ValueError: If a scan is empty, names an unknown view, has a view of the wrong
            shape or non-finite counts, a batch size is < 1, or ``segment`` is unknown.
    """
    if segmenter_batch is None:
        segmenter_batch = SEGMENTER_BATCH_GPU if models.device.type == "cuda" else SEGMENTER_BATCH
    if (classifier_batch is not None and classifier_batch < 1) or segmenter_batch < 1:
        raise ValueError("classifier_batch and segmenter_batch must be >= 1")
    if segment not in SEGMENT_MODES:
        raise ValueError(f"segment must be one of {SEGMENT_MODES}, got {segment!r}")
    if models.lesion is not None:
        return predict_lesions(models, scans, _skeleton_maps(models, scans, skeletons))
    if models.scorer is not None:
        return predict_scored(models, scans, _skeleton_maps(models, scans, skeletons))
    c_cfg, s_cfg = models.classifier_config, models.segmenter_config
    shape = tuple(s_cfg.input_shape)
    assert len(shape) == 2
    for i, views in enumerate(scans):
        _check_scan(i, views, (shape[0], shape[1]))
    if not scans:
        return []
    keys = [(i, name) for i, views in enumerate(scans) for name in VIEWS if name in views]
    normalised = _normalise_all([np.asarray(scans[i][name]) for i, name in keys])
    classified = crop_probabilities(models, normalised, classifier_batch)
    origins, per_view = classified.origins, classified.probabilities
    device = models.device
    models.segmenter.eval()
    if segment == "auto":
        segment = "full" if device.type == "cuda" else "gated"
    thresholds = c_cfg.thresholds()
    gate = tuple(thresholds.values())
    with torch.inference_mode(), _autocast(device, _segmenter_precision(device)):
        if segment == "full":
            labels_ = _segment_whole(models, normalised, segmenter_batch)
        else:
            labels_ = np.zeros(normalised.shape, dtype=np.uint8)
            for k in range(len(keys)):
                for start, stop, keep_start, keep_stop in open_bands(
                    per_view[k], origins, c_cfg.crop_size, gate, shape[0],
                    multiple=s_cfg.size_multiple,
                ):  # fmt: skip
                    x = torch.from_numpy(normalised[k, None, None, start:stop]).to(device)
                    band = segment_labels(models.segmenter(x), s_cfg).cpu().numpy()[0]
                    labels_[k, keep_start:keep_stop] = band[keep_start - start : keep_stop - start]
    out: list[Prediction] = []
    for i in range(len(scans)):
        idx = [k for k, (j, _) in enumerate(keys) if j == i]
        probs = scan_probabilities([per_view[k] for k in idx])
        by_view = {keys[k][1]: per_view[k].copy() for k in idx}
        ungated = {keys[k][1]: labels_[k] for k in idx}
        gated = {
            name: gate_mask(m, by_view[name], origins, c_cfg.crop_size, gate)
            for name, m in ungated.items()
        }
        named = {label: float(p) for label, p in zip(c_cfg.labels, probs, strict=True)}
        out.append(
            Prediction(
                probabilities=named,
                positive={label: p >= thresholds[label] for label, p in named.items()},
                thresholds=dict(thresholds),
                crop_origins=tuple(origins),
                crop_probabilities=by_view,
                masks=gated,
                masks_ungated=ungated,
                precision=classified.precision,
                confirmed_crops=int(classified.confirmed[idx].sum()),
            )
        )
    return out


def _skeleton_maps(
    models: LoadedModels,
    scans: Sequence[Mapping[str, np.ndarray]],
    given: Sequence[Mapping[str, np.ndarray] | None] | None,
) -> list[Mapping[str, np.ndarray]]:
    """Return each scan's skeleton maps: those given, else the skeleton network's."""
    if given is not None and len(given) != len(scans):
        raise ValueError(f"skeletons: expected {len(scans)} items, got {len(given)}")
    out: list[Mapping[str, np.ndarray]] = []
    for i, views in enumerate(scans):
        maps = None if given is None else given[i]
        if maps is None:
            if models.skeleton is None:
                raise ValueError("models: the lesion network needs a skeleton network")
            maps = skeleton_labels(models, views)
        out.append(maps)
    return out


def _with_maps(
    scans: Sequence[Mapping[str, np.ndarray]], skeletons: Sequence[Mapping[str, np.ndarray]]
) -> list[tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]]:
    """Pair each scan with its skeleton maps, checking both before any network runs."""
    if len(scans) != len(skeletons):
        raise ValueError(f"skeletons: expected {len(scans)} maps, got {len(skeletons)}")
    for i, (views, maps) in enumerate(zip(scans, skeletons, strict=True)):
        _check_scan(i, views, (ROWS, COLS))
        missing = [v for v in views if v not in maps]
        if missing:
            raise ValueError(f"skeletons[{i}]: no map for views {missing}")
    return list(zip(scans, skeletons, strict=True))


def predict_scored(
    models: LoadedModels,
    scans: Sequence[Mapping[str, np.ndarray]],
    skeletons: Sequence[Mapping[str, np.ndarray]],
) -> list[Prediction]:
    """Segment whole views, score every mark, and call scans from the marks' scores.

    The segmenter runs on each whole view; each of its metastasis marks gets the lesion
    scorer's probability (:mod:`core.lesions.scorer`, from the features of
    :mod:`core.lesions.features`: the other side, the region's norm, the place). A mark
    is kept when its score reaches the scorer's threshold; the scan's metastasis
    probability is its highest mark score (0 without marks), so a scan is positive
    exactly when it keeps a mark. The bladder's probability is the segmenter's
    (:func:`core.networks.lesion_net.scan_score` of its bladder channel), present at 0.5.

    Args:
        models: Loaded models with ``scorer`` set.
        scans: Each ``{view: counts}``, float (1024, 256) >= 0, canonical orientation.
        skeletons: Each scan's ``{view: uint8 (1024, 256)}`` skeleton maps, same views.

    Returns:
        One :class:`Prediction` per scan, without crops; ``masks_ungated`` holds every
        mark, ``masks`` the kept ones.

    Raises:
        ValueError: If ``models.scorer`` is None, the lengths differ, a scan is
            malformed or a skeleton map is missing.
    """
    if models.scorer is None:
        raise ValueError("models: this model folder has no lesion scorer")
    scorer, cfg = models.scorer
    thresholds = {"metastasis": float(cfg.threshold), "bladder": THRESHOLD}
    out: list[Prediction] = []
    for views, maps in _with_maps(scans, skeletons):
        ungated, gated = {}, {}
        best, bladder = 0.0, 0.0
        for v, marks in segment_marks(models, views, maps).items():
            scores = score(scorer, cfg, marks.candidates.features)
            if len(scores):
                best = max(best, float(scores.max()))
            dropped = np.flatnonzero(scores < cfg.threshold) + 1
            kept = marks.labels.copy()
            kept[np.isin(marks.candidates.components, dropped)] = 0
            ungated[v], gated[v] = marks.labels, kept
            bladder = max(bladder, scan_score(marks.bladder))
        named = {"metastasis": best, "bladder": bladder}
        out.append(
            Prediction.without_crops(
                named, thresholds, gated, ungated, precision=whole_view_precision(models)
            )
        )
    return out


@dataclass(frozen=True)
class ViewMarks:
    """The segmenter's reading of one whole view, before the scorer.

    Attributes:
        labels: uint8 (1024, 256) argmax labels (0 background, 1 metastasis, 2 bladder).
        bladder: float32 (1024, 256) bladder probability in [0, 1].
        candidates: Its metastasis marks, numbered, with their features.
    """

    labels: np.ndarray
    bladder: np.ndarray
    candidates: Candidates


def segment_marks(
    models: LoadedModels, views: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray]
) -> dict[str, ViewMarks]:
    """Segment a scan's whole views and number the marks the scorer judges.

    What :func:`predict_scored` and the scorer's training
    (:mod:`core.networks.scorer_training`) both read, so that the scorer learns from
    exactly the marks it is later given.

    Args:
        models: Loaded models (the segmenter is used).
        views: ``{view: counts}``, float (1024, 256) >= 0, canonical orientation.
        maps: ``{view: uint8 (1024, 256)}`` skeleton maps of the same views.

    Returns:
        ``{view: ViewMarks}`` in :data:`core.config.VIEWS` order.
    """
    names = [v for v in VIEWS if v in views]
    x = torch.from_numpy(np.stack([normalise_view(np.asarray(views[v])) for v in names])[:, None])
    precision = whole_view_precision(models)
    with torch.inference_mode():
        if precision == "bfloat16":
            logits = models.segmenter_bfloat16(x.to(torch.bfloat16)).float()
        else:
            with _autocast(models.device, precision):
                logits = models.segmenter(x.to(models.device)).float()
    probs = torch.softmax(logits, dim=1).cpu().numpy()
    out = {}
    for k, v in enumerate(names):
        labels = segment_labels(logits[k : k + 1], models.segmenter_config).cpu().numpy()[0]
        cands = view_candidates(views[v], maps[v], labels, probs[k, 1], posterior=v == "POST")
        out[v] = ViewMarks(labels=labels, bladder=probs[k, 2], candidates=cands)
    return out


def predict_lesions(
    models: LoadedModels,
    scans: Sequence[Mapping[str, np.ndarray]],
    skeletons: Sequence[Mapping[str, np.ndarray]],
) -> list[Prediction]:
    """Run the lesion network (:mod:`core.networks.lesion_net`) on scans.

    A label's scan probability is the highest :func:`core.networks.lesion_net.scan_score`
    of its probability map over the scan's views; the label is present at or above the
    network's calibrated threshold. The masks are the argmax, and a scan called free of
    metastasis keeps no metastasis pixel (as the crop gate does for the two networks).

    Args:
        models: Loaded models with ``lesion`` set.
        scans: Each ``{view: counts}``, float (1024, 256) >= 0, canonical orientation.
        skeletons: Each scan's ``{view: uint8 (1024, 256)}`` skeleton maps
            (:func:`core.anatomy.network.predict_labels`), same views.

    Returns:
        One :class:`Prediction` per scan; no crops (``crop_origins`` empty,
        ``crop_probabilities`` of shape (0, 2)).

    Raises:
        ValueError: If ``models.lesion`` is None, the lengths differ, a scan is
            malformed or a skeleton map is missing.
    """
    if models.lesion is None:
        raise ValueError("models: this model folder has no lesion network")
    model, cfg = models.lesion
    thresholds = {"metastasis": float(cfg.threshold), "bladder": float(cfg.bladder_threshold)}
    out: list[Prediction] = []
    for views, maps in _with_maps(scans, skeletons):
        names, inputs = views_inputs(views, maps)
        with torch.inference_mode(), _autocast(models.device, _segmenter_precision(models.device)):
            probs = predict_probabilities(model, inputs)
        named = {
            "metastasis": max(scan_score(probs[k, 1]) for k in range(len(names))),
            "bladder": max(scan_score(probs[k, 2]) for k in range(len(names))),
        }
        ungated = {v: oriented(v, probs[k].argmax(0).astype(np.uint8)) for k, v in enumerate(names)}
        gated = {}
        for v, m in ungated.items():
            m = m.copy()
            if named["metastasis"] < thresholds["metastasis"]:
                m[m == 1] = 0
            gated[v] = m
        out.append(Prediction.without_crops(named, thresholds, gated, ungated, "float32"))
    return out


def _segment_whole(models: LoadedModels, views: np.ndarray, batch: int) -> np.ndarray:
    """Argmax labels, uint8 (n, rows, cols), of whole normalised views (n, rows, cols)."""
    out = np.empty(views.shape, dtype=np.uint8)
    for sl in _chunks(len(views), batch):
        x = torch.from_numpy(views[sl][:, None]).to(models.device)
        out[sl] = segment_labels(models.segmenter(x), models.segmenter_config).cpu().numpy()
    return out


def segment_labels(logits: torch.Tensor, cfg: SegmenterConfig) -> torch.Tensor:
    """Turn segmenter logits into label masks.

    Args:
        logits: float (N, 3, H, W): background, metastasis, bladder.
        cfg: The segmenter's config; its ``metastasis_pixel_threshold`` (when set) makes
            a pixel metastasis once its softmax probability reaches it, unless the
            argmax says bladder.

    Returns:
        uint8 (N, H, W) labels 0, 1, 2.
    """
    labels = logits.argmax(dim=1)
    t = cfg.metastasis_pixel_threshold
    if t is not None:
        p_met = torch.softmax(logits.float(), dim=1)[:, 1]
        labels = torch.where((p_met >= t) & (labels != 2), torch.ones_like(labels), labels)
        labels = torch.where((p_met < t) & (labels == 1), torch.zeros_like(labels), labels)
    return labels.to(torch.uint8)


def predict(models: LoadedModels, views: Mapping[str, np.ndarray]) -> Prediction:
    """Run both networks on one scan.

    Args:
        models: From :func:`core.networks.models.load_models`.
        views: ``{view: counts}``, counts float (1024, 256) >= 0, hot = high; e.g.
            ``scan.views``.

    Returns:
        The scan's :class:`Prediction`.

    Raises:
        ValueError: As :func:`predict_batch`.
    """
    return predict_batch(models, [views])[0]
