"""The per-patient report: one self-contained HTML file, and the studies as CSV.

The HTML opens offline: plotly.js is inlined (no ``<script src>``), the pictures are
PNG data URIs, the style is inline. It holds who the patient is (with the synthetic
flag), the trajectory (BSTBI or BSI, as the page showed it), the baseline and latest
overlays, the studies and their follow-up figures with the Bone Scan Index beside the
BSTBI (each study's quality cautions listed under its quality), the BSI's regions of the
latest study that has one, the treatments, the warnings and when it was generated.

The BSI is not a field of :class:`~core.burden.patient_record.StudyPoint`: it comes from
the store's time series (:func:`db.queries.patient_time_series`) as ``{study_id: BSI}``,
and the pure functions here take it as an argument.

The markup is the jinja2 template ``templates/patient_report.html.j2`` beside this
module, rendered with autoescaping: every value (pseudonym, name, notes, file names,
warnings) is HTML-escaped; only the plot's markup and the pictures' data URIs, both
built here, are marked safe in the template.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import plotly.graph_objects as go
from PIL import Image
from sqlite_utils import Database

from core.burden.body_map import body_map_pair
from core.burden.charts import RegionRow, bsi_region_rows
from core.burden.patient_record import (
    PatientRecord,
    StudyPoint,
    default_pair,
    pair_pictures,
    study_picture,
)
from db.queries import patient_time_series, study_with_masks

#: Columns of the studies CSV, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "study_date",
    "study_id",
    "quality",
    "quality_cautions",
    "reliable",
    "bstbi",
    "bstbi_change_baseline",
    "bstbi_change_previous",
    "bsi",
    "hotspots",
    "lesion_area_cm2",
    "new_vs_baseline",
    "new_vs_previous",
    "pcwg3",
    "metastasis_probability",
    "injection_delay_h",
    "warnings",
    "source_name",
    "source_ae",
)

#: Joins a study's quality cautions in one CSV cell (the sentences contain commas and
#: full stops, not this).
CAUTION_SEPARATOR = " | "

#: Loads the report's templates from the folder beside this module, so a plain checkout
#: finds them wherever it is run from; ``.html.j2`` templates are autoescaped.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
    undefined=jinja2.StrictUndefined,
)
_REPORT = _TEMPLATES.get_template("patient_report.html.j2")


@dataclass(frozen=True)
class Picture:
    """One picture of the report: an RGB array and its caption."""

    caption: str
    rgb: np.ndarray


def png_bytes(rgb: np.ndarray) -> bytes:
    """Return a uint8 RGB (rows, cols, 3) or grey (rows, cols) array as PNG bytes.

    Raises:
        ValueError: If the array is not 2-D or (rows, cols, 3) uint8.
    """
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"rgb must be uint8 (rows, cols[, 3]), got {a.dtype} {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


#: How the HTML table writes each numeric figure of a study.
_FORMATS: dict[str, str] = {
    "bstbi": "{:.3f}",
    "bstbi_change_baseline": "{:+.3f}",
    "bstbi_change_previous": "{:+.3f}",
    "bsi": "{:.2f}",
    "lesion_area_cm2": "{:.1f}",
    "injection_delay_h": "{:.1f}",
}


def _png_src(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


def _cell(value: object, fmt: str = "{}") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt.format(value)


def study_row(
    point: StudyPoint, hide_files: bool = False, bsi: float | None = None
) -> dict[str, object]:
    """Return one study as a flat dict keyed by :data:`CSV_COLUMNS` (tables, CSV).

    The burden figures of a study that is not reliable are None; so is the uploaded
    file's name when ``hide_files`` (names hidden: file names can carry a patient's name).
    The quality cautions are joined by :data:`CAUTION_SEPARATOR` (None when there are
    none).

    Args:
        point: The study.
        hide_files: Leave the file's name out.
        bsi: The study's Bone Scan Index in percent (from the store's time series), or
            None when it has none (no skeleton read, or not reliable).
    """
    return {
        "study_date": point.date.isoformat() if point.date else None,
        "study_id": point.study_id,
        "quality": point.status,
        "quality_cautions": CAUTION_SEPARATOR.join(point.cautions) or None,
        "reliable": point.reliable,
        # a non-diagnostic scan's burden is never written as if it were reliable
        "bstbi": point.bstbi if point.reliable else None,
        "bstbi_change_baseline": point.bstbi_change_baseline,
        "bstbi_change_previous": point.bstbi_change_previous,
        "bsi": bsi if point.reliable else None,
        "hotspots": point.hotspots if point.reliable else None,
        "lesion_area_cm2": point.lesion_area_cm2 if point.reliable else None,
        "new_vs_baseline": point.new_vs_baseline,
        "new_vs_previous": point.new_vs_previous,
        "pcwg3": point.pcwg3,
        "metastasis_probability": point.metastasis_probability,
        "injection_delay_h": point.injection_delay_h,
        "warnings": "; ".join(point.warnings) or None,
        "source_name": None if hide_files else point.source_name,
        "source_ae": point.source_ae or None,
    }


def studies_csv(
    studies: Sequence[StudyPoint],
    hide_files: bool = False,
    bsi: Mapping[int, float | None] | None = None,
) -> str:
    """Return the studies as CSV text: a header of :data:`CSV_COLUMNS`, one row per study.

    Empty cells for unknown values; the burden figures (BSTBI, BSI, hotspots, lesion
    area) of a study that is not reliable are empty, ``quality`` says why; a study's
    quality cautions are joined by :data:`CAUTION_SEPARATOR` in ``quality_cautions``;
    file names are empty when ``hide_files``. ``bsi`` is ``{study_id: BSI in percent}``
    (:func:`bsi_by_study`); a study it does not name has an empty BSI.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for point in studies:
        row = study_row(point, hide_files, (bsi or {}).get(point.study_id))
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


