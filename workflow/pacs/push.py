"""Send a stored study's results back into its study on the PACS.

Opt-in, one study at a time: :func:`send_results` builds, from the analysis the pages
show (:func:`db.queries.study_with_masks`) as reviewed (lesion statuses, removal reasons,
the physician's mask edits, burden recomputed on review), a Secondary Capture per view
(the overlay picture with its caption) in one new series and a
Comprehensive SR measurement report in another, copying patient and study from the
analysed instance as the PACS holds it, and sends them with STOW-RS. What was sent is
recorded in the audit log by UID; patient names appear neither there nor in the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid
from sqlite_utils import Database

from core.burden.charts import bsi_region_rows
from core.burden.patient_record import (
    EDITED_AWAY_REASON,
    FALLBACK_SPACING_MM,
    lesions_after_edits,
    reviewed_masks,
)
from core.config import VIEWS
from core.dicom_results.measurement_report import measurement_report
from core.dicom_results.secondary_capture import overlay_capture
from core.dicom_results.summary import (
    ReportedLesion,
    ReportedRegion,
    ResultSummary,
    SourceStudy,
)
from core.imaging.display import stored_display_images
from core.imaging.overlay import overlay_rgb
from db.access import require_role
from db.queries import lesion_history, study_sop_instance_uids, study_with_masks
from db.store import audit
from workflow.pacs.dicomweb import PacsClient

log = logging.getLogger(__name__)

#: Region reported for a lesion the store holds without one (e.g. drawn off the skeleton).
UNKNOWN_REGION = "unknown"
#: Fill opacity of the overlay pictures (as the pages draw them).
OVERLAY_OPACITY = 0.45


@dataclass(frozen=True)
class SentResults:
    """What :func:`send_results` sent.

    Attributes:
        study_id: The stored study.
        analysis_id: The analysis reported.
        study_instance_uid: The PACS study the results joined.
        series_instance_uids: The overlay series, then the report series.
        sop_instance_uids: The overlay images (views in ``VIEWS`` order), then the report.
    """

    study_id: int
    analysis_id: int
    study_instance_uid: str
    series_instance_uids: tuple[str, str]
    sop_instance_uids: tuple[str, ...]


def _area_cm2(lesion: dict[str, Any], study: dict[str, Any]) -> float:
    if lesion.get("area_cm2") is not None:
        return float(lesion["area_cm2"])
    row_mm = study.get("pixel_spacing_row_mm") or FALLBACK_SPACING_MM[0]
    col_mm = study.get("pixel_spacing_col_mm") or FALLBACK_SPACING_MM[1]
    return float(lesion["area_px"]) * float(row_mm) * float(col_mm) / 100.0


def reported_regions(
    bsi_regions: Mapping[str, Mapping[str, float]] | None,
) -> tuple[ReportedRegion, ...]:
    """The BSI's involved regions of a stored analysis, for the results.

    Args:
        bsi_regions: The analysis' ``bsi_regions`` (``{region: {"involvement": f,
            "percent": p}}``), or None.

    Returns:
        One :class:`ReportedRegion` per region with any involvement, in the region
        table's order (head to feet, right before left).
    """
    stored = bsi_regions or {}
    # the rows give the order and check the values; the figures are the stored ones
    return tuple(
        ReportedRegion(
            r.region,
            float(stored[r.region].get("involvement") or 0.0),
            float(stored[r.region].get("percent") or 0.0),
        )
        for r in bsi_region_rows(stored)
    )


def result_summary(db: Database, data: dict[str, Any]) -> ResultSummary:
    """The figures of a stored study's analysis, as reviewed.

    Args:
        db: An open store (for the review history).
        data: The study as :func:`db.queries.study_with_masks` returns it.

    Returns:
        The summary: burden figures of the analysis row (recomputed on review), the
        quality cautions stored with it, the Bone Scan Index and its involved regions
        when the analysis has one (:func:`reported_regions`), every lesion as the mask
        edits leave it
        (:func:`core.burden.patient_record.lesions_after_edits`) with its status and,
        when removed, the reason recorded (:data:`EDITED_AWAY_REASON` for a lesion the
        edits took entirely), and the account that changed a lesion or edited a mask
        last as the reviewer (None when never reviewed).

    Raises:
        ValueError: If the study has no analysis, or the analysis lacks the classifier's
            probability or the weights' hash.
    """
    analysis = data.get("analysis")
    if analysis is None:
        raise ValueError(f"study {data['study']['id']} has no analysis to send")
    if analysis.get("metastasis_probability") is None:
        raise ValueError(f"analysis {analysis['id']} has no metastasis probability")
    if not analysis.get("weights_sha256"):
        raise ValueError(f"analysis {analysis['id']} does not record its weights' hash")
    history = lesion_history(db, [int(les["id"]) for les in data["lesions"]])
    lesions = []
    for les in lesions_after_edits(data):
        reason = None
        if les["status"] == "removed" and les["edited"]:
            reason = EDITED_AWAY_REASON
        elif les["status"] == "removed":
            removals = [h for h in history[int(les["id"])] if h["after"] == "removed"]
            reason = (removals[-1]["reason"] or None) if removals else None
        lesions.append(
            ReportedLesion(
                view=les["view"],
                component=int(les["component"]),
                skeletal_region=les.get("skeletal_region") or UNKNOWN_REGION,
                area_cm2=_area_cm2(les, data["study"]),
                uptake_ratio=les.get("uptake_ratio"),
                status=les["status"],
                removal_reason=reason,
            )
        )
    # a mask edit is a change of the review as much as a lesion's status is
    changes = sorted(
        [*(h for rows in history.values() for h in rows), *(data.get("mask_edits") or ())],
        key=lambda h: str(h["at"]),
    )
    probability = float(analysis["metastasis_probability"])
    threshold = float(analysis["metastasis_threshold"])
    bsi = analysis.get("bsi")
    return ResultSummary(
        bstbi=analysis.get("bstbi"),
        bstbi_images=dict(analysis.get("bstbi_images") or {}),
        hotspots=analysis.get("hotspots"),
        lesion_area_cm2=analysis.get("lesion_area_cm2"),
        metastasis_probability=probability,
        metastasis_threshold=threshold,
        metastasis_call=probability >= threshold,
        quality=analysis["quality"],
        model_version=analysis["model_version"],
        weights_sha256=analysis["weights_sha256"],
        lesions=tuple(lesions),
        reviewed_by=changes[-1]["account"] if changes else None,
        quality_cautions=tuple(analysis.get("quality_cautions") or ()),
        bsi=None if bsi is None else float(bsi),
        # regions only with their BSI: the gate withholds both together
        bsi_regions=reported_regions(analysis.get("bsi_regions")) if bsi is not None else (),
    )


def overlay_pictures(data: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each view's overlay picture (grey level 1, reviewed masks), as the pages draw it.

    The masks are the model's after the review: lesion statuses, drawn lesions and the
    mask edits (:func:`core.burden.patient_record.reviewed_masks`).

    Args:
        data: The study as :func:`db.queries.study_with_masks` returns it.

    Returns:
        ``{view: uint8 (rows, cols, 3)}`` for the views the study holds.
    """
    masks = reviewed_masks(data)
    as_level_1 = bool(data["study"].get("display_grey_level_1"))
    out = {}
    for view in VIEWS:
        if view in data["views"]:
            display = stored_display_images({view: data["views"][view]}, as_level_1)[(view, 1)]
            out[view] = overlay_rgb(display, masks.get(view), OVERLAY_OPACITY)
    return out


