"""Time the dashboard's store queries on a large synthetic store.

``python -m db.bench_store --patients 2000 --studies 10000`` builds a store of that
size in a temporary file (rows only: tiny dummy blobs stand in for pixels and masks;
one analysis per study, a few lesions each) and prints the median time of a
patient's time series and of the cohort summary. Targets: < 50 ms and < 500 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.config import VIEWS
from db.connection import open_db
from db.queries import cohort_summary, patient_time_series

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
    with open_db(path) as db, db.atomic():
        conn = db.conn
        conn.executemany(
            "INSERT INTO patients (id, pseudonym, sex, birth_year, primary_tumour, synthetic) "
            "VALUES (?, ?, ?, ?, ?, 1)",
            [
                (i, f"B-{i:06d}", rng.choice("MF"), rng.randint(1930, 1990), rng.choice(_PRIMARIES))
                for i in range(1, patients + 1)
            ],
        )
        study_rows, view_rows, analysis_rows, mask_rows, lesion_rows = [], [], [], [], []
        for sid in range(1, studies + 1):
            pid = rng.randint(1, patients)
            date = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            study_rows.append((sid, pid, date, f"s{sid}.dcm", f"{sid:064x}"))
            p = rng.random()
            analysis_rows.append((sid, sid, p, rng.random() * 0.6, rng.randint(0, 30)))
            for view in VIEWS:
                view_rows.append((sid, view, blob))
                mask_rows.append((sid, view, blob))
                for comp in range(1, rng.randint(1, 4)):
                    lesion_rows.append((sid, view, comp, rng.randint(5, 500)))
        conn.executemany(
            "INSERT INTO studies (id, patient_id, study_date, source_name, source_sha256, "
            "source_format) VALUES (?, ?, ?, ?, ?, 'dicom')",
            study_rows,
        )
        conn.executemany(
            "INSERT INTO views (study_id, view, rows, cols, dtype, counts_zlib) "
            "VALUES (?, ?, 4, 2, 'uint16', ?)",
            view_rows,
        )
        conn.executemany(
            "INSERT INTO analyses (id, study_id, model_version, device, metastasis_probability, "
            "bstbi, hotspots, quality) VALUES (?, ?, 'bench', 'cpu', ?, ?, ?, 'ok')",
            analysis_rows,
        )
        conn.executemany(
            "INSERT INTO masks (analysis_id, view, rows, cols, labels_zlib) VALUES (?, ?, 4, 4, ?)",
            mask_rows,
        )
        conn.executemany(
            "INSERT INTO lesions (analysis_id, view, component, area_px) VALUES (?, ?, ?, ?)",
            lesion_rows,
        )
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
        patients), ``cohort_summary_s`` (all patients), ``cohort_filtered_s``
        (primary + age group + metastasis filters, first 50 rows).

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
                "cohort_filtered_s": _median_s(
                    lambda: cohort_summary(
                        db, primary="lung", age_group="50-70", metastasis=True, limit=50
                    ),
                    repeats,
                ),
            }


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
    args = parser.parse_args(argv)
    result = run_benchmark(args.patients, args.studies, repeats=args.repeats, seed=args.seed)
    print(f"store: {args.patients} patients, {args.studies} studies (built in "
          f"{result['build_s']:.1f} s)")  # fmt: skip
    for key, target in (
        ("time_series_s", TIME_SERIES_TARGET_S),
        ("cohort_summary_s", COHORT_TARGET_S),
        ("cohort_filtered_s", COHORT_TARGET_S),
    ):
        ok = "ok" if result[key] < target else "SLOW"
        print(f"{key:<20} {result[key] * 1000:8.1f} ms  (target < {target * 1000:.0f} ms) {ok}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
