"""The model performance page: the card, the recorded figures, an evaluation run on the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.evaluation.model_performance import ensure_demo_labelled, paper_figures, report_path
from core.networks.models import update_card
from tests.conftest import APP
from ui.common import Keys

PAGE = "app_pages/performance.py"
ROOT = Path(APP).parent


@pytest.fixture(autouse=True)
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the demo set and the cached evaluations out of the repository's data/."""
    path = tmp_path / "data"
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_labelled(tmp_path_factory.mktemp("tiny") / "ds", cases=4)


def _open() -> AppTest:
    # Through the app once it routes the page (the lead adds it to app.py), else alone.
    if PAGE in Path(APP).read_text(encoding="utf-8"):
        at = AppTest.from_file(APP, default_timeout=300).run()
        at.switch_page(PAGE)
    else:
        at = AppTest.from_file(str(ROOT / PAGE), default_timeout=300)
    at.run()
    assert not at.exception
    return at


def _texts(elements: Any) -> str:
    return "\n".join(e.value for e in elements)


def _headline(at: AppTest) -> Any:
    frame = next(d.value for d in at.dataframe if "figure" in d.value.columns)
    return frame.set_index("figure")


def test_untrained_models_show_their_card_and_no_evaluation(model_env: Path, db_file: Path) -> None:
    at = _open()
    assert "untrained" in _texts(at.warning)
    assert "No evaluation is recorded" in _texts(at.info)
    card = at.dataframe[0].value.set_index("property")
    assert card.loc["architecture"].tolist() == ["resnet34", "flexible-unet"]
    assert card.loc["SHA-256", "classifier"].endswith("...")
    assert card.loc["decision threshold", "classifier"] == "0.5 (the paper's)"
    assert not any("figure" in d.value.columns for d in at.dataframe)


def test_a_calibrated_threshold_is_shown_with_where_it_came_from(
    untrained_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_file: Path
) -> None:
    from core.networks.calibrate import ThresholdChoice, apply_calibration

    folder = Path(shutil.copytree(untrained_model_dir, tmp_path / "m"))
    choice = ThresholdChoice(0.7276, 0.73, 0.9, 0.63)
    apply_calibration(folder, choice, dataset="phantom seed 3", n_cases=400, n_positive=170,
                      command="cmd")  # fmt: skip
    monkeypatch.setenv("BONESCAN_MODELS", str(folder))
    at = _open()
    card = at.dataframe[0].value.set_index("property")
    shown = card.loc["decision threshold", "classifier"]
    assert shown.startswith("metastasis 0.7276, bladder 0.5: calibrated on 400 scans (170")


def test_a_missing_model_folder_still_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_file: Path
) -> None:
    monkeypatch.setenv("BONESCAN_MODELS", str(tmp_path / "no-models"))
    at = _open()
    warning = _texts(at.warning)
    assert "No usable model" in warning and "does not exist" in warning
    assert "python -m core train" in warning
    assert "No model card" in _texts(at.info)
    assert at.button[0].label == "Evaluate"


def _recorded_metrics() -> dict[str, Any]:
    groups = {
        "<50": {"tp": 1, "fp": 0, "tn": 3, "fn": 0},
        "50-70": {"tp": 5, "fp": 1, "tn": 4, "fn": 1},
        ">=70": {"tp": 3, "fp": 0, "tn": 2, "fn": 1},
    }
    extra = {"auc_metastasis": 0.95, "auc_bladder": 0.99, "dice_metastasis": 0.81,
             "dice_bladder": 0.96}  # fmt: skip
    by_age = {g: {**c, **extra} for g, c in groups.items()}
    overall = {"tp": 9, "fp": 1, "tn": 9, "fn": 2, **extra}
    base = paper_figures()  # any valid grouped figures will do for the baseline row
    return {
        "dataset": {"path": "/held-out", "n_cases": 21, "n_metastasis": 11, "date": "2026-11-27"},
        "command": "python -m core evaluate /held-out --model M",
        "device": "cpu",
        "n_cases": 21,
        "overall": overall,
        "by_age": by_age,
        "baseline": {"overall": base["overall"], "by_age": base["by_age"]},
        "seconds_per_case": 0.5,
    }


def test_recorded_figures_are_shown_beside_the_papers(
    untrained_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_file: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("classifier", "segmenter"):
        (folder / f"{name}.json").write_bytes((untrained_model_dir / f"{name}.json").read_bytes())
        (folder / f"{name}.safetensors").symlink_to(untrained_model_dir / f"{name}.safetensors")
        update_card(folder, name, metrics=_recorded_metrics())
    monkeypatch.setenv("BONESCAN_MODELS", str(folder))
    at = _open()
    assert "No evaluation is recorded" not in _texts(at.info)
    headline = _headline(at)
    assert headline.loc["Sensitivity"].tolist()[::2] == ["9/11", "92.59 % (50/54)"]
    assert headline.loc["Specificity", "networks"] == "9/10"
    assert headline.loc["Accuracy", "networks"] == "85.71 % (18/21)"
    assert headline.loc["Dice (bladder)", "networks"] == "0.960"
    tables = [d.value for d in at.dataframe if "group" in d.value.columns]
    networks, paper = tables[0].set_index("group"), tables[1].set_index("group")
    assert networks.loc["50-70", "sensitivity"] == "5/6"
    assert networks.loc["all", "n"] == "21"
    assert paper.loc["all", "accuracy"] == "88.62 % (109/123)"
    assert "python -m core evaluate /held-out" in _texts(at.caption)


def test_an_evaluation_on_the_page_is_shown_and_kept(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_file: Path
) -> None:
    # Without a model the page runs the classical baseline only (fast, deterministic).
    monkeypatch.setenv("BONESCAN_MODELS", str(tmp_path / "no-models"))
    at = _open()
    at.text_input(key=Keys.EVAL_DATASET).set_value(str(tiny_dataset))
    at.number_input[0].set_value(4)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert "Evaluated 4 scans" in at.success[0].value
    headline = _headline(at)
    assert headline.loc["Sensitivity", "networks"] == "not run"
    assert headline.loc["Sensitivity", "classical baseline"] != "not run"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any("ROC curve: metastasis" in str(c["layout"]["title"]) for c in charts)
    kept = json.loads(report_path(tiny_dataset, "baseline-only").read_text())
    assert kept["n_cases"] == 4 and len(kept["cases"]["baseline"]) == 4

    again = _open()  # the next visit shows the kept result without running anything
    again.text_input(key=Keys.EVAL_DATASET).set_value(str(tiny_dataset)).run()
    assert again.button[0].label == "Evaluate again"
    assert (
        _headline(again).loc["Sensitivity", "classical baseline"]
        == (headline.loc["Sensitivity", "classical baseline"])
    )


def test_a_folder_that_is_not_a_dataset_gives_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_file: Path
) -> None:
    monkeypatch.setenv("BONESCAN_MODELS", str(tmp_path / "no-models"))
    at = _open()
    at.text_input(key=Keys.EVAL_DATASET).set_value(str(tmp_path))
    at.button[0].click().run()
    assert not at.exception
    assert "no cases.csv" in at.error[0].value


@pytest.mark.slow
def test_the_networks_are_evaluated_on_the_demo_set(
    model_env: Path, data_env: Path, db_file: Path
) -> None:
    at = _open()
    at.number_input[0].set_value(1)  # untrained networks on the CPU: seconds per scan
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert (data_env / "demo-labelled" / "cases.csv").is_file()
    headline = _headline(at)
    assert headline.loc["Accuracy", "networks"] in ("0/1", "1/1")
    assert "untrained" in _texts(at.warning)
