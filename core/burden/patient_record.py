"""One patient over time, as the patient page and the per-patient report show it.

Turns rows of the store (the time series, the treatments, each study's analysis shown
with its masks, lesions and mask edits) into plain records: one :class:`StudyPoint` per
study with its follow-up figures, the :class:`Treatment` list, and overlay pictures.

Everything drawn or matched here is the analysis *as reviewed*: lesion statuses, drawn
lesions and the physician's mask edits (:func:`reviewed_masks`, :func:`lesions_after_edits`),
the same state its stored burden was recomputed from.

Follow-up (:func:`core.burden.pcwg3.followup`) runs on the *reliable* studies only: those
whose latest analysis passed the quality gate (``quality == "ok"``) with a BSTBI and
that have a study date. A non-diagnostic scan's lesions are not a reference for new
lesions, and its burden is not reported as if it were reliable. Two reliable studies on
one date cannot both take part (follow-up needs strictly increasing dates): the one
stored last (highest study id) does, the other keeps its own figures only.

The PCWG3 clock starts at the earliest recorded treatment start unless the caller names
another; without treatments it starts at the baseline (:func:`core.burden.pcwg3.followup`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.burden import lesion_review
from core.burden.lesion_matching import LesionPoint
from core.burden.lesion_review import lesion_components, lesion_state
from core.burden.pcwg3 import FollowUp, StudyFindings, compare, followup
from core.config import LABEL_METASTASIS, VIEWS, age_by_year
from core.imaging.display import stored_display_images
from core.imaging.overlay import overlay_rgb

#: Quality text of a study that was never analysed.
NOT_ANALYSED = "not analysed"
#: Pixel spacing assumed when a study does not record it, mm (the paper's camera).
FALLBACK_SPACING_MM: tuple[float, float] = (2.3, 2.3)
#: White columns between the anterior and posterior view in one overlay picture.
VIEW_GAP_PX = 8
#: Why a lesion no longer counts when the physician's mask edits took all its pixels
#: (erased, or marked bladder) without its status being changed.
EDITED_AWAY_REASON = "erased or marked bladder by a mask edit"


@dataclass(frozen=True)
class Treatment:
    """A treatment of the patient, as the chart and the report draw it.

    Attributes:
        agent: Agent as entered (e.g. ``"zoledronic acid"``).
        start: First day.
        end: Last day, or None while ongoing.
        dose: Dose and schedule as entered, or None.
        note: Free text, or None.
        treatment_id: Store id, or None for a hand-made record.
    """

    agent: str
    start: dt.date
    end: dt.date | None = None
    dose: str | None = None
    note: str | None = None
    treatment_id: int | None = None

    def __post_init__(self) -> None:
        """Validate the fields early, naming the bad one."""
        if not self.agent.strip():
            raise ValueError("agent must not be empty")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) must not be before start ({self.start})")


@dataclass(frozen=True)
class StudyPoint:
    """One study of the patient with its figures and, when it took part, its follow-up.

    Attributes:
        study_id: Store id.
        date: Study date, or None when the file gave none.
        quality: ``"ok"``, the reason the scan is not diagnostic, or :data:`NOT_ANALYSED`.
        bstbi: The scan's BSTBI (after review), or None.
        hotspots: Hotspot count, or None.
        lesion_area_cm2: Lesion area, cm², or None.
        metastasis_probability: Scan probability of metastasis, or None.
        injection_delay_h: Injection-to-scan delay, hours, or None.
        source_name: The uploaded file's name.
        in_followup: True when the study took part in follow-up (reliable, dated).
        new_vs_baseline: Distinct new lesions against the baseline; None for the
            baseline itself and for studies outside follow-up.
        new_vs_previous: The same against the previous reliable study.
        bstbi_change_baseline: BSTBI minus the baseline's, or None.
        bstbi_change_previous: BSTBI minus the previous reliable study's, or None.
        pcwg3: The study's PCWG3 flag (``core.burden.pcwg3.FLAG_*``), or None.
        warnings: Injection-delay warnings of its comparisons.
        source_ae: The DICOM node (AE title) the study came from; "" for an upload.
        cautions: The quality gate's cautions stored with the analysis of a scan that
            passed (a saturated site, the feet out of the field): sentences a physician
            must read with the results; empty when none.
    """

    study_id: int
    date: dt.date | None
    quality: str
    bstbi: float | None = None
    hotspots: int | None = None
    lesion_area_cm2: float | None = None
    metastasis_probability: float | None = None
    injection_delay_h: float | None = None
    source_name: str = ""
    in_followup: bool = False
    new_vs_baseline: int | None = None
    new_vs_previous: int | None = None
    bstbi_change_baseline: float | None = None
    bstbi_change_previous: float | None = None
    pcwg3: str | None = None
    warnings: tuple[str, ...] = ()
    source_ae: str = ""
    cautions: tuple[str, ...] = ()

    @property
    def reliable(self) -> bool:
        """True when the burden may be reported: quality ``ok`` and a BSTBI."""
        return self.quality == "ok" and self.bstbi is not None

    @property
    def status(self) -> str:
        """Quality in words: ``"ok"``, ``"not analysed"`` or ``"not diagnostic: <reason>"``."""
        if self.quality in ("ok", NOT_ANALYSED):
            return self.quality
        return f"not diagnostic: {self.quality}"


@dataclass(frozen=True)
class PatientInfo:
    """Who the patient is, as the page header and the report show it."""

    patient_id: int
    pseudonym: str
    sex: str | None = None
    birth_year: int | None = None
    primary_tumour: str | None = None
    synthetic: bool = False

    def age_at(self, date: dt.date | None) -> int | None:
        """Return the age in whole years at ``date`` (:func:`core.config.age_by_year`)."""
        return age_by_year(self.birth_year, date)


@dataclass(frozen=True)
class PatientRecord:
    """Everything the patient page and report show of one patient.

    Attributes:
        info: Who.
        studies: Every study, by date (undated ones first, as the store orders them).
        treatments: By start date.
        followup: Follow-up of the reliable studies, or None when none is reliable.
        treatment_start: The PCWG3 clock's start used (None: at the baseline).
    """

    info: PatientInfo
    studies: tuple[StudyPoint, ...]
    treatments: tuple[Treatment, ...]
    followup: FollowUp | None
    treatment_start: dt.date | None

    @property
    def dated(self) -> tuple[StudyPoint, ...]:
        """The studies that have a date, in date order."""
        return tuple(s for s in self.studies if s.date is not None)


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value))


def patient_info(row: Mapping[str, Any]) -> PatientInfo:
    """Return a :class:`PatientInfo` from a row of :func:`db.queries.patient_overview`."""
    return PatientInfo(
        patient_id=int(row["id"]),
        pseudonym=str(row["pseudonym"]),
        sex=row.get("sex"),
        birth_year=row.get("birth_year"),
        primary_tumour=row.get("primary_tumour"),
        synthetic=bool(row.get("synthetic")),
    )


def treatments_from_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[Treatment, ...]:
    """Return treatments from rows of :func:`db.treatments.patient_treatments`."""
    out = []
    for row in rows:
        start = _date(row["start_date"])
        if start is None:
            raise ValueError(f"treatment {row.get('id')} has no start_date")
        out.append(
            Treatment(
                agent=str(row["agent"]),
                start=start,
                end=_date(row.get("end_date")),
                dose=row.get("dose"),
                note=row.get("note"),
                treatment_id=row.get("id"),
            )
        )
    return tuple(out)


def study_points(rows: Sequence[Mapping[str, Any]]) -> tuple[StudyPoint, ...]:
    """Return one :class:`StudyPoint` per row of :func:`db.queries.patient_time_series`.

    The follow-up fields stay empty (see :func:`with_followup`); the quality cautions
    come from the row's ``quality_cautions`` (none when the row has no such key).
    """
    return tuple(
        StudyPoint(
            study_id=int(row["study_id"]),
            date=_date(row["study_date"]),
            quality=NOT_ANALYSED if row["analysis_id"] is None else str(row["quality"]),
            bstbi=row["bstbi"],
            hotspots=row["hotspots"],
            lesion_area_cm2=row["lesion_area_cm2"],
            metastasis_probability=row["metastasis_probability"],
            injection_delay_h=row["injection_delay_h"],
            source_name=str(row.get("source_name") or ""),
            source_ae=str(row.get("source_ae") or ""),
            cautions=tuple(str(c) for c in row.get("quality_cautions") or ()),
        )
        for row in rows
    )


def followup_studies(points: Sequence[StudyPoint]) -> list[StudyPoint]:
    """Return the studies that take part in follow-up, in date order.

    Reliable and dated; of two on one date the one with the higher study id.
    """
    by_date: dict[dt.date, StudyPoint] = {}
    for p in points:
        if p.reliable and p.date is not None:
            kept = by_date.get(p.date)
            if kept is None or p.study_id > kept.study_id:
                by_date[p.date] = p
    return [by_date[d] for d in sorted(by_date)]


def default_treatment_start(treatments: Sequence[Treatment]) -> dt.date | None:
    """Return the PCWG3 clock's default start: the earliest treatment start, or None."""
    return min((t.start for t in treatments), default=None)