@dataclass(frozen=True)
class _Row:
    """One table row for the template: CSS class, formatted cells, notes under a cell.

    ``notes`` (a study's quality cautions) are listed under the cell the template's
    ``notes_at`` names.
    """

    css_class: str
    cells: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Figure:
    """One picture for the template: caption and PNG data URI."""

    caption: str
    src: str


@dataclass(frozen=True)
class RegionTable:
    """The BSI's regions of one study, for the report.

    Attributes:
        study: The study (the latest reliable one with a BSI).
        bsi: Its BSI, percent of skeletal mass.
        rows: Its involved regions (:func:`core.burden.charts.bsi_region_rows`).
        body_map: uint8 (rows, cols, 3) RGB: its skeleton maps coloured by involvement,
            ANT then POST (:func:`core.burden.body_map.body_map_pair`); None without a
            stored map.
    """

    study: StudyPoint
    bsi: float
    rows: tuple[RegionRow, ...]
    body_map: np.ndarray | None = None


def bsi_by_study(series: Sequence[Mapping[str, object]]) -> dict[int, float | None]:
    """Return ``{study_id: BSI}`` from rows of :func:`db.queries.patient_time_series`.

    A row without the key (a store from before the BSI) gives None.
    """
    out: dict[int, float | None] = {}
    for row in series:
        value = row.get("bsi")
        out[int(str(row["study_id"]))] = None if value is None else float(str(value))
    return out


def _summary(record: PatientRecord, bsi: Mapping[int, float | None]) -> list[str]:
    """Return the summary's sentences: study counts, first and last BSTBI and BSI, PCWG3."""
    reliable = [s for s in record.dated if s.reliable]
    items = [f"{len(record.studies)} studies, {len(reliable)} with a reliable BSTBI."]
    if reliable:
        first, last = reliable[0], reliable[-1]
        items.append(
            f"BSTBI {first.bstbi:.3f} at baseline ({first.date}), {last.bstbi:.3f} at the latest "
            f"study ({last.date})."
        )
    with_bsi = [s for s in reliable if bsi.get(s.study_id) is not None]
    if with_bsi:
        first, last = with_bsi[0], with_bsi[-1]
        items.append(
            f"BSI {bsi[first.study_id]:.2f} % of the skeleton at the first study with one "
            f"({first.date}), {bsi[last.study_id]:.2f} % at the latest ({last.date})."
        )
    elif reliable:
        items.append("No study has a BSI: no skeleton map was read for its scans.")
    fu = record.followup
    if fu is not None and fu.studies:
        items.append(
            f"PCWG3 clock from {fu.treatment_start}: "
            + (
                f"progression met, dated {fu.progression_date}."
                if fu.progression
                else "progression not met."
            )
        )
    return items


