"""Reads the pages and the command line need. Only ``db/`` writes SQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlite_utils import Database

from core.config import age_by_year, age_group
from core.scan import Scan, ScanMeta
from db.model_registry import active_version
from db.store import BSTBI_COLUMNS, decode_counts, decode_mask


@dataclass(frozen=True)
class StoreSummary:
    """Counts shown on the home page."""

    patients: int
    studies: int
    synthetic_patients: int


#: Source formats whose pixels are counts (a DICOM file, a phantom scan).
COUNT_SOURCES: tuple[str, str] = ("dicom", "phantom")


def store_summary(db: Database) -> StoreSummary:
    """Return how many patients (synthetic among them) and studies the store holds."""
    row = db.execute(
        """
        SELECT
            (SELECT count(*) FROM patients),
            (SELECT count(*) FROM studies),
            (SELECT count(*) FROM patients WHERE synthetic = 1)
        """
    ).fetchone()
    return StoreSummary(patients=row[0], studies=row[1], synthetic_patients=row[2])


def study_views(db: Database, study_id: int) -> dict[str, np.ndarray]:
    """Return a stored study's views as float32 count arrays keyed by view name."""
    return {
        view: decode_counts(dtype, blob, rows, cols)
        for view, rows, cols, dtype, blob in db.execute(
            "SELECT view, rows, cols, dtype, counts_zlib FROM views WHERE study_id = ? "
            "ORDER BY view",
            [study_id],
        ).fetchall()
    }


def patient_id_by_pseudonym(db: Database, pseudonym: str) -> int | None:
    """Return the id of the patient with this pseudonym, or None."""
    row = db.execute("SELECT id FROM patients WHERE pseudonym = ?", [pseudonym]).fetchone()
    return None if row is None else int(row[0])


def patient_overview(db: Database) -> list[dict[str, object]]:
    """Return one row per patient: who, how many studies, first and last, treatments.

    Keys: ``id, pseudonym, sex, birth_year, primary_tumour, synthetic (bool), studies,
    first_study, last_study, treatments`` (agents, comma-separated, by start date).
    """
    rows = db.execute(
        """
        SELECT p.id, p.pseudonym, p.sex, p.birth_year, p.primary_tumour, p.synthetic,
               count(s.id), min(s.study_date), max(s.study_date),
               (SELECT group_concat(agent, ', ') FROM
                   (SELECT DISTINCT agent FROM treatments t
                    WHERE t.patient_id = p.id ORDER BY t.start_date))
        FROM patients p LEFT JOIN studies s ON s.patient_id = p.id
        GROUP BY p.id ORDER BY p.pseudonym
        """
    ).fetchall()
    keys = ("id", "pseudonym", "sex", "birth_year", "primary_tumour", "synthetic",
            "studies", "first_study", "last_study", "treatments")  # fmt: skip
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for row in out:
        row["synthetic"] = bool(row["synthetic"])
    return out


# --- analyses: time series, cohort, one study with its masks ----------------------

#: "The latest analysis of study s": ids only grow, and analyses(study_id, id) turns
#: this into one index seek per study.
_LATEST_ANALYSIS = "(SELECT max(a2.id) FROM analyses a2 WHERE a2.study_id = s.id)"
#: "The analysis of study s that the pages show": the newest one made by the version in
#: use (the named parameter ``:active``) when there is one, else the newest. A NULL
#: ``:active`` (no version registered) matches nothing, so the newest is taken.
_SHOWN_ANALYSIS = (
    "coalesce((SELECT max(a3.id) FROM analyses a3 WHERE a3.study_id = s.id "
    f"AND a3.model_version = :active), {_LATEST_ANALYSIS})"
)


def _age_group_or_none(age: int | None) -> str | None:
    if age is None:
        return None
    try:
        return age_group(age)
    except ValueError:  # a birth year after the study date: unknown, not an error here
        return None