def _lesion_point(lesion: Mapping[str, Any]) -> LesionPoint | None:
    """Return a stored lesion as a :class:`LesionPoint`, or None when it cannot be placed."""
    row, col, area = lesion.get("centroid_row"), lesion.get("centroid_col"), lesion["area_px"]
    drawn = lesion.get("drawn")
    if (row is None or col is None) and drawn is not None and np.any(drawn):
        # a drawn lesion stored without its centroid: its pixels still place it
        rr, cc = np.nonzero(drawn)
        row, col = float(rr.mean()), float(cc.mean())
    if row is None or col is None or not area or area <= 0:
        return None
    return LesionPoint(
        view=str(lesion["view"]),
        row=float(row),
        col=float(col),
        area_px=float(area),
        region=lesion.get("skeletal_region"),
        status=str(lesion["status"]),
    )


def findings_from_stored(
    data: Mapping[str, Any], *, with_counts: bool = True
) -> tuple[StudyFindings, dict[int, Mapping[str, Any]]]:
    """Return what follow-up needs of a stored study, and where each lesion came from.

    Args:
        data: One study as :func:`db.queries.study_with_masks` returns it.
        with_counts: Pass the views' counts for registration (else offsets are zero).

    Returns:
        ``(findings, origin)``: the :class:`core.burden.pcwg3.StudyFindings` (BSTBI only
        when the analysis is ``ok``; lesions from the stored lesion rows as the mask
        edits leave them (:func:`lesions_after_edits`), removed ones kept with their
        status so that follow-up ignores them), and ``{id(point): lesion dict}`` mapping
        each :class:`core.burden.lesion_matching.LesionPoint` back to its lesion.

    Raises:
        ValueError: If the study has no date.
    """
    study = data["study"]
    date = _date(study.get("study_date"))
    if date is None:
        raise ValueError(f"study {study.get('id')} has no study_date")
    analysis = data.get("analysis")
    bstbi = None
    if analysis is not None and analysis.get("quality") == "ok":
        bstbi = analysis.get("bstbi")
    points: list[LesionPoint] = []
    origin: dict[int, Mapping[str, Any]] = {}
    for lesion in lesions_after_edits(data):
        point = _lesion_point(lesion)
        if point is not None:
            points.append(point)
            origin[id(point)] = lesion
    views = data.get("views") or {}
    findings = StudyFindings(
        date=date,
        injection_delay_h=study.get("injection_delay_h"),
        bstbi=bstbi,
        lesions=tuple(points),
        counts={v: views[v] for v in VIEWS if v in views} if with_counts and views else None,
        label=date.isoformat(),
    )
    return findings, origin


