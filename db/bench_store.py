"""Time the dashboard's store queries on a large synthetic store.

``python -m db.bench_store --patients 2000 --studies 10000`` builds a store of that
size in a temporary file (rows only: tiny dummy blobs stand in for pixels and masks;
one analysis per study, a few lesions each) and prints the median time of a
patient's time series and of the cohort summary (every patient, as the cohort page
reads it). Targets: < 50 ms and < 500 ms. With ``--writes N`` it also times storing N
analyses through :func:`db.store.store_analysis`, one transaction each, with
full-size (1024 x 256) label masks per view and a few lesions, as the one writer of a
scaled-out re-analysis stores them: the store's analyses-per-second ceiling.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.config import VIEWS
from db.connection import open_db
from db.queries import cohort_summary, patient_time_series
from db.store import AnalysisRecord, LesionRecord, insert_rows, store_analysis

#: Targets of the design (seconds).
TIME_SERIES_TARGET_S = 0.050
COHORT_TARGET_S = 0.500
_PRIMARIES = ("lung", "breast", "prostate", "digestive", "liver", "urinary")


def build_store(path: Path, patients: int, studies: int, seed: int = 0) -> None:
    """Fill a new store at ``path`` with synthetic patients, studies and analyses.

    Args:
        path: SQLite file to create (must not hold data yet).
        patients: Number of patients (>= 1).
        studies: Number of studies (>= 0), spread at random over the patients.
        seed: Random seed.

    Raises:
        ValueError: If ``patients`` < 1 or ``studies`` < 0.
    """
    if patients < 1 or studies < 0:
        raise ValueError(f"need patients >= 1 and studies >= 0, got {patients}, {studies}")
    rng = random.Random(seed)
    blob = zlib.compress(bytes(16))
    patient_rows = [
        {"id": i, "pseudonym": f"B-{i:06d}", "sex": rng.choice("MF"),
         "birth_year": rng.randint(1930, 1990), "primary_tumour": rng.choice(_PRIMARIES),
         "synthetic": 1}
        for i in range(1, patients + 1)
    ]  # fmt: skip
    study_rows: list[dict[str, Any]] = []
    view_rows: list[dict[str, Any]] = []
    analysis_rows: list[dict[str, Any]] = []
    mask_rows: list[dict[str, Any]] = []
    lesion_rows: list[dict[str, Any]] = []
    for sid in range(1, studies + 1):
        pid = rng.randint(1, patients)
        date = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        study_rows.append({"id": sid, "patient_id": pid, "study_date": date,
                           "source_name": f"s{sid}.dcm", "source_sha256": f"{sid:064x}",
                           "source_format": "dicom"})  # fmt: skip
        analysis_rows.append({"id": sid, "study_id": sid, "model_version": "bench",
                              "device": "cpu", "metastasis_probability": rng.random(),
                              "bstbi": rng.random() * 0.6, "hotspots": rng.randint(0, 30),
                              "quality": "ok"})  # fmt: skip
        for view in VIEWS:
            view_rows.append({"study_id": sid, "view": view, "rows": 4, "cols": 2,
                              "dtype": "uint16", "counts_zlib": blob})  # fmt: skip
            mask_rows.append({"analysis_id": sid, "view": view, "rows": 4, "cols": 4,
                              "labels_zlib": blob})  # fmt: skip
            for comp in range(1, rng.randint(1, 4)):
                lesion_rows.append({"analysis_id": sid, "view": view, "component": comp,
                                    "area_px": rng.randint(5, 500)})  # fmt: skip
    with open_db(path) as db, db.atomic():
        for table, rows in (("patients", patient_rows), ("studies", study_rows),
                            ("views", view_rows), ("analyses", analysis_rows),
                            ("masks", mask_rows), ("lesions", lesion_rows)):  # fmt: skip
            insert_rows(db, table, rows)
    with open_db(path) as db:
        db.execute("ANALYZE")


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_benchmark(
    patients: int, studies: int, *, repeats: int = 5, seed: int = 0, path: Path | None = None
) -> dict[str, float]:
    """Build a synthetic store and time the queries on it.

    Args:
        patients: Number of patients (>= 1).
        studies: Number of studies (>= 0).
        repeats: Timed runs per query (>= 1); the median is reported.
        seed: Random seed of the store and of the patients picked.
        path: SQLite file to build; a temporary one (removed afterwards) when None.

    Returns:
        Seconds: ``build_s``, ``time_series_s`` (median over ``repeats`` random
        patients), ``cohort_summary_s`` (all patients).

    Raises:
        ValueError: If a size or ``repeats`` is out of range.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        file = path or Path(tmp) / "bench.sqlite"
        start = time.perf_counter()
        build_store(file, patients, studies, seed)
        build_s = time.perf_counter() - start
        rng = random.Random(seed + 1)
        with open_db(file) as db:
            cohort_summary(db)  # warm the page cache, as a running dashboard would be
            return {
                "build_s": build_s,
                "time_series_s": _median_s(
                    lambda: patient_time_series(db, rng.randint(1, patients)), repeats
                ),
                "cohort_summary_s": _median_s(lambda: cohort_summary(db), repeats),
            }