def quality_cautions(stored: str | None) -> list[str]:
    """Return the quality gate's cautions from an ``analyses.quality_cautions_json`` value.

    Args:
        stored: The column's JSON text (a list of sentences), or None where there is no
            analysis (a LEFT JOIN's empty side).

    Returns:
        The sentences in the order stored; ``[]`` for None or an empty list.
    """
    if stored is None:
        return []
    return [str(c) for c in json.loads(stored)]


def bsi_regions(stored: str | None) -> dict[str, dict[str, float]]:
    """Return the Bone Scan Index's breakdown from an ``analyses.bsi_regions`` value.

    Args:
        stored: The column's JSON text, or None (no BSI, or no analysis).

    Returns:
        ``{region: {"involvement": fraction in [0, 1], "percent": contribution}}`` for
        every region seen on a readable skeleton map, in label order; ``{}`` for None.
    """
    if stored is None:
        return {}
    return {
        str(name): {"involvement": float(v["involvement"]), "percent": float(v["percent"])}
        for name, v in json.loads(stored).items()
    }


def skeleton_maps(db: Database, analysis_id: int) -> dict[str, np.ndarray]:
    """Return an analysis' skeleton label maps (the views the skeleton network read).

    Args:
        db: An open store.
        analysis_id: The analysis (an unknown id gives an empty dict).

    Returns:
        ``{view: uint8 label map}`` (:data:`core.anatomy.regions.LABELS`, 0 background)
        of its mask's shape; ``{}`` for an analysis without maps (no skeleton network,
        no readable view, or stored before migration 0009).
    """
    return {
        view: decode_mask(blob, rows, cols)
        for view, blob, rows, cols in db.execute(
            "SELECT k.view, k.labels_zlib, m.rows, m.cols FROM skeleton_maps k "
            "JOIN masks m ON m.analysis_id = k.analysis_id AND m.view = k.view "
            "WHERE k.analysis_id = ? ORDER BY k.view",
            [analysis_id],
        ).fetchall()
    }


def counts_per_view(db: Database, study_ids: Sequence[int]) -> dict[int, float]:
    """Return each study's counts per view, for its least significant change.

    The figure is the *smaller* view's total: the noisier view limits how small a
    change can be told from noise (:mod:`core.burden.repeatability`). Only studies whose
    pixels are counts (DICOM files and phantom scans) have one: an exported picture's
    pixel sum says nothing about counts, and the limit then falls back to its value at
    the reference count level.

    Not a column of :func:`patient_time_series`: the counts are only stored as
    compressed pixels, so this decodes every view (a few ms each); call it for the
    studies shown, not for a whole cohort.

    Args:
        db: An open store.
        study_ids: The studies.

    Returns:
        ``{study id: the smaller of its views' total counts}``; a study that is unknown,
        holds no view or is an exported picture is absent.
    """
    totals: dict[int, list[float]] = {}
    marks = ", ".join("?" for _ in study_ids)
    if not marks:
        return {}
    for study_id, rows, cols, dtype, blob in db.execute(
        "SELECT v.study_id, v.rows, v.cols, v.dtype, v.counts_zlib FROM views v "
        f"JOIN studies s ON s.id = v.study_id WHERE v.study_id IN ({marks}) "
        "AND s.source_format IN (?, ?) ORDER BY v.study_id, v.view",
        [*(int(i) for i in study_ids), *COUNT_SOURCES],
    ).fetchall():
        counts = decode_counts(dtype, blob, rows, cols)
        totals.setdefault(int(study_id), []).append(float(counts.sum(dtype=np.float64)))
    return {study_id: min(t) for study_id, t in totals.items()}


