"""Calibration of the scan-level metastasis threshold (core.networks.calibrate, `calibrate`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import main
from core.networks.calibrate import (
    ThresholdChoice,
    apply_calibration,
    calibrated_config,
    choose_threshold,
)
from core.networks.models import (
    ClassifierConfig,
    SegmenterConfig,
    load_models,
    read_card,
    set_config,
)


def test_a_perfect_split_is_found_between_the_classes() -> None:
    # negatives 0.55, 0.6; positives 0.8, 0.9: any threshold in (0.6, 0.8] separates them;
    # the midpoint 0.7 is chosen
    got = choose_threshold([False, False, True, True], [0.55, 0.6, 0.8, 0.9])
    assert got == ThresholdChoice(pytest.approx(0.7), 1.0, 1.0, 1.0)


def test_the_youden_index_is_hand_computed() -> None:
    # scores 0.1(-) 0.4(+) 0.5(-) 0.9(+): at 0.25 sens 2/2, spec 1/2 -> 0.5; at 0.45
    # sens 1/2, spec 1/2 -> 0; at 0.7 sens 1/2, spec 2/2 -> 0.5: equal best indices,
    # the highest threshold (0.7) wins
    got = choose_threshold([False, True, False, True], [0.1, 0.4, 0.5, 0.9])
    assert got.threshold == pytest.approx(0.7)
    assert (got.sensitivity, got.specificity, got.youden) == (0.5, 1.0, 0.5)


def test_bad_calibration_data_is_refused() -> None:
    with pytest.raises(ValueError, match="both positive and negative"):
        choose_threshold([True, True], [0.2, 0.9])
    with pytest.raises(ValueError, match="one length"):
        choose_threshold([True, False], [0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        choose_threshold([True, False], [1.2, 0.1])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(0.0, 1.0, allow_subnormal=False)),
        min_size=2,
        max_size=40,
    ).filter(lambda rows: len({t for t, _ in rows}) == 2)
)
def test_no_threshold_beats_the_chosen_one(rows: list[tuple[bool, float]]) -> None:
    truth = np.array([t for t, _ in rows])
    scores = np.array([s for _, s in rows])
    got = choose_threshold(truth, scores)
    called = scores >= got.threshold
    assert got.sensitivity == pytest.approx(called[truth].mean())
    assert got.specificity == pytest.approx((~called[~truth]).mean())
    for t in [*scores, *([] if scores.max() >= 1.0 else [1.0])]:
        c = scores >= t
        assert c[truth].mean() + (~c[~truth]).mean() - 1 <= got.youden + 1e-12


def test_the_calibrated_config_keeps_the_other_labels() -> None:
    cfg = calibrated_config(ClassifierConfig(), 0.72)
    assert cfg.thresholds() == {"metastasis": 0.72, "bladder": 0.5}
    assert cfg.threshold == 0.5  # the paper's value stays on record
    with pytest.raises(ValueError, match="threshold"):
        calibrated_config(ClassifierConfig(), 1.5)
    with pytest.raises(ValueError, match="label_thresholds"):
        ClassifierConfig(label_thresholds=(0.7,))


def test_set_config_refuses_another_network(untrained_model_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(untrained_model_dir, tmp_path / "m"))
    with pytest.raises(ValueError, match="another"):
        set_config(folder, ClassifierConfig(stem_stride=1, max_pool=False, stem_kernel=3))
    before = read_card(folder, "segmenter")
    set_config(folder, SegmenterConfig(metastasis_pixel_threshold=0.4))
    after = read_card(folder, "segmenter")
    assert after["config"]["metastasis_pixel_threshold"] == 0.4
    assert after["weights"] == before["weights"]


def test_a_written_calibration_is_used_when_the_models_load(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(untrained_model_dir, tmp_path / "m"))
    choice = ThresholdChoice(0.8125, 0.75, 0.9, 0.65)
    card = apply_calibration(
        folder, choice, dataset="somewhere", n_cases=20, n_positive=8, command="cmd"
    )
    assert card["calibration"]["metastasis_threshold"]["threshold"] == 0.8125
    models = load_models(folder, "cpu")
    assert models.classifier_config.thresholds() == {"metastasis": 0.8125, "bladder": 0.5}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "ds"
    # seed 5's first 6 cases: 2 with metastasis, 4 without
    assert main(["generate", str(folder), "--cases", "6", "--seed", "5"]) == 0
    return folder


def test_the_command_prints_writes_and_stores(
    tiny_dataset: Path,
    untrained_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = Path(shutil.copytree(untrained_model_dir, tmp_path / "m"))
    out = tmp_path / "calibration.json"
    args = ["calibrate", str(tiny_dataset), "--model", str(folder), "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "paper's 0.5" in printed and "Youden best" in printed
    report = json.loads(out.read_text())
    assert len(report["scans"]) == 6 and sum(s["metastasis"] for s in report["scans"]) == 2
    assert "label_thresholds" not in read_card(folder, "classifier")["config"] or (
        read_card(folder, "classifier")["config"]["label_thresholds"] is None
    )
    assert main([*args, "--write"]) == 0
    stored = read_card(folder, "classifier")
    threshold = report["choice"]["threshold"]
    assert stored["config"]["label_thresholds"] == [round(threshold, 4), 0.5]
    assert stored["calibration"]["metastasis_threshold"]["chosen_on"].startswith("6 scans (2")


def test_the_command_refuses_a_one_class_set(
    tiny_dataset: Path, untrained_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["calibrate", str(tiny_dataset), "--model", str(untrained_model_dir), "--cases", "1"]
    assert main(args) == 2
    assert "both positive and negative" in capsys.readouterr().err
