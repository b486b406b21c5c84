"""Model commands: ``train``, ``evaluate``, ``calibrate`` and ``bench``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.config import data_dir
from core.config import model_dir as default_model_dir
from core.evaluation.evaluate import Evaluation, describe_dataset, evaluate_dataset, format_report
from core.networks.augment import AUGMENTATION_PRESETS
from core.networks.calibrate import (
    ThresholdChoice,
    apply_calibration,
    choose_threshold,
    rates_at,
    scan_scores,
)
from core.networks.fine_tune import fine_tune_options
from core.networks.models import (
    CLASSIFIER,
    SEGMENTER,
    LoadedModels,
    ModelFileError,
    SegmenterConfig,
    load_models,
    update_card,
)
from core.networks.trainer import TrainOptions, train_from_folder
from core.scan import ScanReadError
from workflow import speed_bench


def _train_options(args: argparse.Namespace) -> TrainOptions:
    """The training options the ``train`` arguments ask for.

    Options left out take the paper's defaults, or with ``--init-from`` the fine-tune
    defaults (:func:`core.networks.fine_tune.fine_tune_options`).
    """
    given = {
        name: value
        for name, value in (
            ("steps", args.steps),
            ("batch_size", args.batch_size),
            ("lr", args.lr),
            ("positive_share", args.positive_share),
            ("val_every", args.val_every),
            ("val_cases", args.val_cases),
            ("checkpoint_every", args.checkpoint_every),
            ("hard_negative_share", args.hard_negative_share),
            ("scorer_epochs", args.scorer_epochs),
        )
        if value is not None
    }
    common: dict[str, Any] = {
        "seg_steps": args.seg_steps,
        "seed": args.seed,
        "split_seed": args.split_seed,
        "device": args.device,
        "amp": not args.no_amp,
        "keep_checkpoint": args.keep_checkpoint,
        "progress": not args.quiet,
        "augment": AUGMENTATION_PRESETS[args.augment],
    }
    segmenter = (
        SegmenterConfig(train_crop=(args.seg_crop_rows, 256)) if args.seg_crop_rows else None
    )
    if args.init_from:
        options = fine_tune_options(
            args.time_budget, init_from=str(args.init_from), **given, **common
        )
        return dataclasses.replace(options, segmenter=segmenter) if segmenter else options
    return TrainOptions(
        segmenter=segmenter or SegmenterConfig(),
        time_budget_s=args.time_budget,
        **given,
        **common,
    )


def run_train(args: argparse.Namespace) -> int:
    """Train both networks and print where the run stopped and its validation figures."""
    try:
        result = train_from_folder(
            args.dataset,
            args.out,
            _train_options(args),
            resume=args.resume,
            stop_after=args.stop_after,
            workers=args.workers,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = "finished" if result.finished else "stopped (resume with --resume)"
    figures = " ".join(f"{k}={v:.3f}" for k, v in result.validation.items())
    print(f"{result.out_dir}: {state} at step {result.step} in {result.seconds:.0f} s; {figures}")
    return 0


def _store_in_cards(
    args: argparse.Namespace, model_dir: Path, evaluation: Evaluation, report: dict[str, Any]
) -> None:
    """Store the overall figures, with the command that measured them, in both cards."""
    command = ["python -m core evaluate", str(args.dataset), "--model", str(model_dir)]
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    metrics = {
        "dataset": describe_dataset(args.dataset, evaluation),
        "command": " ".join(command),
        "device": evaluation.device,
        **report,
    }
    for name in (CLASSIFIER, SEGMENTER):
        update_card(model_dir, name, metrics=metrics)


def run_evaluate(args: argparse.Namespace) -> int:
    """Print the networks' and the baseline's figures on a labelled dataset."""
    if args.baseline_only and args.update_card:
        print("error: --update-card needs the networks, not --baseline-only", file=sys.stderr)
        return 2
    model_dir = args.model or default_model_dir()
    models: LoadedModels | None = None
    try:
        if not args.baseline_only:
            models = load_models(model_dir, args.device)
        evaluation = evaluate_dataset(
            args.dataset, models, limit=args.limit, batch=args.batch, progress=not args.quiet
        )
    except (ModelFileError, ScanReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = evaluation.to_json()
    print(format_report(evaluation, title=f"{args.dataset}: {evaluation.n_cases} scans"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    if args.update_card:
        _store_in_cards(args, model_dir, evaluation, report)
        print(f"figures stored in the cards of {model_dir}")
    return 0


def _print_rates(y: np.ndarray, s: np.ndarray, current: float, choice: ThresholdChoice) -> None:
    """Print sensitivity and specificity at 0.5, at the card's threshold and at the choice."""
    for label, t in (("paper's 0.5", 0.5), ("card's now", current)):
        at = rates_at(y, s, t)
        print(
            f"{label:12s} threshold {t:.4f}: sensitivity {at.sensitivity:.3f}, "
            f"specificity {at.specificity:.3f}"
        )
    print(
        f"{'Youden best':12s} threshold {choice.threshold:.4f}: sensitivity "
        f"{choice.sensitivity:.3f}, specificity {choice.specificity:.3f} "
        f"({len(y)} scans, {int(y.sum())} with metastasis)"
    )