def patient_time_series(db: Database, patient_id: int) -> list[dict[str, Any]]:
    """Return a patient's studies by date, each with the figures of the analysis shown.

    The analysis shown is the newest one made by the version in use
    (:func:`db.model_registry.active_version`) when the study has one, else its newest:
    after a promotion and a re-analysis the trajectory is the new model's throughout,
    and a study not yet re-analysed keeps its older analysis (``model_version`` says
    which).

    Args:
        db: An open store.
        patient_id: The patient (an unknown id gives an empty list).

    Returns:
        One dict per study, oldest first (then by id), with keys ``study_id,
        study_date, injection_delay_h, source_name, analysis_id, quality,
        quality_cautions, bstbi, hotspots, lesion_area_cm2, metastasis_probability,
        metastasis_threshold, bladder_probability, analysed_at, source_ae,
        model_version, bsi, bsi_regions``; the analysis keys are None for a study never
        analysed (``bsi_regions`` is ``{}``: :func:`bsi_regions`),
        ``source_ae`` for a study that came from no DICOM node. ``quality_cautions`` is
        the list of the gate's cautions stored with the analysis (sentences a physician
        must read with the results), ``[]`` when there are none or the study was never
        analysed. ``bsi`` is the Bone Scan Index in percent of skeletal mass (after
        review), None where ``bstbi`` is (an unreliable scan) or without a skeleton map.
        The mean counts per view are :func:`counts_per_view`'s (not a column here: they
        need every view decoded).
    """
    rows = db.execute(
        f"""
        SELECT s.id, s.study_date, s.injection_delay_h, s.source_name, a.id, a.quality,
               a.quality_cautions_json, a.bstbi, a.hotspots, a.lesion_area_cm2,
               a.metastasis_probability, a.metastasis_threshold, a.bladder_probability,
               a.created_at, s.source_ae, a.model_version, a.bsi, a.bsi_regions
        FROM studies s LEFT JOIN analyses a ON a.id = {_SHOWN_ANALYSIS}
        WHERE s.patient_id = :patient_id
        ORDER BY s.study_date, s.id
        """,
        {"patient_id": patient_id, "active": active_version(db)},
    ).fetchall()
    keys = ("study_id", "study_date", "injection_delay_h", "source_name", "analysis_id",
            "quality", "quality_cautions", "bstbi", "hotspots", "lesion_area_cm2",
            "metastasis_probability", "metastasis_threshold", "bladder_probability",
            "analysed_at", "source_ae", "model_version", "bsi", "bsi_regions")  # fmt: skip
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for study in out:
        study["quality_cautions"] = quality_cautions(study["quality_cautions"])
        study["bsi_regions"] = bsi_regions(study["bsi_regions"])
    return out