def with_followup(
    points: Sequence[StudyPoint],
    findings: Mapping[int, StudyFindings],
    *,
    treatment_start: dt.date | None = None,
) -> tuple[tuple[StudyPoint, ...], FollowUp | None]:
    """Run follow-up on the reliable studies and write its figures into their points.

    Args:
        points: Every study (:func:`study_points`).
        findings: ``{study_id: StudyFindings}`` for at least the studies of
            :func:`followup_studies` (others are ignored).
        treatment_start: Start of the PCWG3 clock; None: at the baseline.

    Returns:
        The points in the same order, follow-up fields filled for the studies that
        took part, and the :class:`core.burden.pcwg3.FollowUp` (None without a reliable
        study).

    Raises:
        ValueError: If a study taking part has no findings.
    """
    taking_part = followup_studies(points)
    if not taking_part:
        return tuple(points), None
    missing = [p.study_id for p in taking_part if p.study_id not in findings]
    if missing:
        raise ValueError(f"findings lack the studies {missing}")
    fu = followup([findings[p.study_id] for p in taking_part], treatment_start=treatment_start)
    filled: dict[int, StudyPoint] = {
        taking_part[0].study_id: replace(taking_part[0], in_followup=True)
    }
    for p, res in zip(taking_part[1:], fu.studies, strict=True):
        filled[p.study_id] = replace(
            p,
            in_followup=True,
            new_vs_baseline=res.vs_baseline.n_new,
            new_vs_previous=res.vs_previous.n_new,
            bstbi_change_baseline=res.vs_baseline.bstbi_change,
            bstbi_change_previous=res.vs_previous.bstbi_change,
            pcwg3=res.pcwg3,
            warnings=res.warnings,
        )
    return tuple(filled.get(p.study_id, p) for p in points), fu