def patient_report_html(
    record: PatientRecord,
    figure: go.Figure,
    pictures: Sequence[Picture] = (),
    *,
    generated: dt.datetime | None = None,
    name: str | None = None,
    hide_files: bool = False,
    bsi: Mapping[int, float | None] | None = None,
    regions: RegionTable | None = None,
) -> str:
    """Return the per-patient report as one self-contained HTML document.

    Args:
        record: The patient (:func:`core.burden.patient_record.load_patient`).
        figure: The trajectory (:func:`core.burden.charts.trajectory_figure`); a white theme
            is applied to a copy for print.
        pictures: Overlay pictures (e.g. baseline and latest), one ``<img>`` each.
        generated: When the report was made (None: now, local time).
        name: The patient's name, shown beside the pseudonym; None (names hidden, or
            none stored) leaves the report with the pseudonym only.
        hide_files: Leave the uploaded files' names out (names hidden).
        bsi: ``{study_id: BSI in percent}`` (:func:`bsi_by_study`); None or a study not
            named: no BSI for it.
        regions: The BSI's regions of the latest study with one (:func:`region_table`),
            or None for none.

    Returns:
        The HTML text (UTF-8); plotly.js is inlined, so it opens without a network.
    """
    by_study = dict(bsi or {})
    info = record.info
    when = (generated or dt.datetime.now()).replace(microsecond=0)
    last = record.dated[-1].date if record.dated else None
    age = info.age_at(last)
    facts = ([f"name {name}"] if name else []) + [
        f"sex {info.sex or 'not recorded'}",
        f"age {age if age is not None else 'not recorded'}"
        + (f" (at {last.isoformat()})" if age is not None and last else ""),
        f"primary tumour {info.primary_tumour or 'not recorded'}",
    ]
    plot = go.Figure(figure).update_layout(template="plotly_white")
    plot_html = plot.to_html(
        include_plotlyjs=True, full_html=False, include_mathjax=False, config={"displaylogo": False}
    )
    figures = [_Figure(p.caption, _png_src(p.rgb)) for p in pictures]
    study_rows = [study_row(s, hide_files, by_study.get(s.study_id)) for s in record.studies]
    study_headers = ("Date", "Quality", "BSTBI", "Change vs baseline", "Change vs previous",
                     "BSI (%)", "Hotspots", "Lesion area (cm²)", "New vs baseline",
                     "New vs previous", "PCWG3", "Delay (h)", "File")  # fmt: skip
    study_keys = ("study_date", "quality", "bstbi", "bstbi_change_baseline",
                  "bstbi_change_previous", "bsi", "hotspots", "lesion_area_cm2",
                  "new_vs_baseline", "new_vs_previous", "pcwg3", "injection_delay_h",
                  "source_name")  # fmt: skip
    treatment_rows = [
        _Row(
            "",
            (
                t.agent,
                t.start.isoformat(),
                t.end.isoformat() if t.end else "ongoing",
                t.dose or "",
                t.note or "",
            ),
        )
        for t in record.treatments
    ]
    return _REPORT.render(
        title=f"Bone-scan report: {info.pseudonym}",
        facts=facts,
        synthetic=info.synthetic,
        generated=when.isoformat(sep=" "),
        summary=_summary(record, by_study),
        plot_html=plot_html,
        pictures=figures,
        study_headers=study_headers,
        study_rows=[
            _Row(
                "" if s.reliable else "unreliable",
                tuple(_cell(r[k], _FORMATS.get(k, "{}")) for k in study_keys),
                s.cautions,
            )
            for r, s in zip(study_rows, record.studies, strict=True)
        ],
        study_numeric=frozenset({2, 3, 4, 5, 6, 7, 8, 9, 11}),
        study_notes_at=study_keys.index("quality"),
        region_caption=(
            ""
            if regions is None
            else f"{_label(regions.study)}: BSI {regions.bsi:.2f} % of the skeleton."
        ),
        region_headers=("Region", "Side", "Involved (%)", "Contribution to BSI (%)"),
        region_rows=[
            _Row("", (r.bone, r.side, f"{r.involvement_pct:.1f}", f"{r.bsi_pct:.2f}"))
            for r in (regions.rows if regions is not None else ())
        ],
        region_numeric=frozenset({2, 3}),
        region_map=(
            _png_src(regions.body_map)
            if regions is not None and regions.body_map is not None
            else ""
        ),
        treatment_headers=("Agent", "Start", "End", "Dose", "Note"),
        treatment_rows=treatment_rows,
        warnings=sorted({w for s in record.studies for w in s.warnings}),
    )


