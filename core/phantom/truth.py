"""The truth record of a phantom scan: a JSON-able dict, and the true burden.

Layout (every value JSON-able; positions in mm are patient coordinates: ``x`` to
the patient's left, ``y`` down from the vertex, ``depth`` from the anterior skin;
pixel positions are ``[row, col]`` of each view, the posterior view mirrored)::

    {
      "schema": "bonescan-phantom-truth/1",
      "case_id", "patient": {patient_id, sex, age, primary, birth_year, birth_date,
                             metastasis_group},
      "scan_date", "injection_delay_h", "injected_mbq", "pixel_spacing_mm",
      "metastasis": bool,            # at least one lesion present in the body
      "metastasis_visible": bool,    # at least one metastasis pixel in a mask
      "pattern": "none" | "solitary" | "oligo" | "multiple" | "extensive" | "superscan",
      "lesions": [{id, region, bone, side, centre_mm: [x, y, depth], size_mm, width_mm,
                   uptake_ratio, status, centre_px: {ANT: [r, c], POST: [r, c]},
                   mask_pixels: {ANT, POST}, peak_contrast: {ANT, POST}}],
      "benign": [{kind, site, region, side, centre_mm: [x, y], size_mm, ratio, detail,
                  centre_px: {ANT, POST}}],
      "bladder": {volume_ml, activity_per_mm, mask_pixels: {ANT, POST},
                  peak_to_bone: {ANT, POST}},
      "kidneys": {activity_per_mm},
      "uptake_factors": {regions: {region: factor}, joints: {joint group: factor}},
      "body": {height_mm, arm_position, vertex_row, centre_col, ...},
      "acquisition": {total_counts: {ANT, POST}, blur_scale, fwhm_mm_at_10cm},
      "mask_rule": "...",            # the definition of the masks
      "bstbi": {"ANT_1", "ANT_2", "POST_1", "POST_2", "mean"},
      "series": {...}                # only in longitudinal scans
    }

``bstbi`` is the paper's index with the *true* masks on the scan's own display
images (:func:`core.imaging.display.display_images`,
:func:`core.burden.indices.bstbi_images`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core.burden.indices import bstbi_images, scan_bstbi
from core.imaging.display import display_images
from core.scan import Scan

TRUTH_SCHEMA = "bonescan-phantom-truth/1"


def true_bstbi(
    views: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Return the BSTBI of each display image and their mean, from the true masks.

    Args:
        views: ``{"ANT", "POST"}`` float32 (1024, 256) counts.
        masks: ``{"ANT", "POST"}`` uint8 label masks (0/1/2).

    Returns:
        ``{"ANT_1", "ANT_2", "POST_1", "POST_2", "mean"}`` each in [0, 1], rounded to
        6 decimals.
    """
    scan = Scan(views=dict(views))
    per = bstbi_images(display_images(scan), dict(masks))
    out = {f"{v}_{lvl}": round(float(b), 6) for (v, lvl), b in per.items()}
    out["mean"] = round(float(scan_bstbi(per)), 6)
    return out


def jsonable(obj: Any) -> Any:
    """Return ``obj`` with numpy scalars/arrays, tuples and dates made JSON-able."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj
