"""The data side of training: the dataset in memory, the split, crop sampling, batches.

:mod:`core.networks.trainer` runs the optimisation on what this module gives it:

* **Data.** Every case's views (counts) and label masks are read once into memory
  (counts as float16, masks uint8) with each view's reference level
  (:func:`core.imaging.normalise.reference_level`, taken on the float32 counts), so
  that training is not bound by disk reads.
* **Split.** The paper's 7-level patient split (:func:`core.evaluation.metrics.split_patients`:
  levels by the patient's annotated metastasis pixels over all its views, 20 % of
  each level held out, by patient). The held-out patients give the validation
  figures; they are never trained on.
* **Sampling.** No epochs: every optimisation step draws a fresh batch of random
  crops. Classifier crops (256 x 256) are drawn from four strata on a 32-row grid
  (with/without metastasis, ``positive_share`` of each batch with; within each,
  with/without bladder equally), then jittered by up to 16 rows; segmenter crops
  (the segmenter config's ``train_crop``) half from positions holding metastasis,
  half from anywhere. A crop's classifier targets are read from its *augmented*
  mask: a label is present when at least one pixel of it is in the crop (the same
  rule the gating of :mod:`core.imaging.crops` relies on).
* **Hard negatives** (``hard_negative_share`` > 0). Every crop position of the
  classifier strata without metastasis keeps a hardness score, 1.0 at first (so
  unseen positions get drawn); after each classifier step the positions of the
  batch's crops whose target is negative get their metastasis binary cross-entropy
  from that same forward pass. When a batch is drawn, each crop drawn from a negative
  stratum is, with this probability, replaced by a negative position drawn with
  probability proportional to its score (regardless of bladder). A share of 0 draws
  exactly as without mining.
* **Validation set**: the held-out views normalised once, with the classifier
  targets of their fixed crops.

All randomness comes from one numpy generator (positions, jitter, columns) and one
torch generator (augmentation), both seeded from the run's seed and both kept in the
checkpoint, so that a seed fixes every batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS, VIEWS
from core.evaluation.metrics import split_patients
from core.imaging.crops import crop_origins, extract_crops
from core.imaging.normalise import normalise_tensor, reference_level
from core.networks.augment import AugmentConfig, augment_batch
from core.networks.models import ClassifierConfig
from core.reading.dataset import Case, load_case_masks, load_case_views, read_dataset

#: Row step of the grid that crop positions are stratified on.
SAMPLING_GRID = 32
#: Largest row shift of a classifier or segmenter crop off its grid position.
JITTER = SAMPLING_GRID // 2
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


def _read_case(job: tuple[Case, str]) -> _CaseRow:
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
class ViewSplit:
    """The patient split applied to the views of a :class:`TrainingData`.

    Attributes:
        train_ids: Patient ids trained on.
        val_ids: Held-out patient ids.
        train_views: Indices of the views of the training patients.
        val_views: Indices of the held-out views used for validation (those of the
            first ``val_cases`` held-out cases).
    """

    train_ids: list[str]
    val_ids: list[str]
    train_views: np.ndarray
    val_views: np.ndarray


def split_views(
    data: TrainingData, test_fraction: float, split_seed: int, val_cases: int
) -> ViewSplit:
    """Split the data by patient (7 lesion levels) and pick the validation views.

    Args:
        data: The dataset.
        test_fraction: Share of each lesion level held out.
        split_seed: Seed of the patient split.
        val_cases: Most held-out cases whose views are validated on.

    Returns:
        The split.

    Raises:
        ValueError: If the split leaves no training patient.
    """
    train_ids, val_ids = split_patients(data.patient_lesion_pixels(), test_fraction, split_seed)
    if not train_ids:
        raise ValueError("the split left no training patient")
    case_patient = np.asarray(data.patient_ids)[data.view_case]
    train_views = np.flatnonzero(np.isin(case_patient, train_ids))
    val_all = np.flatnonzero(np.isin(case_patient, val_ids))
    kept_cases = sorted({int(c) for c in data.view_case[val_all]})[:val_cases]
    val_views = val_all[np.isin(data.view_case[val_all], kept_cases)]
    return ViewSplit(train_ids, val_ids, train_views, val_views)


class Strata:
    """Crop positions (view, row) grouped into weighted strata, sampled stratum-first."""

    def __init__(self, groups: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        kept = [(g, w) for g, w in zip(groups, weights, strict=True) if len(g) and w > 0]
        if not kept:
            raise ValueError("no crop position to sample from")
        self.groups = [g for g, _ in kept]
        total = sum(w for _, w in kept)
        self.weights = np.asarray([w / total for _, w in kept])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` positions (int64 (n, 2): view, row): a stratum, then a position in it."""
        which = rng.choice(len(self.groups), size=n, p=self.weights)
        out = np.empty((n, 2), dtype=np.int64)
        for i, g in enumerate(which):
            group = self.groups[int(g)]
            out[i] = group[int(rng.integers(0, len(group)))]
        return out


class HardNegatives:
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


