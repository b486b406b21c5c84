"""A centre's fine-tune refits the parent's lesion scorer to the centre's reviewed marks.

A parent model folder with ``scorer.json`` makes its calls with the scorer; its
fine-tuned candidate must too (else it would silently fall back to the crop classifier),
so training from it ends by refitting the scorer, from its weights, to the marks the
fine-tuned segmenter makes on the training patients' scans, labelled by the physicians'
masks. These tests pin the pieces: the mark figures on a hand-computed case, the fit,
the refit's copy rules, and the candidate folder a fine-tune writes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cli import build_parser
from cli.models import _train_options
from core.evaluation.metrics import roc_auc
from core.lesions.features import FEATURES
from core.lesions.scorer import SCORER, ScorerConfig, build_scorer, fit_scorer, save_scorer, score
from core.networks import scorer_training
from core.networks.models import load_models
from core.networks.sampling import TrainingData
from core.networks.scorer_training import (
    MarkExamples,
    refit_scorer,
    scorer_seconds,
    training_data_scans,
)
from core.networks.trainer import _Trainer, train
from tests.test_train import TINY, synthetic_data

F = len(FEATURES)


def _separable(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Marks whose first feature alone tells metastasis (> 0) from benign (< 0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, F)).astype(np.float32)
    y = x[:, 0] > 0
    x[:, 0] += np.where(y, 1.0, -1.0)
    return x, y


# --- the figures of a scorer on labelled marks --------------------------------------


def test_summary_on_a_hand_computed_case() -> None:
    # scans 0 and 1 have metastasis, 2 and 3 do not; scan 3 has no mark
    ex = MarkExamples(
        features=np.zeros((5, F), np.float32),
        truth=np.array([True, False, False, False, False]),
        scan=np.array([0, 0, 1, 2, 2]),
        scan_truth=np.array([True, True, False, False]),
    )
    scores = np.array([0.9, 0.2, 0.6, 0.7, 0.1])
    np.testing.assert_allclose(ex.scan_scores(scores), [0.9, 0.6, 0.7, 0.0])
    s = ex.summary(scores, 0.65)
    # scan calls at 0.65: 0 yes, 1 no, 2 yes, 3 no -> sensitivity 1/2, specificity 1/2
    assert s["sensitivity"] == 0.5 and s["specificity"] == 0.5
    # marks kept on negatives: scan 2 keeps 0.7, scan 3 none -> 0.5 per negative scan
    assert s["marks_per_negative"] == 0.5
    assert s["true_marks_kept"] == 1.0
    assert (s["marks"], s["true_marks"], s["scans"]) == (5, 1, 4)
    # scan AUC: positives 0.9, 0.6 against negatives 0.7, 0.0 -> 3 of 4 pairs
    assert s["scan_auc"] == 0.75
    assert s["mark_auc"] == pytest.approx(roc_auc([1, 0, 0, 0, 0], scores), abs=1e-4)


def test_summary_says_none_where_a_class_is_missing() -> None:
    ex = MarkExamples(
        features=np.zeros((1, F), np.float32),
        truth=np.array([False]),
        scan=np.array([0]),
        scan_truth=np.array([False]),
    )
    s = ex.summary(np.array([0.3]), 0.5)
    assert s["scan_auc"] is None and s["mark_auc"] is None
    assert s["sensitivity"] is None and s["specificity"] == 1.0 and s["true_marks_kept"] is None


# --- fitting ------------------------------------------------------------------------


def test_fit_from_scratch_learns_a_separable_rule() -> None:
    x, y = _separable(400, 0)
    seen: list[int] = []
    model, cfg = fit_scorer(x, y, epochs=200, every=50, report=lambda e, *_: seen.append(e))
    assert seen == [50, 100, 150, 200]
    xt, yt = _separable(400, 1)
    assert roc_auc(yt.astype(int), score(model, cfg, xt)) > 0.95
    np.testing.assert_allclose(cfg.mean, x.mean(axis=0), atol=1e-5)


def test_fit_from_a_parent_keeps_its_standardisation_and_threshold() -> None:
    parent_cfg = ScorerConfig(mean=(0.5,) * F, scale=(2.0,) * F, threshold=0.37, hidden=(8,))
    torch.manual_seed(0)
    parent = build_scorer(parent_cfg)
    before = [p.detach().clone() for p in parent.parameters()]
    x, y = _separable(200, 2)
    model, cfg = fit_scorer(x, y, init=(parent, parent_cfg), epochs=20, lr=1e-2, hidden=(99,))
    assert cfg == parent_cfg
    assert model is not parent
    # the parent itself is untouched, the fit moved its copy
    for a, b in zip(before, parent.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": np.zeros((3, 2))}, "features"),
        ({"truth": np.zeros(2, bool)}, "truth"),
        ({"features": np.zeros((0, F)), "truth": np.zeros(0, bool)}, "no mark"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_fit_refuses_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"features": np.zeros((3, F)), "truth": np.zeros(3, bool)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        fit_scorer(args.pop("features"), args.pop("truth"), **args)  # type: ignore[arg-type]


# --- the refit and the candidate folder ---------------------------------------------


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return synthetic_data()


@pytest.fixture(scope="module")
def parent(data: TrainingData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with a scorer, to fine-tune from."""
    out = tmp_path_factory.mktemp("parent")
    train(data, out, dataclasses.replace(TINY, seed=5, steps=1))
    torch.manual_seed(0)
    cfg = ScorerConfig(threshold=0.42)
    save_scorer(out, build_scorer(cfg), cfg)
    return out


