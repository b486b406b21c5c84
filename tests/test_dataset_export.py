"""The centre's dataset: reviewed studies written in the labelled dataset format, read back
with the same counts and masks, pseudonymised, with a patient split by the paper's rule."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from cli import main
from core.burden.lesion_review import study_images
from core.config import COLS, ROWS
from core.evaluation.metrics import lesion_level
from core.reading.dataset import load_case_masks, load_case_views, read_dataset
from core.scan import Scan, ScanMeta
from db.annotations import mark_reviewed
from db.connection import open_db
from db.queries import patient_overview, patient_time_series, study_views, study_with_masks
from db.store import AnalysisRecord, add_patient, store_analysis, store_study
from tests.test_mask_edits import BIG, pixels_at, small_analysis
from workflow.centre_dataset import (
    EXPORT_FILE,
    SPLIT_FILE,
    case_id_of,
    export_reviewed,
    reviewed_summary,
    split_by_patient,
)
from workflow.review_changes import edit_mask, reviewed_masks_of


def _split_rows(out: Path) -> list[dict[str, str]]:
    with (out / SPLIT_FILE).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _analysed(db: Database) -> list[tuple[str, int, int]]:
    """(pseudonym, study id, analysis id) of every analysed study, by patient and date."""
    return [
        (str(p["pseudonym"]), int(s["study_id"]), int(s["analysis_id"]))
        for p in patient_overview(db)
        for s in patient_time_series(db, int(p["id"]))  # type: ignore[call-overload]
        if s["analysis_id"]
    ]


def test_the_export_reads_back_with_the_same_counts_masks_and_labels(
    truth_store: Path, tmp_path: Path
) -> None:
    with open_db(truth_store) as db:
        analysed = _analysed(db)
        first, second = analysed[0], next(a for a in analysed if a[0] != analysed[0][0])
        chosen = [first, analysed[1], second]
        # the physician's label, not the model's call: the first one contradicts the model
        called = study_with_masks(db, first[1])["analysis"]["metastasis_probability"] >= 0.5
        labels = {first[2]: not called, analysed[1][2]: True, second[2]: False}
        data = study_with_masks(db, second[1])
        images = study_images(data["study"], data["views"], data["masks"])
        bladder = np.zeros(data["masks"]["POST"].shape, bool)
        bladder[860:880, 110:150] = True
        edit_mask(
            db,
            analysis=data["analysis"],
            images=images,
            masks=data["masks"],
            view="POST",
            action="bladder",
            pixels=bladder,
            account="dr.lee",
        )
        for _, _, analysis_id in chosen:
            mark_reviewed(db, analysis_id, metastasis=labels[analysis_id], account="dr.lee")
        names = [str(n) for (n,) in db.execute("SELECT name FROM patients").fetchall()]
        summary = reviewed_summary(db)

        out = tmp_path / "centre"
        result = export_reviewed(db, out)

        cases = read_dataset(out)
        assert [c.case_id for c in cases] == sorted(case_id_of(s) for _, s, _ in chosen)
        for case in cases:
            pseudonym, study_id, analysis_id = next(
                a for a in chosen if case_id_of(a[1]) == case.case_id
            )
            stored = study_with_masks(db, study_id)
            patient = next(p for p in patient_overview(db) if p["pseudonym"] == pseudonym)
            assert case.patient_id == pseudonym and case.sex == patient["sex"]
            born = patient["birth_year"]
            assert isinstance(born, int)
            assert case.age == int(stored["study"]["study_date"][:4]) - born
            assert case.metastasis is labels[analysis_id]
            scan = load_case_views(case)
            views = study_views(db, study_id)
            for view in ("ANT", "POST"):
                assert np.array_equal(scan.views[view], views[view])
            assert scan.meta.display_is_grey_level_1 == bool(
                stored["study"]["display_grey_level_1"]
            )
            masks = load_case_masks(case)
            reviewed = reviewed_masks_of(db, analysis_id)
            for view in ("ANT", "POST"):
                assert np.array_equal(masks[view], reviewed[view])
        edited = load_case_masks(next(c for c in cases if c.case_id == case_id_of(second[1])))
        assert (edited["POST"][860:880, 110:150] == 2).all()

    assert result.cases == 3 and result.patients == 2 and not result.skipped
    assert (result.with_metastasis, result.without_metastasis) == (
        sum(labels.values()),
        3 - sum(labels.values()),
    )
    assert summary["scans"] == 3 and summary["patients"] == 2
    assert summary["split"] == {
        name: {"patients": result.split_patients[name], "scans": result.split_scans[name]}
        for name in ("train", "calibration", "test")
    }
    rows = _split_rows(out)
    assert [r["case_id"] for r in rows] == [c.case_id for c in cases]
    by_patient: dict[str, set[str]] = {}
    for row in rows:
        by_patient.setdefault(row["patient_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in by_patient.values())  # a patient is in one split only
    record = json.loads((out / EXPORT_FILE).read_text(encoding="utf-8"))
    assert record["split_seed"] == 0 and record["scans"] == 3
    # Pseudonyms only: no patient's name in any file written.
    text = "".join(
        p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file() and p.suffix != ".png"
    )
    assert names and not any(name in text for name in names)


def test_the_split_follows_the_paper_rule_level_by_level() -> None:
    # Ten patients of level 3 (100-999 pixels): 2 to test, 2 of the other 8 to
    # calibration, 6 to train. Two of level 0: both train. Five of level 1: 1 test, then
    # 4 left give 1 calibration (floor(4 * 0.2 + 0.5) = 1).
    pixels = {f"a{i}": 100 + i for i in range(10)}
    pixels |= {"z0": 0, "z1": 0} | {f"b{i}": 1 + i for i in range(5)}
    splits = split_by_patient(pixels, seed=3)
    count = {(lvl, s): 0 for lvl in (0, 1, 3) for s in ("train", "calibration", "test")}
    for patient, split in splits.items():
        count[(lesion_level(pixels[patient]), split)] += 1
    assert count == {
        (0, "train"): 2,
        (0, "calibration"): 0,
        (0, "test"): 0,
        (1, "train"): 3,
        (1, "calibration"): 1,
        (1, "test"): 1,
        (3, "train"): 6,
        (3, "calibration"): 2,
        (3, "test"): 2,
    }
    assert splits == split_by_patient(dict(reversed(pixels.items())), seed=3)  # deterministic
    assert any(split_by_patient(pixels, seed=s) != splits for s in range(4, 10))


def test_a_small_centre_whose_levels_cannot_share_is_pooled() -> None:
    """Six patients in levels of one or two: no calibration or test patient by level, so
    the levels are pooled; three patients stay all training (too few to pool)."""
    pixels = {"a": 0, "b": 5, "c": 50, "d": 60, "e": 500, "f": 5000}
    splits = split_by_patient(pixels, seed=0)
    assert sorted(splits.values()) == ["calibration", "test", "train", "train", "train", "train"]
    assert splits == split_by_patient(pixels, seed=0)  # deterministic
    few = split_by_patient({"a": 0, "b": 50, "c": 5000}, seed=0)
    assert set(few.values()) == {"train"}


def test_nothing_reviewed_or_a_used_folder_is_refused(db_file: Path, tmp_path: Path) -> None:
    with open_db(db_file) as db:
        case = small_analysis(db)
        with pytest.raises(ValueError, match="no study is marked reviewed"):
            export_reviewed(db, tmp_path / "new")
        assert reviewed_summary(db)["scans"] == 0
        mark_reviewed(db, int(case["analysis"]["id"]), metastasis=True, account="dr.lee")
        used = tmp_path / "used"
        used.mkdir()
        (used / "notes.txt").write_text("mine", encoding="utf-8")
        with pytest.raises(ValueError, match="exists and is not an empty folder"):
            export_reviewed(db, used)
        with pytest.raises(ValueError, match="exists and is not an empty folder"):
            export_reviewed(db, used / "notes.txt")
        empty = tmp_path / "empty"
        empty.mkdir()
        assert export_reviewed(db, empty).cases == 1
    assert (used / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_study_without_what_the_format_needs_is_left_out_and_said(
    db_file: Path, tmp_path: Path
) -> None:
    with open_db(db_file) as db:
        ok = small_analysis(db, tag="ok")
        no_birth = small_analysis(db, tag="nobirth", birth_year=None)
        mark_reviewed(db, int(no_birth["analysis"]["id"]), metastasis=False, account="dr.lee")
        with pytest.raises(ValueError, match=r"no reviewed study can be exported: .*no birth year"):
            export_reviewed(db, tmp_path / "a")
        mark_reviewed(db, int(ok["analysis"]["id"]), metastasis=True, account="dr.lee")
        result = export_reviewed(db, tmp_path / "b")
    assert result.cases == 1 and result.with_metastasis == 1
    assert result.skipped == (f"study {no_birth['study_id']} (P-nobirth): no birth year",)
    assert result.split_scans == {"train": 1, "calibration": 0, "test": 0}


def _study(db: Database, tag: str, counts: np.ndarray, grey_level_1: bool) -> int:
    pid = add_patient(db, pseudonym=f"P-{tag}", sex="M", birth_year=1960)
    meta = ScanMeta(
        source_format="png", study_date=dt.date(2023, 6, 1), display_is_grey_level_1=grey_level_1
    )
    scan = Scan(views={"ANT": counts, "POST": counts[:, ::-1].copy()}, meta=meta)
    study_id = store_study(
        db,
        patient_id=pid,
        scan=scan,
        source_name=f"{tag}.png",
        source_sha256=hashlib.sha256(tag.encode()).hexdigest(),
    ).study_id
    masks = {"ANT": np.zeros((ROWS, COLS), np.uint8), "POST": np.zeros((ROWS, COLS), np.uint8)}
    masks["ANT"][BIG] = 1
    analysis_id = store_analysis(
        db,
        study_id=study_id,
        masks=masks,
        lesions=[],
        account="t",
        analysis=AnalysisRecord(model_version="t", device="cpu", quality="ok"),
    )
    mark_reviewed(db, analysis_id, metastasis=True, account="dr.lee")
    return study_id


def test_grey_level_1_studies_stay_grey_level_1_and_fractional_counts_are_scaled(
    db_file: Path, tmp_path: Path
) -> None:
    body = np.zeros((ROWS, COLS), np.float32)
    body[100:900, 70:190] = 60.0
    body[BIG] = 250.0
    with open_db(db_file) as db:
        grey = _study(db, "grey", body.copy(), grey_level_1=True)
        fractional = _study(db, "frac", body * 0.37, grey_level_1=False)
        result = export_reviewed(db, tmp_path / "out")
        stored = {s: study_views(db, s) for s in (grey, fractional)}
    cases = {c.case_id: c for c in read_dataset(tmp_path / "out")}
    grey_scan = load_case_views(cases[case_id_of(grey)])
    assert grey_scan.meta.display_is_grey_level_1 and grey_scan.meta.bit_depth == 8
    assert np.array_equal(grey_scan.views["ANT"], stored[grey]["ANT"])
    frac_scan = load_case_views(cases[case_id_of(fractional)])
    factor = 65535 / (250 * 0.37)
    assert frac_scan.meta.bit_depth == 16
    np.testing.assert_allclose(frac_scan.views["ANT"], stored[fractional]["ANT"] * factor, atol=0.5)
    assert any(
        n.startswith(f"{case_id_of(fractional)} ANT: counts not whole") for n in result.notes
    )
    assert np.array_equal(load_case_masks(cases[case_id_of(grey)])["ANT"] == 1, pixels_at(BIG))


def test_the_command_line_exports_and_refuses_a_used_folder(
    truth_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_db(truth_store) as db:
        for _, _, analysis_id in _analysed(db)[:2]:
            mark_reviewed(db, analysis_id, metastasis=True, account="dr.lee")
    out = tmp_path / "centre"
    args = ["dataset", "export", "--reviewed", str(out), "--db", str(truth_store)]
    assert main([*args, "--split-seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: 2 reviewed scans of" in printed and "split.csv (seed 4): train" in printed
    assert len(read_dataset(out)) == 2
    assert main(args) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (
        main(
            [
                "dataset",
                "export",
                "--reviewed",
                str(tmp_path / "x"),
                "--db",
                str(tmp_path / "none.sqlite"),
            ]
        )
        == 2
    )
    assert "no such store" in capsys.readouterr().err
