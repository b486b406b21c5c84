"""The defaults of a centre's fine-tune: what ``train --init-from DIR`` uses unless told.

The paper's training settings (Adam at 0.01, batch 16, every layer learning) are for
training from scratch on a GPU. A centre fine-tunes models that already read bone scans,
from a few hundred reviewed scans, often on a CPU; with the paper's settings a step of
both networks took about 13 s on this project's 2-core CPU and a 40-minute budget made
about a hundred steps, at a rate that undoes much of what the models knew.

A fine-tune step is made cheap and gentle instead (figures in docs/centre_loop.md and
``scripts/fine_tune_probe.py``, which measures them):

* the encoders' early stages (:data:`FREEZE_STAGES`: the stem and layer1) stay as they
  are: they see edges and blobs, which the phantom taught well, and they run at the
  highest resolution, so the backward pass that stops before them saves the most;
* half the paper's batch (:data:`BATCH_SIZE`) and 256 x 256 segmenter crops: twice the
  steps in the same time;
* a small learning rate (:data:`LEARNING_RATE`) with a longer warm-up, so that the first
  batches of a new centre do not overwrite the heads;
* hard negatives (:data:`HARD_NEGATIVE_SHARE`) and fewer positive crops: a scan's verdict
  is the maximum over its crops, so the crops that decide negatives are the hardest ones;
  measured on a simulated second centre, these settings lost least against the shipped
  model (docs/centre_loop.md, section 5: no setting measured so far gained);
* checkpoints often enough that a killed job loses a few minutes at most.

The number of steps is set by the time budget (the trainer times steps 5 to 25 and cuts
the plan to fit); :data:`MAX_STEPS` is only the ceiling when there is none.

When the starting folder holds a lesion scorer, the loop then refits it to the centre's
marks (``TrainOptions.scorer_epochs``, :func:`core.networks.scorer_training.refit_scorer`);
the budget keeps :func:`core.networks.scorer_training.scorer_seconds` for that. Measured
on a simulated second centre, the refit is what gains (scan AUC 0.80 -> 0.84 from 100
reviewed scans); the networks' fine-tune adds to the bladder and the Dice, not to the AUC
(docs/centre_loop.md, section 5).
"""

from __future__ import annotations

import dataclasses

from core.networks.models import ClassifierConfig, SegmenterConfig
from core.networks.trainer import TrainOptions

#: Encoder stages kept frozen (see :attr:`core.networks.trainer.TrainOptions.freeze_stages`).
FREEZE_STAGES = 2
#: Crops per step of each network.
BATCH_SIZE = 8
#: Segmenter training crop (rows, columns).
SEGMENTER_CROP: tuple[int, int] = (256, 256)
#: Adam's peak learning rate.
LEARNING_RATE = 1e-4
#: Share of the steps spent warming the learning rate up.
WARMUP_FRACTION = 0.05
#: Share of classifier crops drawn where the physician marked metastasis.
POSITIVE_SHARE = 0.3
#: Share of negative classifier crops drawn by hardness: a scan's verdict is the maximum
#: over its crops, so its hardest negative crop (a joint, a fracture) decides it.
HARD_NEGATIVE_SHARE = 0.5
#: Ceiling on the steps when no time budget is given.
MAX_STEPS = 3000
#: Steps between checkpoints (a few minutes of the CPU).
CHECKPOINT_EVERY = 25
#: Steps between validations (the Model lab page's curve).
VAL_EVERY = 50
#: Held-out scans validated on (the trainer's own split of the centre's training set).
VAL_CASES = 16
#: Share of each lesion level held out for that validation: small, as a centre has
#: few scans and the job holds its calibration and test patients aside already.
VAL_FRACTION = 0.1


def fine_tune_options(
    time_budget_s: float | None,
    *,
    init_from: str,
    classifier: ClassifierConfig | None = None,
    segmenter: SegmenterConfig | None = None,
    **overrides: object,
) -> TrainOptions:
    """The training options of a fine-tune from ``init_from`` within ``time_budget_s``.

    Args:
        time_budget_s: Seconds the training loop may take (> 0), or None for
            :data:`MAX_STEPS` steps.
        init_from: The model folder the networks start from.
        classifier: The classifier config; the defaults when None.
        segmenter: The segmenter config; its ``train_crop`` becomes
            :data:`SEGMENTER_CROP`.
        **overrides: Any other :class:`TrainOptions` field, set explicitly (a command
            line option the user gave).

    Returns:
        The options.

    Raises:
        ValueError: If ``init_from`` is empty, ``time_budget_s`` is not positive, or an
            override is not a :class:`TrainOptions` field.
    """
    if not str(init_from).strip():
        raise ValueError("init_from must name a model folder")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be > 0 or None, got {time_budget_s}")
    known = {f.name for f in dataclasses.fields(TrainOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"overrides: {unknown} are not training options")
    seg = dataclasses.replace(segmenter or SegmenterConfig(), train_crop=SEGMENTER_CROP)
    settings: dict[str, object] = {
        "steps": MAX_STEPS,
        "batch_size": BATCH_SIZE,
        "lr": LEARNING_RATE,
        "warmup_fraction": WARMUP_FRACTION,
        "positive_share": POSITIVE_SHARE,
        "hard_negative_share": HARD_NEGATIVE_SHARE,
        "freeze_stages": FREEZE_STAGES,
        "checkpoint_every": CHECKPOINT_EVERY,
        "val_every": VAL_EVERY,
        "val_cases": VAL_CASES,
        "test_fraction": VAL_FRACTION,
        "classifier": classifier or ClassifierConfig(),
        "segmenter": seg,
        "time_budget_s": time_budget_s,
        "init_from": str(init_from),
        **overrides,
    }
    return TrainOptions(**settings)  # type: ignore[arg-type]
