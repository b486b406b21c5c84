"""Pull NM whole-body studies from the PACS, analyse them and store them.

A study on the PACS may hold more than the scan: spot views, SPECT, our own results
sent back earlier. :func:`whole_body_scans` keeps what the reader takes as a
whole-body scan: a two-frame NM instance (anterior and posterior), or two single-frame
NM instances of one series (paired in instance-number order). Each scan then goes
through :func:`workflow.ingest.ingest`, which recognises an instance stored before by
its SOP Instance UID, so pulling a study twice stores it once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pydicom
from sqlite_utils import Database

from workflow.ingest import ingest
from workflow.pacs.dicomweb import PacsClient, PacsError, part10

if TYPE_CHECKING:
    from core.networks.models import LoadedModels

log = logging.getLogger(__name__)

PullStatus = Literal["stored", "analysed", "already stored", "failed"]


@dataclass(frozen=True)
class PullOutcome:
    """What pulling one scan (or one study that gave none) did.

    Attributes:
        study_instance_uid: The PACS study.
        status: ``"stored"`` (new study and analysis), ``"analysed"`` (a study stored
            without analysis got one), ``"already stored"`` or ``"failed"``.
        sop_instance_uids: The instances the scan came from (empty when none was usable).
        study_id: The stored study, or None when it failed.
        analysis_id: Its analysis, or None when it failed.
        reason: Why it failed ("" otherwise).
    """

    study_instance_uid: str
    status: PullStatus
    sop_instance_uids: tuple[str, ...] = ()
    study_id: int | None = None
    analysis_id: int | None = None
    reason: str = ""


def _frames(ds: pydicom.Dataset) -> int:
    try:
        return int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 0


def _is_nm_image(ds: pydicom.Dataset) -> bool:
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality != "NM" or "PixelData" not in ds:
        return False
    try:
        return int(ds.Rows) > int(ds.Columns)  # whole-body views are taller than wide
    except (AttributeError, TypeError, ValueError):
        return False


def _instance_number(ds: pydicom.Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def whole_body_scans(datasets: Sequence[pydicom.Dataset]) -> list[list[pydicom.Dataset]]:
    """Group a study's instances into whole-body scans.

    Args:
        datasets: The study's instances.

    Returns:
        One list per scan: a two-frame NM instance alone, or the two single-frame NM
        instances of a series that holds exactly two, in instance-number order. Other
        instances (other modalities, spot views, single views without a partner) are
        left out.
    """
    scans: list[list[pydicom.Dataset]] = []
    singles: dict[str, list[pydicom.Dataset]] = defaultdict(list)
    for ds in datasets:
        if not _is_nm_image(ds):
            continue
        frames = _frames(ds)
        if frames == 2:
            scans.append([ds])
        elif frames == 1:
            singles[str(ds.get("SeriesInstanceUID", ""))].append(ds)
    for series in singles.values():
        if len(series) == 2:
            scans.append(sorted(series, key=_instance_number))
    return scans


def _files(scan: Sequence[pydicom.Dataset]) -> list[tuple[str, bytes]]:
    # Named by SOP Instance UID: the reader takes views from the files' own labels, and
    # an unlabelled pair from its order (anterior first).
    return [(f"{ds.SOPInstanceUID}.dcm", part10(ds)) for ds in scan]


def _pull_study(
    db: Database,
    client: PacsClient,
    study_uid: str,
    *,
    models: LoadedModels,
    account: str,
) -> list[PullOutcome]:
    try:
        scans = whole_body_scans(client.retrieve_study(study_uid))
    except PacsError as exc:
        return [PullOutcome(study_uid, "failed", reason=str(exc))]
    if not scans:
        return [PullOutcome(study_uid, "failed", reason="the study holds no NM whole-body scan")]
    outcomes = []
    for scan in scans:
        uids = tuple(str(ds.SOPInstanceUID) for ds in scan)
        try:
            stored = ingest(
                db, _files(scan), models=models, account=account, source_ae=client.source_ae
            )
        except (ValueError, TypeError, OSError) as exc:  # ScanReadError is a ValueError
            outcomes.append(PullOutcome(study_uid, "failed", uids, reason=str(exc)))
            continue
        status: PullStatus
        if stored.created:
            status = "stored"
        elif stored.result is not None:
            status = "analysed"
        else:
            status = "already stored"
        outcomes.append(PullOutcome(study_uid, status, uids, stored.study_id, stored.analysis_id))
    return outcomes


def pull_studies(
    db: Database,
    client: PacsClient,
    study_uids: Sequence[str],
    *,
    models: LoadedModels,
    account: str,
    progress: Callable[[int, int], None] | None = None,
) -> list[PullOutcome]:
    """Retrieve studies from the PACS and store each whole-body scan with its analysis.

    A study that cannot be retrieved, holds no whole-body scan, or whose scan cannot be
    read gives a ``"failed"`` outcome with the reason; the other studies carry on.

    Args:
        db: An open store.
        client: The PACS.
        study_uids: Study Instance UIDs to pull.
        models: The loaded models.
        account: Who pulls, for the audit log (not empty).
        progress: Called with (studies done, total) after each study.

    Returns:
        One :class:`PullOutcome` per scan found (one per study that gave none), in
        ``study_uids`` order.

    Raises:
        ValueError: If ``account`` is empty.
    """
    if not account.strip():
        raise ValueError("account must not be empty")
    outcomes: list[PullOutcome] = []
    for done, uid in enumerate(study_uids, start=1):
        found = _pull_study(db, client, uid, models=models, account=account)
        for outcome in found:
            log.info(
                "pull %s: %s (study_id=%s)%s",
                uid,
                outcome.status,
                outcome.study_id,
                f": {outcome.reason}" if outcome.reason else "",
            )
        outcomes += found
        if progress is not None:
            progress(done, len(study_uids))
    return outcomes
