"""The analysis pipeline: from scans to a reviewable result (storing it is :mod:`workflow.ingest`).

:func:`analyze` runs, for a batch of scans::

    quality gate -> display images -> classifier + segmenter (batched across views and
    scans, :func:`core.networks.inference.predict_batch`) -> lesions (connected components,
    skeletal region, area, uptake) -> BSTBI per image and per scan, hotspots, lesion area

and times every stage. :func:`workflow.ingest.ingest` stores a result with its study.

**Unreliable scans.** A scan that fails the quality gate (:func:`core.imaging.quality.assess`)
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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.anatomy.bsi import bone_scan_index, withheld_for_age
from core.anatomy.placement import component_regions, unreadable_reason
from core.burden.indices import (
    bstbi_images,
    hotspot_count,
    lesion_area_cm2,
    normal_bone_reference,
    scan_bstbi,
)
from core.burden.lesion_review import lesion_components
from core.config import DEFAULT_PIXEL_SPACING_MM, LABEL_BLADDER, LABEL_METASTASIS, VIEWS
from core.imaging.crops import THRESHOLD
from core.imaging.display import display_images
from core.imaging.quality import QualityVerdict, assess
from core.imaging.regions import body_box, skeletal_region
from core.networks.device import describe_device
from core.networks.inference import (
    precision_note,
    predict_batch,
    skeleton_labels,
    whole_view_precision,
)
from core.reading.dicom import PHANTOM_MANUFACTURER
from core.scan import Scan

if TYPE_CHECKING:
    from core.networks.models import LoadedModels

#: :attr:`Lesion.region_source` of a region read from the view's skeleton map.
REGION_FROM_SKELETON = "skeleton"
#: :attr:`Lesion.region_source` of the fallback from the body's proportions.
REGION_FROM_PROPORTIONS = "proportions"

#: Stage names of :attr:`AnalysisResult.timings`, in pipeline order (``read`` and
#: ``store`` only when the caller measured them).
STAGES: tuple[str, ...] = (
    "read",
    "quality",
    "display",
    "classify",
    "segment",
    "anatomy",
    "lesions_burden",
    "store",
)


@dataclass(frozen=True)
class Lesion:
    """One lesion: a connected component of a view's metastasis mask.

    Attributes:
        view: ``"ANT"`` or ``"POST"``.
        component: Its number in :func:`core.burden.lesion_review.lesion_components` (>= 1).
        area_px: Pixels (> 0).
        area_cm2: Area in cm² (>= 0).
        uptake_ratio: Mean lesion counts / mean normal-bone counts, or None when
            undefined (no normal-bone reference).
        region: Skeletal region: a name of :data:`core.anatomy.regions.LABELS` (bone
            and side, e.g. ``"ribs_left"``) when it came from the view's skeleton map,
            else a name of :data:`core.imaging.regions.REGIONS` from body proportions.
        centroid_row: Mean row of its pixels.
        centroid_col: Mean column of its pixels.
        side: The patient's side of its region, ``"left"``, ``"right"`` or ``"mid"``;
            ``""`` when the region came from body proportions.
        region_source: ``"skeleton"`` (the skeleton network's map) or
            ``"proportions"`` (the fallback: no map, an unreadable view, or a lesion
            off every bone).
    """

    view: str
    component: int
    area_px: int
    area_cm2: float
    uptake_ratio: float | None
    region: str
    centroid_row: float
    centroid_col: float
    side: str = ""
    region_source: str = REGION_FROM_PROPORTIONS


@dataclass(frozen=True)
class AnalysisResult:
    """What the pipeline concluded about one scan.

    Attributes:
        quality: The quality verdict (:class:`core.imaging.quality.QualityVerdict`).
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
        device: Where the models ran (:func:`core.networks.device.describe_device`), with the
            classifier's screening arithmetic when it is not float32
            (:func:`core.networks.inference.precision_note`), or with the lesion scorer
            the whole-view segmenter's (:func:`core.networks.inference.whole_view_precision`).
        model_version: Names the models (with short weight hashes).
        weights_sha256: sha256 over both models' weight hashes.
        skeletons: ``{view: uint8 (1024, 256)}`` skeleton label maps
            (:data:`core.anatomy.regions.LABELS`) of the views the skeleton network
            read; empty without one.
        bsi: The Bone Scan Index, percent of skeletal mass (:mod:`core.anatomy.bsi`),
            or None when unreliable, when no view's skeleton could be read, or for a
            patient younger than :data:`core.anatomy.bsi.ADULT_AGE` (a note says why).
        raw_bsi: The BSI computed whatever the verdict and the age, or None without a
            readable map.
        bsi_regions: ``{region: percent of skeletal mass}`` its regions contribute
            (sums to ``raw_bsi``), regions with any involvement only.
        bsi_involvement: ``{region: fraction in [0, 1] of that region involved}``, every
            region seen on a readable map.
        anatomy_sha256: sha256 of the skeleton network's weights, "" without one.
        bsi_withheld: Why the BSI is not reported although it was computed
            (:func:`core.anatomy.bsi.withheld_for_age`), or None.
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
    skeletons: dict[str, np.ndarray] = field(default_factory=dict)
    bsi: float | None = None
    raw_bsi: float | None = None
    bsi_regions: dict[str, float] = field(default_factory=dict)
    bsi_involvement: dict[str, float] = field(default_factory=dict)
    anatomy_sha256: str = ""
    bsi_withheld: str | None = None

    @property
    def seconds(self) -> float:
        """Sum of :attr:`timings`: this scan's time through the stages measured."""
        return float(sum(self.timings.values()))


def model_identity(models: LoadedModels) -> tuple[str, str]:
    """Return ``(model_version, weights_sha256)`` naming a pair of loaded models.

    Args:
        models: From :func:`core.networks.models.load_models`.

    Returns:
        The version (the cards' ``version`` entry when present, else
        ``"classifier:<sha12> segmenter:<sha12>"``, with ``lesion:<sha12>`` and
        ``scorer:<sha12>`` in name order when the folder has them) and the hex sha256
        of ``"classifier=<sha>;segmenter=<sha>"`` (with theirs likewise), which
        changes when any of them does.
    """
    hashes = dict(models.weights_sha256)
    for name, card in (("lesion", models.lesion_card), ("scorer", models.scorer_card)):
        if card is not None:
            hashes[name] = str(card["weights"]["sha256"])
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
    skeleton: np.ndarray | None = None,
) -> list[Lesion]:

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
    on_bone = (
        [None] * len(stats)
        if skeleton is None
        else component_regions(skeleton, labels, max(s.component for s in stats))
    )
    out = []
    for s in stats:
        mean = sums[s.component] / s.area_px
        uptake = mean / ref_mean if ref_mean > 0 else math.nan
        bone = on_bone[s.component - 1]
        out.append(
            Lesion(
                view=view,
                component=s.component,
                area_px=s.area_px,
                area_cm2=s.area_px * pixel_cm2,
                uptake_ratio=None if not math.isfinite(uptake) else float(uptake),
                region=(
                    bone.name
                    if bone is not None
                    else skeletal_region(view, s.centroid_row, s.centroid_col, box)
                ),
                centroid_row=s.centroid_row,
                centroid_col=s.centroid_col,
                side=bone.side if bone is not None else "",
                region_source=REGION_FROM_SKELETON if bone is not None else REGION_FROM_PROPORTIONS,
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
        models: From :func:`core.networks.models.load_models` (loaded once per process).
        pixel_spacing_default: (row, column) mm used when a scan's metadata has no
            spacing; both finite and > 0.
        read_seconds: Seconds each scan took to read, one per scan, to include as
            the ``read`` stage; None leaves ``read`` out.
        segment: How the segmenter covers a view (:data:`core.networks.inference.SEGMENT_MODES`).

    Returns:
        One :class:`AnalysisResult` per scan, same order.

    Raises:
        ValueError: If ``pixel_spacing_default`` is not two finite numbers > 0,
            ``read_seconds`` has another length than ``scans``, or a scan is unfit
            for the models.
    """
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
    skeleton_maps: list[dict[str, np.ndarray] | None] = []
    for scan, t in zip(scans, timings, strict=True):
        start = time.perf_counter()
        skeleton_maps.append(
            None if models.skeleton is None else skeleton_labels(models, scan.views)
        )
        t["anatomy"] = time.perf_counter() - start
    start = time.perf_counter()
    with _network_clocks(models) as (_c_clock, s_clock):
        predictions = predict_batch(
            models,
            [scan.views for scan in scans],
            segment=segment,
            skeletons=skeleton_maps,
        )
    total = time.perf_counter() - start
    # the lesion network, or the segmenter and the scorer, make both the masks and the
    # calls: there are no crops to classify
    no_crops = models.lesion is not None or models.scorer is not None
    segmenting = total if no_crops else s_clock.total
    for t in timings:
        t["classify"] = (total - segmenting) / n
        t["segment"] = segmenting / n
    # the lesion network runs in float32; the classifier screens in another precision,
    # and the scorer's whole-view segmenter may run in one
    if models.scorer is not None and models.lesion is None:
        arithmetic = whole_view_precision(models)
        note = "" if arithmetic == "float32" else f"segmenter {arithmetic}"
    else:
        screen = "" if no_crops else precision_note(models.precision)
        note = f"classifier {screen}" if screen else ""
    device = describe_device(models.device) + (f", {note}" if note else "")
    version, weights = model_identity(models)
    out: list[AnalysisResult] = []
    for scan, verdict, disp, pred, t, skeleton in zip(
        scans, verdicts, displays, predictions, timings, skeleton_maps, strict=True
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
                skeletons=skeleton,
                anatomy_sha256=models.anatomy_sha256,
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
    skeletons: Mapping[str, np.ndarray] | None = None,
    anatomy_sha256: str = "",
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
        verdict: The quality verdict; :func:`core.imaging.quality.assess` when None.
        display: The display images (:func:`core.imaging.display.display_images`); made when None.
        timings: Seconds per stage so far; ``lesions_burden`` is added to it.
        device: Where the masks came from, in words.
        model_version: Names the models.
        weights_sha256: sha256 over both models' weight hashes.
        pixel_spacing_default: (row, column) mm used when the scan gives no spacing.
        skeletons: ``{view: uint8 (1024, 256) skeleton label map}``
            (:func:`core.anatomy.network.predict_labels`); None or a missing view: the
            view's lesions are placed by body proportions and it adds nothing to the BSI.
            A map without spine or pelvis (:func:`core.anatomy.placement.unreadable_reason`)
            is set aside the same way, with a note.
        anatomy_sha256: sha256 of the skeleton network's weights.

    Returns:
        The :class:`AnalysisResult`.

    Raises:
        ValueError: If a mask's or skeleton map's view is not in ``scan`` or its shape
            differs from the view's.
    """
    for v, m in masks.items():
        if v not in scan.views or m.shape != scan.views[v].shape:
            raise ValueError(f"masks[{v!r}] does not fit the scan's views")
    for v, m in (skeletons or {}).items():
        if v not in scan.views or m.shape != scan.views[v].shape:
            raise ValueError(f"skeletons[{v!r}] does not fit the scan's views")
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
    readable: dict[str, np.ndarray] = {}
    for v in label_masks:
        skeleton = (skeletons or {}).get(v)
        if skeleton is None:
            continue
        reason = unreadable_reason(skeleton)
        if reason is None:
            readable[v] = np.ascontiguousarray(skeleton, dtype=np.uint8)
        else:
            notes.append(
                f"{v}: the skeleton network could not read this view ({reason}); its "
                "lesions are placed by body proportions and it adds nothing to the BSI"
            )
    lesions = [
        les
        for v, mask in label_masks.items()
        for les in _lesions_of_view(v, scan.views[v], mask, spacing, readable.get(v))
    ]
    index = (
        bone_scan_index(
            **{
                f"{v.lower()}_{part}": array
                for v, sk in readable.items()
                for part, array in (
                    ("skeleton", sk),
                    ("mask", label_masks[v] == LABEL_METASTASIS),
                )
            }
        )
        if readable
        else None
    )
    per_image = bstbi_images(dict(disp), label_masks)
    raw_bstbi = scan_bstbi(per_image)
    hotspots = sum(hotspot_count(m == LABEL_METASTASIS) for m in label_masks.values())
    area = float(sum(lesion_area_cm2(m == LABEL_METASTASIS, spacing) for m in label_masks.values()))
    if not verdict.ok:
        notes.append(f"not a diagnostic whole-body scan: {verdict.reason}")
    notes += [f"quality: {c}" for c in verdict.cautions]
    withheld = withheld_for_age(scan.meta.age) if index is not None else None
    if withheld is not None:
        notes.append(withheld)
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
        skeletons=readable,
        bsi=index.bsi if index is not None and reliable and withheld is None else None,
        raw_bsi=index.bsi if index is not None else None,
        bsi_regions=dict(index.regions) if index is not None else {},
        bsi_involvement=dict(index.involvement) if index is not None else {},
        anatomy_sha256=anatomy_sha256 if readable else "",
        bsi_withheld=withheld,
    )


def is_synthetic(scan: Scan) -> bool:
    """True when a scan comes from the project's phantom (in memory or as its DICOM export).

    The phantom's DICOM files name :data:`core.reading.dicom.PHANTOM_MANUFACTURER` as the
    manufacturer; no camera does.
    """
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
