"""The analysis pipeline: from scans to a stored, reviewable result.

:func:`analyze` runs, for a batch of scans::

    quality gate -> display images -> classifier + segmenter (batched across views and
    scans, :func:`core.inference.predict_batch`) -> lesions (connected components,
    skeletal region, area, uptake) -> BSTBI per image and per scan, hotspots, lesion area

and times every stage. :func:`to_records` turns a result into the rows of
:func:`db.store.store_analysis`; :func:`ingest` reads uploaded files and stores the
study and its analysis in one transaction, recognising a file stored before by its
hash.

**Unreliable scans.** A scan that fails the quality gate (:func:`core.quality.assess`)
is still run through the models, so that a physician can look at what they found, but
its result has ``reliable=False`` and its burden figures (``bstbi_images``, ``bstbi``,
``hotspots``, ``lesion_area_cm2``) are None, in the result and in the stored record.
The values computed all the same are kept in ``raw_bstbi_images``, ``raw_bstbi``,
``raw_hotspots`` and ``raw_lesion_area_cm2`` for inspection only.

**Pixel spacing.** Lesion areas in cm² use the file's pixel spacing of the canonical
1024 x 256 grid; when a file has none (exported PNG/JPEG), the canonical spacing of
the paper's camera and of the phantom, 2.3 mm (:data:`DEFAULT_PIXEL_SPACING_MM`), is
used and a note says so.

**Timings** (seconds, per scan): ``quality``, ``display``, ``classify`` (classifier
forward passes plus the work around the networks: normalisation, crops, gating),
``segment`` (segmenter forward passes) and ``lesions_burden``; ``read`` when the
caller passes it. Stages run for a whole batch (the networks) are split evenly over
its scans.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from core.config import LABEL_BLADDER, LABEL_METASTASIS, VIEWS
from core.crops import THRESHOLD
from core.scan import Scan

if TYPE_CHECKING:
    import datetime as dt

    from sqlite_utils import Database

    from core.models import LoadedModels
    from core.quality import QualityVerdict
    from db.store import AnalysisRecord, LesionRecord

#: Pixel spacing (row, column) in mm used when a file gives none: the canonical grid
#: of the paper's camera (and of the phantom).
DEFAULT_PIXEL_SPACING_MM: tuple[float, float] = (2.3, 2.3)
#: Stage names of :attr:`AnalysisResult.timings`, in pipeline order (``read`` and
#: ``store`` only when the caller measured them).
STAGES: tuple[str, ...] = (
    "read",
    "quality",
    "display",
    "classify",
    "segment",
    "lesions_burden",
    "store",
)


@dataclass(frozen=True)
class Lesion:
    """One lesion: a connected component of a view's metastasis mask.

    Attributes:
        view: ``"ANT"`` or ``"POST"``.
        component: Its number in :func:`core.review.lesion_components` (>= 1).
        area_px: Pixels (> 0).
        area_cm2: Area in cm² (>= 0).
        uptake_ratio: Mean lesion counts / mean normal-bone counts, or None when
            undefined (no normal-bone reference).
        region: Skeletal region (:func:`core.regions.skeletal_region`).
        centroid_row: Mean row of its pixels.
        centroid_col: Mean column of its pixels.
    """

    view: str
    component: int
    area_px: int
    area_cm2: float
    uptake_ratio: float | None
    region: str
    centroid_row: float
    centroid_col: float


@dataclass(frozen=True)
class AnalysisResult:
    """What the pipeline concluded about one scan.

    Attributes:
        quality: The quality verdict (:class:`core.quality.QualityVerdict`).
        reliable: ``quality.ok``; when False the burden figures below are None.
        probabilities: ``{"metastasis": p, "bladder": p}`` in [0, 1].
        positives: ``{label: p >= thresholds[label]}``.
        thresholds: ``{label: threshold}`` the decision used (the classifier card's:
            0.5, or a calibrated value).
        masks: ``{view: uint8 (1024, 256)}`` gated label masks, values 0, 1, 2.
        lesions: Every lesion of every view, views in ``VIEWS`` order.
        bstbi_images: ``{(view, level): bstbi}`` in [0, 1], or None when unreliable.
        bstbi: The scan's BSTBI (mean of ``bstbi_images``), or None when unreliable.
        hotspots: Lesion count summed over the views, or None when unreliable.
        lesion_area_cm2: Lesion area summed over the views, cm², or None when unreliable.
        raw_bstbi_images: The per-image BSTBI computed whatever the verdict.
        raw_bstbi: The scan BSTBI computed whatever the verdict.
        raw_hotspots: The hotspot count computed whatever the verdict.
        raw_lesion_area_cm2: The lesion area computed whatever the verdict.
        pixel_spacing_mm: (row, column) spacing used for areas, mm.
        notes: Remarks (e.g. the default pixel spacing was used).
        timings: Seconds per stage (:data:`STAGES`), for this scan.
        device: Where the models ran (:func:`core.device.describe_device`), with the
            classifier's screening arithmetic when it is not float32
            (:func:`core.inference.precision_note`).
        model_version: Names the models (with short weight hashes).
        weights_sha256: sha256 over both models' weight hashes.
    """

    quality: QualityVerdict
    reliable: bool
    probabilities: dict[str, float]
    positives: dict[str, bool]
    thresholds: dict[str, float]
    masks: dict[str, np.ndarray]
    lesions: tuple[Lesion, ...]
    bstbi_images: dict[tuple[str, int], float] | None
    bstbi: float | None
    hotspots: int | None
    lesion_area_cm2: float | None
    raw_bstbi_images: dict[tuple[str, int], float]
    raw_bstbi: float
    raw_hotspots: int
    raw_lesion_area_cm2: float
    pixel_spacing_mm: tuple[float, float]
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    model_version: str = ""
    weights_sha256: str = ""

    @property
    def seconds(self) -> float:
        """Sum of :attr:`timings`: this scan's time through the stages measured."""
        return float(sum(self.timings.values()))


