"""Storing the Bone Scan Index: figures, breakdown, skeleton maps and lesion sides.

Results come from a phantom case's true masks and exact skeleton maps
(:func:`core.phantom.skeleton_truth.case_label_maps`) through
:func:`core.analysis.result_from_masks`, so no trained network is needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from sqlite_utils import Database

from core.analysis import (
    REGION_FROM_PROPORTIONS,
    REGION_FROM_SKELETON,
    AnalysisResult,
    result_from_masks,
)
from core.anatomy.regions import N_LABELS
from core.imaging.quality import QualityVerdict
from core.phantom.generate import generate_case, to_scan
from core.phantom.skeleton_truth import case_label_maps
from core.scan import Scan
from db.connection import open_db
from db.queries import (
    cohort_summary,
    counts_per_view,
    patient_time_series,
    study_with_masks,
)
from db.store import (
    LESION_SIDES,
    REGION_SOURCES,
    AnalysisRecord,
    LesionRecord,
    add_patient,
    store_analysis,
    store_study,
)
from workflow.ingest import ingest, store_result, store_stored_result, to_records

SEED, INDEX = 11, 3
PROBABILITIES = {"metastasis": 0.9, "bladder": 0.9}


@pytest.fixture(scope="module")
def case() -> tuple[Scan, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(scan, true label masks, exact skeleton maps)`` of one phantom case."""
    c = generate_case(SEED, INDEX, pattern="multiple")
    return to_scan(c), dict(c.masks), case_label_maps(SEED, INDEX, pattern="multiple")


@pytest.fixture(scope="module")
def with_maps(case: tuple[Scan, dict, dict]) -> AnalysisResult:
    scan, masks, maps = case
    result = result_from_masks(
        scan, masks, PROBABILITIES, skeletons=maps, model_version="truth", anatomy_sha256="ab" * 32
    )
    assert result.reliable and result.bsi is not None and result.bsi > 0
    return result


def _study(db: Database, scan: Scan, name: str = "case") -> tuple[int, int]:
    pid = add_patient(db, pseudonym=name)
    sid = store_study(
        db,
        patient_id=pid,
        scan=scan,
        source_name=f"{name}.dcm",
        source_sha256=hashlib.sha256(name.encode()).hexdigest(),
    ).study_id
    return pid, sid


def _expected_regions(result: AnalysisResult) -> dict[str, dict[str, float]]:
    return {
        name: {"involvement": fraction, "percent": result.bsi_regions.get(name, 0.0)}
        for name, fraction in result.bsi_involvement.items()
    }


def test_constants_match_the_analysis() -> None:
    assert set(REGION_SOURCES) == {REGION_FROM_SKELETON, REGION_FROM_PROPORTIONS}
    assert set(LESION_SIDES) == {"left", "right", "mid"}


def test_a_result_with_maps_is_stored_and_read_back(
    db_file: Path, case: tuple[Scan, dict, dict], with_maps: AnalysisResult
) -> None:
    scan = case[0]
    with open_db(db_file) as db:
        pid, sid = _study(db, scan)
        aid = store_result(db, sid, with_maps, account="test")
        data = study_with_masks(db, sid)
        (row,) = patient_time_series(db, pid)
        (cohort,) = cohort_summary(db)
        counts = counts_per_view(db, [sid, 9999])
    analysis = data["analysis"]
    assert analysis["id"] == aid
    # stored exactly: the floats go through SQLite and JSON unchanged
    assert analysis["bsi"] == with_maps.bsi and analysis["raw_bsi"] == with_maps.raw_bsi
    assert analysis["anatomy_sha256"] == "ab" * 32
    assert analysis["bsi_regions"] == _expected_regions(with_maps)
    assert list(analysis["bsi_regions"]) == list(_expected_regions(with_maps))  # label order
    percents = [r["percent"] for r in analysis["bsi_regions"].values()]
    assert sum(percents) == pytest.approx(with_maps.bsi)
    assert set(data["skeletons"]) == set(with_maps.skeletons) == {"ANT", "POST"}
    for view, labels in with_maps.skeletons.items():
        got = data["skeletons"][view]
        assert got.dtype == np.uint8 and np.array_equal(got, labels)
    stored = [
        (les["view"], les["component"], les["skeletal_region"], les["side"], les["region_source"])
        for les in data["lesions"]
    ]
    expected = sorted(
        (les.view, les.component, les.region, les.side or None, les.region_source)
        for les in with_maps.lesions
    )
    assert stored == expected
    assert any(s[4] == REGION_FROM_SKELETON for s in stored)
    assert row["bsi"] == with_maps.bsi and cohort["bsi"] == with_maps.bsi
    views = scan.views.values()
    assert set(counts) == {sid}
    # the noisier (smaller) view sets the limit
    assert counts[sid] == pytest.approx(min(v.sum(dtype=np.float64) for v in views))