def _card(folder: Path) -> dict[str, object]:
    return dict(json.loads((folder / f"{SCORER}.json").read_text()))


def test_training_data_scans_gives_each_case_its_views(data: TrainingData) -> None:
    ((views, masks),) = list(training_data_scans(data, [3]))
    assert list(views) == ["ANT", "POST"] and list(masks) == ["ANT", "POST"]
    rows = np.flatnonzero(data.view_case == 3)
    np.testing.assert_array_equal(views["ANT"], data.counts[rows[0]].astype(np.float32))
    assert views["ANT"].dtype == np.float32
    np.testing.assert_array_equal(masks["POST"], data.masks[rows[1]])


def test_a_fine_tune_from_a_scorer_folder_writes_a_refit_scorer(
    data: TrainingData, parent: Path, tmp_path: Path
) -> None:
    opts = dataclasses.replace(TINY, init_from=str(parent), freeze_stages=2, scorer_epochs=5)
    t = _Trainer(data, tmp_path / "probe", opts)
    assert t.refits_scorer
    assert t.reserve_s == scorer_seconds(len(t.train_ids) + len(t.val_ids))
    result = train(data, tmp_path / "cand", opts)
    card = _card(result.out_dir)
    training = card["training"]
    assert isinstance(training, dict)
    parent_sha = _card(parent)["weights"]["sha256"]  # type: ignore[index]
    assert training["init_from"]["sha256"] == parent_sha
    assert training["scans"] == len(result.train_patients)
    assert training["epochs"] == 5
    # the parent's threshold stands until the centre's calibration sets its own
    assert card["config"]["threshold"] == 0.42  # type: ignore[index]
    # the candidate makes its calls with the scorer, and its checkpoint is gone
    assert load_models(result.out_dir, "cpu").scorer is not None
    assert not (result.out_dir / "checkpoint.pt").exists()


def test_epochs_zero_copies_the_parents_scorer(
    data: TrainingData, parent: Path, tmp_path: Path
) -> None:
    opts = dataclasses.replace(TINY, init_from=str(parent), scorer_epochs=0)
    result = train(data, tmp_path / "cand", opts)
    card = _card(result.out_dir)
    assert card["weights"]["sha256"] == _card(parent)["weights"]["sha256"]  # type: ignore[index]
    assert card["training"]["copied"] == "epochs 0"  # type: ignore[index]


def test_a_parent_without_a_scorer_gives_a_candidate_without_one(
    data: TrainingData, parent: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for path in parent.iterdir():
        if not path.name.startswith(SCORER):
            (bare / path.name).write_bytes(path.read_bytes())
    opts = dataclasses.replace(TINY, init_from=str(bare))
    t = _Trainer(data, tmp_path / "probe", opts)
    assert not t.refits_scorer and t.reserve_s == 0.0
    result = train(data, tmp_path / "cand", opts)
    assert not (result.out_dir / f"{SCORER}.json").exists()


def _fake_examples(truth: bool) -> object:
    """A ``mark_examples`` giving separable marks (or only benign ones)."""

    def examples(models: object, scans: object) -> MarkExamples:
        x, y = _separable(120, 3)
        y = y if truth else np.zeros_like(y)
        return MarkExamples(x, y, np.arange(120) % 6, np.array([True, False] * 3))

    return examples


def test_refit_moves_the_weights_and_reports_parent_and_refit(
    data: TrainingData, parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cand"
    train(data, out, dataclasses.replace(TINY, init_from=str(parent), scorer_epochs=0))
    monkeypatch.setattr(scorer_training, "mark_examples", _fake_examples(truth=True))
    info = refit_scorer(out, data, ["p0", "p1"], ["p2"], parent, epochs=50, lr=1e-2)
    assert "copied" not in info and info["true_marks"] > 0
    card = _card(out)
    assert card["weights"]["sha256"] != _card(parent)["weights"]["sha256"]  # type: ignore[index]
    validation = card["metrics"]["validation"]  # type: ignore[index]
    assert validation["scans"] == 1
    assert validation["refit"]["mark_auc"] > validation["parent"]["mark_auc"]


def test_refit_without_a_true_mark_copies_the_parent_and_says_why(
    data: TrainingData, parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cand"
    train(data, out, dataclasses.replace(TINY, init_from=str(parent), scorer_epochs=0))
    monkeypatch.setattr(scorer_training, "mark_examples", _fake_examples(truth=False))
    info = refit_scorer(out, data, ["p0"], [], parent, epochs=50, lr=1e-2)
    assert "physician's metastasis" in info["copied"]
    assert _card(out)["weights"]["sha256"] == _card(parent)["weights"]["sha256"]  # type: ignore[index]
    with pytest.raises(ValueError, match="epochs"):
        refit_scorer(out, data, ["p0"], [], parent, epochs=-1, lr=1e-2)


def test_the_train_command_sets_the_scorer_epochs() -> None:
    parser = build_parser()
    args = ["train", "d", "--out", "o", "--init-from", "models", "--time-budget", "2400"]
    assert _train_options(parser.parse_args(args)).scorer_epochs == 300
    assert _train_options(parser.parse_args([*args, "--scorer-epochs", "0"])).scorer_epochs == 0
    with pytest.raises(ValueError, match="scorer_epochs"):
        dataclasses.replace(TINY, scorer_epochs=-1)
    with pytest.raises(ValueError, match="scorer_lr"):
        dataclasses.replace(TINY, scorer_lr=0.0)