def model_identity(models: LoadedModels) -> tuple[str, str]:
    """Return ``(model_version, weights_sha256)`` naming a pair of loaded models.

    Args:
        models: From :func:`core.models.load_models`.

    Returns:
        The version (the cards' ``version`` entry when present, else
        ``"classifier:<sha12> segmenter:<sha12>"``) and the hex sha256 of
        ``"classifier=<sha>;segmenter=<sha>"``, which changes when either model does.
    """
    hashes = models.weights_sha256
    names = sorted(hashes)
    version = next(
        (str(card["version"]) for card in models.cards.values() if card.get("version")), ""
    )
    if not version:
        version = " ".join(f"{n}:{hashes[n][:12]}" for n in names)
    combined = ";".join(f"{n}={hashes[n]}" for n in names)
    return version, hashlib.sha256(combined.encode()).hexdigest()


class _ForwardClock:
    """Sums the wall time of a module's forward passes (synchronising CUDA)."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.total = 0.0
        self._start = 0.0
        self._sync = device.type == "cuda"
        self._handles = [
            module.register_forward_pre_hook(self._pre),
            module.register_forward_hook(self._post),
        ]

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _pre(self, *_: Any) -> None:
        self._start = self._now()

    def _post(self, *_: Any) -> None:
        self.total += self._now() - self._start

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@contextmanager
def _network_clocks(models: LoadedModels) -> Iterator[tuple[_ForwardClock, _ForwardClock]]:
    clocks = (
        _ForwardClock(models.classifier, models.device),
        _ForwardClock(models.segmenter, models.device),
    )
    try:
        yield clocks
    finally:
        for clock in clocks:
            clock.remove()


def _lesions_of_view(
    view: str,
    counts: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float],
) -> list[Lesion]:
    from core.burden import normal_bone_reference
    from core.regions import body_box, skeletal_region
    from core.review import lesion_components

    labels, stats = lesion_components(mask)
    if not stats:
        return []
    lesion_all = mask == LABEL_METASTASIS
    # One normal-bone reference per view (all lesions left out), shared by its lesions.
    reference = normal_bone_reference(counts, lesion_all, mask == LABEL_BLADDER)
    ref_mean = float(counts[reference].mean()) if reference.any() else 0.0
    sums = np.bincount(labels.ravel(), weights=counts.ravel().astype(np.float64))
    box = body_box(counts)
    pixel_cm2 = spacing[0] * spacing[1] / 100.0
    out = []
    for s in stats:
        mean = sums[s.component] / s.area_px
        uptake = mean / ref_mean if ref_mean > 0 else math.nan
        out.append(
            Lesion(
                view=view,
                component=s.component,
                area_px=s.area_px,
                area_cm2=s.area_px * pixel_cm2,
                uptake_ratio=None if not math.isfinite(uptake) else float(uptake),
                region=skeletal_region(view, s.centroid_row, s.centroid_col, box),
                centroid_row=s.centroid_row,
                centroid_col=s.centroid_col,
            )
        )
    return out


def analyze(
    scans: Sequence[Scan],
    models: LoadedModels,
    *,
    pixel_spacing_default: tuple[float, float] = DEFAULT_PIXEL_SPACING_MM,
    read_seconds: Sequence[float] | None = None,
    segment: str = "auto",
) -> list[AnalysisResult]:
    """Analyse scans: quality, models, lesions and burden, with timings per stage.

    Args:
        scans: The scans; each view float32 (1024, 256) counts, hot = high.
        models: From :func:`core.models.load_models` (loaded once per process).
        pixel_spacing_default: (row, column) mm used when a scan's metadata has no
            spacing; both finite and > 0.
        read_seconds: Seconds each scan took to read, one per scan, to include as
            the ``read`` stage; None leaves ``read`` out.
        segment: How the segmenter covers a view (:data:`core.inference.SEGMENT_MODES`).

    Returns:
        One :class:`AnalysisResult` per scan, same order.

    Raises:
        ValueError: If ``pixel_spacing_default`` is not two finite numbers > 0,
            ``read_seconds`` has another length than ``scans``, or a scan is unfit
            for the models.
    """
    from core.device import describe_device
    from core.display import display_images
    from core.inference import precision_note, predict_batch
    from core.quality import assess

    if len(pixel_spacing_default) != 2 or not all(
        math.isfinite(s) and s > 0 for s in pixel_spacing_default
    ):
        raise ValueError(
            f"pixel_spacing_default must be two finite numbers > 0, got {pixel_spacing_default!r}"
        )
    if read_seconds is not None and len(read_seconds) != len(scans):
        raise ValueError(
            f"read_seconds must hold one value per scan ({len(scans)}), got {len(read_seconds)}"
        )
    if not scans:
        return []
    n = len(scans)
    timings: list[dict[str, float]] = [{} for _ in scans]
    if read_seconds is not None:
        for t, r in zip(timings, read_seconds, strict=True):
            t["read"] = float(r)
    verdicts = []
    displays = []
    for scan, t in zip(scans, timings, strict=True):
        start = time.perf_counter()
        verdicts.append(assess(scan))
        t["quality"] = time.perf_counter() - start
        start = time.perf_counter()
        displays.append(display_images(scan))
        t["display"] = time.perf_counter() - start
    start = time.perf_counter()
    with _network_clocks(models) as (_c_clock, s_clock):
        predictions = predict_batch(models, [scan.views for scan in scans], segment=segment)
    total = time.perf_counter() - start
    for t in timings:
        t["classify"] = (total - s_clock.total) / n
        t["segment"] = s_clock.total / n
    note = precision_note(models.precision)
    device = describe_device(models.device) + (f", classifier {note}" if note else "")
    version, weights = model_identity(models)
    out: list[AnalysisResult] = []
    for scan, verdict, disp, pred, t in zip(
        scans, verdicts, displays, predictions, timings, strict=True
    ):
        out.append(
            result_from_masks(
                scan,
                pred.masks,
                pred.probabilities,
                positives=pred.positive,
                thresholds=pred.thresholds,
                verdict=verdict,
                display=disp,
                timings=t,
                device=device,
                model_version=version,
                weights_sha256=weights,
                pixel_spacing_default=pixel_spacing_default,
            )
        )
    return out


def result_from_masks(
    scan: Scan,
    masks: Mapping[str, np.ndarray],
    probabilities: Mapping[str, float],
    *,
    positives: Mapping[str, bool] | None = None,
    thresholds: Mapping[str, float] | None = None,
    verdict: QualityVerdict | None = None,
    display: Mapping[tuple[str, int], np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
    device: str = "cpu",
    model_version: str = "",
    weights_sha256: str = "",
    pixel_spacing_default: tuple[float, float] = DEFAULT_PIXEL_SPACING_MM,
) -> AnalysisResult:
    """Everything after the networks: lesions, regions and burden from label masks.

    :func:`analyze` calls it with the networks' output; it also turns any other
    label masks (a phantom's truth, a physician's drawing) into the same result.

    Args:
        scan: The scan; each view float32 (1024, 256) counts, hot = high.
        masks: ``{view: label mask}`` for the views of ``scan``, (1024, 256), values
            0 background, 1 metastasis, 2 bladder.
        probabilities: ``{"metastasis": p, "bladder": p}`` in [0, 1].
        positives: ``{label: present}``; ``p >= thresholds[label]`` when None.
        thresholds: ``{label: threshold}`` of the decision; 0.5 each when None.
        verdict: The quality verdict; :func:`core.quality.assess` when None.
        display: The display images (:func:`core.display.display_images`); made when None.
        timings: Seconds per stage so far; ``lesions_burden`` is added to it.
        device: Where the masks came from, in words.
        model_version: Names the models.
        weights_sha256: sha256 over both models' weight hashes.
        pixel_spacing_default: (row, column) mm used when the scan gives no spacing.

    Returns:
        The :class:`AnalysisResult`.

    Raises:
        ValueError: If a mask's view is not in ``scan`` or its shape differs from the view's.
    """
    from core.burden import bstbi_images, hotspot_count, lesion_area_cm2, scan_bstbi
    from core.display import display_images
    from core.quality import assess

    for v, m in masks.items():
        if v not in scan.views or m.shape != scan.views[v].shape:
            raise ValueError(f"masks[{v!r}] does not fit the scan's views")
    start = time.perf_counter()
    t = {} if timings is None else timings
    verdict = assess(scan) if verdict is None else verdict
    disp = display_images(scan) if display is None else display
    if thresholds is None:
        thresholds = dict.fromkeys(probabilities, THRESHOLD)
    if positives is None:
        positives = {k: p >= thresholds[k] for k, p in probabilities.items()}
    notes: list[str] = []
    spacing = scan.meta.pixel_spacing_mm
    if spacing is None:
        spacing = (float(pixel_spacing_default[0]), float(pixel_spacing_default[1]))
        notes.append(
            f"the file gives no pixel spacing; lesion areas use {spacing[0]:g} x "
            f"{spacing[1]:g} mm (the paper's camera and the phantom)"
        )
    label_masks = {v: np.ascontiguousarray(masks[v], dtype=np.uint8) for v in VIEWS if v in masks}
    lesions = [
        les
        for v, mask in label_masks.items()
        for les in _lesions_of_view(v, scan.views[v], mask, spacing)
    ]
    per_image = bstbi_images(dict(disp), label_masks)
    raw_bstbi = scan_bstbi(per_image)
    hotspots = sum(hotspot_count(m == LABEL_METASTASIS) for m in label_masks.values())
    area = float(sum(lesion_area_cm2(m == LABEL_METASTASIS, spacing) for m in label_masks.values()))
    if not verdict.ok:
        notes.append(f"not a diagnostic whole-body scan: {verdict.reason}")
    notes += [f"quality: {c}" for c in verdict.cautions]
    t["lesions_burden"] = time.perf_counter() - start
    reliable = bool(verdict.ok)
    return AnalysisResult(
        quality=verdict,
        reliable=reliable,
        probabilities=dict(probabilities),
        positives=dict(positives),
        thresholds=dict(thresholds),
        masks=label_masks,
        lesions=tuple(lesions),
        bstbi_images=dict(per_image) if reliable else None,
        bstbi=raw_bstbi if reliable else None,
        hotspots=hotspots if reliable else None,
        lesion_area_cm2=area if reliable else None,
        raw_bstbi_images=dict(per_image),
        raw_bstbi=raw_bstbi,
        raw_hotspots=hotspots,
        raw_lesion_area_cm2=area,
        pixel_spacing_mm=spacing,
        notes=tuple(notes),
        timings=t,
        device=device,
        model_version=model_version,
        weights_sha256=weights_sha256,
    )


def to_records(
    result: AnalysisResult,
) -> tuple[AnalysisRecord, dict[str, np.ndarray], list[LesionRecord]]:
    """Turn a result into the arguments of :func:`db.store.store_analysis`.

    Args:
        result: From :func:`analyze`.

    Returns:
        ``(analysis, masks, lesions)``: the record (burden figures None when the scan
        is unreliable; ``quality`` is ``"ok"`` or the verdict's reason), the uint8
        label masks per view, and one :class:`db.store.LesionRecord` per lesion.
    """
    from db.store import AnalysisRecord, LesionRecord

    record = AnalysisRecord(
        model_version=result.model_version or "unknown",
        weights_sha256=result.weights_sha256 or None,
        device=result.device,
        quality="ok" if result.quality.ok else result.quality.reason,
        timings_s=dict(result.timings),
        metastasis_probability=result.probabilities.get("metastasis"),
        metastasis_threshold=result.thresholds.get("metastasis", THRESHOLD),
        bladder_probability=result.probabilities.get("bladder"),
        bstbi_images=dict(result.bstbi_images or {}),
        bstbi=result.bstbi,
        hotspots=result.hotspots,
        lesion_area_cm2=result.lesion_area_cm2,
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
        )
        for les in result.lesions
    ]
    return record, dict(result.masks), lesions


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


def is_synthetic(scan: Scan) -> bool:
    """True when a scan comes from the project's phantom (in memory or as its DICOM export).

    The phantom's DICOM files name :data:`core.dicom.PHANTOM_MANUFACTURER` as the
    manufacturer; no camera does.
    """
    from core.dicom import PHANTOM_MANUFACTURER

    return scan.meta.source_format == "phantom" or scan.meta.manufacturer == PHANTOM_MANUFACTURER


def pseudonym_for(patient_id: str | None, source_sha256: str) -> str:
    """Return the pseudonym of a patient, never the identifier itself.

    Args:
        patient_id: The file's PatientID (DICOM), or None.
        source_sha256: The file's hash, naming a new patient when there is no ID.

    Returns:
        ``"P-<12 hex>"`` (sha256 of the PatientID: one patient, one pseudonym, across
        files) or ``"F-<12 hex>"`` (from the file hash: a new patient per file).
    """
    if patient_id and patient_id.strip():
        return "P-" + hashlib.sha256(patient_id.strip().encode()).hexdigest()[:12]
    return "F-" + source_sha256[:12]


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
) -> Ingested:
    """Read uploaded files, analyse the scan and store study and analysis together.

    A file stored before (same content hash, :func:`core.files.sha256_of`) is not
    read or analysed again: its study and latest analysis are returned (a study stored
    without analysis, e.g. by the demo cohort, is analysed once). Otherwise the
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

    Returns:
        The :class:`Ingested` ids.

    Raises:
        ScanReadError: If the files cannot be read as a scan (nothing stored).
        ValueError: If ``account`` is empty, both ``patient_id`` and ``patient`` are
            given, or anything the store refuses (nothing stored).
    """
    from core.files import read_uploaded, sha256_of
    from db.queries import patient_id_by_pseudonym
    from db.store import add_patient, store_analysis, store_study

    if not account.strip():
        raise ValueError("account must not be empty")
    if patient_id is not None and patient is not None:
        raise ValueError("give patient_id or patient, not both")
    digest = sha256_of(files)
    row = db.execute("SELECT id FROM studies WHERE source_sha256 = ?", [digest]).fetchone()
    existing_study = int(row[0]) if row else None
    if existing_study is not None:
        latest = db.execute(
            "SELECT max(id) FROM analyses WHERE study_id = ?", [existing_study]
        ).fetchone()
        if latest and latest[0] is not None:
            return Ingested(existing_study, int(latest[0]), False, None)
    if scan is None:
        start = time.perf_counter()
        scan = read_uploaded(files)
        read_seconds = time.perf_counter() - start
    if result is None:
        read = None if read_seconds is None else [read_seconds]
        (result,) = analyze([scan], models, read_seconds=read)
    record, masks, lesions = to_records(result)
    start = time.perf_counter()
    with db.atomic():
        if existing_study is None:
            pid = patient_id
            if pid is None and patient is not None:
                pid = add_patient(db, **{**dict(patient), "account": account})
            if pid is None:
                pseudonym = pseudonym_for(scan.meta.patient_id, digest)
                pid = patient_id_by_pseudonym(db, pseudonym)
                if pid is None:
                    birth = scan.meta.birth_date
                    pid = add_patient(
                        db,
                        pseudonym=pseudonym,
                        sex=scan.meta.sex,
                        birth_year=birth.year if birth else None,
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
                account=account,
            ).study_id
        else:
            study_id = existing_study
        analysis_id = store_analysis(
            db, study_id=study_id, analysis=record, masks=masks, lesions=lesions, account=account
        )
    result.timings["store"] = time.perf_counter() - start
    return Ingested(study_id, analysis_id, existing_study is None, result)


def analyze_stored(
    db: Database,
    models: LoadedModels,
    *,
    account: str,
    batch: int = 4,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Analyse the stored studies that have no analysis yet (e.g. the demo cohort).

    Each study's analysis is stored in its own transaction, so an interruption keeps
    every analysis finished before it and the next call carries on. A study that
    another process analysed meanwhile is skipped.

    Args:
        db: An open store.
        models: The loaded models.
        account: Who (or which process) analyses, for the audit log (not empty).
        batch: Scans per network call (>= 1).
        limit: Analyse at most this many studies (all when None).
        progress: Called with (done, total) after each batch.

    Returns:
        The new analysis ids.

    Raises:
        ValueError: If ``account`` is empty or ``batch`` < 1.
    """
    from db.queries import stored_scan, studies_without_analysis
    from db.store import store_analysis

    if not account.strip():
        raise ValueError("account must not be empty")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    pending = studies_without_analysis(db, limit)
    done: list[int] = []
    for start in range(0, len(pending), batch):
        ids = pending[start : start + batch]
        scans = [stored_scan(db, i) for i in ids]
        for study_id, result in zip(ids, analyze(scans, models), strict=True):
            record, masks, lesions = to_records(result)
            with db.atomic():
                exists = db.execute(
                    "SELECT 1 FROM analyses WHERE study_id = ?", [study_id]
                ).fetchone()
                if exists is None:
                    done.append(
                        store_analysis(
                            db,
                            study_id=study_id,
                            analysis=record,
                            masks=masks,
                            lesions=lesions,
                            account=account,
                        )
                    )
        if progress is not None:
            progress(min(start + batch, len(pending)), len(pending))
    return done
