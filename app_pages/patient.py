"""Patient: BSTBI or BSI over time with the treatments, two studies side by side, the report."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import streamlit as st

from core.burden.charts import (
    COMMON_AGENTS,
    METRICS,
    metric_values,
    model_changes,
    step_changes,
    trajectory_figure,
)
from core.burden.patient_record import (
    PatientRecord,
    default_pair,
    pair_pictures,
    patient_info,
    treatments_from_rows,
)
from core.burden.pcwg3 import FLAG_CONFIRMED, FLAG_PENDING, FLAG_PROGRESSION
from core.burden.repeatability import REPEATABILITY
from core.config import db_path
from db.annotations import last_change
from db.connection import open_db
from db.queries import counts_per_view, patient_overview, patient_time_series, study_with_masks
from db.store import add_treatment
from db.treatments import patient_treatments
from ui.auth import guard, may, names_hidden, refusal, shown_name
from ui.body_map import show_study_regions
from ui.common import Keys, account, database
from workflow.patients import load_patient
from workflow.report import bsi_by_study, build_patient_report, studies_csv, study_row

OTHER_AGENT = "another agent (type it below)"
EARLIEST_DATE = dt.date(1900, 1, 1)
#: Width of a two-view picture on the page, CSS pixels (a 1024-row view stays on screen).
PICTURE_WIDTH = 380
#: What the trajectory switch says about each index.
METRIC_HELP = (
    "BSTBI: the paper's tumour burden index (0-1), from the uptake of the lesions. "
    "BSI: the Bone Scan Index, the percent of the skeleton's mass that metastasis "
    "involves, from the skeleton's regions; it needs a skeleton map of the scan."
)


@st.cache_data(max_entries=16, show_spinner="Matching lesions across the studies...")
def _record(
    path: str,
    patient: dict[str, Any],
    rows: list[dict[str, Any]],
    treatments: list[dict[str, Any]],
    start: dt.date | None,
) -> PatientRecord:
    # rows and treatments are only the cache key: a new analysis, a review (it changes
    # the burden) or a new treatment must recompute the follow-up
    del rows, treatments
    with open_db(path) as db:
        return load_patient(
            db, patient_info(patient), treatment_start=start, use_default_start=False
        )


@st.cache_data(max_entries=16, show_spinner="Comparing the two studies...")
def _pictures(path: str, first: int, second: int, key: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    del key  # both studies' analyses, burden and newest review change: a review redraws
    with open_db(path) as db:
        return pair_pictures(study_with_masks(db, first), study_with_masks(db, second))


@st.cache_data(max_entries=64, show_spinner=False)
def _counts(path: str, study_ids: tuple[int, ...]) -> dict[int, float]:
    # a study's views never change once stored: the study ids are the whole key
    with open_db(path) as db:
        return counts_per_view(db, list(study_ids))


def _report(
    path: str, record: PatientRecord, figure: Any, name: str | None, hide_files: bool
) -> bytes:
    # runs on click, on another thread, outside the script run: no Streamlit here
    with open_db(path) as db:
        report = build_patient_report(db, record, figure, name=name, hide_files=hide_files)
    return report.encode("utf-8")


def _picked() -> None:
    st.session_state[Keys.PATIENT_ID] = st.session_state[Keys.PATIENT_PICK]


guard()
st.title("Patient")
with database() as db:
    overview: list[dict[str, Any]] = patient_overview(db)
patients = {int(row["id"]): row for row in overview}
if not patients:
    st.info(
        "The store holds no patient yet. Analyse a scan on the upload page, or fill the store "
        "with the synthetic demo cohort (`python -m core demo-cohort`)."
    )
    st.stop()

# another page (cohort, upload) may have opened a patient: the selectbox follows it
wanted = st.session_state.get(Keys.PATIENT_ID)
if st.session_state.get(Keys.PATIENT_PICK) not in patients:
    st.session_state.pop(Keys.PATIENT_PICK, None)
if wanted in patients and st.session_state.get(Keys.PATIENT_PICK) != wanted:
    st.session_state[Keys.PATIENT_PICK] = wanted
picked = st.selectbox(
    "Patient",
    list(patients),
    key=Keys.PATIENT_PICK,
    format_func=lambda i: str(patients[i]["pseudonym"]),
    on_change=_picked,
)
patient_id = int(picked if picked is not None else next(iter(patients)))
st.session_state[Keys.PATIENT_ID] = patient_id
row = patients[patient_id]
info = patient_info(row)
last_study = dt.date.fromisoformat(row["last_study"]) if row["last_study"] else None
age = info.age_at(last_study)

# the name only when "Hide patient names" is off; the report follows the same switch
with database() as db:
    patient_name = shown_name(db, patient_id)
st.header(patient_name or info.pseudonym)
if patient_name:
    st.caption(f"Pseudonym {info.pseudonym}")
if info.synthetic:
    st.badge(
        "Synthetic patient (phantom), not a real person", icon=":material/science:", color="violet"
    )
facts = st.columns(4)
facts[0].metric("Sex", info.sex or "not recorded")
facts[1].metric("Age at last study", age if age is not None else "not recorded")
facts[2].metric("Primary tumour", info.primary_tumour or "not recorded")
facts[3].metric("Studies", row["studies"])

# the trajectory is drawn after the treatment form below has stored a new treatment,
# into this place above it, so that the new band shows in the same run
trajectory = st.container()

st.subheader("Treatments")
list_box = st.container()
# a viewer browses only: no form (the store would refuse the write anyway)
submitted = False
if may("treatments"):
    with (
        st.expander("Add a treatment", icon=":material/add:"),
        st.form("add_treatment", clear_on_submit=True),
    ):
        agent_choice = st.selectbox("Agent", [*COMMON_AGENTS, OTHER_AGENT])
        other_agent = st.text_input("Other agent", placeholder="e.g. denosumab, enzalutamide")
        left, right = st.columns(2)
        start = left.date_input(
            "Start",
            value=last_study or dt.date.today(),
            min_value=EARLIEST_DATE,
            max_value=dt.date.today(),
        )
        end = right.date_input(
            "End (leave empty while ongoing)",
            value=None,
            min_value=EARLIEST_DATE,
            max_value=dt.date.today() + dt.timedelta(days=3650),
        )
        dose = st.text_input("Dose and schedule", placeholder="e.g. 4 mg IV every 4 weeks")
        note = st.text_input("Note")
        submitted = st.form_submit_button("Add treatment", icon=":material/add:")
else:
    st.caption(refusal("treatments"))
if submitted:
    agent = other_agent.strip() if agent_choice == OTHER_AGENT else agent_choice
    if not agent:
        st.error("Type the agent's name in 'Other agent'.")
    elif not isinstance(start, dt.date):
        st.error("Give the start date.")
    elif isinstance(end, dt.date) and end < start:
        st.error(f"The end ({end}) is before the start ({start}).")
    else:
        with database() as db:
            add_treatment(
                db,
                patient_id=patient_id,
                agent=agent,
                start=start,
                end=end if isinstance(end, dt.date) else None,
                dose=dose.strip() or None,
                note=note.strip() or None,
                account=account(),
            )
        st.success(f"Added {agent} from {start}.", icon=":material/check:")

with database() as db:
    series = patient_time_series(db, patient_id)
    treatment_rows = patient_treatments(db, patient_id)
treatments = treatments_from_rows(treatment_rows)
if treatments:
    list_box.dataframe(
        [
            {
                "agent": t.agent,
                "start": t.start,
                "end": t.end.isoformat() if t.end else "ongoing",
                "dose": t.dose or "",
                "note": t.note or "",
            }
            for t in treatments
        ],
        hide_index=True,
        column_config={
            "agent": "Agent",
            "start": "Start",
            "end": "End",
            "dose": "Dose",
            "note": "Note",
        },
    )
else:
    list_box.caption("None recorded.")

with trajectory:
    starts = sorted({t.start: t for t in reversed(treatments)}.items())
    clock = None
    if starts:
        clock = st.columns([1, 2])[0].selectbox(
            "PCWG3 clock starts at",
            [d for d, _ in starts],
            format_func=lambda d: f"{d} ({dict(starts)[d].agent})",
            help="New lesions are counted from this treatment start (PCWG3 2+2 rule); the "
            "earliest start by default.",
        )
    record = _record(str(db_path()), row, series, treatment_rows, clock)
    if not record.studies:
        st.info("No study of this patient yet.")
        st.stop()
    # the version of each study's analysis shown: a change of models is marked on the line
    versions = {int(r["study_id"]): r["model_version"] for r in series}
    # the BSI and the counts are not fields of the record: they come with the series
    bsi = bsi_by_study(series)
    counts = _counts(str(db_path()), tuple(int(r["study_id"]) for r in series))
    if st.session_state.get(Keys.PATIENT_METRIC) not in METRICS:
        st.session_state[Keys.PATIENT_METRIC] = "bstbi"  # first visit, or the choice undone
    chosen = st.segmented_control(
        "Burden index",
        list(METRICS),
        format_func=lambda k: METRICS[k].label,
        key=Keys.PATIENT_METRIC,
        help=METRIC_HELP,
    )
    metric = METRICS[chosen if chosen in METRICS else "bstbi"]
    figure = trajectory_figure(
        record.studies,
        record.treatments,
        title=f"{metric.label} over time: {info.pseudonym}",
        model_versions=versions,
        metric_key=metric.key,
        values=bsi,
        counts=counts,
        mark_changes=True,
    )
    st.plotly_chart(figure, width="stretch")
    for change in model_changes(record.studies, versions):
        st.caption(f":material/swap_horiz: Model version changed: {change.caption()}")
    value = metric_values(record.studies, metric.key, bsi)
    steps = step_changes(record.studies, metric.key, bsi, counts)
    if steps:
        st.dataframe(
            [
                {
                    "from": s.before.date,
                    "to": s.after.date,
                    "change": s.words(),
                    "beyond": s.verdict.beyond,
                }
                for s in steps
            ],
            hide_index=True,
            column_config={
                "from": "From",
                "to": "To",
                "change": st.column_config.TextColumn(f"{metric.label} change", width="large"),
                "beyond": st.column_config.CheckboxColumn(
                    "Beyond the LSC",
                    help="Larger than the least significant change: unlikely to be noise.",
                ),
            },
        )
        measured = (
            f"Limits measured on {REPEATABILITY.patients} phantom patients x "
            f"{REPEATABILITY.repeats} re-acquisitions ({REPEATABILITY.source})."
            if REPEATABILITY.patients
            else "The repeatability is not measured yet: every limit is 0, so any change "
            "counts as beyond it."
        )
        st.caption(
            "Each step of the line against the least significant change (LSC, 2.77 x the "
            "repeatability SD at the noisier study's counts): a triangle half-way along a "
            "step marks a rise or fall beyond it, a small circle one within it, which cannot "
            f"be told from noise. {measured}"
        )
    reliable = [s for s in record.dated if value[s.study_id] is not None]
    unreliable = [s for s in record.studies if not s.reliable]
    if metric.key == "bsi" and not reliable and record.dated:
        st.info(
            "No study of this patient has a BSI: no skeleton map was read for a scan that "
            "passed the quality gate (the skeleton network is missing, or it found no "
            "skeleton on the views). The BSTBI is shown under BSTBI.",
            icon=":material/info:",
        )
    if reliable:
        base, latest = reliable[0], reliable[-1]
        first, last = value[base.study_id] or 0.0, value[latest.study_id] or 0.0
        cols = st.columns(4)
        cols[0].metric(f"Baseline {metric.label}", metric.text(first), help=f"Study of {base.date}")
        cols[1].metric(
            f"Latest {metric.label}",
            metric.text(last),
            delta=None if latest is base else metric.text(last - first, signed=True),
            delta_color="inverse",
            help=f"Study of {latest.date}; the change is against the baseline",
        )
        cols[2].metric(
            "New lesions at the latest study",
            "baseline"
            if latest is base
            else ("n/a" if latest.new_vs_baseline is None else latest.new_vs_baseline),
            help="Distinct new lesions against the baseline, counted once across views",
        )
        fu = record.followup
        if fu is not None and fu.progression_date is not None:
            cols[3].metric(
                "PCWG3 progression",
                fu.progression_date.isoformat(),
                help=f"Bone-scan progression by the PCWG3 rule, clock from {fu.treatment_start}",
            )
        else:
            pending = latest.pcwg3 == FLAG_PENDING
            cols[3].metric("PCWG3 progression", "to confirm" if pending else "not met")
        flags = {s.pcwg3 for s in record.studies}
        if flags & {FLAG_CONFIRMED, FLAG_PROGRESSION, FLAG_PENDING}:
            st.caption(
                "Stars mark studies meeting the PCWG3 rule (>= 2 new lesions, and for an early "
                "scan >= 2 further new lesions at least 6 weeks later); a hollow diamond an "
                "early scan awaiting confirmation."
            )
    if unreliable:
        st.warning(
            "Without a reliable burden (grey crosses at 0, left out of the line and of "
            "follow-up): " + "; ".join(f"{s.date or 'no date'}: {s.status}" for s in unreliable),
            icon=":material/report:",
        )
    for warning in sorted({w for s in record.studies for w in s.warnings}):
        st.warning(warning, icon=":material/schedule:")

st.subheader("Two studies side by side")
options = [s.study_id for s in record.studies]
by_study = {s.study_id: s for s in record.studies}


def _study_label(study_id: int) -> str:
    s = by_study[study_id]
    date = s.date.isoformat() if s.date else f"study {study_id} (no date)"
    return date if s.reliable else f"{date} ({s.status})"


pair = default_pair(record.studies)
assert pair is not None  # record.studies is not empty here
if len(options) == 1:
    first_id = second_id = options[0]
    st.caption("This patient has one study.")
else:
    left, right = st.columns(2)
    first_id = left.selectbox(
        "Left", options, index=options.index(pair[0].study_id), format_func=_study_label
    )
    second_id = right.selectbox(
        "Right", options, index=options.index(pair[1].study_id), format_func=_study_label
    )
with database() as db:
    # with each analysis its review's newest change: a mask edit may leave the stored
    # figures as they were (an unreliable analysis stores none) yet change the picture
    version = tuple(
        (
            r["study_id"],
            r["analysis_id"],
            r["bstbi"],
            (last_change(db, int(r["analysis_id"])) or {}).get("audit_id")
            if r["analysis_id"] is not None
            else None,
        )
        for r in series
        if r["study_id"] in (first_id, second_id)
    )
pictures = _pictures(str(db_path()), first_id, second_id, version)
regions_by_study = {r["study_id"]: r["bsi_regions"] for r in series}
n_new = pictures[2]
shown = (
    [(first_id, pictures[0])]
    if first_id == second_id
    else [(first_id, pictures[0]), (second_id, pictures[1])]
)
for column, (study_id, picture) in zip(st.columns(2), shown, strict=False):
    column.image(
        picture, caption=f"{_study_label(study_id)}: anterior | posterior", width=PICTURE_WIDTH
    )
    # the quality gate's cautions stored with this study's analysis, read with its picture
    for caution in by_study[study_id].cautions:
        column.warning(caution, icon=":material/warning:")
    show_study_regions(
        column,
        bsi.get(study_id) if by_study[study_id].reliable else None,
        regions_by_study.get(study_id),
    )
if n_new is not None:
    st.caption(
        f"Metastasis red, bladder green (after review); {n_new} new lesion(s) of the later study "
        "against the earlier one, ringed in yellow. Hot = dark (grey level 1)."
    )
else:
    st.caption("Metastasis red, bladder green (after review). Hot = dark (grey level 1).")

st.subheader("Studies")
st.dataframe(
    # the cautions as one sentence after another; empty when none
    [
        {
            **study_row(s, names_hidden(), bsi.get(s.study_id)),
            "quality_cautions": " ".join(s.cautions),
            "model_version": versions.get(s.study_id) or "",
        }
        for s in record.studies
    ],
    hide_index=True,
    column_order=(
        "study_date",
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
        "injection_delay_h",
        "warnings",
        "source_name",
        "source_ae",
        "model_version",
    ),
    column_config={
        "study_date": "Date",
        "quality": "Quality",
        "quality_cautions": st.column_config.TextColumn(
            "Cautions",
            help="What the quality gate asks a physician to read with the results of a scan "
            "that passed it (a saturated site, the feet out of the field).",
        ),
        "reliable": st.column_config.CheckboxColumn("Reliable burden"),
        "bstbi": st.column_config.NumberColumn("BSTBI", format="%.3f"),
        "bstbi_change_baseline": st.column_config.NumberColumn(
            "Change vs baseline", format="%+.3f"
        ),
        "bstbi_change_previous": st.column_config.NumberColumn(
            "Change vs previous", format="%+.3f"
        ),
        "bsi": st.column_config.NumberColumn(
            "BSI (%)",
            format="%.2f",
            help="Bone Scan Index: percent of the skeletal mass involved; empty without a "
            "skeleton map or a reliable analysis.",
        ),
        "hotspots": "Hotspots",
        "lesion_area_cm2": st.column_config.NumberColumn("Lesion area (cm²)", format="%.1f"),
        "new_vs_baseline": "New vs baseline",
        "new_vs_previous": "New vs previous",
        "pcwg3": "PCWG3",
        "injection_delay_h": st.column_config.NumberColumn("Delay (h)", format="%.1f"),
        "warnings": "Warnings",
        "source_name": "File",
        "source_ae": st.column_config.TextColumn(
            "Source", help="The DICOM node (AE title) the study came from; empty: uploaded."
        ),
        "model_version": st.column_config.TextColumn(
            "Model",
            help="The model version of the analysis shown: the one in use when it has "
            "analysed the study, else the newest analysis.",
        ),
    },
)

name = "".join(c if c.isalnum() else "_" for c in info.pseudonym)
downloads = st.columns(2)
downloads[0].download_button(
    "Report (HTML)",
    data=functools.partial(_report, str(db_path()), record, figure, patient_name, names_hidden()),
    file_name=f"{name}-report.html",
    mime="text/html",
    icon=":material/description:",
    on_click="ignore",
    help="One self-contained file: the plot as shown, baseline and latest overlays, the "
    "studies, the BSI's regions.",
)
downloads[1].download_button(
    "Studies (CSV)",
    data=studies_csv(record.studies, names_hidden(), bsi),
    file_name=f"{name}-studies.csv",
    mime="text/csv",
    icon=":material/table:",
    on_click="ignore",
)
