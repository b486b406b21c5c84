"""Treatment response from the BSTBI trajectory: responder, stable or progressor.

The rule the cohort page states and applies, in BSTBI units (the index runs from 0 to
1): a patient's change is the latest reliable BSTBI minus the baseline (the first
reliable analysis).

* no reliable BSTBI at all: :data:`NO_BSTBI`;
* one scan only (no change to report): :data:`SINGLE_SCAN`;
* change <= -X: :data:`RESPONDER`; change >= +X: :data:`PROGRESSOR`;
* otherwise :data:`STABLE`.

It is a display rule for browsing a cohort, not a clinical response criterion (PCWG3
for bone scans counts new lesions; see :mod:`core.burden.pcwg3`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Response categories, in the order the rule checks them (stable last: the default).
RESPONDER, STABLE, PROGRESSOR = "responder", "stable", "progressor"
SINGLE_SCAN, NO_BSTBI = "single scan", "no reliable BSTBI"
RESPONSES = (RESPONDER, STABLE, PROGRESSOR, SINGLE_SCAN, NO_BSTBI)
#: Default of the response threshold X, in BSTBI units.
DEFAULT_THRESHOLD = 0.02


def classify_response(
    latest_bstbi: pd.Series, n_studies: pd.Series, change: pd.Series, threshold: float
) -> pd.Series:
    """Classify each patient's response by the rule of the module docstring.

    Args:
        latest_bstbi: Latest reliable BSTBI per patient, in [0, 1]; NaN when none.
        n_studies: Number of scans per patient (>= 0).
        change: Latest minus baseline BSTBI per patient; NaN or anything with one scan.
        threshold: X, the smallest change that counts, in BSTBI units (> 0).

    Returns:
        A Series of :data:`RESPONSES` values, same index as ``latest_bstbi``.

    Raises:
        ValueError: If ``threshold`` is not a positive finite number or the Series'
            lengths differ.
    """
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    if not len(latest_bstbi) == len(n_studies) == len(change):
        raise ValueError(
            "latest_bstbi, n_studies and change must have the same length, got "
            f"{len(latest_bstbi)}, {len(n_studies)} and {len(change)}"
        )
    latest = latest_bstbi.to_numpy(dtype=float)
    scans = n_studies.to_numpy(dtype=float)
    delta = change.to_numpy(dtype=float)
    values = np.select(
        [np.isnan(latest), scans < 2, delta <= -threshold, delta >= threshold],
        [NO_BSTBI, SINGLE_SCAN, RESPONDER, PROGRESSOR],
        default=STABLE,
    )
    return pd.Series(values, index=latest_bstbi.index, dtype=object)
