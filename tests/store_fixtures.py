"""A small analysed store for page tests, built from phantom truth (deterministic).

Analyses here come from the phantom's true masks through
:func:`core.analysis.result_from_masks` (model version ``"phantom truth"``), so lesions,
BSTBI and follow-up are known and do not depend on any network's weights.
"""

from __future__ import annotations

from pathlib import Path

from core.analysis import result_from_masks
from core.phantom.demo_cohort import case_sha256, demo_patient
from core.phantom.generate import to_scan
from db.connection import open_db
from db.store import store_analysis
from workflow.ingest import to_records

#: Model version written on the truth analyses.
TRUTH_MODEL = "phantom truth"
#: Demo patients in the small store: patient 1 has a series, patient 5 a single scan.
PATIENTS = 5


def build_truth_store(path: Path, patients: int = PATIENTS) -> Path:
    """Write the demo cohort's first ``patients`` patients with truth analyses to ``path``."""
    from cli import main

    assert main(["demo-cohort", "--db", str(path), "--patients", str(patients)]) == 0
    with open_db(path) as db:
        for index in range(patients):
            for case in demo_patient(index).cases:
                row = db.execute(
                    "SELECT id FROM studies WHERE source_sha256 = ?", [case_sha256(case)]
                ).fetchone()
                met = case.has_metastasis
                bladder = any((m == 2).any() for m in case.masks.values())
                result = result_from_masks(
                    to_scan(case),
                    case.masks,
                    {"metastasis": 0.95 if met else 0.05, "bladder": 0.97 if bladder else 0.03},
                    model_version=TRUTH_MODEL,
                )
                record, masks, lesions = to_records(result)
                with db.atomic():
                    store_analysis(
                        db,
                        study_id=int(row[0]),
                        analysis=record,
                        masks=masks,
                        lesions=lesions,
                        account="test",
                    )
    return path