def test_an_unreliable_scan_keeps_only_the_raw_bsi(
    db_file: Path, case: tuple[Scan, dict, dict]
) -> None:
    scan, masks, maps = case
    refused = QualityVerdict(ok=False, reason="no body in the field", code="no_body")
    result = result_from_masks(scan, masks, PROBABILITIES, skeletons=maps, verdict=refused)
    assert result.bsi is None and result.raw_bsi is not None
    with open_db(db_file) as db:
        pid, sid = _study(db, scan)
        store_result(db, sid, result, account="test")
        data = study_with_masks(db, sid)
        (row,) = patient_time_series(db, pid)
        (stored_regions,) = db.execute("SELECT bsi_regions FROM analyses").fetchone()
    analysis = data["analysis"]
    assert analysis["bsi"] is None and analysis["raw_bsi"] == result.raw_bsi
    assert stored_regions is None and analysis["bsi_regions"] == {}
    # the maps are the model's output, kept as the masks are, for inspection
    assert set(data["skeletons"]) == {"ANT", "POST"}
    assert row["bstbi"] is None and row["bsi"] is None


def test_without_a_skeleton_network_nothing_is_made_up(
    db_file: Path, case: tuple[Scan, dict, dict]
) -> None:
    scan, masks, _ = case
    result = result_from_masks(scan, masks, PROBABILITIES)
    with open_db(db_file) as db:
        pid, sid = _study(db, scan)
        store_result(db, sid, result, account="test")
        data = study_with_masks(db, sid)
        (row,) = patient_time_series(db, pid)
        (n_maps,) = db.execute("SELECT count(*) FROM skeleton_maps").fetchone()
    analysis = data["analysis"]
    assert (analysis["bsi"], analysis["raw_bsi"], analysis["anatomy_sha256"]) == (None,) * 3
    assert analysis["bsi_regions"] == {} and data["skeletons"] == {} and n_maps == 0
    assert data["lesions"]
    assert {les["region_source"] for les in data["lesions"]} == {REGION_FROM_PROPORTIONS}
    assert {les["side"] for les in data["lesions"]} == {None}
    assert row["bstbi"] is not None and row["bsi"] is None


def test_upload_and_reanalysis_paths_store_the_same_bsi(
    db_file: Path, case: tuple[Scan, dict, dict], with_maps: AnalysisResult
) -> None:
    scan = case[0]
    with open_db(db_file) as db:
        uploaded = ingest(
            db,
            [("case.dcm", b"the file's bytes")],
            models=cast(Any, None),  # not used: the result is given
            account="test",
            scan=scan,
            result=with_maps,
        )
        _, sid = _study(db, scan, "stored")
        again = store_stored_result(db, sid, with_maps, account="test")
        rows = db.execute(
            "SELECT a.id, a.bsi, a.raw_bsi, a.bsi_regions, count(k.id) FROM analyses a "
            "LEFT JOIN skeleton_maps k ON k.analysis_id = a.id GROUP BY a.id ORDER BY a.id"
        ).fetchall()
    assert [r[0] for r in rows] == [uploaded.analysis_id, again]
    assert rows[0][1:] == rows[1][1:]
    assert rows[0][1] == with_maps.bsi and rows[0][4] == 2