def send_results(db: Database, client: PacsClient, study_id: int, *, account: str) -> SentResults:
    """Send a stored study's analysis, as reviewed, to the PACS: overlays and SR report.

    The analysis is the one the pages show (:func:`db.queries.study_with_masks`: the
    newest by the model version in use, else the newest).

    Args:
        db: An open store.
        client: The PACS.
        study_id: The stored study; it must carry a Study Instance UID (it came from
            DICOM) and have an analysis.
        account: Who sends, for the audit log (may review in a store with accounts).

    Returns:
        The :class:`SentResults` UIDs.

    Raises:
        ValueError: If ``account`` is empty, the study does not exist, has no Study
            Instance UID or no analysis, or its analysis cannot be reported.
        core.auth.AccessDenied: If ``account`` may not review in this store.
        workflow.pacs.dicomweb.PacsError: If the PACS cannot be reached or refuses the
            results (nothing is audited then).
    """
    if not account.strip():
        raise ValueError("account must not be empty")
    require_role(db, account, "review")
    data = study_with_masks(db, study_id)
    study_uid = data["study"].get("study_instance_uid")
    if not study_uid:
        raise ValueError(
            f"study {study_id} has no Study Instance UID (it did not come from DICOM), so "
            "its results have no study to join on the PACS"
        )
    summary = result_summary(db, data)
    analysed = study_sop_instance_uids(db, study_id)
    header = client.first_instance_metadata(study_uid, analysed[0] if analysed else None)
    source = SourceStudy.from_dataset(header)
    overlay_series, report_series = str(generate_uid()), str(generate_uid())
    datasets: list[pydicom.Dataset] = [
        overlay_capture(
            source, summary, rgb, view=view, series_uid=overlay_series, instance_number=number
        )
        for number, (view, rgb) in enumerate(overlay_pictures(data).items(), start=1)
    ]
    datasets.append(
        measurement_report(source, summary, series_uid=report_series, instance_number=1)
    )
    client.store(datasets)
    sent = SentResults(
        study_id=study_id,
        analysis_id=int(data["analysis"]["id"]),
        study_instance_uid=source.study_instance_uid,
        series_instance_uids=(overlay_series, report_series),
        sop_instance_uids=tuple(str(ds.SOPInstanceUID) for ds in datasets),
    )
    with db.atomic():
        audit(
            db,
            account=account,
            action="send_results",
            entity="study",
            entity_id=study_id,
            before=None,
            after={
                "pacs": client.url,
                "analysis_id": sent.analysis_id,
                "study_instance_uid": sent.study_instance_uid,
                "series_instance_uids": list(sent.series_instance_uids),
                "sop_instance_uids": list(sent.sop_instance_uids),
                "source_sop_instance_uid": source.sop_instance_uid,
            },
        )
    log.info("study %s: sent %d result instances to %s", study_id, len(datasets), client.url)
    return sent
