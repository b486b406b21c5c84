"""Synthetic whole-body 99mTc-MDP bone scans with exact ground truth.

Public API (stable; others build on it):

* :func:`generate_case` — one scan of a patient drawn like the paper's cohort.
* :func:`generate_series` — a longitudinal series of one patient under treatment.
* :func:`to_scan` — a case as a :class:`core.scan.Scan`.
* :class:`PhantomCase`, :class:`PatientInfo`.

The modules: :mod:`.anatomy` (body model, built from the data of
:mod:`.anatomy_tables` as :mod:`.primitives`), :mod:`.findings` (metastases, benign
look-alikes), :mod:`.render` (projection, blur, noise, masks), :mod:`.cohort` (Table 1
demographics, series), :mod:`.truth` (truth record), :mod:`.export` (dataset files).
"""

from __future__ import annotations

from core.phantom.cohort import PatientInfo
from core.phantom.generate import (
    PHANTOM_MANUFACTURER,
    PIXEL_SPACING_MM,
    PhantomCase,
    generate_case,
    generate_series,
    to_scan,
)

__all__ = [
    "PHANTOM_MANUFACTURER",
    "PIXEL_SPACING_MM",
    "PatientInfo",
    "PhantomCase",
    "generate_case",
    "generate_series",
    "to_scan",
]
