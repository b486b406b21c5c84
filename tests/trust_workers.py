"""Subprocess workers for the crash-safety, concurrency and backup tests.

Run as ``python -m tests.trust_workers MODE DB ...`` from the repository root. Each
writes through :mod:`db.store` exactly as an upload would (patient, study with its
views and analysis with its masks in one transaction) and prints one line per commit,
so the parent knows what was committed before it killed or stopped the worker.

Modes:
    store-loop DB START COUNT [PAUSE_AT]: store studies START..START+COUNT-1; with
        PAUSE_AT, print ``MID <study id>`` in the middle of that study's transaction
        (study and views written, analysis not yet) and sleep there.
    review-loop DB WORKER COUNT ACCOUNT: store COUNT studies as WORKER, reviewing each
        (remove one lesion, store new burden figures); print a JSON summary at the end.
    writer DB STOPFILE: add a patient and a treatment per transaction until STOPFILE
        exists; print the number committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from core.config import COLS, ROWS
from core.scan import Scan, ScanMeta
from db.connection import open_db
from db.store import (
    AnalysisRecord,
    LesionRecord,
    add_patient,
    add_treatment,
    set_lesion_status,
    store_analysis,
    store_study,
    update_analysis_burden,
    write_transaction,
)

#: Accounts the workers write as, when the store has accounts.
CLINICIAN = "dr.lee"


def dump_tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of a SQLite file, for comparing two states exactly."""
    conn = sqlite3.connect(path)
    try:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for (t,) in names}
    finally:
        conn.close()


def sha_for(tag: str) -> str:
    """The source SHA-256 standing for one generated study."""
    return hashlib.sha256(tag.encode()).hexdigest()


def scan_for(index: int) -> Scan:
    """A small-noise whole-body scan, different for every index (fast to compress)."""
    rng = np.random.default_rng(index)
    views = {}
    for view in ("ANT", "POST"):
        a = np.zeros((ROWS, COLS), np.float32)
        a[100:900, 96:160] = rng.integers(1, 6, size=(800, 64))
        a[0, 0] = index  # unique content
        views[view] = a
    return Scan(views=views, meta=ScanMeta(source_format="dicom", study_date=dt.date(2024, 1, 1)))


def checksum(scan: Scan) -> int:
    """A checksum of a scan's views, to compare what was stored with what is read back."""
    return zlib.crc32(b"".join(scan.views[v].tobytes() for v in ("ANT", "POST")))


def masks_for(index: int) -> dict[str, np.ndarray]:
    """Label masks with two metastasis squares and a bladder per view."""
    out = {}
    for view in ("ANT", "POST"):
        m = np.zeros((ROWS, COLS), np.uint8)
        r = 200 + index % 50
        m[r : r + 6, 100:106] = 1
        m[r + 300 : r + 305, 140:146] = 1
        m[820:840, 120:136] = 2
        out[view] = m
    return out


def lesions_for(masks: dict[str, np.ndarray]) -> list[LesionRecord]:
    """Two lesions per view, components 1 and 2 (the two squares)."""
    return [LesionRecord(v, c, 36 if c == 1 else 30) for v in masks for c in (1, 2)]


RECORD = AnalysisRecord(
    model_version="test", device="cpu", quality="ok", bstbi=0.02, hotspots=4,
    lesion_area_cm2=1.0, bstbi_images={("ANT", 1): 0.02},
)  # fmt: skip


def store_one(db: Database, index: int, tag: str, account: str | None) -> tuple[int, int, Scan]:
    """Store a patient, a study and its analysis in one transaction, as an upload does."""
    scan = scan_for(index)
    masks = masks_for(index)
    with write_transaction(db):
        pid = add_patient(db, pseudonym=f"T-{tag}", synthetic=True, account=account)
        sid = store_study(db, patient_id=pid, scan=scan, source_name=f"{tag}.dcm",
                          source_sha256=sha_for(tag), account=account).study_id  # fmt: skip
        aid = store_analysis(db, study_id=sid, analysis=RECORD, masks=masks,
                             lesions=lesions_for(masks), account=account or "worker")  # fmt: skip
    return sid, aid, scan


def _store_loop(path: str, start: int, count: int, pause_at: int | None) -> None:
    with open_db(path) as db:
        for index in range(start, start + count):
            tag = f"s{index}"
            if index == pause_at:
                scan, masks = scan_for(index), masks_for(index)
                with write_transaction(db):
                    pid = add_patient(db, pseudonym=f"T-{tag}", synthetic=True)
                    sid = store_study(db, patient_id=pid, scan=scan, source_name=f"{tag}.dcm",
                                      source_sha256=sha_for(tag)).study_id  # fmt: skip
                    print(f"MID {sid}", flush=True)
                    time.sleep(120)  # killed here, inside the transaction
                    store_analysis(db, study_id=sid, analysis=RECORD, masks=masks,
                                   lesions=lesions_for(masks), account="worker")  # fmt: skip
                continue
            sid, aid, scan = store_one(db, index, tag, None)
            print(f"COMMITTED {sid} {aid} {sha_for(tag)} {checksum(scan)}", flush=True)


def _review_loop(path: str, worker: int, count: int, account: str) -> None:
    stored = reviewed = 0
    analyses: list[tuple[int, float]] = []
    with open_db(path) as db:
        for i in range(count):
            index = worker * 10_000 + i
            _, aid, _ = store_one(db, index, f"w{worker}-{i}", account)
            stored += 1
            lesion = db.execute(
                "SELECT id FROM lesions WHERE analysis_id = ? AND view = 'ANT' AND component = 1",
                [aid],
            ).fetchone()[0]
            set_lesion_status(db, lesion, "removed", account, f"worker {worker}")
            bstbi = round(0.001 * (i + 1), 6)
            update_analysis_burden(db, aid, {("ANT", 1): bstbi}, bstbi, 1, 0.5, account)
            reviewed += 1
            analyses.append((aid, bstbi))
    print(json.dumps({"stored": stored, "reviewed": reviewed, "analyses": analyses}), flush=True)


def _writer(path: str, stopfile: str) -> None:
    done = 0
    with open_db(path) as db:
        while not Path(stopfile).exists():
            with write_transaction(db):
                pid = add_patient(db, pseudonym=f"W-{done}", synthetic=True)
                add_treatment(db, patient_id=pid, agent="zoledronic acid",
                              start=dt.date(2024, 1, 1))  # fmt: skip
            done += 1
            if done == 1:
                print("STARTED", flush=True)
    print(f"DONE {done}", flush=True)


def main(argv: list[str]) -> None:
    mode, path = argv[0], argv[1]
    if mode == "store-loop":
        pause = int(argv[4]) if len(argv) > 4 else None
        _store_loop(path, int(argv[2]), int(argv[3]), pause)
    elif mode == "review-loop":
        _review_loop(path, int(argv[2]), int(argv[3]), argv[4])
    elif mode == "writer":
        _writer(path, argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