def cohort_summary(db: Database) -> list[dict[str, Any]]:
    """Return one row per patient for the cohort page: the whole cohort, by pseudonym.

    BSTBI figures come from each study's analysis shown (as in
    :func:`patient_time_series`: the newest by the version in use when there is one, else
    the newest), and only from analyses whose quality is ``"ok"`` with a BSTBI: a
    non-diagnostic scan's burden is not reported as if it were reliable. *Latest* is the
    last such study by date, *baseline* the first; with one such study both are that
    study and the change is 0.

    The page filters, sorts and pages these rows itself: its filters take several values
    at once, "unknown" and "not analysed", and a response rule at a threshold the user
    sets, and its plots and CSV export need every patient that matches.

    Args:
        db: An open store.

    Returns:
        Dicts ordered by pseudonym with keys ``patient_id, pseudonym, sex, age_group,
        primary_tumour, synthetic (bool), n_studies, last_study_date, latest_bstbi,
        baseline_bstbi, bstbi_change (latest - baseline), metastasis (bool, or None
        when no reliable analysis), model_version, baseline_model_version``.
        ``age_group`` is at the last study, from the birth year and the study year, None
        when either is unknown. ``metastasis`` is whether the latest reliable analysis
        called the scan positive: its metastasis probability at or above the threshold
        that analysis was decided with. ``model_version`` is the version that made the
        latest reliable analysis, ``baseline_model_version`` the baseline's (None
        without one); where they differ, the change may come from the models.
        ``bsi`` is the Bone Scan Index (percent) of that latest reliable analysis,
        None without one or when it has no skeleton map.
    """
    # One Python definition of the age groups (core.config), applied inside the SQL.
    db.conn.create_function("age_group", 1, _age_group_or_none, deterministic=True)
    rows = db.execute(
        f"""
        WITH st AS (
            SELECT patient_id, count(*) AS n, max(study_date) AS last_date
            FROM studies GROUP BY patient_id
        ),
        reliable AS (
            SELECT s.patient_id, a.bstbi, a.bsi, a.metastasis_probability,
                   a.metastasis_threshold AS threshold, a.model_version,
                   row_number() OVER w_last AS last_rank,
                   first_value(a.bstbi) OVER w_first AS baseline,
                   first_value(a.model_version) OVER w_first AS baseline_version
            FROM studies s JOIN analyses a ON a.id = {_SHOWN_ANALYSIS}
            WHERE a.quality = 'ok' AND a.bstbi IS NOT NULL
            WINDOW w_last AS (PARTITION BY s.patient_id ORDER BY s.study_date DESC, s.id DESC),
                   w_first AS (PARTITION BY s.patient_id ORDER BY s.study_date, s.id)
        ),
        r AS (SELECT * FROM reliable WHERE last_rank = 1)
        SELECT p.id, p.pseudonym, p.sex,
               age_group(CAST(substr(st.last_date, 1, 4) AS INTEGER) - p.birth_year),
               p.primary_tumour, p.synthetic, coalesce(st.n, 0), st.last_date,
               r.bstbi, r.baseline, r.bstbi - r.baseline,
               r.metastasis_probability >= r.threshold, r.model_version, r.baseline_version,
               r.bsi
        FROM patients p
        LEFT JOIN st ON st.patient_id = p.id
        LEFT JOIN r ON r.patient_id = p.id
        ORDER BY p.pseudonym
        """,
        {"active": active_version(db)},
    ).fetchall()
    keys = ("patient_id", "pseudonym", "sex", "age_group", "primary_tumour", "synthetic",
            "n_studies", "last_study_date", "latest_bstbi", "baseline_bstbi", "bstbi_change",
            "metastasis", "model_version", "baseline_model_version", "bsi")  # fmt: skip
    out = [dict(zip(keys, row, strict=True)) for row in rows]
    for row in out:
        row["synthetic"] = bool(row["synthetic"])
        called = row["metastasis"]
        row["metastasis"] = None if called is None else bool(called)
    return out


def mask_edits(
    db: Database, analysis_id: int, include_undone: bool = False
) -> list[dict[str, Any]]:
    """Return an analysis' mask edits, oldest first (the order they apply in).

    The one reading of table ``mask_edits``: :func:`study_with_masks` gives it with the
    study, and :mod:`db.annotations` (which imports this module, so this module cannot
    import it) gives it with an analysis' review.

    Args:
        db: An open store.
        analysis_id: The analysis (an unknown id gives an empty list).
        include_undone: Also return the edits that were undone.

    Returns:
        Dicts with keys ``id, analysis_id, view, action, pixels`` (bool array of the
        view's mask shape), ``account, at, undone`` (bool).
    """
    rows = db.execute(
        """
        SELECT e.id, e.analysis_id, e.view, e.action, e.pixels_zlib, e.account, e.at,
               e.undone, m.rows, m.cols
        FROM mask_edits e JOIN masks m ON m.analysis_id = e.analysis_id AND m.view = e.view
        WHERE e.analysis_id = ? AND (? OR e.undone = 0)
        ORDER BY e.id
        """,
        [analysis_id, int(include_undone)],
    ).fetchall()
    return [
        {
            "id": int(edit_id),
            "analysis_id": int(owner),
            "view": view,
            "action": action,
            "pixels": decode_mask(blob, rows, cols).astype(bool),
            "account": who,
            "at": at,
            "undone": bool(undone),
        }
        for edit_id, owner, view, action, blob, who, at, undone, rows, cols in rows
    ]