def region_table(
    db: Database, record: PatientRecord, bsi: Mapping[int, float | None]
) -> RegionTable | None:
    """Return the BSI's regions of the latest reliable study that has a BSI, or None.

    Args:
        db: An open store.
        record: The patient.
        bsi: ``{study_id: BSI}`` (:func:`bsi_by_study`).
    """
    latest = next(
        (s for s in reversed(record.dated) if s.reliable and bsi.get(s.study_id) is not None),
        None,
    )
    if latest is None:
        return None
    data = study_with_masks(db, latest.study_id)
    analysis = data["analysis"] or {}
    value = bsi[latest.study_id]
    assert value is not None  # chosen for having one
    regions = analysis.get("bsi_regions") or {}
    involvement = {name: float(r.get("involvement", 0.0) or 0.0) for name, r in regions.items()}
    maps = data["skeletons"]
    return RegionTable(
        latest,
        value,
        tuple(bsi_region_rows(regions)),
        body_map_pair(maps, involvement) if maps else None,
    )


def report_pictures(db: Database, record: PatientRecord) -> list[Picture]:
    """Return the report's pictures: baseline and latest, the latest's new lesions ringed.

    Each study's analysis is the one its figures come from
    (:func:`db.queries.study_with_masks`: the newest by the model version in use, else
    the newest), drawn as reviewed: lesion statuses, drawn lesions and the physician's
    mask edits (:func:`core.burden.patient_record.study_picture`). One picture when the
    patient has a single study; none without studies or views.

    Args:
        db: An open store.
        record: The patient (:func:`core.burden.patient_record.load_patient`).
    """
    pair = default_pair(record.studies)
    if pair is None:
        return []
    first, last = pair
    data_first = study_with_masks(db, first.study_id)
    if not data_first["views"]:
        return []
    if first.study_id == last.study_id:
        return [Picture(f"{_label(first)}: the only study", study_picture(data_first))]
    pic_first, pic_last, n_new = pair_pictures(data_first, study_with_masks(db, last.study_id))
    new = "" if n_new is None else f", {n_new} new lesion(s) against baseline ringed"
    return [
        Picture(f"Baseline {_label(first)}", pic_first),
        Picture(f"Latest {_label(last)}{new}", pic_last),
    ]


def _label(point: StudyPoint) -> str:
    date = point.date.isoformat() if point.date else f"study {point.study_id}"
    return date if point.reliable else f"{date} ({point.status})"


def build_patient_report(
    db: Database,
    record: PatientRecord,
    figure: go.Figure,
    *,
    generated: dt.datetime | None = None,
    name: str | None = None,
    hide_files: bool = False,
) -> str:
    """Return the full per-patient HTML report, reading pictures and BSI from the store.

    Args:
        db: An open store.
        record: The patient (:func:`core.burden.patient_record.load_patient`).
        figure: Its trajectory (:func:`core.burden.charts.trajectory_figure`).
        generated: When it was made (None: now).
        name: The patient's name, or None for the pseudonym only (names hidden).
        hide_files: Leave the uploaded files' names out (names hidden).
    """
    bsi = bsi_by_study(patient_time_series(db, record.info.patient_id))
    return patient_report_html(
        record,
        figure,
        report_pictures(db, record),
        generated=generated,
        name=name,
        hide_files=hide_files,
        bsi=bsi,
        regions=region_table(db, record, bsi),
    )
