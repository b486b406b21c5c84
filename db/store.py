"""Writes to the store. Each public write function is one logical event in one transaction.

Rows are written with sqlite-utils (:func:`insert_row`, :func:`insert_rows`,
``Table.update``) inside that transaction, where each of its statements is a savepoint
that commits nothing by itself; they never create a table or a column
(:mod:`db.schema` owns the schema).

Access: every write function checks its ``account`` with
:func:`core.auth.require_role` inside its transaction. In a store **with** accounts
the account must exist, be enabled and have a role allowed to do that write
(clinician or admin to upload, review or record treatments; admin for accounts, in
:mod:`db.accounts`); otherwise :class:`core.auth.AccessDenied` is raised and nothing is
written. In a store **without** accounts (the demo, or batch use of the command line
before any account exists) every write is allowed, as before accounts existed, and
``account`` may be None where it is optional.

Transactions start with ``BEGIN IMMEDIATE`` (:func:`write_transaction`): a write that
first reads (a duplicate check, a role lookup) holds the write lock from its start, so
several processes writing at once wait their turn (up to the busy timeout) instead of
failing with "database is locked".
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
from sqlite_utils import Database
from sqlite_utils.db import Table

from core.anatomy.regions import N_LABELS, REGIONS, Side
from core.config import LABEL_BLADDER, VIEWS
from core.imaging.crops import THRESHOLD
from core.scan import Scan
from db.access import require_role
from db.connection import immediate_transaction

#: zlib level for pixel data: 6 is within a few % of 9 in size at a third of the time.
_ZLIB_LEVEL = 6


def encode_counts(counts: np.ndarray) -> tuple[str, bytes]:
    """Compress a view's counts losslessly.

    Args:
        counts: float32 array, any 2-D shape, values >= 0.

    Returns:
        ``(dtype, blob)``: ``"uint16"`` when every value is an integer in
        [0, 65535] (raw gamma-camera counts are; they compress 2-3x better),
        else ``"float32"``; the blob is zlib-compressed little-endian bytes.
    """
    if counts.ndim != 2:
        raise ValueError(f"counts must be 2-D, got shape {counts.shape}")
    as_int = np.rint(counts)
    if counts.min() >= 0 and counts.max() <= 65535 and np.array_equal(as_int, counts):
        return "uint16", zlib.compress(as_int.astype("<u2").tobytes(), _ZLIB_LEVEL)
    return "float32", zlib.compress(counts.astype("<f4").tobytes(), _ZLIB_LEVEL)


def decode_counts(dtype: str, blob: bytes, rows: int, cols: int) -> np.ndarray:
    """Invert :func:`encode_counts`: return float32 counts of shape (rows, cols)."""
    if dtype not in ("uint16", "float32"):
        raise ValueError(f"dtype must be 'uint16' or 'float32', got {dtype!r}")
    raw = np.frombuffer(zlib.decompress(blob), dtype="<u2" if dtype == "uint16" else "<f4")
    return raw.reshape(rows, cols).astype(np.float32)


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """Run a block as one write transaction that holds the write lock from its start.

    A deferred ``BEGIN`` (what ``db.atomic()`` issues) that reads before it writes
    fails at once with "database is locked" in WAL mode when another process committed
    in between; ``BEGIN IMMEDIATE`` takes the lock first, waiting up to the busy
    timeout. Inside an open transaction the block is a savepoint of it.

    Args:
        db: An open store (autocommit connection, as :func:`db.connection.open_db` makes).

    Yields:
        ``db``; the block's writes are committed together, or rolled back on any error.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    with immediate_transaction(db.conn):
        yield db


def schema_table(db: Database, name: str) -> Table:
    """Return the store's table ``name`` for sqlite-utils' writes, refusing a missing one.

    sqlite-utils creates a missing table on its first insert, guessing the columns from
    the row; the schema belongs to :mod:`db.schema`'s migrations alone, so a missing
    table is an error here, as it is for hand-written SQL.

    Raises:
        sqlite3.OperationalError: If the store has no table ``name``.
    """
    table = db.table(name)
    if not table.exists():
        raise sqlite3.OperationalError(f"no such table: {name}")
    return table


def _require_transaction(db: Database) -> None:
    # sqlite-utils commits each insert by itself when no transaction is open; inside
    # one it uses a savepoint, so the event's rows commit or roll back together.
    if not db.conn.in_transaction:
        raise ValueError("db must have a transaction open: write inside write_transaction(db)")


