"""core.evaluation.model_performance: the paper's figures, ROC points, model status,
page evaluations, cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from core.evaluation.evaluate import evaluate_dataset
from core.evaluation.metrics import roc_auc
from core.evaluation.model_performance import (
    DEMO_LABELLED_SEED,
    NO_MODEL,
    ModelStatus,
    ensure_demo_labelled,
    evaluate_with_progress,
    evaluation_report,
    has_figures,
    headline_frame,
    load_report,
    model_status,
    paper_figures,
    report_path,
    roc_curve,
    save_report,
    table2_frame,
)
from core.reading.dataset import read_dataset
from tests.test_table2 import PAPER


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four phantom cases of the demo seed, with and without metastasis."""
    folder = ensure_demo_labelled(tmp_path_factory.mktemp("tiny") / "ds", cases=4)
    assert len({c.metastasis for c in read_dataset(folder)}) == 2
    return folder


def test_the_paper_figures_write_the_papers_table2() -> None:
    frame = table2_frame(paper_figures())
    for _, row in frame.iterrows():
        assert list(row)[1:8] == PAPER[row["group"]], row["group"]
    overall = frame.set_index("group").loc["all"]
    assert (overall["AUC (metastasis)"], overall["AUC (bladder)"]) == ("0.926", "0.997")
    assert overall["Dice (bladder)"] == "0.925"


def test_headline_puts_networks_baseline_paper_and_target_side_by_side() -> None:
    model = {"tp": 9, "fp": 1, "tn": 8, "fn": 2, "auc_metastasis": 0.9, "dice_bladder": None}
    frame = headline_frame(model, None).set_index("figure")
    assert frame.loc["Sensitivity"].tolist() == ["9/11", "not run", "92.59 % (50/54)", ">= 95%"]
    assert frame.loc["ROC AUC (metastasis)", "networks"] == "0.900"
    assert frame.loc["Dice (bladder)", "networks"] == "n/a"
    assert frame.loc["Accuracy", "target"] == ""


def test_table2_frame_refuses_a_report_without_age_groups() -> None:
    with pytest.raises(ValueError, match="by_age"):
        table2_frame({"overall": paper_figures()["overall"]})
    assert not has_figures({"overall": None, "by_age": None})
    assert not has_figures({})
    assert has_figures(paper_figures())


def test_roc_points_by_hand() -> None:
    fpr, tpr = roc_curve([True, False, True, False], [0.9, 0.8, 0.7, 0.1])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_tied_scores_move_the_curve_diagonally() -> None:
    fpr, tpr = roc_curve([1, 0], [0.5, 0.5])
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]


def test_roc_needs_both_classes_and_finite_scores() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([True, True], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_curve([True, False], [0.1, float("nan")])
    with pytest.raises(ValueError, match="length"):
        roc_curve([True, False], [0.1])


@settings(max_examples=40, deadline=None)
@given(
    hs.lists(
        hs.tuples(hs.booleans(), hs.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])),
        min_size=2,
        max_size=30,
    ).filter(lambda rows: len({t for t, _ in rows}) == 2)
)
def test_the_area_under_the_points_is_the_auc(rows: list[tuple[bool, float]]) -> None:
    truth = [t for t, _ in rows]
    scores = [s for _, s in rows]
    fpr, tpr = roc_curve(truth, scores)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(truth, scores))


def test_status_of_a_missing_folder(tmp_path: Path) -> None:
    status = model_status(tmp_path / "none")
    assert not status.usable and status.key == NO_MODEL and status.metrics == {}
    assert "does not exist" in status.problems[0]


def test_status_of_an_untrained_folder(untrained_model_dir: Path) -> None:
    status = model_status(untrained_model_dir)
    assert status.usable and status.problems == ()
    assert set(status.cards) == {"classifier", "segmenter"}
    assert status.key.count("+") == 1 and status.key != NO_MODEL


def test_status_names_a_truncated_weights_file_and_a_broken_card(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    shutil.copytree(untrained_model_dir, folder)
    (folder / "classifier.safetensors").write_bytes(b"123")
    (folder / "segmenter.json").write_text("{not json", encoding="utf-8")
    status = model_status(folder)
    assert not status.usable
    assert any("classifier.safetensors" in p and "3 bytes" in p for p in status.problems)
    assert any("segmenter.json" in p and "JSON" in p for p in status.problems)


def test_metrics_come_from_the_cards(tmp_path: Path) -> None:
    card = {"weights": {"sha256": "ab" * 32}, "metrics": {"n_cases": 3}}
    status = ModelStatus(tmp_path, {"classifier": {**card, "metrics": {}}, "segmenter": card})
    assert status.metrics == {"n_cases": 3}


def test_the_demo_set_is_generated_once(tmp_path: Path) -> None:
    folder = ensure_demo_labelled(tmp_path / "demo", cases=2)
    index = folder / "cases.csv"
    assert len(index.read_text().splitlines()) == 3
    before = index.stat().st_mtime_ns
    assert ensure_demo_labelled(folder, cases=2) == folder
    assert index.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="cases"):
        ensure_demo_labelled(tmp_path / "other", cases=0)
    assert DEMO_LABELLED_SEED not in (0, 1, 2, 3, 5, 999, 2021)


def test_chunked_evaluation_equals_one_call_and_reports_progress(tiny_dataset: Path) -> None:
    calls: list[tuple[int, int]] = []
    chunked = evaluate_with_progress(
        tiny_dataset, None, limit=3, batch=2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(2, 3), (3, 3)]
    assert chunked.to_json() == evaluate_dataset(tiny_dataset, None, limit=3).to_json()
    with pytest.raises(ValueError, match="limit"):
        evaluate_with_progress(tiny_dataset, None, limit=0)


def test_a_report_is_cached_per_dataset_and_model(tiny_dataset: Path, data_env: Path) -> None:
    evaluation = evaluate_with_progress(tiny_dataset, None)
    status = model_status(data_env / "no-models")
    report = evaluation_report(evaluation, tiny_dataset, status)
    assert report["model"]["key"] == NO_MODEL and report["cases"]["model"] is None
    truth = [c.metastasis for c in read_dataset(tiny_dataset)]
    assert [c["metastasis"] for c in report["cases"]["baseline"]] == truth
    path = save_report(report, tiny_dataset, NO_MODEL)
    assert path.parent == data_env / "evaluations"
    assert load_report(tiny_dataset, NO_MODEL) == json.loads(json.dumps(report))
    assert load_report(tiny_dataset, "other-model") is None
    path.write_text("[]", encoding="utf-8")
    assert load_report(tiny_dataset, NO_MODEL) is None
    assert report_path(tiny_dataset / ".", NO_MODEL) == path
