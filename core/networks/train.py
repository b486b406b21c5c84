"""Train the classifier and the segmenter on a labelled dataset.

``python -m core train DATASET --out DIR`` runs :func:`train_from_folder`:

* **Data.** Every case's views (counts) and label masks are read once into memory
  (counts as float16, masks uint8; about 1.5 MB per case) with each view's
  reference level (:func:`core.imaging.normalise.reference_level`, taken on the float32
  counts), so that training is not bound by disk reads.
* **Split.** The paper's 7-level patient split (:func:`core.evaluation.metrics.split_patients`:
  levels by the patient's annotated metastasis pixels over all its views, 20 % of
  each level held out, by patient). The held-out patients give the validation
  figures; they are never trained on.
* **Sampling.** No epochs: a budget of optimisation steps, each drawing a fresh
  batch of random crops. Classifier crops (256 x 256) are drawn from four strata
  on a 32-row grid (with/without metastasis, ``positive_share`` = 0.5 of each batch
  with; within each, with/without bladder equally), then jittered by up to 16 rows;
  segmenter crops (256 x 256 by default, ``--seg-crop-rows 512`` for 512 x 256) half
  from positions holding metastasis, half from anywhere. A crop's classifier targets
  are read from its *augmented* mask: a label is present when at least one pixel
  of it is in the crop (the same rule the gating of :mod:`core.imaging.crops` relies on).
* **Optimisation.** Adam, the paper's initial learning rate 0.01 and batch 16 by
  default (``--lr`` sets another, e.g. 1e-3), a 2 % linear warm-up then a cosine
  decay to 1 % of the initial rate; the classifier minimises binary cross-entropy
  on its two logits, the segmenter MONAI's ``DiceCELoss`` (softmax, Dice over the
  metastasis and bladder channels pooled over the batch, plus cross-entropy).
  One iteration makes one step of each model. Mixed precision (bfloat16
  autocast, losses in float32) on CUDA, and on a CPU whose instructions do bfloat16
  natively (:func:`core.networks.device.native_bfloat16`: AVX512-BF16 or AMX; about 2.5x
  faster there); models and batches are channels-last on the CPU (oneDNN's fastest
  layout). The cards' ``training.amp_dtype`` says which arithmetic ran.
* **Validation** (every ``val_every`` steps and at the end, on up to ``val_cases``
  held-out scans, no augmentation): classifier ROC AUC of metastasis and bladder
  over the fixed crops, scan accuracy for metastasis (max rule), and segmenter
  Dice of metastasis and bladder after gating (mean over the views that hold the
  class).
* **Checkpoints** every ``checkpoint_every`` steps to ``DIR/checkpoint.pt`` (models,
  optimisers, schedulers, every random state); ``resume`` continues from it. On the
  CPU a run resumed from a checkpoint ends with the same weights as an
  uninterrupted run with the same seed; on a GPU cuDNN may differ in the last bits.
* **Time budget** (optional, for lent GPU machines): steps 5 to 25 are timed and
  both step budgets are cut by one factor so that the loop ends in time; the
  learning-rate schedule is recomputed for the new budget and the card says so.
* **Result**: ``DIR/classifier.*`` and ``DIR/segmenter.*`` via
  :func:`core.networks.models.save_model` (fp16 safetensors + JSON card with sha256).

**Fine-tuning and hard negatives** (for transfer from the phantom to real scans):

* ``init_from`` (``--init-from DIR``) starts both networks from a model folder's
  weights (sha256 checked, loaded as float32) instead of a random initialisation.
  The architecture fields of the run's configs must equal the folder's cards (else
  ValueError); settings that are not architecture (the segmenter's ``train_crop``,
  thresholds) are the run's, so a calibration made for the old weights is not carried
  over. The cards' ``training.init_from`` and the checkpoint fingerprint record the
  folder and both weights' sha256, so ``--resume`` refuses another starting point.
* ``hard_negative_share`` (``--hard-negative-share``) mines hard negatives for the
  classifier. Every crop position of the classifier strata without metastasis keeps a
  hardness score, 1.0 at first (so unseen positions get drawn); after each classifier
  step the positions of the batch's crops whose target is negative get their
  metastasis binary cross-entropy from that same forward pass. When a batch is drawn,
  each crop drawn from a negative stratum is, with this probability, replaced by a
  negative position drawn with probability proportional to its score (regardless of
  bladder). The scores are in the checkpoint; 0 draws exactly as before.
* ``augment`` (``--augment transfer``) can be
  :data:`core.networks.augment.TRANSFER_AUGMENTATION`: blur, 8-bit display exports,
  anisotropic stretch and burned-in labels on top of the standard augmentation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS, VIEWS
from core.imaging.crops import crop_origins, extract_crops, gate_mask
from core.imaging.normalise import normalise_tensor, reference_level
from core.networks.augment import AugmentConfig, augment_batch
from core.networks.models import (
    CLASSIFIER,
    SEGMENTER,
    ClassifierConfig,
    SegmenterConfig,
    build_classifier,
    build_segmenter,
    config_from_dict,
    load_model,
    read_card,
    save_model,
)

#: File name of the checkpoint inside the output folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: Row step of the grid that crop positions are stratified on.
SAMPLING_GRID = 32
#: Largest count stored in the float16 preload (float16's maximum finite value).
_FLOAT16_MAX = 65504.0


@dataclass
class TrainingData:
    """A labelled dataset held in memory, one row per view.

    Attributes:
        counts: float16 (V, 1024, 256) counts (clipped at 65504).
        masks: uint8 (V, 1024, 256) label masks (0 background, 1 metastasis, 2 bladder).
        reference: float32 (V,) each view's reference level, from the float32 counts.
        view_case: int (V,) index into ``case_ids`` of each view's case.
        view_names: (V,) ``"ANT"``/``"POST"`` of each view.
        case_ids: Case identifiers.
        patient_ids: The patient of each case (same length as ``case_ids``).
        description: What the data is, for the model card (JSON-ready).
    """

    counts: np.ndarray
    masks: np.ndarray
    reference: np.ndarray
    view_case: np.ndarray
    view_names: list[str]
    case_ids: list[str]
    patient_ids: list[str]
    description: dict[str, Any] = field(default_factory=dict)

    def patient_lesion_pixels(self) -> dict[str, int]:
        """Return ``{patient_id: metastasis pixels over all its views}`` (for the split)."""
        out = dict.fromkeys(self.patient_ids, 0)
        for v in range(len(self.view_names)):
            pid = self.patient_ids[int(self.view_case[v])]
            out[pid] += int(np.count_nonzero(self.masks[v] == LABEL_METASTASIS))
        return out

    def fingerprint(self) -> str:
        """Return a short hash of the case and patient ids (to match a checkpoint)."""
        text = "\n".join(f"{c}\t{p}" for c, p in zip(self.case_ids, self.patient_ids, strict=True))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_training_data(
    cases: Iterable[tuple[str, str, Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
    description: Mapping[str, Any] | None = None,
) -> TrainingData:
    """Pack cases into a :class:`TrainingData`.

    Args:
        cases: ``(case_id, patient_id, views, masks)`` per case; ``views`` maps view
            names to float counts (1024, 256) >= 0, ``masks`` the same views to uint8
            label masks (a view without a mask counts as all background).
        description: JSON-ready description of the data for the model card.

    Returns:
        The packed data.

    Raises:
        ValueError: If there is no case, a case id repeats, a view name is unknown, or
            a shape is wrong.
    """
    counts: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    refs: list[float] = []
    view_case: list[int] = []
    names: list[str] = []
    case_ids: list[str] = []
    patient_ids: list[str] = []
    for case_id, patient_id, views, case_masks in cases:
        if case_id in case_ids:
            raise ValueError(f"cases: case id {case_id!r} repeats")
        for name in VIEWS:
            if name not in views:
                continue
            v = np.asarray(views[name], dtype=np.float32)
            m = np.asarray(case_masks.get(name, np.zeros((ROWS, COLS), np.uint8)))
            if v.shape != (ROWS, COLS) or m.shape != (ROWS, COLS):
                raise ValueError(
                    f"case {case_id!r} view {name!r}: counts and mask must be "
                    f"({ROWS}, {COLS}), got {v.shape} and {m.shape}"
                )
            refs.append(reference_level(v))
            counts.append(np.clip(v, 0, _FLOAT16_MAX).astype(np.float16))
            masks.append(m.astype(np.uint8))
            view_case.append(len(case_ids))
            names.append(name)
        unknown = set(views) - set(VIEWS)
        if unknown:
            raise ValueError(f"case {case_id!r}: unknown views {sorted(unknown)}")
        case_ids.append(str(case_id))
        patient_ids.append(str(patient_id))
    if not counts:
        raise ValueError("cases must hold at least one view")
    return TrainingData(
        counts=np.stack(counts),
        masks=np.stack(masks),
        reference=np.asarray(refs, dtype=np.float32),
        view_case=np.asarray(view_case, dtype=np.int64),
        view_names=names,
        case_ids=case_ids,
        patient_ids=patient_ids,
        description=dict(description or {}),
    )


_CaseRow = tuple[str, str, Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


def _read_case(job: tuple[Any, str]) -> _CaseRow:
    from core.reading.dataset import load_case_masks, load_case_views

    case, prefix = job
    scan = load_case_views(case)
    return (prefix + case.case_id, prefix + case.patient_id, scan.views, load_case_masks(case))


def load_training_data(
    folders: Path | str | Sequence[Path | str], progress: bool = True, workers: int = 1
) -> TrainingData:
    """Read labelled dataset folders (the project's format) into memory.

    Args:
        folders: One dataset folder (``cases.csv``, view images, LabelMe JSON, read
            with :mod:`core.reading.dataset`) or several, e.g. shards generated in parallel.
            With several, case and patient ids are prefixed with ``<folder name>/``
            so that equal ids in different folders stay different patients.
        progress: Show a progress bar while reading.
        workers: Processes that read cases in parallel (1: read in this process).

    Returns:
        The packed data; its description names the folders and the case count.

    Raises:
        ValueError: If no case can be read, ``workers`` < 1 or two folders share a
            name (errors of :mod:`core.reading.dataset` pass through).
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from core.reading.dataset import read_dataset

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    roots = [Path(folders)] if isinstance(folders, str | Path) else [Path(f) for f in folders]
    if not roots:
        raise ValueError("folders must name at least one dataset folder")
    names = [r.resolve().name for r in roots]
    if len(set(names)) != len(names):
        raise ValueError(f"folders must have distinct names, got {names}")
    jobs = [
        (case, f"{name}/" if len(roots) > 1 else "")
        for root, name in zip(roots, names, strict=True)
        for case in read_dataset(root)
    ]

    def bar(rows: Iterator[_CaseRow]) -> Iterator[_CaseRow]:
        return iter(tqdm(rows, total=len(jobs), desc="reading", disable=not progress, leave=False))

    description = {"dataset": ", ".join(names), "n_cases": len(jobs)}
    if workers == 1:
        return build_training_data(bar(map(_read_case, jobs)), description)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return build_training_data(bar(pool.map(_read_case, jobs, chunksize=4)), description)


@dataclass(frozen=True)
class TrainOptions:
    """Settings of one training run.

    Attributes:
        steps: Optimisation steps of the classifier (>= 1).
        seg_steps: Steps of the segmenter; the same as ``steps`` when None.
        batch_size: Crops per step for each model (the paper: 16).
        lr: Initial learning rate of Adam (the paper: 0.01).
        seed: Seeds model initialisation, sampling and augmentation.
        device: ``"cpu"``, ``"cuda"`` ...; the GPU when available when None.
        amp: Mixed precision (bfloat16 autocast) on CUDA, and on a CPU with native
            bfloat16 (:func:`core.networks.device.native_bfloat16`); float32 elsewhere.
        checkpoint_every: Steps between checkpoints (>= 1).
        val_every: Steps between validations (>= 1); also validated at the end.
        val_cases: Most held-out scans used for validation figures.
        test_fraction: Share of each lesion level held out (the paper: 0.2).
        split_seed: Seed of the patient split.
        warmup_fraction: Share of the steps spent warming the learning rate up.
        augment: Augmentation ranges.
        classifier: Classifier config.
        segmenter: Segmenter config (its ``train_crop`` is the crop size trained on).
        positive_share: Share of classifier crops drawn from positions holding
            metastasis (0.5: balanced; about 0.13 of a view's crops hold metastasis in
            the phantom cohort, so lower values train closer to the scan-level prior
            the max-over-crops rule meets).
        keep_checkpoint: Keep ``checkpoint.pt`` after a finished run (it is large and
            does not belong in a shipped model folder).
        time_budget_s: Seconds the training loop may take in this call; when set, steps
            5 to 25 are timed and both step budgets are cut by the same factor to fit
            (the learning-rate schedule follows). None: no limit.
        progress: Show the progress bar.
        init_from: A model folder whose weights both networks start from
            (fine-tuning); None: random initialisation. See the module docstring.
        hard_negative_share: Share, in [0, 1], of the classifier's negative crops drawn
            by hardness (their last metastasis loss) instead of uniformly; 0: none.
    """

    steps: int = 3000
    seg_steps: int | None = None
    batch_size: int = 16
    lr: float = 0.01
    seed: int = 0
    device: str | None = None
    amp: bool = True
    checkpoint_every: int = 250
    val_every: int = 500
    val_cases: int = 32
    test_fraction: float = 0.2
    split_seed: int = 0
    warmup_fraction: float = 0.02
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    positive_share: float = 0.5
    keep_checkpoint: bool = False
    time_budget_s: float | None = None
    progress: bool = True
    init_from: str | None = None
    hard_negative_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "val_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seg_steps is not None and self.seg_steps < 0:
            raise ValueError(f"seg_steps must be >= 0, got {self.seg_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.positive_share <= 1.0:
            raise ValueError(f"positive_share must be in [0, 1], got {self.positive_share}")
        if self.val_cases < 0:
            raise ValueError(f"val_cases must be >= 0, got {self.val_cases}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be > 0, got {self.time_budget_s}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0.0 <= self.hard_negative_share <= 1.0:
            raise ValueError(
                f"hard_negative_share must be in [0, 1], got {self.hard_negative_share}"
            )
        if self.init_from is not None and not str(self.init_from).strip():
            raise ValueError("init_from must name a model folder or be None")

    @property
    def segmenter_steps(self) -> int:
        """Return the segmenter's step budget."""
        return self.steps if self.seg_steps is None else self.seg_steps


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        out_dir: The model folder written (or, when stopped early, holding the
            checkpoint only).
        step: The last step done.
        finished: True when both step budgets were spent and the models saved.
        validation: The last validation figures (empty when none ran).
        train_patients: Patient ids trained on.
        val_patients: Held-out patient ids.
        seconds: Wall time of this call.
    """

    out_dir: Path
    step: int
    finished: bool
    validation: dict[str, float]
    train_patients: list[str]
    val_patients: list[str]
    seconds: float


class _Strata:
    """Crop positions (view, row) grouped into weighted strata, sampled stratum-first."""

    def __init__(self, groups: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        kept = [(g, w) for g, w in zip(groups, weights, strict=True) if len(g) and w > 0]
        if not kept:
            raise ValueError("no crop position to sample from")
        self.groups = [g for g, _ in kept]
        total = sum(w for _, w in kept)
        self.weights = np.asarray([w / total for _, w in kept])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        which = rng.choice(len(self.groups), size=n, p=self.weights)
        out = np.empty((n, 2), dtype=np.int64)
        for i, g in enumerate(which):
            group = self.groups[int(g)]
            out[i] = group[int(rng.integers(0, len(group)))]
        return out


class _HardNegatives:
    """Hardness scores of the classifier's negative crop positions, and draws by them."""

    #: Score of a position not seen yet: above a typical loss, so that it gets drawn.
    INITIAL = 1.0
    #: Smallest score kept, so that every position stays drawable.
    FLOOR = 1e-6

    def __init__(self, positions: np.ndarray) -> None:
        keys = positions[:, 0] * ROWS + positions[:, 1]
        order = np.argsort(keys, kind="stable")
        self.positions = positions[order]
        self.keys = keys[order]
        self.scores = np.full(len(positions), self.INITIAL, dtype=np.float64)

    def index(self, picks: np.ndarray) -> np.ndarray:
        """Return each pick's index in ``positions``, -1 where it is no negative position."""
        if not len(self.keys):
            return np.full(len(picks), -1, dtype=np.int64)
        keys = picks[:, 0] * ROWS + picks[:, 1]
        i = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return np.where(self.keys[i] == keys, i, -1)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` positions with probability proportional to their scores."""
        p = self.scores / self.scores.sum()
        return self.positions[rng.choice(len(self.positions), size=n, p=p)]

    def replace(self, picks: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
        """Replace each negative pick by a hard draw with probability ``share``."""
        negative = self.index(picks) >= 0
        hard = negative & (rng.random(len(picks)) < share)
        if not hard.any():
            return picks
        out = picks.copy()
        out[hard] = self.draw(rng, int(hard.sum()))
        return out

    def update(self, picks: np.ndarray, losses: np.ndarray, negative: np.ndarray) -> None:
        """Set the scores of the picks whose crop was negative to their losses."""
        idx = self.index(picks)
        ok = (idx >= 0) & negative
        self.scores[idx[ok]] = np.maximum(losses[ok], self.FLOOR)


def _row_presence(masks: np.ndarray, views: np.ndarray, label: int) -> np.ndarray:
    # cumulative count of rows holding the label, so any row window is one subtraction
    out = np.zeros((len(views), masks.shape[1] + 1), dtype=np.int64)
    for i, v in enumerate(views):
        out[i, 1:] = np.cumsum((masks[v] == label).any(axis=1))
    return out


def _positions(
    data: TrainingData, views: np.ndarray, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.arange(0, ROWS - height + 1, SAMPLING_GRID)
    if rows[-1] != ROWS - height:
        rows = np.append(rows, ROWS - height)
    met = _row_presence(data.masks, views, LABEL_METASTASIS)
    bla = _row_presence(data.masks, views, LABEL_BLADDER)
    grid_v, grid_r = np.meshgrid(np.arange(len(views)), rows, indexing="ij")
    vv, rr = grid_v.ravel(), grid_r.ravel()
    has_met = met[vv, rr + height] > met[vv, rr]
    has_bla = bla[vv, rr + height] > bla[vv, rr]
    pos = np.stack([views[vv], rr], axis=1)
    return pos, has_met, has_bla


def _classifier_strata(
    data: TrainingData, views: np.ndarray, size: int, positive_share: float
) -> _Strata:
    pos, met, bla = _positions(data, views, size)
    groups: list[np.ndarray] = []
    weights: list[float] = []
    for has_met, share in ((True, positive_share), (False, 1.0 - positive_share)):
        # within each half, crops with and without bladder equally (when both exist)
        parts = [pos[(met == has_met) & (bla == b)] for b in (True, False)]
        present = [p for p in parts if len(p)]
        groups += present
        weights += [share / len(present)] * len(present)
    return _Strata(groups, weights)


def _segmenter_strata(data: TrainingData, views: np.ndarray, height: int) -> _Strata:
    pos, met, _ = _positions(data, views, height)
    return _Strata([pos[met], pos], [0.5, 0.5])


def _gather(
    data: TrainingData,
    picks: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    jitter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h, w = shape
    n = len(picks)
    counts = np.empty((n, 1, h, w), dtype=np.float32)
    masks = np.empty((n, h, w), dtype=np.uint8)
    for i, (v, r) in enumerate(picks):
        r = int(np.clip(r + rng.integers(-jitter, jitter + 1), 0, ROWS - h)) if jitter else int(r)
        c = int(rng.integers(0, COLS - w + 1))
        counts[i, 0] = data.counts[v, r : r + h, c : c + w]
        masks[i] = data.masks[v, r : r + h, c : c + w]
    ref = data.reference[picks[:, 0]].astype(np.float32)
    return torch.from_numpy(counts), torch.from_numpy(ref), torch.from_numpy(masks)


def classifier_targets(masks: torch.Tensor) -> torch.Tensor:
    """Return a crop's classifier targets from its label mask.

    Args:
        masks: Integer label masks (N, H, W).

    Returns:
        float32 (N, 2): (any metastasis pixel, any bladder pixel) as 0/1.
    """
    flat = masks.reshape(masks.shape[0], -1)
    return torch.stack(
        [(flat == LABEL_METASTASIS).any(1), (flat == LABEL_BLADDER).any(1)], dim=1
    ).float()


@dataclass
class _ValSet:
    inputs: torch.Tensor  # float16 (V, 1, H, W) normalised
    masks: np.ndarray  # uint8 (V, H, W)
    view_case: np.ndarray  # (V,) local case index
    crop_targets: np.ndarray  # (V, n_crops, 2)
    origins: list[tuple[int, int]]


def _make_valset(data: TrainingData, views: np.ndarray, cfg: ClassifierConfig) -> _ValSet:
    origins = crop_origins((ROWS, COLS), cfg.crop_size, cfg.crop_stride)
    inputs = torch.stack(
        [
            normalise_tensor(torch.from_numpy(data.counts[v]), float(data.reference[v]))
            for v in views
        ]
    )[:, None].half()
    masks = data.masks[views]
    targets = np.stack(
        [
            classifier_targets(torch.from_numpy(extract_crops(m, origins, cfg.crop_size))).numpy()
            for m in masks
        ]
    )
    _, local = np.unique(data.view_case[views], return_inverse=True)
    return _ValSet(inputs, masks, local, targets, origins)


def _amp_available(device: torch.device) -> bool:
    from core.networks.device import native_bfloat16

    # emulated bfloat16 (a CPU without AVX512-BF16/AMX) is slower than float32
    return device.type == "cuda" or (device.type == "cpu" and native_bfloat16())


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[object]:
    if amp and _amp_available(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: Config fields that decide the network a state dict fits (and what it was trained on).
_ARCHITECTURE_FIELDS = {
    CLASSIFIER: (
        "architecture", "in_channels", "labels", "crop_size", "normalisation",
        "stem_kernel", "stem_stride", "max_pool",
    ),
    SEGMENTER: (
        "architecture", "backbone", "in_channels", "classes", "size_multiple",
        "normalisation",
    ),
}  # fmt: skip


def _init_source(folder: str, c_cfg: ClassifierConfig, s_cfg: SegmenterConfig) -> dict[str, str]:
    """Check a fine-tuning folder against the run's configs; return its path and hashes.

    Raises:
        ValueError: If a card is missing or invalid, or an architecture field differs.
    """
    out = {"path": str(folder)}
    for name, cfg in ((CLASSIFIER, c_cfg), (SEGMENTER, s_cfg)):
        card = read_card(folder, name)
        theirs = config_from_dict(name, card["config"])
        differ = [f for f in _ARCHITECTURE_FIELDS[name] if getattr(theirs, f) != getattr(cfg, f)]
        if differ:
            raise ValueError(
                f"init_from: {folder}/{name}.json differs from the {name} config in "
                f"{differ}; match them (the weights must fit the architecture)"
            )
        out[f"{name}_sha256"] = str(card["weights"]["sha256"])
    return out


def validate(
    classifier: nn.Module,
    segmenter: nn.Module,
    val: _ValSet,
    c_cfg: ClassifierConfig,
    s_cfg: SegmenterConfig,
    device: torch.device,
    amp: bool = True,
) -> dict[str, float]:
    """Compute the validation figures on held-out views (see the module docstring).

    Returns:
        ``auc_metastasis``, ``auc_bladder`` (crop level), ``acc_metastasis`` (scan
        level, max rule), ``dice_metastasis``, ``dice_bladder`` (gated, mean over the
        views holding the class) and the same Dice before gating
        (``dice_metastasis_ungated``, ``dice_bladder_ungated``); NaN where undefined.
    """
    from core.evaluation.metrics import dice_over_views, roc_auc

    c_was, s_was = classifier.training, segmenter.training
    classifier.eval()
    segmenter.eval()
    n_views = len(val.inputs)
    n_crops = len(val.origins)
    probs = np.empty((n_views, n_crops, len(c_cfg.labels)), dtype=np.float32)
    preds = np.empty(val.masks.shape, dtype=np.uint8)
    size = c_cfg.crop_size
    with torch.inference_mode(), _autocast(device, amp):
        for start in range(0, n_views, 8):
            x = val.inputs[start : start + 8].to(device).float()
            crops = torch.cat([x[:, :, r : r + size, c : c + size] for r, c in val.origins], 1)
            logits = classifier(crops.reshape(-1, 1, size, size)).float()
            probs[start : start + len(x)] = (
                torch.sigmoid(logits).reshape(len(x), n_crops, -1).cpu().numpy()
            )
            preds[start : start + len(x)] = segmenter(x).argmax(1).to(torch.uint8).cpu().numpy()
    classifier.train(c_was)
    segmenter.train(s_was)
    out: dict[str, float] = {}
    for j, label in enumerate(c_cfg.labels):
        out[f"auc_{label}"] = roc_auc(val.crop_targets[:, :, j].ravel(), probs[:, :, j].ravel())
    case_prob = np.zeros(val.view_case.max() + 1)
    case_true = np.zeros(val.view_case.max() + 1, dtype=bool)
    np.maximum.at(case_prob, val.view_case, probs[:, :, 0].max(1))
    np.logical_or.at(case_true, val.view_case, val.crop_targets[:, :, 0].max(1) > 0)
    thresholds = c_cfg.thresholds()
    gate = tuple(thresholds.values())
    out["acc_metastasis"] = float(np.mean((case_prob >= thresholds["metastasis"]) == case_true))
    gated = [gate_mask(preds[v], probs[v], val.origins, size, gate) for v in range(n_views)]
    for value, label in ((LABEL_METASTASIS, "metastasis"), (LABEL_BLADDER, "bladder")):
        for suffix, masks in (("", gated), ("_ungated", list(preds))):
            dices: list[float] = []
            for v in range(n_views):
                dices += dice_over_views({"v": masks[v]}, {"v": val.masks[v]}, value)
            out[f"dice_{label}{suffix}"] = float(np.mean(dices)) if dices else math.nan
    return out


@dataclass
class _Plan:
    """Step budgets of both models; mutable because a time budget may shorten them."""

    classifier: int
    segmenter: int

    @property
    def total(self) -> int:
        return max(self.classifier, self.segmenter)


def _schedule(budget: Callable[[], int], warmup_fraction: float) -> Callable[[int], float]:
    # reads the budget at every step, so that a shortened budget reshapes the schedule
    def factor(step: int) -> float:
        total = max(1, budget())
        warm = max(1, round(total * warmup_fraction))
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def _device(name: str | None) -> torch.device:
    from core.networks.device import select_device

    return torch.device(name) if name else select_device()


def _options_fingerprint(opts: TrainOptions) -> dict[str, Any]:
    # what must not change between a checkpoint and its resumption
    return {
        "batch_size": opts.batch_size,
        "seed": opts.seed,
        "split_seed": opts.split_seed,
        "test_fraction": opts.test_fraction,
        "classifier": dataclasses.asdict(opts.classifier),
        # the metastasis pixel threshold is applied at inference only: training ignores it
        "segmenter": {
            k: v
            for k, v in dataclasses.asdict(opts.segmenter).items()
            if k != "metastasis_pixel_threshold"
        },
    }


def _fmt(values: Mapping[str, float]) -> str:
    short = {
        "auc_metastasis": "aucM",
        "auc_bladder": "aucB",
        "acc_metastasis": "accM",
        "dice_metastasis": "diceM",
        "dice_bladder": "diceB",
    }
    # the progress bar shows the gated figures only; the card keeps them all
    return " ".join(
        f"{short.get(k, k)}={v:.3f}" for k, v in values.items() if not k.endswith("_ungated")
    )


class _Trainer:
    """One training run's state: data, models, optimisers, random states, history."""

    def __init__(self, data: TrainingData, out: Path, opts: TrainOptions) -> None:
        from monai.losses import DiceCELoss

        from core.evaluation.metrics import split_patients

        self.data, self.out, self.opts = data, out, opts
        self.ckpt_path = out / CHECKPOINT_NAME
        self.device = _device(opts.device)
        self.amp = opts.amp and _amp_available(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.train_ids, self.val_ids = split_patients(
            data.patient_lesion_pixels(), opts.test_fraction, opts.split_seed
        )
        if not self.train_ids:
            raise ValueError("the split left no training patient")
        case_patient = np.asarray(data.patient_ids)[data.view_case]
        train_views = np.flatnonzero(np.isin(case_patient, self.train_ids))
        val_all = np.flatnonzero(np.isin(case_patient, self.val_ids))
        val_cases = sorted({int(c) for c in data.view_case[val_all]})[: opts.val_cases]
        val_views = val_all[np.isin(data.view_case[val_all], val_cases)]
        self.c_cfg, self.s_cfg = opts.classifier, opts.segmenter
        self.init_from = (
            _init_source(opts.init_from, self.c_cfg, self.s_cfg) if opts.init_from else None
        )
        self.c_strata = _classifier_strata(
            data, train_views, self.c_cfg.crop_size, opts.positive_share
        )
        self.hard: _HardNegatives | None = None
        if opts.hard_negative_share > 0:
            pos, met, _ = _positions(data, train_views, self.c_cfg.crop_size)
            if (~met).any():
                self.hard = _HardNegatives(pos[~met])
        self.s_strata = _segmenter_strata(data, train_views, self.s_cfg.train_crop[0])
        self.valset = _make_valset(data, val_views, self.c_cfg) if len(val_views) else None

        torch.manual_seed(opts.seed)
        self.classifier = build_classifier(self.c_cfg)
        self.segmenter = build_segmenter(self.s_cfg)
        if opts.init_from:
            # built first all the same, so that the torch random state is the same either way
            for name, model in ((CLASSIFIER, self.classifier), (SEGMENTER, self.segmenter)):
                loaded, _, _ = load_model(opts.init_from, name, "cpu")
                model.load_state_dict(loaded.float().state_dict())
        self.classifier.to(self.device)
        self.segmenter.to(self.device)
        # oneDNN's fastest convolutions are channels-last (batches are made so too)
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:
            self.classifier.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.segmenter.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.plan = _Plan(opts.steps, opts.segmenter_steps)
        self.opt_c = torch.optim.Adam(self.classifier.parameters(), lr=opts.lr)
        self.opt_s = torch.optim.Adam(self.segmenter.parameters(), lr=opts.lr)
        self.sched_c = torch.optim.lr_scheduler.LambdaLR(
            self.opt_c, _schedule(lambda: self.plan.classifier, opts.warmup_fraction)
        )
        self.sched_s = torch.optim.lr_scheduler.LambdaLR(
            self.opt_s, _schedule(lambda: self.plan.segmenter, opts.warmup_fraction)
        )
        self.bce = nn.BCEWithLogitsLoss()
        self.dice_ce = DiceCELoss(
            to_onehot_y=True, softmax=True, include_background=False, batch=True
        )
        self.rng = np.random.default_rng(opts.seed)
        self.aug_gen = torch.Generator(device=self.device)
        self.aug_gen.manual_seed(opts.seed + 1)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.notes: list[str] = []
        self.fingerprint = {"data": data.fingerprint(), **_options_fingerprint(opts)}
        # only when used, so that checkpoints of runs without them still resume
        if self.init_from is not None:
            self.fingerprint["init_from"] = {k: v for k, v in self.init_from.items() if k != "path"}
        if opts.hard_negative_share > 0:
            self.fingerprint["hard_negative_share"] = opts.hard_negative_share

    def restore(self) -> None:
        """Continue from the checkpoint (same data and settings required)."""
        # on the CPU first: the generator states must stay CPU byte tensors
        ckpt = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"{self.ckpt_path} was made with other data or settings; remove it or match them"
            )
        self.classifier.load_state_dict(ckpt["classifier"])
        self.segmenter.load_state_dict(ckpt["segmenter"])
        self.opt_c.load_state_dict(ckpt["opt_c"])
        self.opt_s.load_state_dict(ckpt["opt_s"])
        self.sched_c.load_state_dict(ckpt["sched_c"])
        self.sched_s.load_state_dict(ckpt["sched_s"])
        self.rng.bit_generator.state = ckpt["np_rng"]
        self.aug_gen.set_state(ckpt["aug_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        self.step = int(ckpt["step"])
        self.history = list(ckpt["history"])
        self.notes = list(ckpt.get("notes", []))
        if self.hard is not None:
            self.hard.scores = np.asarray(ckpt["hard_scores"], dtype=np.float64).copy()

    def save_checkpoint(self) -> None:
        """Write every state needed to resume, atomically."""
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "step": self.step,
                "fingerprint": self.fingerprint,
                "classifier": self.classifier.state_dict(),
                "segmenter": self.segmenter.state_dict(),
                "opt_c": self.opt_c.state_dict(),
                "opt_s": self.opt_s.state_dict(),
                "sched_c": self.sched_c.state_dict(),
                "sched_s": self.sched_s.state_dict(),
                "np_rng": self.rng.bit_generator.state,
                "aug_rng": self.aug_gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": self.history,
                "notes": self.notes,
                "hard_scores": None if self.hard is None else self.hard.scores.copy(),
            },
            tmp,
        )
        tmp.replace(self.ckpt_path)

    def _batch(
        self,
        strata: _Strata,
        shape: tuple[int, int],
        jitter: int,
        hard: _HardNegatives | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        picks = strata.sample(self.rng, self.opts.batch_size)
        if hard is not None:
            picks = hard.replace(picks, self.rng, self.opts.hard_negative_share)
        counts, ref, masks = _gather(self.data, picks, shape, self.rng, jitter)
        dev = self.device
        x, m = augment_batch(
            counts.to(dev), ref.to(dev), masks.to(dev), self.opts.augment, self.aug_gen
        )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, m, picks

    def step_classifier(self) -> float:
        """One optimisation step of the classifier; returns its loss."""
        size = self.c_cfg.crop_size
        x, m, picks = self._batch(self.c_strata, (size, size), SAMPLING_GRID // 2, self.hard)
        with _autocast(self.device, self.amp):
            logits = self.classifier(x)
        logits = logits.float()
        targets = classifier_targets(m)
        loss = self.bce(logits, targets)
        if self.hard is not None:
            # the same forward pass scores the negatives: no extra inference
            per_crop = functional.binary_cross_entropy_with_logits(
                logits[:, 0].detach(), targets[:, 0], reduction="none"
            )
            negative = (targets[:, 0] == 0).cpu().numpy()
            self.hard.update(picks, per_crop.cpu().numpy(), negative)
        self.opt_c.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_c.step()
        self.sched_c.step()
        return float(loss.detach())

    def step_segmenter(self) -> float:
        """One optimisation step of the segmenter; returns its loss."""
        h, w = self.s_cfg.train_crop
        x, m, _ = self._batch(self.s_strata, (h, w), SAMPLING_GRID // 2)
        with _autocast(self.device, self.amp):
            logits = self.segmenter(x)
        loss = self.dice_ce(logits.float(), m[:, None])
        self.opt_s.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_s.step()
        self.sched_s.step()
        return float(loss.detach())

    def validate(self) -> dict[str, float]:
        """Validation figures now (empty without held-out scans); kept in the history."""
        if self.valset is None:
            return {}
        figures = validate(
            self.classifier,
            self.segmenter,
            self.valset,
            self.c_cfg,
            self.s_cfg,
            self.device,
            self.amp,
        )
        self.history.append({"step": float(self.step), **figures})
        return figures

    def fit_budget(self, seconds_per_step: float, seconds_left: float) -> None:
        """Shorten both step budgets (same factor) to what fits in the time left."""
        fits = self.step + int(0.95 * seconds_left / max(seconds_per_step, 1e-9))
        if fits >= self.plan.total:
            return
        factor = max(fits, self.step + 1) / self.plan.total
        old = (self.plan.classifier, self.plan.segmenter)
        self.plan.classifier = max(self.step + 1, round(old[0] * factor))
        self.plan.segmenter = round(old[1] * factor) if old[1] else 0
        note = (
            f"time budget: steps cut from {old} to "
            f"{(self.plan.classifier, self.plan.segmenter)} "
            f"at {seconds_per_step:.3f} s/step"
        )
        self.notes.append(note)

    def save_models(self, seconds: float, last_val: dict[str, float]) -> None:
        """Write both models and their cards into the output folder."""
        opts, data = self.opts, self.data
        common: dict[str, Any] = {
            "training_data": {
                **data.description,
                "n_cases": len(data.case_ids),
                "n_patients": len(set(data.patient_ids)),
                "n_train_patients": len(self.train_ids),
                "n_val_patients": len(self.val_ids),
                "split": f"7-level lesion-pixel split, test_fraction {opts.test_fraction}, "
                f"seed {opts.split_seed}",
                "data_fingerprint": data.fingerprint(),
            },
            "seed": opts.seed,
            "metrics": {},
        }
        training: dict[str, Any] = {
            "optimizer": "Adam",
            "lr": opts.lr,
            "schedule": f"linear warm-up {opts.warmup_fraction:.0%}, cosine to 1 %",
            "batch_size": opts.batch_size,
            "positive_share": opts.positive_share,
            "augmentation": dataclasses.asdict(opts.augment),
            "device": str(self.device),
            "amp": self.amp,
            "amp_dtype": "bfloat16" if self.amp else "float32",
            "amp_device": self.device.type,
            "init_from": self.init_from,
            "hard_negative_share": opts.hard_negative_share,
            "seconds_last_session": round(seconds, 1),
            "notes": self.notes,
            "validation": last_val,
            "validation_history": self.history,
        }
        c_train = {**training, "steps": self.plan.classifier, "loss": "BCEWithLogits"}
        s_train = {
            **training,
            "steps": self.plan.segmenter,
            "loss": "DiceCELoss(softmax, no background, batch Dice)",
        }
        save_model(
            self.out, CLASSIFIER, self.classifier, self.c_cfg, {**common, "training": c_train}
        )
        save_model(self.out, SEGMENTER, self.segmenter, self.s_cfg, {**common, "training": s_train})


#: Steps (after the first few, which warm caches up) timed to fit a time budget.
_CALIBRATION_STEPS = (5, 25)


def train(
    data: TrainingData,
    out_dir: Path | str,
    opts: TrainOptions | None = None,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """Train both models on in-memory data and write the model folder.

    Args:
        data: The dataset (:func:`load_training_data` or :func:`build_training_data`).
        out_dir: Output folder; receives ``checkpoint.pt`` while training and the
            model files at the end.
        opts: Settings; the defaults when None. On resumption the step budgets are
            this call's (so a run can be extended); everything else must match.
        resume: Continue from ``out_dir/checkpoint.pt`` when it exists (it must come
            from the same data and settings); start afresh when it does not.
        stop_after: Stop after this step with a checkpoint, without saving the models
            (to train in sessions); None runs the whole budget.

    Returns:
        What was done.

    Raises:
        ValueError: If the split leaves no training patient, a checkpoint exists but
            ``resume`` is false, or the checkpoint belongs to other data or settings.
    """
    from tqdm import tqdm

    opts = opts or TrainOptions()
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / CHECKPOINT_NAME).exists() and not resume:
        raise ValueError(
            f"{out / CHECKPOINT_NAME} exists: pass resume=True (--resume) or remove it"
        )
    t = _Trainer(data, out, opts)
    if resume and t.ckpt_path.exists():
        t.restore()
    first = t.step
    last_val: dict[str, float] = dict(t.history[-1]) if t.history else {}
    last_val.pop("step", None)
    ema: dict[str, float] = {}
    t.classifier.train()
    t.segmenter.train()
    bar = tqdm(
        total=t.plan.total, initial=t.step, desc="train", unit="step", disable=not opts.progress,
        file=sys.stderr, dynamic_ncols=True,
    )  # fmt: skip
    loop_start = time.perf_counter()
    calib_start = loop_start
    while t.step < (t.plan.total if stop_after is None else min(t.plan.total, stop_after)):
        if t.step < t.plan.classifier:
            loss = t.step_classifier()
            ema["loss_c"] = 0.9 * ema.get("loss_c", loss) + 0.1 * loss
        if t.step < t.plan.segmenter:
            loss = t.step_segmenter()
            ema["loss_s"] = 0.9 * ema.get("loss_s", loss) + 0.1 * loss
        t.step += 1
        if opts.time_budget_s is not None:
            done = t.step - first
            if done == _CALIBRATION_STEPS[0]:
                calib_start = time.perf_counter()
            elif done == _CALIBRATION_STEPS[1]:
                now = time.perf_counter()
                per_step = (now - calib_start) / (_CALIBRATION_STEPS[1] - _CALIBRATION_STEPS[0])
                t.fit_budget(per_step, opts.time_budget_s - (now - loop_start))
                bar.total = t.plan.total
                if t.notes:
                    bar.write(t.notes[-1])
        total = t.plan.total
        end = total if stop_after is None else min(total, stop_after)
        if t.step % opts.val_every == 0 or t.step == total:
            last_val = t.validate()
            bar.write(f"step {t.step}: {_fmt(last_val)}")
        if t.step % opts.checkpoint_every == 0 or (
            t.step == end and (end < total or opts.keep_checkpoint)
        ):
            t.save_checkpoint()
        bar.set_postfix_str(_fmt({**ema, **last_val}), refresh=False)
        bar.update(1)
    bar.close()

    finished = t.step >= t.plan.total
    if finished:
        t.save_models(time.perf_counter() - started, last_val)
        if not opts.keep_checkpoint:
            t.ckpt_path.unlink(missing_ok=True)
    return TrainResult(
        out_dir=out,
        step=t.step,
        finished=finished,
        validation=last_val,
        train_patients=t.train_ids,
        val_patients=t.val_ids,
        seconds=time.perf_counter() - started,
    )


def train_from_folder(
    dataset: Path | str | Sequence[Path | str],
    out_dir: Path | str,
    opts: TrainOptions | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    workers: int = 1,
) -> TrainResult:
    """Read dataset folders and train on them (see :func:`train`).

    Args:
        dataset: Labelled dataset folder(s) in the project's format (see
            :func:`load_training_data`).
        out_dir: Output model folder.
        opts: Settings; the defaults when None.
        resume: Continue from the checkpoint in ``out_dir`` when there is one.
        stop_after: Stop with a checkpoint after this step.
        workers: Processes reading the dataset.

    Returns:
        What was done.
    """
    opts = opts or TrainOptions()
    data = load_training_data(dataset, progress=opts.progress, workers=workers)
    return train(data, out_dir, opts, resume=resume, stop_after=stop_after)