def study_with_masks(db: Database, study_id: int, analysis_id: int | None = None) -> dict[str, Any]:
    """Return a study with its views, one analysis, its masks, skeleton maps, lesions, edits.

    The analysis is the one the pages show (as in :func:`patient_time_series`: the
    newest made by the version in use, :func:`db.model_registry.active_version`, when
    the study has one, else the newest), or the one named by ``analysis_id``. Every
    picture drawn from it applies the physician's review: the lesion statuses, the drawn
    lesions and then ``mask_edits`` (:func:`core.burden.lesion_review.reviewed_masks`).

    Args:
        db: An open store.
        study_id: The study.
        analysis_id: An analysis of this study to open instead of the one shown; None
            for the one shown.

    Returns:
        ``{"study": dict of the studies row, "views": {view: float32 counts},
        "analysis": dict or None, "masks": {view: uint8 label mask},
        "skeletons": {view: uint8 skeleton label map}, "lesions": list of dicts,
        "mask_edits": list of dicts}``. The analysis dict has
        the analyses columns with ``timings_s`` (parsed JSON) instead of
        ``timings_json``, ``quality_cautions`` (the list of the gate's cautions,
        :func:`quality_cautions`) instead of ``quality_cautions_json``,
        ``bstbi_images`` ``{(view, level): bstbi}`` (present images only) beside the
        per-image columns, and ``bsi_regions`` parsed (:func:`bsi_regions`, ``{}``
        without a BSI) beside ``bsi``, ``raw_bsi`` and ``anatomy_sha256``.
        ``skeletons`` are :func:`skeleton_maps` (empty without an analysis or a map).
        Lesion dicts have the lesions columns (``side`` and ``region_source`` among
        them, None for lesions stored before they were kept), ``drawn`` (bool uint8
        array or None) instead of ``drawn_zlib``, ordered by view and component.
        ``mask_edits`` are the analysis' edits not undone, in id order, as
        :func:`mask_edits` gives them (empty without an analysis).

    Raises:
        ValueError: If the study does not exist, or ``analysis_id`` is not an analysis
            of it.
    """
    cur = db.execute("SELECT * FROM studies WHERE id = ?", [study_id])
    row = cur.fetchone()
    if row is None:
        raise ValueError(f"study_id {study_id} does not exist")
    study = dict(zip([c[0] for c in cur.description], row, strict=True))
    out: dict[str, Any] = {
        "study": study,
        "views": study_views(db, study_id),
        "analysis": None,
        "masks": {},
        "skeletons": {},
        "lesions": [],
        "mask_edits": [],
    }
    if analysis_id is None:
        cur = db.execute(
            f"SELECT a.* FROM studies s JOIN analyses a ON a.id = {_SHOWN_ANALYSIS} "
            "WHERE s.id = :study_id",
            {"study_id": study_id, "active": active_version(db)},
        )
        row = cur.fetchone()
        if row is None:
            return out
    else:
        cur = db.execute(
            "SELECT * FROM analyses WHERE id = ? AND study_id = ?", [analysis_id, study_id]
        )
        row = cur.fetchone()
        if row is None:
            raise ValueError(f"analysis_id {analysis_id} is not an analysis of study {study_id}")
    analysis = dict(zip([c[0] for c in cur.description], row, strict=True))
    analysis["timings_s"] = json.loads(analysis.pop("timings_json"))
    analysis["quality_cautions"] = quality_cautions(analysis.pop("quality_cautions_json"))
    analysis["bstbi_images"] = {
        key: analysis[col] for key, col in BSTBI_COLUMNS.items() if analysis[col] is not None
    }
    analysis["bsi_regions"] = bsi_regions(analysis["bsi_regions"])
    out["analysis"] = analysis
    out["masks"] = {
        view: decode_mask(blob, rows, cols)
        for view, rows, cols, blob in db.execute(
            "SELECT view, rows, cols, labels_zlib FROM masks WHERE analysis_id = ? ORDER BY view",
            [analysis["id"]],
        ).fetchall()
    }
    out["skeletons"] = skeleton_maps(db, int(analysis["id"]))
    cur = db.execute(
        "SELECT * FROM lesions WHERE analysis_id = ? ORDER BY view, component", [analysis["id"]]
    )
    names = [c[0] for c in cur.description]
    for lesion_row in cur.fetchall():
        lesion = dict(zip(names, lesion_row, strict=True))
        blob = lesion.pop("drawn_zlib")
        mask = out["masks"].get(lesion["view"])
        lesion["drawn"] = (
            None if blob is None or mask is None else decode_mask(blob, *mask.shape).astype(bool)
        )
        out["lesions"].append(lesion)
    out["mask_edits"] = mask_edits(db, int(analysis["id"]))
    return out


