"""The training loop: optimisers, schedules, checkpoints, validation, the model folder.

``python -m core train DATASET --out DIR`` runs :func:`train_from_folder`; the data,
the split and the batches come from :mod:`core.networks.sampling`.

* **Optimisation.** Adam, the paper's initial learning rate 0.01 and batch 16 by
  default (``--lr`` sets another), a 2 % linear warm-up then a cosine decay to 1 % of
  the initial rate; the classifier minimises binary cross-entropy on its two logits,
  the segmenter MONAI's ``DiceCELoss`` (softmax, Dice over the metastasis and bladder
  channels pooled over the batch, plus cross-entropy). One iteration makes one step
  of each model. Mixed precision (bfloat16 autocast, losses in float32) on CUDA, and
  on a CPU whose instructions do bfloat16 natively
  (:func:`core.networks.device.native_bfloat16`: AVX512-BF16 or AMX; emulated
  bfloat16 is slower than float32); models and batches are channels-last on the CPU
  (oneDNN's fastest layout). The cards' ``training.amp_dtype`` says which arithmetic ran.
* **Validation** (every ``val_every`` steps and at the end, on up to ``val_cases``
  held-out scans, no augmentation): classifier ROC AUC of metastasis and bladder
  over the fixed crops, scan accuracy for metastasis (max rule), and segmenter
  Dice of metastasis and bladder after gating (mean over the views that hold the
  class). The figures of every validation form the card's ``validation_history``.
* **Checkpoints** every ``checkpoint_every`` steps to ``DIR/checkpoint.pt`` (models,
  optimisers, schedulers, every random state, hard-negative scores); ``resume``
  continues from it. On the CPU a run resumed from a checkpoint ends with the same
  weights as an uninterrupted run with the same seed; on a GPU cuDNN may differ in
  the last bits.
* **Time budget** (optional, for lent GPU machines): steps 5 to 25 are timed and
  both step budgets are cut by one factor so that the loop ends in time; the
  learning-rate schedule is recomputed for the new budget and the card says so.
* **Result**: ``DIR/classifier.*`` and ``DIR/segmenter.*`` via
  :func:`core.networks.models.save_model` (fp16 safetensors + JSON card with sha256).

**Fine-tuning** (for transfer from the phantom to real scans):

* ``init_from`` (``--init-from DIR``) starts both networks from a model folder's
  weights (sha256 checked, loaded as float32) instead of a random initialisation.
  The architecture fields of the run's configs must equal the folder's cards (else
  ValueError); settings that are not architecture (the segmenter's ``train_crop``,
  thresholds) are the run's, so a calibration made for the old weights is not carried
  over. The cards' ``training.init_from`` and the checkpoint fingerprint record the
  folder and both weights' sha256, so ``--resume`` refuses another starting point.
* ``hard_negative_share`` (``--hard-negative-share``) mines hard negatives for the
  classifier (:class:`core.networks.sampling.HardNegatives`); the scores are in the
  checkpoint.
* ``augment`` (``--augment transfer``) can be
  :data:`core.networks.augment.TRANSFER_AUGMENTATION`: blur, 8-bit display exports,
  anisotropic stretch and burned-in labels on top of the standard augmentation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from torch import nn
from torch.nn import functional
from tqdm import tqdm

from core.config import LABEL_BLADDER, LABEL_METASTASIS
from core.evaluation.metrics import dice_over_views, roc_auc
from core.imaging.crops import gate_mask
from core.lesions.scorer import SCORER
from core.networks.augment import AugmentConfig
from core.networks.device import native_bfloat16, select_device
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
from core.networks.sampling import (
    BatchSampler,
    TrainingData,
    ValSet,
    classifier_targets,
    load_training_data,
    make_valset,
    split_views,
)
from core.networks.scorer_training import refit_scorer, scorer_seconds

#: File name of the checkpoint inside the output folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: File name of the progress record inside the output folder (read by the Model lab page).
PROGRESS_NAME = "progress.json"
#: Seconds between progress records, besides one at every validation and at the end.
PROGRESS_EVERY_S = 5.0


def write_progress(out: Path, record: Mapping[str, Any]) -> None:
    """Write ``out/progress.json`` atomically (a reader never sees half a file).

    Args:
        out: The run's output folder.
        record: JSON-serialisable figures: ``step``, ``total``, ``elapsed_s``, ``eta_s``,
            ``state`` ("running", "finished" or "stopped"), ``validation_history``,
            ``notes``, ``loss``.
    """
    tmp = out / (PROGRESS_NAME + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out / PROGRESS_NAME)


#: The encoder stages :attr:`TrainOptions.freeze_stages` counts, from the input: the
#: module names of a MONAI ResNet (the classifier, and the segmenter's ``encoder``).
FREEZABLE_STAGES: tuple[tuple[str, ...], ...] = (
    (),
    ("conv1", "bn1"),
    ("conv1", "bn1", "layer1"),
    ("conv1", "bn1", "layer1", "layer2"),
    ("conv1", "bn1", "layer1", "layer2", "layer3"),
)


def frozen_modules(model: nn.Module, stages: int) -> list[nn.Module]:
    """The encoder modules that ``stages`` freezes in a classifier or a segmenter.

    Args:
        model: A MONAI ``ResNet`` (classifier) or ``FlexibleUNet`` (its ``encoder``).
        stages: Index into :data:`FREEZABLE_STAGES`.

    Returns:
        The modules, in input order.

    Raises:
        ValueError: If ``stages`` is out of range.
    """
    if not 0 <= stages < len(FREEZABLE_STAGES):
        raise ValueError(f"stages must be in [0, {len(FREEZABLE_STAGES) - 1}], got {stages}")
    encoder = getattr(model, "encoder", model)
    return [getattr(encoder, name) for name in FREEZABLE_STAGES[stages]]


def set_train_mode(model: nn.Module, frozen: Sequence[nn.Module]) -> None:
    """Put ``model`` in training mode but keep its frozen modules in eval mode.

    Frozen batch-norm layers must keep the running statistics they came with: a small
    centre's batches would otherwise shift them while their weights cannot follow.
    """
    model.train()
    for module in frozen:
        module.eval()


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
            metastasis (0.5: balanced; a lower value trains closer to the share of
            crops that hold metastasis in a scan, the prior the max-over-crops rule
            meets).
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
        freeze_stages: Encoder stages of both networks kept as they are, counted from
            the input (0: none; 1: the stem; 2: stem and layer1; 3: up to layer2; 4: up
            to layer3; :data:`FREEZABLE_STAGES`). Frozen stages get no gradient (the
            backward pass stops before them, the dearest part of a step at full
            resolution) and keep their batch-norm statistics. For fine-tuning.
        scorer_epochs: When ``init_from`` holds a lesion scorer: full-batch epochs
            refitting it, from its weights, to the marks the fine-tuned segmenter makes
            on the training patients' scans (:func:`core.networks.scorer_training.refit_scorer`;
            0 copies it unchanged). A time budget keeps
            :func:`core.networks.scorer_training.scorer_seconds` for it.
        scorer_lr: Adam's learning rate of that refit.
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
    freeze_stages: int = 0
    scorer_epochs: int = 300
    scorer_lr: float = 1e-3

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
        if not 0 <= self.freeze_stages < len(FREEZABLE_STAGES):
            raise ValueError(
                f"freeze_stages must be in [0, {len(FREEZABLE_STAGES) - 1}], "
                f"got {self.freeze_stages}"
            )
        if self.init_from is not None and not str(self.init_from).strip():
            raise ValueError("init_from must name a model folder or be None")
        if self.scorer_epochs < 0:
            raise ValueError(f"scorer_epochs must be >= 0, got {self.scorer_epochs}")
        if not self.scorer_lr > 0:
            raise ValueError(f"scorer_lr must be > 0, got {self.scorer_lr}")

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


def _amp_available(device: torch.device) -> bool:
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
    val: ValSet,
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
        """Split the data, check ``init_from``, build the sampler, models and optimisers.

        Raises:
            ValueError: If the split leaves no training patient, ``init_from`` does not
                fit the configs, or a model has no crop position to sample from.
        """
        self.data, self.out, self.opts = data, out, opts
        self.ckpt_path = out / CHECKPOINT_NAME
        self.device = _device(opts.device)
        self.amp = opts.amp and _amp_available(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        split = split_views(data, opts.test_fraction, opts.split_seed, opts.val_cases)
        self.train_ids, self.val_ids = split.train_ids, split.val_ids
        self.c_cfg, self.s_cfg = opts.classifier, opts.segmenter
        self.init_from = (
            _init_source(opts.init_from, self.c_cfg, self.s_cfg) if opts.init_from else None
        )
        # a parent with a lesion scorer makes its calls with it: the candidate must too
        self.refits_scorer = bool(
            opts.init_from and (Path(opts.init_from) / f"{SCORER}.json").is_file()
        )
        self.reserve_s = (
            scorer_seconds(len(split.train_ids) + len(split.val_ids)) if self.refits_scorer else 0.0
        )
        # oneDNN's fastest convolutions are channels-last (models and batches alike)
        self.channels_last = self.device.type == "cpu"
        self.sampler = BatchSampler(
            data,
            split.train_views,
            self.c_cfg.crop_size,
            self.s_cfg.train_crop,
            batch_size=opts.batch_size,
            positive_share=opts.positive_share,
            hard_negative_share=opts.hard_negative_share,
            augment=opts.augment,
            seed=opts.seed,
            device=self.device,
            channels_last=self.channels_last,
        )
        self.valset = (
            make_valset(data, split.val_views, self.c_cfg) if len(split.val_views) else None
        )

        torch.manual_seed(opts.seed)
        self.classifier = build_classifier(self.c_cfg)
        self.segmenter = build_segmenter(self.s_cfg)
        if opts.init_from:
            # built first all the same, so that the torch random state is the same either way
            for name, model in ((CLASSIFIER, self.classifier), (SEGMENTER, self.segmenter)):
                loaded, _, _ = load_model(opts.init_from, name, "cpu")
                model.load_state_dict(loaded.float().state_dict())
        self.frozen = {
            CLASSIFIER: frozen_modules(self.classifier, opts.freeze_stages),
            SEGMENTER: frozen_modules(self.segmenter, opts.freeze_stages),
        }
        for module in (*self.frozen[CLASSIFIER], *self.frozen[SEGMENTER]):
            module.requires_grad_(False)
        self.classifier.to(self.device)
        self.segmenter.to(self.device)
        if self.channels_last:
            self.classifier.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.segmenter.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.plan = _Plan(opts.steps, opts.segmenter_steps)
        self.opt_c = torch.optim.Adam(
            [p for p in self.classifier.parameters() if p.requires_grad], lr=opts.lr
        )
        self.opt_s = torch.optim.Adam(
            [p for p in self.segmenter.parameters() if p.requires_grad], lr=opts.lr
        )
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
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.notes: list[str] = []
        self.fingerprint = {"data": data.fingerprint(), **_options_fingerprint(opts)}
        # only when used, so that checkpoints of runs without them still resume
        if self.init_from is not None:
            self.fingerprint["init_from"] = {k: v for k, v in self.init_from.items() if k != "path"}
        if opts.hard_negative_share > 0:
            self.fingerprint["hard_negative_share"] = opts.hard_negative_share
        if opts.freeze_stages:
            self.fingerprint["freeze_stages"] = opts.freeze_stages

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
        self.sampler.rng.bit_generator.state = ckpt["np_rng"]
        self.sampler.aug_gen.set_state(ckpt["aug_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        self.step = int(ckpt["step"])
        self.history = list(ckpt["history"])
        self.notes = list(ckpt.get("notes", []))
        if self.sampler.hard is not None:
            self.sampler.hard.scores = np.asarray(ckpt["hard_scores"], dtype=np.float64).copy()

    def save_checkpoint(self) -> None:
        """Write every state needed to resume, atomically."""
        tmp = self.ckpt_path.with_suffix(".tmp")
        hard = self.sampler.hard
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
                "np_rng": self.sampler.rng.bit_generator.state,
                "aug_rng": self.sampler.aug_gen.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": self.history,
                "notes": self.notes,
                "hard_scores": None if hard is None else hard.scores.copy(),
            },
            tmp,
        )
        tmp.replace(self.ckpt_path)

    def step_classifier(self) -> float:
        """One optimisation step of the classifier; returns its loss."""
        x, m, picks = self.sampler.classifier_batch()
        with _autocast(self.device, self.amp):
            logits = self.classifier(x)
        logits = logits.float()
        targets = classifier_targets(m)
        loss = self.bce(logits, targets)
        hard = self.sampler.hard
        if hard is not None:
            # the same forward pass scores the negatives: no extra inference
            per_crop = functional.binary_cross_entropy_with_logits(
                logits[:, 0].detach(), targets[:, 0], reduction="none"
            )
            negative = (targets[:, 0] == 0).cpu().numpy()
            hard.update(picks, per_crop.cpu().numpy(), negative)
        self.opt_c.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_c.step()
        self.sched_c.step()
        return float(loss.detach())

    def step_segmenter(self) -> float:
        """One optimisation step of the segmenter; returns its loss."""
        x, m, _ = self.sampler.segmenter_batch()
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
        # validate() restored train mode everywhere, frozen batch norms included
        set_train_mode(self.classifier, self.frozen[CLASSIFIER])
        set_train_mode(self.segmenter, self.frozen[SEGMENTER])
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
            "freeze_stages": opts.freeze_stages,
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
    set_train_mode(t.classifier, t.frozen[CLASSIFIER])
    set_train_mode(t.segmenter, t.frozen[SEGMENTER])
    bar = tqdm(
        total=t.plan.total, initial=t.step, desc="train", unit="step", disable=not opts.progress,
        file=sys.stderr, dynamic_ncols=True,
    )  # fmt: skip
    loop_start = time.perf_counter()
    calib_start = loop_start
    last_progress = 0.0

    def progress(state: str) -> None:
        done = t.step - first
        elapsed = time.perf_counter() - loop_start
        per_step = elapsed / done if done else None
        write_progress(out, {
            "state": state, "step": t.step, "total": t.plan.total,
            "elapsed_s": round(time.perf_counter() - started, 1),
            "eta_s": None if per_step is None else round(per_step * (t.plan.total - t.step), 1),
            "loss": {k: round(v, 5) for k, v in ema.items()},
            "validation_history": t.history, "notes": t.notes,
        })  # fmt: skip

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
                t.fit_budget(per_step, opts.time_budget_s - (now - loop_start) - t.reserve_s)
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
        if time.perf_counter() - last_progress >= PROGRESS_EVERY_S or t.step % opts.val_every == 0:
            progress("running")
            last_progress = time.perf_counter()
    bar.close()

    finished = t.step >= t.plan.total
    if finished:
        t.save_models(time.perf_counter() - started, last_val)
        if t.refits_scorer:
            # before the checkpoint goes: a run killed here resumes and refits again
            progress("scorer")
            info = refit_scorer(
                out, data, t.train_ids, t.val_ids, str(opts.init_from),
                epochs=opts.scorer_epochs, lr=opts.scorer_lr, device=t.device,
            )  # fmt: skip
            bar.write(
                f"scorer: {info['marks']} marks ({info['true_marks']} on metastasis) of "
                f"{info['scans']} scans, {info['seconds']:.0f} s"
            )
        if not opts.keep_checkpoint:
            t.ckpt_path.unlink(missing_ok=True)
    progress("finished" if finished else "stopped")
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