# --- pictures ------------------------------------------------------------------------


def reviewed_masks(data: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Return a stored study's label masks after the physician's review.

    Removed lesions become background, drawn ones metastasis, then the mask edits not
    undone apply in id order, through :func:`core.burden.lesion_review.reviewed_masks`
    (one definition of "after review", the one the stored burden is computed with).

    Args:
        data: One study as :func:`db.queries.study_with_masks` returns it (a dict
            without ``"mask_edits"`` has none).

    Returns:
        ``{view: uint8 label mask}``; empty when the study was never analysed.
    """
    masks = {v: np.asarray(m, dtype=np.uint8) for v, m in (data.get("masks") or {}).items()}
    if not masks:
        return {}
    edits = data.get("mask_edits") or ()
    removed, added = lesion_state(data.get("lesions", ()))
    if not removed and not added and not edits:
        return masks
    # numbering the components is only needed where a model lesion was removed
    components = {v: lesion_components(masks[v])[0] for v in {v for v, _ in removed if v in masks}}
    return lesion_review.reviewed_masks(masks, components, removed, added or None, edits)


def _lesion_region(
    lesion: Mapping[str, Any], components: Mapping[str, np.ndarray]
) -> np.ndarray | None:
    if lesion.get("drawn") is not None:
        return np.asarray(lesion["drawn"], dtype=bool)
    labels = components.get(str(lesion["view"]))
    if labels is None:
        return None
    return labels == int(lesion["component"])


def lesions_after_edits(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return a stored study's lesions as the physician's mask edits leave them.

    A mask edit changes pixels, not lesion rows: a lesion erased (or marked bladder)
    keeps its row and status. Here each lesion still counted is measured again on the
    reviewed masks (:func:`reviewed_masks`): one whose pixels the edits took entirely
    gets status ``"removed"``; one they took in part gets the area and centroid of the
    pixels left (``area_cm2`` scaled by the fraction left). So lesion matching, the
    pictures' rings and the results sent back count the lesions the burden counts.

    Args:
        data: One study as :func:`db.queries.study_with_masks` returns it.

    Returns:
        New dicts, one per lesion in the same order, with the lesion's keys and
        ``edited`` (True when a mask edit changed its pixels); the uptake ratio and
        region stay as stored. Without mask edits, copies of the rows as stored.
    """
    lesions = [{**lesion, "edited": False} for lesion in data.get("lesions", ())]
    masks = {v: np.asarray(m, dtype=np.uint8) for v, m in (data.get("masks") or {}).items()}
    if not data.get("mask_edits") or not masks:
        return lesions
    before = reviewed_masks({**data, "mask_edits": ()})
    after = reviewed_masks(data)
    components = {v: lesion_components(m)[0] for v, m in masks.items()}
    for lesion in lesions:
        view = str(lesion["view"])
        region = _lesion_region(lesion, components)
        if lesion["status"] == "removed" or region is None or view not in after:
            continue
        had = region & (before[view] == LABEL_METASTASIS)
        left = region & (after[view] == LABEL_METASTASIS)
        n_had, n_left = int(np.count_nonzero(had)), int(np.count_nonzero(left))
        if n_left == n_had:  # edits only take metastasis away: an equal count is untouched
            continue
        lesion["edited"] = True
        if n_left == 0:
            lesion["status"] = "removed"
            continue
        rows, cols = np.nonzero(left)
        if lesion.get("area_cm2") is not None:
            lesion["area_cm2"] = float(lesion["area_cm2"]) * n_left / n_had
        lesion["area_px"] = n_left
        lesion["centroid_row"], lesion["centroid_col"] = float(rows.mean()), float(cols.mean())
    return lesions


def new_lesion_regions(
    earlier: Mapping[str, Any], later: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], int]:
    """Return the later study's new lesions (against the earlier one) as pixel regions.

    The two studies are compared as follow-up compares them
    (:func:`core.burden.pcwg3.compare`: registration, gated Hungarian matching); a lesion of
    the later study is marked when it is new on its own view.

    Args:
        earlier: The reference study (:func:`db.queries.study_with_masks`).
        later: The study whose new lesions are wanted.

    Returns:
        ``({view: bool mask}, n_new)``: per view of the later study the union of its new
        lesions' pixels left after its review (views without a new lesion are left out),
        and the number of distinct new lesions across views
        (:func:`core.burden.lesion_matching.count_new`).

    Raises:
        ValueError: If either study has no date.
    """
    ref, _ = findings_from_stored(earlier)
    cur, origin = findings_from_stored(later)
    comparison = compare(ref, cur)
    components = {
        v: lesion_components(np.asarray(m, dtype=np.uint8))[0]
        for v, m in (later.get("masks") or {}).items()
    }
    # a ring goes round what is left of a lesion once the mask edits took their part
    left = reviewed_masks(later) if later.get("mask_edits") else {}
    out: dict[str, np.ndarray] = {}
    for view, matching in comparison.matchings.items():
        for point in matching.new:
            region = _lesion_region(origin[id(point)], components)
            if region is not None and view in left:
                region = region & (left[view] == LABEL_METASTASIS)
            if region is None or not region.any():
                continue
            out[view] = out[view] | region if view in out else region
    return out, comparison.n_new