def _write_scores(
    out: Path, choice: ThresholdChoice, ids: list[str], truth: list[bool], scores: list[float]
) -> None:
    """Write the choice and every scan's probability as JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    scans = [
        {"case": c, "metastasis": t, "probability": p}
        for c, t, p in zip(ids, truth, scores, strict=True)
    ]
    out.write_text(
        json.dumps({"choice": dataclasses.asdict(choice), "scans": scans}, indent=2) + "\n",
        encoding="utf-8",
    )


def run_calibrate(args: argparse.Namespace) -> int:
    """Choose the scan-level metastasis threshold and, with ``--write``, store it in the card."""
    model_dir = args.model or default_model_dir()
    try:
        models = load_models(model_dir, device="cpu")
        with tqdm(unit="scan", desc="calibrate") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            ids, truth, scores = scan_scores(models, args.dataset, args.cases, progress=progress)
        choice = choose_threshold(truth, scores)
    except (ModelFileError, ScanReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    y, s = np.asarray(truth), np.asarray(scores)
    # the threshold in use is the one that makes the folder's calls
    if models.lesion is not None:
        card_name, current = "lesion", float(models.lesion[1].threshold)
    elif models.scorer is not None:
        card_name, current = "scorer", float(models.scorer[1].threshold)
    else:
        card_name, current = "classifier", models.classifier_config.thresholds()["metastasis"]
    _print_rates(y, s, current, choice)
    if args.json:
        _write_scores(args.json, choice, ids, truth, scores)
    if args.write:
        command = f"python -m core calibrate {args.dataset} --model {model_dir} --write"
        if args.cases is not None:
            command += f" --cases {args.cases}"
        apply_calibration(
            model_dir,
            choice,
            dataset=str(args.dataset),
            n_cases=len(ids),
            n_positive=int(y.sum()),
            command=command,
        )
        print(f"metastasis threshold {choice.threshold:.4f} stored in {model_dir}/{card_name}.json")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Time the pipeline per stage on the CPU and the GPU; print a table and write JSON."""
    if args.cases < 1:
        print("error: --cases must be >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bonescan-untrained-") as tmp:
        model_dir = args.model or default_model_dir()
        if args.untrained:
            model_dir = speed_bench.write_untrained_models(tmp)
            print("untrained models (random weights): timings only, outputs meaningless")
        try:
            report = speed_bench.run_bench(
                args.cases,
                model_dir,
                seed=args.seed,
                segment=args.segment,
                devices=args.device,
                precision=args.precision,
            )
        except ModelFileError as exc:
            print(
                f"error: no usable model in {model_dir} ({exc}); train one with "
                "`python -m core train DATA --out models`, or add --untrained",
                file=sys.stderr,
            )
            return 2
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    report["untrained"] = bool(args.untrained)
    out = args.json or data_dir() / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(speed_bench.format_table(report))
    print(f"{out}: written ({args.cases} cases; seconds per case, mean +- sd)")
    return 0