def insert_row(db: Database, table: str, row: Mapping[str, Any]) -> int:
    """Insert one row into a table of the store, inside the caller's transaction.

    Values are written as given (bytes as BLOB, None as NULL; JSON is passed as text by
    the caller). ``alter=False``: a column the table lacks is an error, never a new column.

    Args:
        db: An open store with a transaction open (:func:`write_transaction`).
        table: A table of the schema.
        row: ``{column: value}``; columns left out take their default.

    Returns:
        The new row's id (its ``INTEGER PRIMARY KEY``).

    Raises:
        ValueError: If ``db`` has no transaction open.
        sqlite3.OperationalError: If the table or a column does not exist.
    """
    _require_transaction(db)
    pk = schema_table(db, table).insert(dict(row), alter=False).last_pk
    if not isinstance(pk, int):  # every table of the schema has an INTEGER PRIMARY KEY
        raise sqlite3.OperationalError(f"{table}: the insert gave no integer id ({pk!r})")
    return pk


def insert_rows(db: Database, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows into a table of the store, inside the caller's transaction.

    As :func:`insert_row`, for many rows at once (sqlite-utils batches them into
    multi-row ``INSERT`` statements); no rows write nothing.

    Raises:
        ValueError: If ``db`` has no transaction open.
        sqlite3.OperationalError: If the table or a column does not exist.
    """
    _require_transaction(db)
    if rows:
        schema_table(db, table).insert_all([dict(r) for r in rows], alter=False)


def add_patient(
    db: Database,
    *,
    pseudonym: str,
    name: str | None = None,
    external_id: str | None = None,
    sex: str | None = None,
    birth_year: int | None = None,
    primary_tumour: str | None = None,
    synthetic: bool = False,
    account: str | None = None,
) -> int:
    """Insert a patient and return its id.

    ``account`` (who adds it; required once the store has accounts) may upload
    (:func:`core.auth.require_role`); when given, the insert is audited.

    Raises:
        ValueError: If ``pseudonym`` is empty or ``sex`` is not M, F, O or None.
        core.auth.AccessDenied: If ``account`` may not upload in this store.
    """
    if not pseudonym.strip():
        raise ValueError("pseudonym must not be empty")
    if sex not in (None, "M", "F", "O"):
        raise ValueError(f"sex must be 'M', 'F', 'O' or None, got {sex!r}")
    with write_transaction(db):
        require_role(db, account, "upload")
        patient_id = insert_row(db, "patients", {
            "pseudonym": pseudonym, "name": name, "external_id": external_id, "sex": sex,
            "birth_year": birth_year, "primary_tumour": primary_tumour,
            "synthetic": int(synthetic),
        })  # fmt: skip
        if account is not None:
            # the name and external id stay in the patients row only
            audit(db, account=account, action="add_patient", entity="patient",
                  entity_id=patient_id, before=None,
                  after={"pseudonym": pseudonym, "synthetic": bool(synthetic)})  # fmt: skip
    return patient_id


@dataclass(frozen=True)
class StoredStudy:
    """The outcome of :func:`store_study`: the study's id and whether it was new."""

    study_id: int
    created: bool


def store_study(
    db: Database,
    *,
    patient_id: int,
    scan: Scan,
    source_name: str,
    source_sha256: str,
    study_date: dt.date | None = None,
    injection_delay_h: float | None = None,
    source_ae: str | None = None,
    account: str | None = None,
) -> StoredStudy:
    """Store a scan and its views together, or nothing at all.

    A file already stored (same SHA-256, or a DICOM instance with a SOP Instance UID
    stored before) is recognised and not stored again.

    Args:
        db: An open store.
        patient_id: The patient the study belongs to (must exist).
        scan: The scan as read; its views are stored losslessly.
        source_name: The uploaded file's name (shown to users; not a path).
        source_sha256: Hex SHA-256 of the source file bytes.
        study_date: Overrides ``scan.meta.study_date`` when given.
        injection_delay_h: Injection-to-scan delay in hours, when known.
        source_ae: The calling AE title of the DICOM node that sent the scan, if any.
        account: Who uploads (required once the store has accounts); when given, a new
            study is audited.

    Returns:
        The study id, with ``created=False`` when the file was stored before.

    Raises:
        ValueError: If ``source_sha256`` is not a SHA-256 digest.
        core.auth.AccessDenied: If ``account`` may not upload in this store.
    """
    if len(source_sha256) != 64:
        raise ValueError("source_sha256 must be a hex SHA-256 digest (64 characters)")
    date = study_date or scan.meta.study_date
    spacing = scan.meta.pixel_spacing_mm
    encoded = {view: encode_counts(arr) for view, arr in scan.views.items()}
    with write_transaction(db):
        require_role(db, account, "upload")
        row = db.execute(
            "SELECT id FROM studies WHERE source_sha256 = ?", [source_sha256]
        ).fetchone()
        if row is None and scan.meta.instances:
            marks = ", ".join("?" for _ in scan.meta.instances)
            row = db.execute(
                f"SELECT study_id FROM study_instances WHERE sop_instance_uid IN ({marks})",
                [uid for _, uid in scan.meta.instances],
            ).fetchone()
        if row is not None:
            return StoredStudy(study_id=int(row[0]), created=False)
        study_id = insert_row(db, "studies", {
            "patient_id": patient_id,
            "study_date": date.isoformat() if date else None,
            "injection_delay_h": injection_delay_h,
            "source_name": source_name,
            "source_sha256": source_sha256,
            "source_format": scan.meta.source_format,
            "pixel_spacing_row_mm": spacing[0] if spacing else None,
            "pixel_spacing_col_mm": spacing[1] if spacing else None,
            "manufacturer": scan.meta.manufacturer,
            "display_grey_level_1": int(scan.meta.display_is_grey_level_1),
            "study_instance_uid": scan.meta.study_instance_uid,
            "accession_number": scan.meta.accession_number,
            "source_ae": source_ae,
        })  # fmt: skip
        insert_rows(db, "study_instances", [
            {"sop_instance_uid": uid, "sop_class_uid": cls, "study_id": study_id}
            for cls, uid in scan.meta.instances
        ])  # fmt: skip
        insert_rows(db, "views", [
            {"study_id": study_id, "view": view, "rows": scan.views[view].shape[0],
             "cols": scan.views[view].shape[1], "dtype": dtype, "counts_zlib": blob}
            for view, (dtype, blob) in encoded.items()
        ])  # fmt: skip
        if account is not None:
            audit(db, account=account, action="store_study", entity="study",
                  entity_id=study_id, before=None,
                  after={"patient_id": patient_id, "source_sha256": source_sha256,
                         "views": sorted(encoded)})  # fmt: skip
    return StoredStudy(study_id=study_id, created=True)


def add_treatment(
    db: Database,
    *,
    patient_id: int,
    agent: str,
    start: dt.date,
    end: dt.date | None = None,
    dose: str | None = None,
    note: str | None = None,
    account: str | None = None,
) -> int:
    """Record a treatment (e.g. zoledronic acid) of a patient and return its id.

    ``account`` (who records it; required once the store has accounts) may record
    treatments (:func:`core.auth.require_role`); when given, the insert is audited.

    Raises:
        ValueError: If ``agent`` is empty or ``end`` is before ``start``.
        core.auth.AccessDenied: If ``account`` may not record treatments in this store.
    """
    if not agent.strip():
        raise ValueError("agent must not be empty")
    if end is not None and end < start:
        raise ValueError(f"end ({end}) must not be before start ({start})")
    with write_transaction(db):
        require_role(db, account, "treatments")
        treatment_id = insert_row(db, "treatments", {
            "patient_id": patient_id, "agent": agent, "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else None, "dose": dose, "note": note,
        })  # fmt: skip
        if account is not None:
            audit(db, account=account, action="add_treatment", entity="treatment",
                  entity_id=treatment_id, before=None,
                  after={"patient_id": patient_id, "agent": agent, "start": start.isoformat(),
                         "end": end.isoformat() if end else None})  # fmt: skip
    return treatment_id


# --- analyses, masks, lesions and the audit log ------------------------------------

#: Lesion statuses: kept model lesion, removed by a physician, drawn by a physician.
LESION_STATUSES: tuple[str, str, str] = ("model", "removed", "added")
#: ``lesions.side``: the patient's side of the lesion's skeletal region.
LESION_SIDES: tuple[str, ...] = get_args(Side)
#: ``lesions.region_source``: the region came from the view's skeleton map, or from the
#: body's proportions (the values of :attr:`core.analysis.Lesion.region_source`).
REGION_SOURCES: tuple[str, str] = ("skeleton", "proportions")
#: Largest Bone Scan Index, in percent of skeletal mass.
_BSI_MAX = 100.0
_REGION_NAMES = frozenset(r.name for r in REGIONS)
#: The analyses column holding the BSTBI of each display image (view, grey level).
BSTBI_COLUMNS: dict[tuple[str, int], str] = {
    ("ANT", 1): "bstbi_ant_1",
    ("ANT", 2): "bstbi_ant_2",
    ("POST", 1): "bstbi_post_1",
    ("POST", 2): "bstbi_post_2",
}


@dataclass(frozen=True)
class AnalysisRecord:
    """What one run of the pipeline concluded about a study (plain data).

    Attributes:
        model_version: Name/version of the models used.
        weights_sha256: Hex SHA-256 of the weights, when known.
        device: Where it ran (e.g. ``"cpu"``, ``"cuda:0"``).
        quality: ``"ok"`` or the reason the scan is not a diagnostic whole-body scan.
        quality_cautions: Sentences on a scan that passed the gate that a physician must
            read with its results (a saturated site, the feet out of the field).
        timings_s: Seconds per stage, e.g. ``{"read": 0.02, "segment": 0.3}``.
        metastasis_probability: Scan probability of metastasis in [0, 1], or None.
        metastasis_threshold: The probability at or above which this analysis calls
            the scan positive for metastasis (the model's: 0.5 or a calibrated value).
        bladder_probability: Scan probability of bladder in [0, 1], or None.
        bstbi_images: ``{(view, level): bstbi}`` for the display images present.
        bstbi: The scan's BSTBI in [0, 1], or None (e.g. not computed).
        hotspots: Hotspot count (>= 0), or None.
        lesion_area_cm2: Lesion area in cm² (>= 0), or None.
        bsi: The Bone Scan Index in percent of skeletal mass ([0, 100]), or None: like
            ``bstbi``, only for a reliable analysis with a readable skeleton map.
        raw_bsi: The index whatever the quality gate said, or None without a readable map.
        bsi_regions: ``{region: percent of skeletal mass it contributes}`` (regions with
            any involvement; :attr:`core.analysis.AnalysisResult.bsi_regions`).
        bsi_involvement: ``{region: involved fraction in [0, 1]}``, every region seen on
            a readable map (:attr:`core.analysis.AnalysisResult.bsi_involvement`).
        anatomy_sha256: Hex SHA-256 of the skeleton network's weights, or None.
        bsi_withheld: Why the BSI is not reported although it could be computed (a
            patient younger than :data:`core.anatomy.bsi.ADULT_AGE`), or None.
    """

    model_version: str
    device: str
    quality: str
    weights_sha256: str | None = None
    quality_cautions: tuple[str, ...] = ()
    timings_s: Mapping[str, float] = field(default_factory=dict)
    metastasis_probability: float | None = None
    metastasis_threshold: float = THRESHOLD
    bladder_probability: float | None = None
    bstbi_images: Mapping[tuple[str, int], float] = field(default_factory=dict)
    bstbi: float | None = None
    hotspots: int | None = None
    lesion_area_cm2: float | None = None
    bsi: float | None = None
    raw_bsi: float | None = None
    bsi_regions: Mapping[str, float] = field(default_factory=dict)
    bsi_involvement: Mapping[str, float] = field(default_factory=dict)
    anatomy_sha256: str | None = None
    bsi_withheld: str | None = None


@dataclass(frozen=True)
class LesionRecord:
    """One lesion of an analysis: a component of a view's metastasis mask (plain data).

    Attributes:
        view: ``"ANT"`` or ``"POST"``.
        component: Its number in :func:`core.burden.lesion_review.lesion_components` (>= 1).
        area_px: Pixels (>= 0).
        area_cm2: Area in cm², or None.
        uptake_ratio: Mean lesion counts / mean normal bone counts, or None.
        skeletal_region: The skeletal region it lies in, or None.
        centroid_row: Mean row of its pixels, or None.
        centroid_col: Mean column of its pixels, or None.
        side: The patient's side of its region (one of :data:`LESION_SIDES`), or None
            (also for ``""``: a region from body proportions has no side).
        region_source: Where its region came from (one of :data:`REGION_SOURCES`), or
            None when unknown.
    """

    view: str
    component: int
    area_px: int
    area_cm2: float | None = None
    uptake_ratio: float | None = None
    skeletal_region: str | None = None
    centroid_row: float | None = None
    centroid_col: float | None = None
    side: str | None = None
    region_source: str | None = None


def encode_mask(mask: np.ndarray) -> bytes:
    """Compress a uint8 2-D mask losslessly (zlib of its C-order bytes)."""
    return zlib.compress(np.ascontiguousarray(mask, dtype=np.uint8).tobytes(), _ZLIB_LEVEL)


def decode_mask(blob: bytes, rows: int, cols: int) -> np.ndarray:
    """Invert :func:`encode_mask`: return a writable uint8 array of shape (rows, cols)."""
    return np.frombuffer(zlib.decompress(blob), dtype=np.uint8).reshape(rows, cols).copy()


def audit(
    db: Database,
    *,
    account: str,
    action: str,
    entity: str,
    entity_id: int | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Append an audit row inside the caller's transaction (values as sorted JSON).

    Raises:
        ValueError: If ``db`` has no transaction open.
    """
    insert_row(db, "audit_log", {
        "account": account,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before_json": None if before is None else json.dumps(before, sort_keys=True),
        "after_json": None if after is None else json.dumps(after, sort_keys=True),
    })  # fmt: skip


def _check_account(account: str) -> None:
    if not account.strip():
        raise ValueError("account must not be empty")


def _check_unit(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1] or None, got {value!r}")


def _check_per_image(per_image: Mapping[tuple[str, int], float]) -> None:
    for key, value in per_image.items():
        if key not in BSTBI_COLUMNS:
            raise ValueError(f"bstbi per image: key {key!r} is not one of {list(BSTBI_COLUMNS)}")
        _check_unit(f"bstbi per image {key!r}", value)


def _check_percent(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= _BSI_MAX):
        raise ValueError(f"{name} must be a percentage in [0, 100] or None, got {value!r}")


def bsi_regions_json(
    percent: Mapping[str, float], involvement: Mapping[str, float], name: str = "bsi_regions"
) -> str:
    """Return the ``analyses.bsi_regions`` JSON of a Bone Scan Index's breakdown.

    Args:
        percent: ``{region: percent of skeletal mass it contributes}`` (the involved
            regions, :attr:`core.anatomy.bsi.BoneScanIndex.regions`).
        involvement: ``{region: involved fraction in [0, 1]}`` of every region seen
            (:attr:`core.anatomy.bsi.BoneScanIndex.involvement`).
        name: The argument's name for the error message.

    Returns:
        A JSON object ``{region: {"involvement": fraction, "percent": contribution}}``
        with every region of ``involvement`` (``percent`` 0.0 where not involved), in
        the label order of :data:`core.anatomy.regions.REGIONS`; floats exactly as given.

    Raises:
        ValueError: If a region is not one of :data:`core.anatomy.regions.REGIONS`, a
            fraction is outside [0, 1], a percentage outside [0, 100], or ``percent``
            names a region ``involvement`` lacks.
    """
    unknown = sorted((set(percent) | set(involvement)) - _REGION_NAMES)
    if unknown:
        raise ValueError(f"{name}: {unknown} are not skeletal regions")
    unseen = sorted(set(percent) - set(involvement))
    if unseen:
        raise ValueError(f"{name}: regions {unseen} contribute but have no involvement")
    for region, fraction in involvement.items():
        _check_unit(f"{name} involvement of {region!r}", fraction)
    for region, share in percent.items():
        _check_percent(f"{name} percent of {region!r}", share)
    return json.dumps({
        r.name: {"involvement": float(involvement[r.name]),
                 "percent": float(percent.get(r.name, 0.0))}
        for r in REGIONS if r.name in involvement
    })  # fmt: skip


def _check_skeleton(view: str, skeleton: np.ndarray, masks: Mapping[str, np.ndarray]) -> bytes:
    if view not in masks:
        raise ValueError(f"skeletons: view {view!r} has no mask")
    s = np.asarray(skeleton)
    if s.dtype != np.uint8 or s.shape != np.shape(masks[view]):
        raise ValueError(
            f"skeletons[{view!r}] must be a uint8 label map of its mask's shape "
            f"{np.shape(masks[view])}, got {s.dtype} {s.shape}"
        )
    if s.size and int(s.max()) >= N_LABELS:
        raise ValueError(
            f"skeletons[{view!r}]: label {int(s.max())} is not a region (0..{N_LABELS - 1})"
        )
    return encode_mask(s)


def _check_lesion_place(where: str, side: str | None, source: str | None) -> None:
    if side not in (None, "", *LESION_SIDES):
        raise ValueError(f"{where}: side must be one of {LESION_SIDES} or None, got {side!r}")
    if source not in (None, *REGION_SOURCES):
        raise ValueError(
            f"{where}: region_source must be one of {REGION_SOURCES} or None, got {source!r}"
        )


def _check_mask(view: str, mask: np.ndarray) -> np.ndarray:
    if view not in VIEWS:
        raise ValueError(f"masks: view must be one of {VIEWS}, got {view!r}")
    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0 or m.dtype != np.uint8 or m.max() > LABEL_BLADDER:
        raise ValueError(
            f"masks[{view!r}] must be a non-empty 2-D uint8 label mask with values 0-2, "
            f"got {m.dtype} {m.shape}"
        )
    return m


def store_analysis(
    db: Database,
    *,
    study_id: int,
    analysis: AnalysisRecord,
    masks: Mapping[str, np.ndarray],
    lesions: Sequence[LesionRecord],
    account: str,
    skeletons: Mapping[str, np.ndarray] | None = None,
) -> int:
    """Store an analysis with its masks, skeleton maps and lesions, audited: all or nothing.

    Args:
        db: An open store.
        study_id: The analysed study (must exist).
        analysis: The analysis' figures.
        masks: ``{view: label mask}``, uint8 2-D (1024 x 256 for real scans),
            0 background, 1 metastasis, 2 bladder.
        lesions: Its lesions, all of status ``"model"``; each view must have a mask
            and each (view, component) must be unique.
        account: Who (or which process) stored it, for the audit log.
        skeletons: ``{view: uint8 skeleton label map}`` of the views the skeleton
            network read (:attr:`core.analysis.AnalysisResult.skeletons`), each beside a
            mask of the same view and shape; None or empty for none.

    Returns:
        The new analysis id.

    Raises:
        ValueError: If ``study_id`` does not exist, ``account`` or a text field is
            empty, a probability or BSTBI is outside [0, 1], a BSI outside [0, 100], a
            BSI region unknown or out of range, a per-image key is not a (view, level)
            of the scan, a mask or skeleton map is unfit, or a lesion names a view
            without a mask, repeats a (view, component) or has an unknown side or
            region source.
        core.auth.AccessDenied: If ``account`` may not upload in this store.
    """
    _check_account(account)
    if not analysis.model_version.strip() or not analysis.device.strip():
        raise ValueError("analysis.model_version and analysis.device must not be empty")
    if not analysis.quality.strip():
        raise ValueError("analysis.quality must be 'ok' or the reason, not empty")
    if any(not isinstance(c, str) or not c.strip() for c in analysis.quality_cautions):
        raise ValueError("analysis.quality_cautions must be non-empty sentences")
    _check_unit("analysis.metastasis_probability", analysis.metastasis_probability)
    _check_unit("analysis.metastasis_threshold", analysis.metastasis_threshold)
    _check_unit("analysis.bladder_probability", analysis.bladder_probability)
    _check_unit("analysis.bstbi", analysis.bstbi)
    _check_per_image(analysis.bstbi_images)
    _check_percent("analysis.bsi", analysis.bsi)
    _check_percent("analysis.raw_bsi", analysis.raw_bsi)
    if analysis.bsi_withheld is not None and (
        not analysis.bsi_withheld.strip() or analysis.bsi is not None
    ):
        raise ValueError("analysis.bsi_withheld must be a sentence, and bsi None with it")
    # The breakdown is the reliable index's, as the index itself (NULL where bsi is).
    regions = None
    if analysis.bsi is not None:
        regions = bsi_regions_json(
            analysis.bsi_regions, analysis.bsi_involvement, "analysis.bsi_regions"
        )
    encoded: dict[str, tuple[tuple[int, ...], bytes]] = {}
    for view, mask in masks.items():
        m = _check_mask(view, mask)
        encoded[view] = (m.shape, encode_mask(m))
    maps = {view: _check_skeleton(view, sk, masks) for view, sk in (skeletons or {}).items()}
    seen: set[tuple[str, int]] = set()
    for lesion in lesions:
        if lesion.view not in masks:
            raise ValueError(f"lesions: view {lesion.view!r} has no mask")
        if (lesion.view, lesion.component) in seen:
            raise ValueError(f"lesions: ({lesion.view!r}, {lesion.component}) appears twice")
        seen.add((lesion.view, lesion.component))
        _check_lesion_place(
            f"lesions ({lesion.view!r}, {lesion.component})", lesion.side, lesion.region_source
        )
    per_image = {column: analysis.bstbi_images.get(key) for key, column in BSTBI_COLUMNS.items()}
    with write_transaction(db):
        require_role(db, account, "upload")
        if db.execute("SELECT 1 FROM studies WHERE id = ?", [study_id]).fetchone() is None:
            raise ValueError(f"study_id {study_id} does not exist")
        analysis_id = insert_row(db, "analyses", {
            "study_id": study_id,
            "model_version": analysis.model_version,
            "weights_sha256": analysis.weights_sha256,
            "device": analysis.device,
            # JSON as text: sqlite-utils would serialise a dict unsorted
            "timings_json": json.dumps(dict(analysis.timings_s), sort_keys=True),
            "metastasis_probability": analysis.metastasis_probability,
            "metastasis_threshold": analysis.metastasis_threshold,
            "bladder_probability": analysis.bladder_probability,
            **per_image,
            "bstbi": analysis.bstbi,
            "hotspots": analysis.hotspots,
            "lesion_area_cm2": analysis.lesion_area_cm2,
            "quality": analysis.quality,
            "quality_cautions_json": json.dumps(list(analysis.quality_cautions)),
            "bsi": analysis.bsi,
            "raw_bsi": analysis.raw_bsi,
            "bsi_regions": regions,
            "anatomy_sha256": analysis.anatomy_sha256 or None,
            "bsi_withheld": analysis.bsi_withheld,
        })  # fmt: skip
        insert_rows(db, "masks", [
            {"analysis_id": analysis_id, "view": v, "rows": shape[0], "cols": shape[1],
             "labels_zlib": blob}
            for v, (shape, blob) in encoded.items()
        ])  # fmt: skip
        insert_rows(db, "skeleton_maps", [
            {"analysis_id": analysis_id, "view": v, "labels_zlib": blob}
            for v, blob in maps.items()
        ])  # fmt: skip
        insert_rows(db, "lesions", [
            {"analysis_id": analysis_id, "view": les.view, "component": les.component,
             "area_px": les.area_px, "area_cm2": les.area_cm2, "uptake_ratio": les.uptake_ratio,
             "skeletal_region": les.skeletal_region, "centroid_row": les.centroid_row,
             "centroid_col": les.centroid_col, "status": "model", "side": les.side or None,
             "region_source": les.region_source}
            for les in lesions
        ])  # fmt: skip
        audit(
            db,
            account=account,
            action="store_analysis",
            entity="analysis",
            entity_id=analysis_id,
            before=None,
            after={
                "study_id": study_id,
                "model_version": analysis.model_version,
                "quality": analysis.quality,
                "quality_cautions": list(analysis.quality_cautions),
                "bstbi": analysis.bstbi,
                "bsi": analysis.bsi,
                "hotspots": analysis.hotspots,
                "lesions": len(lesions),
            },
        )
    return analysis_id


def add_drawn_lesion(
    db: Database,
    *,
    analysis_id: int,
    view: str,
    drawn: np.ndarray,
    lesion: LesionRecord | None = None,
    account: str,
    reason: str = "",
) -> int:
    """Store a lesion the physician drew (status ``"added"``), audited; return its id.

    Its component number is the next free one of that analysis and view, so it never
    collides with a model lesion. The caller then recomputes the burden
    (:func:`core.burden.lesion_review.recompute_burden`) and stores it
    (:func:`update_analysis_burden`).

    Args:
        db: An open store.
        analysis_id: The analysis it belongs to (must exist).
        view: ``"ANT"`` or ``"POST"``.
        drawn: bool or 0/1 2-D array of the view's mask shape, at least one pixel set.
        lesion: Its other figures (area_cm2, uptake, region, side, region source,
            centroid); ``view``, ``component`` and ``area_px`` are taken from the
            arguments and ``drawn``.
        account: Who drew it.
        reason: Why, for the audit log.

    Raises:
        ValueError: If the analysis does not exist or has no mask of ``view``,
            ``drawn`` has another shape or no pixel, ``lesion`` has an unknown side or
            region source, or ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    d = np.asarray(drawn)
    if d.ndim != 2 or not (d.dtype == np.bool_ or np.issubdtype(d.dtype, np.integer)):
        raise ValueError(f"drawn must be a 2-D bool or 0/1 array, got {d.dtype} {d.shape}")
    if d.size and (d.min() < 0 or d.max() > 1):
        raise ValueError("drawn must hold only 0 and 1")
    area_px = int(np.count_nonzero(d))
    if area_px == 0:
        raise ValueError("drawn must have at least one pixel set")
    blob = encode_mask(d.astype(np.uint8))
    extra = lesion or LesionRecord(view=view, component=1, area_px=area_px)
    _check_lesion_place("lesion", extra.side, extra.region_source)
    with write_transaction(db):
        require_role(db, account, "review")
        shape = db.execute(
            "SELECT rows, cols FROM masks WHERE analysis_id = ? AND view = ?", [analysis_id, view]
        ).fetchone()
        if shape is None:
            raise ValueError(f"analysis_id {analysis_id} has no {view!r} mask (or does not exist)")
        if tuple(shape) != d.shape:
            raise ValueError(f"drawn must have shape {tuple(shape)}, got {d.shape}")
        (component,) = db.execute(
            "SELECT coalesce(max(component), 0) + 1 FROM lesions "
            "WHERE analysis_id = ? AND view = ?",
            [analysis_id, view],
        ).fetchone()
        lesion_id = insert_row(db, "lesions", {
            "analysis_id": analysis_id, "view": view, "component": component,
            "area_px": area_px, "area_cm2": extra.area_cm2, "uptake_ratio": extra.uptake_ratio,
            "skeletal_region": extra.skeletal_region, "centroid_row": extra.centroid_row,
            "centroid_col": extra.centroid_col, "status": "added", "drawn_zlib": blob,
            "side": extra.side or None, "region_source": extra.region_source,
        })  # fmt: skip
        audit(
            db,
            account=account,
            action="add_lesion",
            entity="lesion",
            entity_id=lesion_id,
            before=None,
            after={"analysis_id": analysis_id, "view": view, "component": component,
                   "area_px": area_px, "status": "added", "reason": reason},
        )  # fmt: skip
    return lesion_id


def set_lesion_status(db: Database, lesion_id: int, status: str, account: str, reason: str) -> None:
    """Remove or restore a lesion, with an audit row holding before and after.

    A model lesion is ``"model"`` or ``"removed"``; a drawn one ``"added"`` or
    ``"removed"``. Setting the status it already has changes nothing and writes no
    audit row. The caller then recomputes the burden and stores it with
    :func:`update_analysis_burden`.

    Args:
        db: An open store.
        lesion_id: The lesion.
        status: One of :data:`LESION_STATUSES`.
        account: Who decided.
        reason: Why (e.g. ``"fracture"``), kept in the audit row.

    Raises:
        ValueError: If ``status`` is unknown or not allowed for that lesion, the lesion
            does not exist, or ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    if status not in LESION_STATUSES:
        raise ValueError(f"status must be one of {LESION_STATUSES}, got {status!r}")
    with write_transaction(db):
        require_role(db, account, "review")
        row = db.execute(
            "SELECT status, drawn_zlib IS NOT NULL FROM lesions WHERE id = ?", [lesion_id]
        ).fetchone()
        if row is None:
            raise ValueError(f"lesion_id {lesion_id} does not exist")
        before, drawn = row[0], bool(row[1])
        allowed = ("added", "removed") if drawn else ("model", "removed")
        if status not in allowed:
            kind = "drawn" if drawn else "model"
            raise ValueError(f"status {status!r} is not allowed for a {kind} lesion: {allowed}")
        if status == before:
            return
        schema_table(db, "lesions").update(lesion_id, {"status": status})
        audit(
            db,
            account=account,
            action="set_lesion_status",
            entity="lesion",
            entity_id=lesion_id,
            before={"status": before},
            after={"status": status, "reason": reason},
        )


_BURDEN_COLUMNS = (*BSTBI_COLUMNS.values(), "bstbi", "hotspots", "lesion_area_cm2", "bsi")


def update_analysis_burden(
    db: Database,
    analysis_id: int,
    per_image: Mapping[tuple[str, int], float],
    scan_bstbi: float,
    hotspots: int,
    lesion_area_cm2: float,
    account: str,
    *,
    bsi: float | None = None,
    bsi_regions: Mapping[str, float] | None = None,
    bsi_involvement: Mapping[str, float] | None = None,
) -> None:
    """Replace an analysis' burden figures after review, with an audit row.

    The Bone Scan Index is replaced with the others: ``bsi`` None (no skeleton map)
    stores NULL for ``bsi`` and ``bsi_regions``. ``raw_bsi`` stays the model's.

    Args:
        db: An open store.
        analysis_id: The analysis.
        per_image: ``{(view, level): bstbi}``
            (:attr:`core.burden.lesion_review.BurdenResult.per_image`); images not in it
            become NULL.
        scan_bstbi: The scan's BSTBI in [0, 1].
        hotspots: Hotspot count (>= 0).
        lesion_area_cm2: Lesion area (>= 0).
        account: Who reviewed.
        bsi: The Bone Scan Index of the reviewed masks in percent
            (:attr:`core.burden.lesion_review.BurdenResult.bsi`), or None.
        bsi_regions: Its ``{region: percent contribution}`` (involved regions).
        bsi_involvement: Its ``{region: involved fraction}`` (every region seen).

    Raises:
        ValueError: If the analysis does not exist, a value is out of range, a key of
            ``per_image`` is not a (view, level), a BSI region is unknown or out of
            range, or ``account`` is empty.
        core.auth.AccessDenied: If ``account`` may not review in this store.
    """
    _check_account(account)
    _check_per_image(per_image)
    _check_unit("scan_bstbi", scan_bstbi)
    _check_percent("bsi", bsi)
    if hotspots < 0:
        raise ValueError(f"hotspots must be >= 0, got {hotspots}")
    if not (math.isfinite(lesion_area_cm2) and lesion_area_cm2 >= 0):
        raise ValueError(f"lesion_area_cm2 must be finite and >= 0, got {lesion_area_cm2}")
    regions = None if bsi is None else bsi_regions_json(bsi_regions or {}, bsi_involvement or {})
    figures: list[float | int | None] = [scan_bstbi, hotspots, lesion_area_cm2, bsi]
    new = [per_image.get(key) for key in BSTBI_COLUMNS] + figures
    after = dict(zip(_BURDEN_COLUMNS, new, strict=True))
    with write_transaction(db):
        require_role(db, account, "review")
        row = db.execute(
            f"SELECT {', '.join(_BURDEN_COLUMNS)} FROM analyses WHERE id = ?", [analysis_id]
        ).fetchone()
        if row is None:
            raise ValueError(f"analysis_id {analysis_id} does not exist")
        # the regions follow from the masks and the maps: kept in the row, not the audit
        schema_table(db, "analyses").update(analysis_id, {**after, "bsi_regions": regions})
        audit(
            db,
            account=account,
            action="update_burden",
            entity="analysis",
            entity_id=analysis_id,
            before=dict(zip(_BURDEN_COLUMNS, row, strict=True)),
            after=after,
        )