def crop_positions(
    data: TrainingData, views: np.ndarray, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the grid positions of ``height``-row crops and what each crop holds.

    Args:
        data: The dataset.
        views: Indices of the views to take positions from.
        height: Crop rows.

    Returns:
        ``(positions, has_metastasis, has_bladder)``: int64 (P, 2) (view, row) on the
        :data:`SAMPLING_GRID` (plus the last row that fits), and two bool (P,) saying
        whether the full-width crop there holds a pixel of the label.
    """
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


def classifier_strata(
    data: TrainingData, views: np.ndarray, size: int, positive_share: float
) -> Strata:
    """Return the classifier's strata: ``positive_share`` with metastasis, bladder balanced."""
    pos, met, bla = crop_positions(data, views, size)
    groups: list[np.ndarray] = []
    weights: list[float] = []
    for has_met, share in ((True, positive_share), (False, 1.0 - positive_share)):
        # within each half, crops with and without bladder equally (when both exist)
        parts = [pos[(met == has_met) & (bla == b)] for b in (True, False)]
        present = [p for p in parts if len(p)]
        groups += present
        weights += [share / len(present)] * len(present)
    return Strata(groups, weights)


def segmenter_strata(data: TrainingData, views: np.ndarray, height: int) -> Strata:
    """Return the segmenter's strata: half positions holding metastasis, half any."""
    pos, met, _ = crop_positions(data, views, height)
    return Strata([pos[met], pos], [0.5, 0.5])


def gather_crops(
    data: TrainingData,
    picks: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    jitter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut the crops at the picked positions, rows jittered and columns drawn at random.

    Returns:
        float32 counts (N, 1, H, W), float32 reference levels (N,), uint8 masks (N, H, W).
    """
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


class BatchSampler:
    """Draws both models' training batches: positions, crops, augmentation, device.

    Attributes:
        classifier_strata: Where classifier crops are drawn from.
        segmenter_strata: Where segmenter crops are drawn from.
        hard: The hardness scores of negative classifier positions; None when
            ``hard_negative_share`` is 0 or there is no negative position.
        rng: Draws positions, jitter and columns.
        aug_gen: Draws the augmentation, on ``device``.
    """

    def __init__(
        self,
        data: TrainingData,
        train_views: np.ndarray,
        classifier_crop: int,
        segmenter_crop: tuple[int, int],
        *,
        batch_size: int,
        positive_share: float,
        hard_negative_share: float,
        augment: AugmentConfig,
        seed: int,
        device: torch.device,
        channels_last: bool,
    ) -> None:
        """Build the strata of the training views and seed both generators.

        Args:
            data: The dataset.
            train_views: Indices of the views trained on.
            classifier_crop: Side of the square classifier crops.
            segmenter_crop: (rows, columns) of the segmenter crops.
            batch_size: Crops per batch.
            positive_share: Share of classifier crops drawn with metastasis.
            hard_negative_share: Share of negative classifier crops drawn by hardness.
            augment: Augmentation ranges.
            seed: Seeds the position generator (``seed``) and the augmentation
                generator (``seed + 1``).
            device: Where batches are augmented and returned.
            channels_last: Return the inputs channels-last (the models' layout).

        Raises:
            ValueError: If a model has no crop position to sample from.
        """
        self.data = data
        self.classifier_crop = classifier_crop
        self.segmenter_crop = segmenter_crop
        self.batch_size = batch_size
        self.hard_negative_share = hard_negative_share
        self.augment = augment
        self.device = device
        self.channels_last = channels_last
        self.classifier_strata = classifier_strata(
            data, train_views, classifier_crop, positive_share
        )
        self.hard: HardNegatives | None = None
        if hard_negative_share > 0:
            pos, met, _ = crop_positions(data, train_views, classifier_crop)
            if (~met).any():
                self.hard = HardNegatives(pos[~met])
        self.segmenter_strata = segmenter_strata(data, train_views, segmenter_crop[0])
        self.rng = np.random.default_rng(seed)
        self.aug_gen = torch.Generator(device=device)
        self.aug_gen.manual_seed(seed + 1)

    def batch(
        self,
        strata: Strata,
        shape: tuple[int, int],
        jitter: int,
        hard: HardNegatives | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Draw one augmented batch.

        Args:
            strata: Where to draw positions.
            shape: Crop (rows, columns).
            jitter: Largest row shift off a position.
            hard: Replace negative draws by hard ones (``hard_negative_share``).

        Returns:
            ``(inputs, masks, picks)``: normalised float32 inputs (N, 1, H, W) and
            integer masks (N, H, W) on the device, and the positions drawn.
        """
        picks = strata.sample(self.rng, self.batch_size)
        if hard is not None:
            picks = hard.replace(picks, self.rng, self.hard_negative_share)
        counts, ref, masks = gather_crops(self.data, picks, shape, self.rng, jitter)
        dev = self.device
        x, m = augment_batch(counts.to(dev), ref.to(dev), masks.to(dev), self.augment, self.aug_gen)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, m, picks

    def classifier_batch(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Draw the classifier's next batch (see :meth:`batch`)."""
        size = self.classifier_crop
        return self.batch(self.classifier_strata, (size, size), JITTER, self.hard)

    def segmenter_batch(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Draw the segmenter's next batch (see :meth:`batch`)."""
        return self.batch(self.segmenter_strata, self.segmenter_crop, JITTER)


@dataclass
class ValSet:
    """Held-out views prepared once for validation.

    Attributes:
        inputs: float16 (V, 1, H, W) normalised views.
        masks: uint8 (V, H, W) label masks.
        view_case: (V,) local case index of each view.
        crop_targets: (V, n_crops, 2) classifier targets of the fixed crops.
        origins: The fixed crops' (row, column) origins.
    """

    inputs: torch.Tensor
    masks: np.ndarray
    view_case: np.ndarray
    crop_targets: np.ndarray
    origins: list[tuple[int, int]]


def make_valset(data: TrainingData, views: np.ndarray, cfg: ClassifierConfig) -> ValSet:
    """Normalise the held-out ``views`` and read their fixed crops' targets."""
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
    return ValSet(inputs, masks, local, targets, origins)