def _stored_nothing(db: Database) -> bool:
    return db.execute("SELECT count(*) FROM analyses").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"bsi": 100.5}, "analysis.bsi"),
        ({"raw_bsi": -1.0}, "analysis.raw_bsi"),
        ({"bsi": float("nan")}, "analysis.bsi"),
        ({"bsi_regions": {}, "bsi_involvement": {"tail": 0.5}}, "not skeletal regions"),
        ({"bsi_regions": {}, "bsi_involvement": {"sternum": 1.5}}, "involvement of 'sternum'"),
        ({"bsi_regions": {"sternum": 0.1}, "bsi_involvement": {}}, "no involvement"),
    ],
)
def test_bad_bsi_figures_are_refused(
    db_file: Path,
    case: tuple[Scan, dict, dict],
    with_maps: AnalysisResult,
    change: dict[str, Any],
    match: str,
) -> None:
    record, masks, lesions = to_records(with_maps)
    with open_db(db_file) as db:
        _, sid = _study(db, case[0])
        with pytest.raises(ValueError, match=match):
            store_analysis(
                db,
                study_id=sid,
                analysis=dataclasses.replace(record, **change),
                masks=masks,
                lesions=lesions,
                account="test",
            )
        assert _stored_nothing(db)


def test_bad_skeleton_maps_and_lesion_places_are_refused(
    db_file: Path, case: tuple[Scan, dict, dict], with_maps: AnalysisResult
) -> None:
    record, masks, lesions = to_records(with_maps)
    good = dict(with_maps.skeletons)
    too_high = good["ANT"].copy()
    too_high[0, 0] = N_LABELS
    bad_maps = [
        ({"ANT": good["ANT"][:10]}, "skeletons\\['ANT'\\]"),
        ({"ANT": good["ANT"].astype(np.int32)}, "uint8"),
        ({"ANT": too_high}, "not a region"),
    ]
    with open_db(db_file) as db:
        _, sid = _study(db, case[0])
        for maps, match in bad_maps:
            with pytest.raises(ValueError, match=match):
                store_analysis(db, study_id=sid, analysis=record, masks=masks, lesions=lesions,
                               account="test", skeletons=maps)  # fmt: skip
        with pytest.raises(ValueError, match="has no mask"):
            store_analysis(db, study_id=sid, analysis=record, masks={"ANT": masks["ANT"]},
                           lesions=[], account="test", skeletons=good)  # fmt: skip
        places: list[tuple[dict[str, Any], str]] = [
            ({"side": "up"}, "side"),
            ({"region_source": "guess"}, "region_source"),
        ]
        for place, match in places:
            bad = [dataclasses.replace(lesions[0], **place), *lesions[1:]]
            with pytest.raises(ValueError, match=match):
                store_analysis(db, study_id=sid, analysis=record, masks=masks, lesions=bad,
                               account="test", skeletons=good)  # fmt: skip
        assert _stored_nothing(db)
        # "" (no side: a region from proportions) is stored as NULL
        blank = LesionRecord(
            view="ANT", component=99, area_px=1, side="", region_source="proportions"
        )
        aid = store_analysis(db, study_id=sid, analysis=AnalysisRecord("m", "cpu", "ok"),
                             masks=masks, lesions=[blank], account="test")  # fmt: skip
        side = db.execute("SELECT side FROM lesions WHERE analysis_id = ?", [aid]).fetchone()
    assert side == (None,)


def test_an_exported_picture_has_no_counts_per_view(
    db_file: Path, case: tuple[Scan, dict, dict]
) -> None:
    scan = case[0]
    exported = Scan(views=scan.views, meta=dataclasses.replace(scan.meta, source_format="png"))
    with open_db(db_file) as db:
        _, sid = _study(db, exported, name="export")
        assert counts_per_view(db, [sid]) == {}