def patient_birth_year(db: Database, patient_id: int) -> int | None:
    """Return a patient's year of birth, or None when unknown or no such patient."""
    row = db.execute("SELECT birth_year FROM patients WHERE id = ?", [patient_id]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def stored_scan(db: Database, study_id: int) -> Scan:
    """Rebuild a stored study as a :class:`core.scan.Scan` (views and what the store kept).

    Args:
        db: An open store.
        study_id: The study.

    Returns:
        The scan: float32 (1024, 256) count views; metadata limited to what the store
        keeps (date, spacing, manufacturer, source format and name, and the patient's
        age by year from the birth year, :func:`core.config.age_by_year`;
        never the patient's name or ID).

    Raises:
        ValueError: If the study does not exist or holds no view.
    """
    row = db.execute(
        "SELECT s.study_date, s.pixel_spacing_row_mm, s.pixel_spacing_col_mm, s.manufacturer, "
        "s.source_format, s.source_name, s.display_grey_level_1, p.birth_year "
        "FROM studies s JOIN patients p ON p.id = s.patient_id WHERE s.id = ?",
        [study_id],
    ).fetchone()
    if row is None:
        raise ValueError(f"study_id {study_id} does not exist")
    views = study_views(db, study_id)
    if not views:
        raise ValueError(f"study_id {study_id} holds no view")
    date, srow, scol, manufacturer, fmt, name, as_displayed, birth_year = row
    day = dt.date.fromisoformat(date) if date else None
    age = age_by_year(birth_year, day)
    meta = ScanMeta(
        age=None if age is None else float(age),
        study_date=day,
        pixel_spacing_mm=(float(srow), float(scol)) if srow and scol else None,
        manufacturer=manufacturer,
        source_format=fmt,
        source_files=(name,),
        display_is_grey_level_1=bool(as_displayed),
    )
    return Scan(views=views, meta=meta)


def studies_without_analysis(db: Database, limit: int | None = None) -> list[int]:
    """Return the ids of stored studies that have no analysis yet, oldest first.

    Args:
        db: An open store.
        limit: At most this many (all when None).
    """
    sql = (
        "SELECT s.id FROM studies s WHERE NOT EXISTS "
        "(SELECT 1 FROM analyses a WHERE a.study_id = s.id) ORDER BY s.id"
    )
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        sql += f" LIMIT {int(limit)}"
    return [int(r[0]) for r in db.execute(sql).fetchall()]


def study_by_source(
    db: Database, source_sha256: str, sop_instance_uids: Sequence[str] = ()
) -> tuple[int, int | None] | None:
    """Find the study stored from these files: same content hash or a same DICOM instance.

    Args:
        db: An open store.
        source_sha256: The files' hash (:func:`core.reading.uploaded.sha256_of`).
        sop_instance_uids: The files' SOP Instance UIDs (DICOM), if any.

    Returns:
        ``(study id, latest analysis id or None)``, or None when no study matches.
    """
    row = db.execute("SELECT id FROM studies WHERE source_sha256 = ?", [source_sha256]).fetchone()
    if row is None and sop_instance_uids:
        marks = ", ".join("?" for _ in sop_instance_uids)
        row = db.execute(
            f"SELECT study_id FROM study_instances WHERE sop_instance_uid IN ({marks})",
            list(sop_instance_uids),
        ).fetchone()
    if row is None:
        return None
    latest = db.execute("SELECT max(id) FROM analyses WHERE study_id = ?", [row[0]]).fetchone()
    return int(row[0]), None if latest[0] is None else int(latest[0])


def has_analysis(db: Database, study_id: int) -> bool:
    """Say whether a study has at least one stored analysis."""
    row = db.execute("SELECT 1 FROM analyses WHERE study_id = ?", [study_id]).fetchone()
    return row is not None


def has_analysis_by(db: Database, study_id: int, model_version: str) -> bool:
    """Say whether a study has a stored analysis made by ``model_version``."""
    row = db.execute(
        "SELECT 1 FROM analyses WHERE study_id = ? AND model_version = ?", [study_id, model_version]
    ).fetchone()
    return row is not None


def studies_without_analysis_by(
    db: Database, model_version: str, limit: int | None = None
) -> list[int]:
    """Return the ids of stored studies with no analysis by ``model_version``, oldest first.

    Args:
        db: An open store.
        model_version: The version (e.g. the one in use, :func:`db.model_registry.active_version`).
        limit: At most this many (all when None).

    Raises:
        ValueError: If ``model_version`` is empty or ``limit`` < 0.
    """
    if not model_version.strip():
        raise ValueError("model_version must not be empty")
    sql = (
        "SELECT s.id FROM studies s WHERE NOT EXISTS (SELECT 1 FROM analyses a "
        "WHERE a.study_id = s.id AND a.model_version = ?) ORDER BY s.id"
    )
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        sql += f" LIMIT {int(limit)}"
    return [int(r[0]) for r in db.execute(sql, [model_version]).fetchall()]


def lesion_history(db: Database, lesion_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Return each lesion's audit rows, oldest first.

    Args:
        db: An open store.
        lesion_ids: The lesions.

    Returns:
        ``{lesion id: [{"at", "account", "action", "before", "after", "reason"}]}``,
        every id present (an empty list when never changed); ``before``/``after`` are
        the statuses, ``reason`` the one recorded with the change ("" when none).
    """
    out: dict[int, list[dict[str, Any]]] = {int(i): [] for i in lesion_ids}
    if not out:
        return out
    marks = ", ".join("?" for _ in out)
    for row in db["audit_log"].rows_where(
        f"entity = 'lesion' AND entity_id IN ({marks})", list(out), order_by="id"
    ):
        before = json.loads(row["before_json"]) if row["before_json"] else {}
        after = json.loads(row["after_json"]) if row["after_json"] else {}
        out[int(row["entity_id"])].append(
            {
                "at": row["at"],
                "account": row["account"],
                "action": row["action"],
                "before": before.get("status"),
                "after": after.get("status"),
                "reason": after.get("reason") or "",
            }
        )
    return out


def study_sop_instance_uids(db: Database, study_id: int) -> list[str]:
    """Return the SOP Instance UIDs a study was read from (received or pulled), sorted.

    Args:
        db: An open store.
        study_id: The study.

    Returns:
        The UIDs; empty for a study that did not come from DICOM files.
    """
    return [
        str(row[0])
        for row in db.execute(
            "SELECT sop_instance_uid FROM study_instances WHERE study_id = ? "
            "ORDER BY sop_instance_uid",
            [study_id],
        ).fetchall()
    ]
