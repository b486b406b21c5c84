"""The classifier screens in reduced precision and decides in float32 (core.networks.inference)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import build_parser
from core.analysis import analyze
from core.imaging.normalise import normalise_view
from core.networks.device import PRECISIONS, resolve_precision
from core.networks.inference import (
    CONFIRM_MARGIN,
    crop_probabilities,
    precision_note,
    predict_batch,
    rows_to_confirm,
)
from core.networks.models import LoadedModels, load_models
from core.scan import Scan, ScanMeta
from tests.conftest import body_view
from workflow.speed_bench import format_table, precision_agreement, write_phantom_dicoms

CPU = torch.device("cpu")


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_rows_near_a_decision_or_not_finite_are_confirmed() -> None:
    # metastasis decides at logit(0.7276) = 0.9830, bladder at logit(0.5) = 0
    logits = np.array(
        [
            [3.0, -4.0],  # far from both
            [1.3, -4.0],  # 0.317 from metastasis's decision
            [-2.0, 0.45],  # 0.45 from bladder's
            [-2.0, 0.55],  # 0.55: outside the 0.5 margin
            [math.nan, 5.0],  # not finite
        ]
    )
    assert rows_to_confirm(logits, (0.7276, 0.5)).tolist() == [1, 2, 4]
    assert rows_to_confirm(logits, (0.7276, 0.5), margin=0.0).tolist() == [4]
    assert rows_to_confirm(logits, (0.7276, 0.5), margin=0.6).tolist() == [1, 2, 3, 4]


def test_thresholds_of_zero_and_one_are_never_near() -> None:
    assert rows_to_confirm(np.zeros((3, 2)), (0.0, 1.0)).tolist() == []


@pytest.mark.parametrize(
    ("logits", "thresholds", "margin", "match"),
    [
        (np.zeros(4), (0.5,), 0.5, "n_crops"),
        (np.zeros((4, 2)), (0.5,), 0.5, "n_crops"),
        (np.zeros((4, 2)), (0.5, 1.5), 0.5, "thresholds"),
        (np.zeros((4, 2)), (0.5, 0.5), -0.1, "margin"),
        (np.zeros((4, 2)), (0.5, 0.5), math.inf, "margin"),
    ],
)
def test_bad_arguments_are_refused(
    logits: np.ndarray, thresholds: tuple[float, ...], margin: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        rows_to_confirm(logits, thresholds, margin)


@settings(max_examples=200, deadline=None)
@given(
    exact=st.lists(st.tuples(st.floats(-12, 12), st.floats(-12, 12)), min_size=1, max_size=30),
    noise=st.lists(st.tuples(st.floats(-0.99, 0.99), st.floats(-0.99, 0.99)), min_size=30),
    thresholds=st.tuples(st.floats(0.01, 0.99), st.floats(0.01, 0.99)),
)
def test_a_screening_error_below_the_margin_never_moves_a_decision(
    exact: list[tuple[float, float]],
    noise: list[tuple[float, float]],
    thresholds: tuple[float, float],
) -> None:
    z = np.array(exact)
    screened = z + CONFIRM_MARGIN * np.array(noise[: len(z)])
    rows = rows_to_confirm(screened, thresholds)
    kept = screened.copy()
    kept[rows] = z[rows]
    decision = np.array([_logit(t) for t in thresholds])
    assert ((kept >= decision) == (z >= decision)).all()


def test_auto_is_bfloat16_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BONESCAN_PRECISION", raising=False)
    monkeypatch.setattr("core.networks.device.native_bfloat16", lambda: True)
    assert resolve_precision("auto", CPU) == "bfloat16"
    assert resolve_precision(None, CPU) == "bfloat16"
    monkeypatch.setattr("core.networks.device.native_bfloat16", lambda: False)
    assert resolve_precision("auto", CPU) == "float32"
    assert resolve_precision("auto", torch.device("cuda")) == "float16"
    monkeypatch.setenv("BONESCAN_PRECISION", "float32")
    monkeypatch.setattr("core.networks.device.native_bfloat16", lambda: True)
    assert resolve_precision(None, CPU) == "float32"
    assert resolve_precision("bfloat16", CPU) == "bfloat16"


def test_unknown_or_unsuitable_precisions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("int8", CPU)
    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_precision("float16", CPU)
    monkeypatch.setenv("BONESCAN_PRECISION", "double")
    with pytest.raises(ValueError, match="'double'"):
        resolve_precision(None, CPU)


def test_the_bench_command_offers_every_precision() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    bench = sub.choices["bench"]  # type: ignore[index]
    option = next(a for a in bench._actions if a.dest == "precision")
    assert tuple(option.choices) == PRECISIONS


def test_notes_name_the_screen_only_when_there_is_one() -> None:
    assert precision_note("float32") == ""
    assert precision_note("bfloat16") == "bfloat16 screen, float32 decisions"


@pytest.fixture(scope="module")
def pair(untrained_model_dir: Path) -> tuple[LoadedModels, LoadedModels]:
    """The untrained models in float32 and screening in bfloat16, with a metastasis
    threshold at the median crop probability so that several crops lie near it."""
    exact = load_models(untrained_model_dir, "cpu", precision="float32")
    views = np.stack([normalise_view(body_view(s)) for s in (1, 2)])
    probs = crop_probabilities(exact, views).probabilities[:, :, 0]
    cfg = dataclasses.replace(
        exact.classifier_config, label_thresholds=(float(np.median(probs)), 0.5)
    )
    exact = dataclasses.replace(exact, classifier_config=cfg)
    return exact, dataclasses.replace(exact, precision="bfloat16")


def test_screened_crops_near_a_decision_take_float32_values(
    pair: tuple[LoadedModels, LoadedModels],
) -> None:
    exact, screened = pair
    views = np.stack([normalise_view(body_view(s)) for s in (1, 2)])
    a = crop_probabilities(exact, views)
    b = crop_probabilities(screened, views)
    assert a.precision == "float32" and not a.confirmed.any()
    assert b.precision == "bfloat16" and b.confirmed.any()
    np.testing.assert_allclose(
        b.probabilities[b.confirmed], a.probabilities[b.confirmed], rtol=0, atol=1e-5
    )
    # the rest carry the screening error: small, and never across a threshold
    np.testing.assert_allclose(b.probabilities, a.probabilities, atol=0.02)
    t = np.array(tuple(exact.classifier_config.thresholds().values()))
    assert ((b.probabilities >= t) == (a.probabilities >= t)).all()


def test_calls_gates_and_masks_are_float32s(pair: tuple[LoadedModels, LoadedModels]) -> None:
    exact, screened = pair
    scans = [{"ANT": body_view(1), "POST": body_view(2)}]
    (a,) = predict_batch(exact, scans)
    (b,) = predict_batch(screened, scans)
    assert (a.precision, b.precision) == ("float32", "bfloat16")
    assert a.confirmed_crops == 0 < b.confirmed_crops
    assert a.positive == b.positive
    for view in a.masks:
        np.testing.assert_array_equal(a.masks[view], b.masks[view])
    for label, p in a.probabilities.items():
        assert b.probabilities[label] == pytest.approx(p, abs=0.02)


def test_the_analysis_names_the_screen_beside_the_device(
    pair: tuple[LoadedModels, LoadedModels],
) -> None:
    exact, screened = pair
    scan = Scan(views={"ANT": body_view(1), "POST": body_view(2)}, meta=ScanMeta())
    (a,) = analyze([scan], exact)
    (b,) = analyze([scan], screened)
    assert a.device == f"CPU ({torch.get_num_threads()} threads)"
    assert b.device.endswith(", classifier bfloat16 screen, float32 decisions")
    assert a.bstbi == b.bstbi and a.hotspots == b.hotspots


def test_the_bench_compares_the_screen_with_float32(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    files = write_phantom_dicoms(tmp_path, 1)
    got = precision_agreement(files, untrained_model_dir, "bfloat16")
    assert got["precision"] == "bfloat16" and got["scans"] == 1
    assert got["calls_differing"] == 0 and got["pixels_differing"] == 0
    assert set(got["max_probability_difference"]) == {"metastasis", "bladder"}
    assert 0 <= got["confirmed_crops_per_scan"]["max"] <= 14
    report = {"devices": [], "precision_agreement": got}
    assert "bfloat16 screen + float32 decisions vs float32 on 1 scans: 0 calls" in format_table(
        report
    )
