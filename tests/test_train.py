from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cli import main
from core.config import COLS, ROWS
from core.networks.models import SegmenterConfig, load_models, read_card
from core.networks.sampling import (
    TrainingData,
    build_training_data,
    classifier_strata,
    classifier_targets,
    crop_positions,
    load_training_data,
)
from core.networks.trainer import (
    CHECKPOINT_NAME,
    TrainOptions,
    _Plan,
    _schedule,
    _Trainer,
    train,
)
from core.reading.dataset import Case, write_cases_csv
from core.reading.labelme import write_labelme

pytestmark = pytest.mark.slow

#: The smallest settings: 2 crops a step, 256-row segmenter crops, no validation
#: (the command test below validates).
TINY = TrainOptions(
    steps=2,
    batch_size=2,
    val_cases=0,
    val_every=1000,
    device="cpu",
    progress=False,
    segmenter=SegmenterConfig(train_crop=(256, 256)),
)


def _case(
    rng: np.random.Generator, lesions: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A crude whole body: a bright trunk, a hot bladder, and hot round lesions."""
    yy, xx = np.mgrid[0:ROWS, 0:COLS]
    lam = np.full((ROWS, COLS), 0.5)
    lam[(abs(xx - 128) < 60) & (yy > 30) & (yy < 1000)] += 20
    views, masks = {}, {}
    for view in ("ANT", "POST"):
        rate = lam.copy()
        mask = np.zeros((ROWS, COLS), np.uint8)
        bladder = ((yy - 560) / 30.0) ** 2 + ((xx - 128) / 40.0) ** 2 < 1
        rate[bladder] += 300
        mask[bladder] = 2
        for _ in range(lesions):
            cy, cx = rng.integers(100, 450), rng.integers(80, 176)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
            rate[disc] += 150
            mask[disc] = 1
        views[view] = rng.poisson(rate).astype(np.float32)
        masks[view] = mask
    return views, masks


def synthetic_data(n: int = 6) -> TrainingData:
    """``n`` crude bodies of :func:`_case` (every other one with two lesions), in memory."""
    rng = np.random.default_rng(0)
    cases = [(f"c{i}", f"p{i}", *_case(rng, 2 if i % 2 else 0)) for i in range(n)]
    return build_training_data(cases, {"dataset": "synthetic"})


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return synthetic_data()


def test_classifier_targets_are_any_pixel_of_the_label() -> None:
    masks = torch.zeros(3, 4, 4, dtype=torch.long)
    masks[0, 1, 1] = 1
    masks[1, 3, 3] = 2
    masks[1, 0, 0] = 1
    expected = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert torch.equal(classifier_targets(masks), expected)


def test_sampling_strata_know_where_the_labels_are() -> None:
    views = {"ANT": np.ones((ROWS, COLS), np.float32)}
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[600, 5] = 1
    d = build_training_data([("c", "p", views, {"ANT": mask})])
    pos, met, bla = crop_positions(d, np.array([0]), 256)
    assert not bla.any()
    # a 256-row crop at row r holds row 600 when 345 <= r <= 600
    np.testing.assert_array_equal(met, (pos[:, 1] >= 345) & (pos[:, 1] <= 600))
    assert pos[-1, 1] == ROWS - 256


def test_classifier_strata_share_batches_as_asked() -> None:
    views = {"ANT": np.ones((ROWS, COLS), np.float32)}
    mask = np.zeros((ROWS, COLS), np.uint8)
    mask[100, 5] = 1  # metastasis near the top
    mask[700:720, 100:140] = 2  # bladder low down: no crop holds both
    d = build_training_data([("c", "p", views, {"ANT": mask})])
    strata = classifier_strata(d, np.array([0]), 256, positive_share=0.25)
    # three non-empty groups: met without bladder, no met with bladder, neither
    np.testing.assert_allclose(strata.weights, [0.25, 0.375, 0.375])
    picks = strata.sample(np.random.default_rng(0), 4000)
    with_met = (picks[:, 1] <= 100) & (picks[:, 1] + 256 > 100)
    assert with_met.mean() == pytest.approx(0.25, abs=0.03)


def test_resume_continues_and_matches_an_uninterrupted_run(
    data: TrainingData, tmp_path: Path
) -> None:
    straight = train(data, tmp_path / "a", TINY)
    assert straight.finished and straight.step == 2
    assert not (tmp_path / "a" / CHECKPOINT_NAME).exists()  # not left in a model folder
    assert set(straight.val_patients).isdisjoint(straight.train_patients)

    first = train(data, tmp_path / "b", TINY, stop_after=1)
    assert not first.finished and first.step == 1
    assert (tmp_path / "b" / CHECKPOINT_NAME).exists()
    assert not (tmp_path / "b" / "classifier.json").exists()
    with pytest.raises(ValueError, match="resume"):
        train(data, tmp_path / "b", TINY)
    second = train(data, tmp_path / "b", TINY, resume=True)
    assert second.finished and second.step == 2
    for name in ("classifier", "segmenter"):
        a = read_card(tmp_path / "a", name)["weights"]["sha256"]
        b = read_card(tmp_path / "b", name)["weights"]["sha256"]
        assert a == b, f"{name}: resumed run differs from the uninterrupted one"


def _write_dataset(folder: Path, n: int = 6, seed: int = 1) -> None:
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        views, masks = _case(rng, 2 if i % 2 else 0)
        paths = {}
        for view in ("ANT", "POST"):
            png = images / f"{i:04d}_{view}.png"
            Image.fromarray(views[view].astype(np.uint16)).save(png)
            write_labelme(png.with_suffix(".json"), masks[view], png.name, (ROWS, COLS))
            paths[view] = png
        cases.append(
            Case(
                case_id=f"{i:04d}",
                patient_id=f"P{i}",
                age=40.0 + 5 * i,
                sex="F",
                scan_date=dt.date(2024, 1, 1),
                primary="breast",
                metastasis=bool(i % 2),
                anterior=paths["ANT"],
                posterior=paths["POST"],
            )
        )
    write_cases_csv(folder, cases)


def test_train_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset, out = tmp_path / "dataset", tmp_path / "model"
    _write_dataset(dataset)
    argv = [
        "train", str(dataset), "--out", str(out), "--steps", "1", "--batch-size", "2",
        "--val-cases", "1", "--device", "cpu", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "finished at step 1" in capsys.readouterr().out
    models = load_models(out, "cpu")
    card = models.cards["classifier"]
    assert card["training_data"]["n_cases"] == 6
    assert card["training_data"]["dataset"] == "dataset"
    assert card["training"]["lr"] == 0.01 and card["training"]["batch_size"] == 2
    assert set(card["training"]["validation"]) >= {"auc_metastasis", "dice_metastasis"}
    json.dumps(card)  # the card stays JSON
    assert models.segmenter_config.train_crop == (256, 256)


def test_several_folders_read_in_parallel_keep_patients_apart(tmp_path: Path) -> None:
    _write_dataset(tmp_path / "shard1", n=2, seed=1)
    _write_dataset(tmp_path / "shard2", n=2, seed=2)
    data = load_training_data([tmp_path / "shard1", tmp_path / "shard2"], False, workers=2)
    assert data.case_ids == ["shard1/0000", "shard1/0001", "shard2/0000", "shard2/0001"]
    assert data.patient_ids == ["shard1/P0", "shard1/P1", "shard2/P0", "shard2/P1"]
    assert data.description == {"dataset": "shard1, shard2", "n_cases": 4}
    assert data.counts.shape == (8, ROWS, COLS) and data.counts.dtype == np.float16
    assert data.view_names == ["ANT", "POST"] * 4
    # the PNGs hold the counts themselves, and the masks come back from LabelMe
    assert (data.masks == 1).any() and (data.masks == 2).any()
    assert data.reference.min() > 20


def test_train_command_reports_bad_input(tmp_path: Path) -> None:
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2


def test_schedule_warms_up_then_decays_to_one_percent() -> None:
    factor = _schedule(lambda: 100, 0.1)  # 10 warm-up steps
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.01 + 0.99 * 0.5)  # half-way down the cosine
    assert factor(100) == pytest.approx(0.01) and factor(500) == pytest.approx(0.01)


def test_time_budget_cuts_both_budgets_by_one_factor() -> None:
    state = SimpleNamespace(plan=_Plan(1000, 500), step=25, notes=[])
    _Trainer.fit_budget(state, seconds_per_step=0.5, seconds_left=100.0)  # type: ignore[arg-type]
    # 0.95 * 100 / 0.5 = 190 more steps: 215 of 1000
    assert (state.plan.classifier, state.plan.segmenter) == (215, 108)
    assert "cut" in state.notes[0]
    roomy = SimpleNamespace(plan=_Plan(100, 100), step=25, notes=[])
    _Trainer.fit_budget(roomy, seconds_per_step=0.01, seconds_left=100.0)  # type: ignore[arg-type]
    assert roomy.plan == _Plan(100, 100) and not roomy.notes