def _bench_masks(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[LesionRecord]]:
    """Label masks per view with a bladder and a few lesions, and the lesions' records."""
    masks: dict[str, np.ndarray] = {}
    lesions: list[LesionRecord] = []
    for view in VIEWS:
        mask = np.zeros((1024, 256), np.uint8)
        mask[560:620, 100:160] = 2
        for comp in range(1, 4):
            row, col = int(rng.integers(100, 900)), int(rng.integers(40, 200))
            mask[row : row + 12, col : col + 10] = 1
            lesions.append(LesionRecord(view=view, component=comp, area_px=120))
        masks[view] = mask
    return masks, lesions


def measure_writes(analyses: int, *, seed: int = 0, path: Path | None = None) -> dict[str, float]:
    """Time storing analyses one transaction each, as a single writer does.

    Args:
        analyses: Analyses to store (>= 1), one per study of a synthetic store.
        seed: Random seed of the store and the masks.
        path: SQLite file to build; a temporary one (removed afterwards) when None.

    Returns:
        ``write_s`` (seconds for all) and ``analyses_per_s``.

    Raises:
        ValueError: If ``analyses`` < 1.
    """
    if analyses < 1:
        raise ValueError(f"analyses must be >= 1, got {analyses}")
    rng = np.random.default_rng(seed)
    record = AnalysisRecord(
        model_version="bench", device="cpu", quality="ok", metastasis_probability=0.7,
        bladder_probability=0.9, bstbi=0.05, hotspots=6, lesion_area_cm2=12.0,
        timings_s={"classify": 0.1, "segment": 0.2},
    )  # fmt: skip
    payloads = [_bench_masks(rng) for _ in range(min(analyses, 16))]
    with tempfile.TemporaryDirectory() as tmp:
        file = path or Path(tmp) / "writes.sqlite"
        build_store(file, max(1, analyses // 4), analyses, seed)
        with open_db(file) as db:
            start = time.perf_counter()
            for study_id, (masks, lesions) in zip(
                range(1, analyses + 1), itertools.cycle(payloads), strict=False
            ):
                with db.atomic():
                    store_analysis(db, study_id=study_id, analysis=record, masks=masks,
                                   lesions=lesions, account="bench")  # fmt: skip
            write_s = time.perf_counter() - start
    return {"write_s": write_s, "analyses_per_s": analyses / write_s}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; print a table and one JSON line.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--studies", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--writes", type=int, default=0, help="also time storing N analyses (default 0: not)"
    )
    args = parser.parse_args(argv)
    result = run_benchmark(args.patients, args.studies, repeats=args.repeats, seed=args.seed)
    print(f"store: {args.patients} patients, {args.studies} studies (built in "
          f"{result['build_s']:.1f} s)")  # fmt: skip
    for key, target in (
        ("time_series_s", TIME_SERIES_TARGET_S),
        ("cohort_summary_s", COHORT_TARGET_S),
    ):
        ok = "ok" if result[key] < target else "SLOW"
        print(f"{key:<20} {result[key] * 1000:8.1f} ms  (target < {target * 1000:.0f} ms) {ok}")
    if args.writes:
        writes = measure_writes(args.writes, seed=args.seed)
        print(f"{'store_analysis':<20} {writes['analyses_per_s']:8.1f} analyses/s  "
              f"({args.writes} with masks, one transaction each)")  # fmt: skip
        result.update(writes)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
