"""Analysis meets storage: store an uploaded scan with its analysis, analyse stored studies.

:func:`ingest` reads uploaded files and stores the patient (when new), the study and its
analysis in one transaction, recognising a file stored before by its hash; the check
runs again inside the write transaction, so two uploads of one file racing each other
store one study. :func:`analyze_stored` analyses the studies stored without an
analysis (the demo cohort), one transaction per study, each stored by
:func:`store_stored_result` (which :mod:`workflow.ray_engine` shares).

This lives above ``core`` and ``db`` because it joins them: ``core`` analyses without
knowing about SQLite, ``db`` stores without knowing about networks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sqlite_utils import Database

from core.analysis import AnalysisResult, analyze, is_synthetic, model_identity, pseudonym_for
from core.config import age_by_year
from core.imaging.crops import THRESHOLD
from core.reading.uploaded import read_uploaded, sha256_of
from core.scan import Scan
from db.queries import (
    has_analysis,
    has_analysis_by,
    patient_birth_year,
    patient_id_by_pseudonym,
    stored_scan,
    studies_without_analysis,
    studies_without_analysis_by,
    study_by_source,
)
from db.store import AnalysisRecord, LesionRecord, add_patient, store_analysis, store_study

if TYPE_CHECKING:
    import datetime as dt

    from core.networks.models import LoadedModels


def to_records(
    result: AnalysisResult,
) -> tuple[AnalysisRecord, dict[str, np.ndarray], list[LesionRecord]]:
    """Turn a result into the arguments of :func:`db.store.store_analysis`.

    Args:
        result: From :func:`analyze`.

    Returns:
        ``(analysis, masks, lesions)``: the record (burden figures and the BSI None when
        the scan is unreliable, ``raw_bsi`` whatever the verdict; ``quality`` is
        ``"ok"`` or the verdict's reason), the uint8 label masks per view, and one
        :class:`db.store.LesionRecord` per lesion (with its side and region source).
        The skeleton maps are ``result.skeletons`` (:func:`store_result` stores them).
    """
    record = AnalysisRecord(
        model_version=result.model_version or "unknown",
        weights_sha256=result.weights_sha256 or None,
        device=result.device,
        quality="ok" if result.quality.ok else result.quality.reason,
        quality_cautions=tuple(result.quality.cautions),
        timings_s=dict(result.timings),
        metastasis_probability=result.probabilities.get("metastasis"),
        metastasis_threshold=result.thresholds.get("metastasis", THRESHOLD),
        bladder_probability=result.probabilities.get("bladder"),
        bstbi_images=dict(result.bstbi_images or {}),
        bstbi=result.bstbi,
        hotspots=result.hotspots,
        lesion_area_cm2=result.lesion_area_cm2,
        bsi=result.bsi,
        raw_bsi=result.raw_bsi,
        bsi_regions=dict(result.bsi_regions),
        bsi_involvement=dict(result.bsi_involvement),
        anatomy_sha256=result.anatomy_sha256 or None,
        bsi_withheld=result.bsi_withheld,
    )
    lesions = [
        LesionRecord(
            view=les.view,
            component=les.component,
            area_px=les.area_px,
            area_cm2=les.area_cm2,
            uptake_ratio=les.uptake_ratio,
            skeletal_region=les.region,
            centroid_row=les.centroid_row,
            centroid_col=les.centroid_col,
            side=les.side or None,
            region_source=les.region_source,
        )
        for les in result.lesions
    ]
    return record, dict(result.masks), lesions


def store_result(db: Database, study_id: int, result: AnalysisResult, *, account: str) -> int:
    """Store the analysis of a study: its record, masks, skeleton maps and lesions.

    The one conversion of a result into :func:`db.store.store_analysis`'s arguments
    that every path shares (upload, re-analysis, the DICOM node, Ray), so none drops a
    figure; one transaction (the caller's, when one is open).

    Args:
        db: An open store.
        study_id: The study ``result`` analyses.
        result: From :func:`analyze`.
        account: Who (or which process) analysed, for the audit log.

    Returns:
        The new analysis id.

    Raises:
        ValueError: As :func:`db.store.store_analysis`.
    """
    record, masks, lesions = to_records(result)
    return store_analysis(
        db,
        study_id=study_id,
        analysis=record,
        masks=masks,
        lesions=lesions,
        account=account,
        skeletons=dict(result.skeletons),
    )


class Ingested(NamedTuple):
    """What :func:`ingest` did.

    Attributes:
        study_id: The study (new, or the one stored before with the same hash).
        analysis_id: Its analysis (new, or the latest stored before).
        created: False when the file was stored before (nothing re-analysed).
        result: The new analysis, or None when nothing was analysed.
    """

    study_id: int
    analysis_id: int
    created: bool
    result: AnalysisResult | None


def _with_age(
    db: Database,
    scan: Scan,
    digest: str,
    patient_id: int | None,
    patient: Mapping[str, Any] | None,
    study_date: dt.date | None,
) -> Scan:
    """The scan with the patient's age at the study when its file gives none.

    The age then comes from the patient's birth year (the form's, or the stored
    patient's: the one given, else the one the file's PatientID names, as
    :func:`ingest` picks it) and the study date, by year
    (:func:`core.config.age_by_year`), as a re-analysis of the stored study reads it
    (:func:`db.queries.stored_scan`): the analysis withholds a child's BSI either way
    (:func:`core.anatomy.bsi.withheld_for_age`).
    """
    if scan.meta.age is not None:
        return scan
    birth_year = None if patient is None else patient.get("birth_year")
    if patient is None and patient_id is None:
        patient_id = patient_id_by_pseudonym(db, pseudonym_for(scan.meta.patient_id, digest))
    if patient_id is not None:
        birth_year = patient_birth_year(db, patient_id)
    age = age_by_year(birth_year, study_date or scan.meta.study_date)
    if age is None:
        return scan
    return dataclasses.replace(scan, meta=dataclasses.replace(scan.meta, age=float(age)))


def _birth_year(scan: Scan, study_date: dt.date | None) -> int | None:
    """The patient's year of birth from the file: its birth date's, else its age's.

    A file that gives the age at the study but no birth date (DICOM PatientAge alone)
    gives the year back by :func:`core.config.age_by_year`'s count (the study's year
    less the age), so that a later re-analysis finds the same age and the same BSI rule.
    """
    if scan.meta.birth_date is not None:
        return scan.meta.birth_date.year
    date = study_date or scan.meta.study_date
    if scan.meta.age is None or date is None:
        return None
    return date.year - math.floor(scan.meta.age)


def ingest(
    db: Database,
    files: Sequence[tuple[str, bytes]],
    *,
    models: LoadedModels,
    account: str,
    patient_id: int | None = None,
    patient: Mapping[str, Any] | None = None,
    scan: Scan | None = None,
    read_seconds: float | None = None,
    result: AnalysisResult | None = None,
    study_date: dt.date | None = None,
    source_ae: str | None = None,
) -> Ingested:
    """Read uploaded files, analyse the scan and store study and analysis together.

    A file stored before (same content hash, :func:`core.reading.uploaded.sha256_of`, or
    for DICOM a SOP Instance UID stored before) is not analysed again: its study and
    latest analysis are returned (a study stored without analysis, e.g. by the demo
    cohort, is analysed once). Otherwise the
    patient (when created here), the study with its views, the analysis with its masks
    and lesions and the audit row are written in one transaction: all or nothing.

    The patient is, in order: ``patient_id``; a new patient from ``patient`` (keyword
    arguments of :func:`db.store.add_patient`); the patient whose pseudonym derives
    from the file's PatientID (:func:`pseudonym_for`; created when missing, with sex
    and birth year from the file, never its name or ID); a new patient per file.

    Args:
        db: An open store.
        files: ``(file name, content)``: one file or an ANT/POST pair.
        models: The loaded models.
        account: Who uploaded, for the audit log (not empty).
        patient_id: An existing patient.
        patient: Fields of a new patient (``pseudonym`` required).
        scan: The scan already read from ``files`` (skips reading again).
        read_seconds: Seconds reading took, when ``scan`` is given.
        result: The analysis of ``scan`` already made (:func:`analyze`), stored as
            it is instead of analysing again.
        study_date: The study date to store, overriding the file's
            (``scan.meta.study_date``); not applied to a file stored before.
        source_ae: The calling AE title when the files came from a DICOM node.

    Returns:
        The :class:`Ingested` ids.

    Raises:
        ScanReadError: If the files cannot be read as a scan (nothing stored).
        ValueError: If ``account`` is empty, both ``patient_id`` and ``patient`` are
            given, or anything the store refuses (nothing stored).
    """
    if not account.strip():
        raise ValueError("account must not be empty")
    if patient_id is not None and patient is not None:
        raise ValueError("give patient_id or patient, not both")
    digest = sha256_of(files)
    found = study_by_source(db, digest)
    if found is not None and found[1] is not None:
        return Ingested(found[0], found[1], False, None)
    if scan is None:
        start = time.perf_counter()
        scan = read_uploaded(files)
        read_seconds = time.perf_counter() - start
    uids = [uid for _, uid in scan.meta.instances]
    found = study_by_source(db, digest, uids)
    if found is not None and found[1] is not None:
        return Ingested(found[0], found[1], False, None)
    if result is None:
        read = None if read_seconds is None else [read_seconds]
        scan = _with_age(db, scan, digest, patient_id, patient, study_date)
        (result,) = analyze([scan], models, read_seconds=read)
    start = time.perf_counter()
    with db.atomic():
        # Asked again inside the write transaction: another upload of the same file may
        # have stored it while this one was being analysed.
        found = study_by_source(db, digest, uids)
        if found is not None and found[1] is not None:
            return Ingested(found[0], found[1], False, None)
        existing_study = None if found is None else found[0]
        if existing_study is None:
            pid = patient_id
            if pid is None and patient is not None:
                pid = add_patient(db, **{**dict(patient), "account": account})
            if pid is None:
                pseudonym = pseudonym_for(scan.meta.patient_id, digest)
                pid = patient_id_by_pseudonym(db, pseudonym)
                if pid is None:
                    pid = add_patient(
                        db,
                        pseudonym=pseudonym,
                        sex=scan.meta.sex,
                        birth_year=_birth_year(scan, study_date),
                        synthetic=is_synthetic(scan),
                        account=account,
                    )
            name = " + ".join(n for n, _ in files)
            study_id = store_study(
                db,
                patient_id=pid,
                scan=scan,
                source_name=name,
                source_sha256=digest,
                study_date=study_date,
                source_ae=source_ae,
                account=account,
            ).study_id
        else:
            study_id = existing_study
        analysis_id = store_result(db, study_id, result, account=account)
    result.timings["store"] = time.perf_counter() - start
    return Ingested(study_id, analysis_id, existing_study is None, result)


def store_stored_result(
    db: Database,
    study_id: int,
    result: AnalysisResult,
    *,
    account: str,
    version: str | None = None,
) -> int | None:
    """Store the analysis of a stored study in its own transaction, unless it has one.

    The check runs inside the write transaction, so a study that another process
    analysed meanwhile keeps its single analysis (per version, when re-analysing).

    Args:
        db: An open store.
        study_id: The stored study that ``result`` analyses.
        result: From :func:`analyze` on :func:`db.queries.stored_scan`'s scan.
        account: Who (or which process) analysed, for the audit log.
        version: None: store unless the study has any analysis. A model version
            (re-analysis with the model in use): store unless the study has an analysis
            by that version; older analyses, by other versions, are kept.

    Returns:
        The new analysis id, or None when the study had such an analysis already.

    Raises:
        ValueError: If ``version`` is given and ``result`` was made by another one.
    """
    if version is not None and result.model_version != version:
        raise ValueError(f"result was made by {result.model_version!r}, not by version {version!r}")
    with db.atomic():
        done = (
            has_analysis(db, study_id)
            if version is None
            else has_analysis_by(db, study_id, version)
        )
        if done:
            return None
        return store_result(db, study_id, result, account=account)


def analyze_stored(
    db: Database,
    models: LoadedModels,
    *,
    account: str,
    batch: int = 4,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    reanalyse: bool = False,
) -> list[int]:
    """Analyse the stored studies that have no analysis yet (e.g. the demo cohort).

    Each study's analysis is stored in its own transaction, so an interruption keeps
    every analysis finished before it and the next call carries on. A study that
    another process analysed meanwhile is skipped. With ``reanalyse``, every study
    without an analysis by these models' version gets one (after a promotion), beside
    its older analyses.

    Args:
        db: An open store.
        models: The loaded models.
        account: Who (or which process) analyses, for the audit log (not empty).
        batch: Scans per network call (>= 1).
        limit: Analyse at most this many studies (all when None).
        progress: Called with (done, total) after each batch.
        reanalyse: Analyse the studies without an analysis by ``models``' version
            (:func:`core.analysis.model_identity`) instead of those without any.

    Returns:
        The new analysis ids.

    Raises:
        ValueError: If ``account`` is empty or ``batch`` < 1.
    """
    if not account.strip():
        raise ValueError("account must not be empty")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    version = model_identity(models)[0] if reanalyse else None
    pending = (
        studies_without_analysis(db, limit)
        if version is None
        else studies_without_analysis_by(db, version, limit)
    )
    done: list[int] = []
    for start in range(0, len(pending), batch):
        ids = pending[start : start + batch]
        scans = [stored_scan(db, i) for i in ids]
        for study_id, result in zip(ids, analyze(scans, models), strict=True):
            analysis_id = store_stored_result(
                db, study_id, result, account=account, version=version
            )
            if analysis_id is not None:
                done.append(analysis_id)
        if progress is not None:
            progress(min(start + batch, len(pending)), len(pending))
    return done