def study_picture(
    data: Mapping[str, Any],
    *,
    highlight: Mapping[str, np.ndarray] | None = None,
    opacity: float = 0.45,
) -> np.ndarray:
    """Return one RGB picture of a study: anterior | posterior, reviewed overlays drawn.

    Each view is shown at grey level 1 (hot = dark) with metastasis red and bladder
    green (:func:`core.imaging.overlay.overlay_rgb`); ``highlight`` regions get a yellow ring.

    Args:
        data: One study as :func:`db.queries.study_with_masks` returns it.
        highlight: Optional ``{view: bool mask}`` to ring (e.g. new lesions).
        opacity: Overlay fill opacity in [0, 1].

    Returns:
        uint8 (rows, n_views * cols + gaps, 3) picture, views in ``VIEWS`` order with
        :data:`VIEW_GAP_PX` white columns between them.

    Raises:
        ValueError: If the study has no views.
    """
    views = data.get("views") or {}
    present = [v for v in VIEWS if v in views]
    if not present:
        raise ValueError("data must hold at least one view")
    masks = reviewed_masks(data)
    tiles = []
    for view in present:
        tiles.append(
            overlay_rgb(
                stored_display_images(
                    {view: views[view]}, bool(data["study"].get("display_grey_level_1"))
                )[(view, 1)],
                masks.get(view),
                opacity,
                highlight=None if highlight is None else highlight.get(view),
            )
        )
    rows = tiles[0].shape[0]
    gap = np.full((rows, VIEW_GAP_PX, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for tile in tiles:
        if parts:
            parts.append(gap)
        parts.append(tile)
    return np.concatenate(parts, axis=1)


def default_pair(studies: Sequence[StudyPoint]) -> tuple[StudyPoint, StudyPoint] | None:
    """Return the two studies shown side by side by default: baseline and latest.

    The follow-up baseline and the last study in follow-up when at least one study is
    reliable; else the first and last dated studies (then any studies). With one study,
    both are that study; None without studies.
    """
    for pool in (
        [s for s in studies if s.in_followup],
        [s for s in studies if s.date is not None],
        list(studies),
    ):
        if pool:
            return pool[0], pool[-1]
    return None


def _comparable(data: Mapping[str, Any]) -> bool:
    analysis = data.get("analysis")
    return (
        data["study"].get("study_date") is not None
        and analysis is not None
        and analysis.get("quality") == "ok"
    )


def pair_pictures(
    first: Mapping[str, Any], second: Mapping[str, Any], *, opacity: float = 0.45
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Return the pictures of two studies, the later one's new lesions ringed.

    Args:
        first: One study (:func:`db.queries.study_with_masks`).
        second: The other; the two may come in either date order.
        opacity: Overlay fill opacity in [0, 1].

    Returns:
        ``(picture_first, picture_second, n_new)`` (:func:`study_picture`); new lesions
        (:func:`new_lesion_regions`) are ringed on whichever study is later and
        ``n_new`` counts them; ``n_new`` is None (nothing ringed) when the two are the
        same study or on one date, or either lacks a date or a reliable analysis.
    """
    same = first["study"]["id"] == second["study"]["id"]
    if same or not (_comparable(first) and _comparable(second)):
        return study_picture(first, opacity=opacity), study_picture(second, opacity=opacity), None
    d1, d2 = str(first["study"]["study_date"]), str(second["study"]["study_date"])
    if d1 == d2:
        return study_picture(first, opacity=opacity), study_picture(second, opacity=opacity), None
    earlier, later = (first, second) if d1 < d2 else (second, first)
    regions, n_new = new_lesion_regions(earlier, later)
    pic_earlier = study_picture(earlier, opacity=opacity)
    pic_later = study_picture(later, highlight=regions, opacity=opacity)
    if earlier is first:
        return pic_earlier, pic_later, n_new
    return pic_later, pic_earlier, n_new
