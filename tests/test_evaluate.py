"""Evaluation as the paper measures it: figures by hand, the command end to end."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

import core.evaluation.evaluate as ev
from cli import main
from core.config import AGE_GROUPS, COLS, ROWS
from core.imaging.crops import crop_origins
from core.networks.inference import Prediction
from core.networks.models import (
    CLASSIFIER,
    SEGMENTER,
    load_models,
    read_card,
)
from core.reading.dataset import Case, load_case_masks, read_dataset, write_cases_csv
from core.reading.labelme import write_labelme
from workflow.speed_bench import write_untrained_models

LESION = (slice(300, 310), slice(100, 110))  # 10 x 10 = 100 pixels
LESION_TOP_HALF = (slice(300, 305), slice(100, 110))
BLADDER = (slice(500, 520), slice(118, 138))

# case id -> (age, metastasis, {view: labels drawn}); "d" has no annotation file at all
CASES: dict[str, tuple[float, bool, dict[str, tuple[str, ...]]]] = {
    "a": (40, True, {"ANT": ("lesion", "bladder"), "POST": ("bladder",)}),
    "b": (55, True, {"ANT": ("lesion", "bladder"), "POST": ("lesion", "bladder")}),
    "c": (65, False, {"ANT": ("bladder",), "POST": ("bladder",)}),
    "d": (75, False, {}),
}


def _view_image(seed: int) -> np.ndarray:
    """A crude body on a black background (hot = bright), 8-bit."""
    rng = np.random.default_rng(seed)
    lam = np.zeros((ROWS, COLS))
    lam[50:950, 70:186] = 8.0
    lam[80:900, 123:133] = 40.0
    lam[BLADDER] = 120.0
    return np.clip(rng.poisson(lam), 0, 255).astype(np.uint8)


def _mask(labels: Sequence[str]) -> np.ndarray:
    m = np.zeros((ROWS, COLS), np.uint8)
    if "lesion" in labels:
        m[LESION] = 1
    if "bladder" in labels:
        m[BLADDER] = 2
    return m


def _write_dataset(folder: Path) -> Path:
    images = folder / "images"
    images.mkdir(parents=True)
    rows = []
    for i, (cid, (age, met, drawn)) in enumerate(CASES.items()):
        paths = {}
        for j, view in enumerate(("ANT", "POST")):
            path = images / f"{cid}_{view}.png"
            Image.fromarray(_view_image(10 * i + j)).save(path)
            if view in drawn:
                mask = _mask(drawn[view])
                write_labelme(path.with_suffix(".json"), mask, path.name, (ROWS, COLS))
            paths[view] = path
        date = dt.date(2020, 1, 1)
        rows.append(Case(cid, f"p-{cid}", age, "F", date, "breast", met, *paths.values()))
    write_cases_csv(folder, rows)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("handmade"))


def _prediction(p_met: float, p_bl: float, masks: Mapping[str, np.ndarray]) -> Prediction:
    origins = tuple(crop_origins())
    crops = {v: np.zeros((len(origins), 2), np.float32) for v in masks}
    return Prediction(
        probabilities={"metastasis": p_met, "bladder": p_bl},
        positive={"metastasis": p_met >= 0.5, "bladder": p_bl >= 0.5},
        thresholds={"metastasis": 0.5, "bladder": 0.5},
        crop_origins=origins,
        crop_probabilities=crops,
        masks=dict(masks),
        masks_ungated=dict(masks),
    )


def test_annotations_read_back_exactly(dataset: Path) -> None:
    """The hand computations below rely on the rectangles surviving LabelMe."""
    case = read_dataset(dataset)[1]
    masks = load_case_masks(case)
    np.testing.assert_array_equal(masks["ANT"], _mask(("lesion", "bladder")))
    np.testing.assert_array_equal(masks["POST"], _mask(("lesion", "bladder")))


@pytest.fixture(scope="module")
def stubbed(dataset: Path) -> dict[str, Any]:
    """Known predictions in dataset order: a TP, b FN, c FP, d TN."""
    empty = np.zeros((ROWS, COLS), np.uint8)
    half = _mask(("bladder",))
    half[LESION_TOP_HALF] = 1
    answers = [
        _prediction(0.9, 0.8, {"ANT": _mask(("lesion", "bladder")), "POST": empty}),
        _prediction(0.3, 0.7, {"ANT": half, "POST": _mask(("lesion", "bladder"))}),
        _prediction(0.6, 0.6, {"ANT": empty, "POST": empty}),
        _prediction(0.1, 0.2, {"ANT": empty, "POST": empty}),
    ]
    calls: list[int] = []

    def fake_predict(models: object, scans: Sequence[Mapping[str, np.ndarray]]) -> list[Prediction]:
        start = sum(calls)
        calls.append(len(scans))
        return answers[start : start + len(scans)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ev, "predict_batch", fake_predict)
        models: Any = SimpleNamespace(device="stub")
        result = ev.evaluate_dataset(dataset, models, batch=3, progress=False)
    assert calls == [3, 1]
    return result.to_json()


def test_overall_figures_match_the_hand_computation(stubbed: dict[str, Any]) -> None:
    o = stubbed["overall"]
    assert (o["tp"], o["fp"], o["tn"], o["fn"]) == (1, 1, 1, 1)
    for key in ("sensitivity", "specificity", "accuracy", "ppv", "npv"):
        assert o[key] == 0.5
    # positives 0.9, 0.3 against negatives 0.6, 0.1: 3 of 4 pairs ordered right
    assert o["auc_metastasis"] == pytest.approx(0.75)
    assert o["auc_bladder"] == pytest.approx(1.0)
    # metastasis views: a ANT 1, b ANT 2*50/(50+100) = 2/3, b POST 1
    assert o["dice_metastasis"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    # bladder views: a ANT 1, a POST 0, b 1 and 1, c 0 and 0
    assert o["dice_bladder"] == pytest.approx(0.5)


def test_age_groups_match_the_hand_computation(stubbed: dict[str, Any]) -> None:
    young, middle, old = (stubbed["by_age"][g] for g in AGE_GROUPS)
    assert (young["tp"], young["sensitivity"], young["specificity"]) == (1, 1.0, None)
    assert young["auc_metastasis"] is None and young["dice_metastasis"] == 1.0
    assert (middle["fp"], middle["fn"], middle["accuracy"]) == (1, 1, 0.0)
    assert middle["auc_metastasis"] == 0.0 and middle["auc_bladder"] is None
    assert middle["dice_metastasis"] == pytest.approx((2 / 3 + 1) / 2)
    assert (old["tn"], old["specificity"], old["ppv"]) == (1, 1.0, None)
    assert old["dice_metastasis"] is None and old["dice_bladder"] is None


def test_json_has_exactly_the_agreed_keys(stubbed: dict[str, Any]) -> None:
    assert tuple(stubbed) == ev.JSON_KEYS
    assert set(stubbed["by_age"]) == set(AGE_GROUPS)
    assert tuple(stubbed["overall"]) == ev.FIGURE_KEYS
    assert set(stubbed["baseline"]) == {"overall", "by_age"}
    assert tuple(stubbed["baseline"]["overall"]) == ev.FIGURE_KEYS
    assert stubbed["n_cases"] == 4 and stubbed["seconds_per_case"] > 0
    json.dumps(stubbed, allow_nan=False)  # None, never NaN


def test_bad_arguments_are_refused(dataset: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        ev.evaluate_dataset(dataset, None, limit=0)
    with pytest.raises(ValueError, match="batch"):
        ev.evaluate_dataset(dataset, None, batch=0)


def _sums_match(report: dict[str, Any]) -> None:
    for part in (report, report["baseline"]):
        o = part["overall"]
        assert o["tp"] + o["fp"] + o["tn"] + o["fn"] == report["n_cases"]
        for key in ("tp", "fp", "tn", "fn"):
            assert sum(part["by_age"][g][key] for g in AGE_GROUPS) == o[key]


@pytest.fixture(scope="module")
def command_run(
    dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str]:
    """``python -m core evaluate`` with untrained networks, once for the module."""
    folder = write_untrained_models(tmp_path_factory.mktemp("models"))
    out = folder / "eval.json"
    argv = ["evaluate", str(dataset), "--model", str(folder), "--json", str(out)]
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        extra = ["--limit", "3", "--batch", "2", "--device", "cpu", "--update-card", "--quiet"]
        status = main([*argv, *extra])
    assert status == 0
    return folder, json.loads(out.read_text(encoding="utf-8")), text.getvalue()


def test_command_writes_consistent_json(command_run: tuple[Path, dict[str, Any], str]) -> None:
    _, report, text = command_run
    assert tuple(report) == ev.JSON_KEYS and report["n_cases"] == 3
    _sums_match(report)
    assert "sensitivity" in text and "Classical baseline" in text and "AUC (bladder)" in text


def test_command_stores_the_figures_in_the_cards(
    command_run: tuple[Path, dict[str, Any], str],
) -> None:
    folder, report, _ = command_run
    for name in (CLASSIFIER, SEGMENTER):
        metrics = read_card(folder, name)["metrics"]
        assert metrics["overall"] == report["overall"]
        assert metrics["dataset"]["n_cases"] == 3
        assert metrics["command"].startswith("python -m core evaluate")
    load_models(folder, "cpu")  # the weights' hash still matches


def test_baseline_only_needs_no_model(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    argv = ["evaluate", str(dataset), "--baseline-only", "--json", str(out), "--quiet"]
    assert main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["overall"] is None and report["seconds_per_case"] is None
    o = report["baseline"]["overall"]
    assert o["tp"] + o["fp"] + o["tn"] + o["fn"] == 4


def test_missing_model_folder_is_an_error(dataset: Path, tmp_path: Path) -> None:
    assert main(["evaluate", str(dataset), "--model", str(tmp_path / "none"), "--quiet"]) == 2
