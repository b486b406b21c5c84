"""Analyses with a Bone Scan Index for page tests: the truth store's, again with skeletons.

The truth store (:mod:`tests.store_fixtures`) is analysed without skeleton maps, so it has
no BSI. :func:`add_bsi_analyses` analyses one demo patient's studies again from phantom
truth with an exact phantom skeleton map (of another case: the pages only need regions
to colour and a BSI to show), as the newest analyses, which the pages then show.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from core.analysis import result_from_masks
from core.phantom.demo_cohort import case_sha256, demo_patient
from core.phantom.generate import to_scan
from core.phantom.skeleton_truth import case_label_maps
from db.connection import open_db
from tests.store_fixtures import TRUTH_MODEL
from workflow.ingest import store_result


@functools.cache
def skeleton() -> dict[str, np.ndarray]:
    """An exact phantom skeleton of both views (made once: it takes seconds)."""
    return case_label_maps(11, 3)


def add_bsi_analyses(db_file: Path, patient_index: int = 0) -> list[int]:
    """Analyse demo patient ``patient_index``'s studies again, with skeleton maps.

    Returns:
        The study ids, in the patient's scan order.
    """
    studies = []
    with open_db(db_file) as db:
        for case in demo_patient(patient_index).cases:
            (study_id,) = db.execute(
                "SELECT id FROM studies WHERE source_sha256 = ?", [case_sha256(case)]
            ).fetchone()
            result = result_from_masks(
                to_scan(case),
                case.masks,
                {"metastasis": 0.95, "bladder": 0.97},
                model_version=TRUTH_MODEL,
                skeletons=skeleton(),
            )
            assert result.bsi is not None
            store_result(db, int(study_id), result, account="test")
            studies.append(int(study_id))
    return studies
