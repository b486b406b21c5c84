"""Upload and analyse: read a scan, run the models, store study and analysis, show the result."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.config import VIEWS
from core.imaging.crops import THRESHOLD
from core.imaging.display import GREY_LEVELS, display_images
from core.networks.models import ModelFileError
from core.phantom.cohort import PRIMARIES
from core.reading.dicom import PHANTOM_MANUFACTURER
from core.reading.uploaded import sha256_of
from core.scan import Scan
from db.queries import patient_overview, study_with_masks
from ui.auth import guard, names_hidden
from ui.body_map import bsi_absent_reason, show_bsi_regions
from ui.common import Keys, account, database, models
from ui.images import opacity_slider, show_overlays
from ui.uploads import uploaded_scan
from workflow.ingest import ingest

FROM_FILE, EXISTING, NEW = "From the file", "An existing patient", "A new patient"
SEXES: tuple[str | None, ...] = (None, "M", "F", "O")
NOT_GIVEN = "not given"
#: Earliest study date accepted (planar MDP bone scans are not older).
FIRST_DATE = dt.date(1970, 1, 1)
#: Icon of a quality caution (a scan that passed the gate, with a remark to read).
CAUTION_ICON = ":material/warning:"


def _patient_label(p: dict[str, Any]) -> str:
    born = f"born {p['birth_year']}" if p["birth_year"] else "birth year not given"
    scans = f"{p['studies']} scan{'s' if p['studies'] != 1 else ''}"
    parts = [str(p["pseudonym"]), str(p["sex"] or "sex not given"), born]
    parts += [str(p["primary_tumour"] or "primary not given"), scans]
    return " · ".join(parts + (["synthetic"] if p["synthetic"] else []))


def _choose_patient(scan: Scan, patients: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Widgets for the patient; return ``ingest``'s patient arguments and a problem ('' if none)."""
    choices = (FROM_FILE, EXISTING, NEW) if patients else (FROM_FILE, NEW)
    choice = st.radio("Patient", choices, horizontal=True)
    if choice == FROM_FILE:
        st.caption(
            "The patient is found, or created, by a pseudonym derived from the file's patient "
            "ID; the ID and name themselves are never stored. A file without an ID (an "
            "exported image) makes a new patient."
        )
        return {}, ""
    if choice == EXISTING:
        ids = [int(p["id"]) for p in patients]
        labels = {int(p["id"]): _patient_label(p) for p in patients}
        chosen = st.session_state.get(Keys.PATIENT_ID)
        pid = st.selectbox(
            "Existing patient",
            ids,
            index=ids.index(chosen) if chosen in ids else 0,
            format_func=labels.__getitem__,
        )
        return {"patient_id": int(pid)}, ""
    meta = scan.meta
    c1, c2, c3, c4 = st.columns(4)
    pseudonym = c1.text_input("Pseudonym", help="Never a name or a hospital ID").strip()
    sex = c2.selectbox(
        "Sex", SEXES, index=SEXES.index(meta.sex), format_func=lambda s: s or NOT_GIVEN
    )
    birth_year = c3.number_input(
        "Birth year",
        min_value=1900,
        max_value=dt.date.today().year,
        value=meta.birth_date.year if meta.birth_date else None,
        step=1,
    )
    primary = c4.selectbox(
        "Primary tumour",
        PRIMARIES,
        index=None,
        placeholder="choose or type",
        accept_new_options=True,
    )
    synthetic = st.checkbox(
        "Synthetic patient (phantom scan)",
        value=meta.source_format == "phantom" or meta.manufacturer == PHANTOM_MANUFACTURER,
    )
    problem = ""
    if not pseudonym:
        problem = "Give the new patient a pseudonym."
    elif any(p["pseudonym"] == pseudonym for p in patients):
        problem = f"A patient {pseudonym!r} exists already: choose them as an existing patient."
    fields = {
        "pseudonym": pseudonym,
        "sex": sex,
        "birth_year": None if birth_year is None else int(birth_year),
        "primary_tumour": primary.strip() if primary and primary.strip() else None,
        "synthetic": synthetic,
    }
    return {"patient": fields}, problem


def _link(page: str, label: str, icon: str) -> None:
    # The target page may not be registered in st.navigation (yet, or in a test that runs
    # this page alone): then say where to find it instead of failing.
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitAPIException:
        st.caption(f"{label}: open it from the menu.")


def _fmt(value: float | None, spec: str) -> str:
    return "not reported" if value is None else format(value, spec)


def _show_result(shown: dict[str, Any]) -> None:
    study, analysis = shown["study"], shown["analysis"]
    st.divider()
    st.subheader(
        f"Result: study {study['id']}" if names_hidden() else f"Result: {study['source_name']}"
    )
    if shown["created"]:
        st.success(
            f"Stored as study {study['id']} of patient {shown['pseudonym']}, "
            f"dated {study['study_date'] or 'without a date'}."
        )
    else:
        analysed = "analysed now" if shown["analysed_now"] else "not analysed again"
        st.info(
            f"This file was stored before (study {study['id']} of patient "
            f"{shown['pseudonym']}, dated {study['study_date'] or 'without a date'}): it was "
            f"{analysed}, and the patient and date chosen above were not applied. "
            "The stored result is shown."
        )
    # the gate's cautions as stored with the analysis (a result from an older session
    # may lack the key): each one right under the verdict, to be read with the results
    cautions = list(analysis.get("quality_cautions") or ())
    if analysis["quality"] == "ok":
        st.success(
            "Quality: a diagnostic whole-body bone scan, as far as the quality gate can tell."
        )
        for caution in cautions:
            st.warning(caution, icon=CAUTION_ICON)
    else:
        st.warning(
            f"Quality: {analysis['quality']} The models' masks are shown for inspection, but "
            "no burden is reported as reliable for this scan."
        )
    cols = st.columns(6)
    for column, name, key, threshold in (
        (cols[0], "Metastasis", "metastasis_probability", analysis["metastasis_threshold"]),
        (cols[1], "Bladder", "bladder_probability", THRESHOLD),
    ):
        p = analysis[key]
        called = p is not None and analysis["quality"] == "ok"
        why = (
            "the paper's threshold"
            if threshold == THRESHOLD
            else "this model's threshold, calibrated on phantom scans it was neither "
            "trained nor tested on"
        )
        column.metric(
            f"{name} probability",
            _fmt(p, ".2f"),
            delta=("positive" if p >= threshold else "negative") if called else None,
            delta_color="off",
            delta_arrow="off",
            help=f"Positive at {threshold:.2f} or above ({why})."
            + ("" if called else " Not called: the scan failed the quality gate."),
        )
    cols[2].metric(
        "BSTBI",
        _fmt(analysis["bstbi"], ".4f"),
        help="Bone Scan Tumour Burden Index: the mean of the 4 display images' values (0-1).",
    )
    bsi = analysis.get("bsi")
    cols[3].metric(
        "BSI",
        ("under 18" if analysis.get("bsi_withheld") else "not reported")
        if bsi is None
        else f"{bsi:.2f} %",
        help="Bone Scan Index: the percent of the skeleton's mass that metastasis involves "
        "(each region's involved fraction, the larger of the two views, times its share "
        "of skeletal mass).",
    )
    hotspots = analysis["hotspots"]
    cols[4].metric("Hotspots", "not reported" if hotspots is None else str(hotspots))
    cols[5].metric("Lesion area (cm²)", _fmt(analysis["lesion_area_cm2"], ".1f"))
    per_image = analysis["bstbi_images"]
    st.table(
        {
            "BSTBI": list(VIEWS),
            **{
                f"grey level {g}": [_fmt(per_image.get((v, g)), ".4f") for v in VIEWS]
                for g in GREY_LEVELS
            },
        }
    )
    st.subheader("Bone Scan Index by region")
    reason = bsi_absent_reason(analysis, skeleton_network=shown.get("skeleton_network"))
    if reason is None:
        show_bsi_regions(shown.get("skeletons"), analysis.get("bsi_regions"), key="upload-bsi")
    else:
        st.info(reason, icon=":material/skeleton:")
    timings = analysis["timings_s"]
    stages = " · ".join(f"{k} {v:.2f} s" for k, v in timings.items())
    st.caption(
        f"Analysed on {analysis['device']} by {analysis['model_version']} in "
        f"{sum(timings.values()):.2f} s ({stages})."
    )
    # the analysis' notes repeat the cautions ("quality: ..."), shown above already
    repeated = {f"quality: {c}" for c in cautions}
    for note in shown["notes"]:
        if note not in repeated:
            st.caption(f"Note: {note}")

    st.subheader("Images")
    opacity = opacity_slider(Keys.UPLOAD_OPACITY)
    show_overlays(
        shown["display"],
        shown["masks"],
        opacity,
        caption_extra={k: f"BSTBI {v:.4f}" for k, v in per_image.items()},
    )
    st.subheader("Next")
    st.caption("The review and patient pages open on this study and its patient.")
    _link("app_pages/review.py", "Review the lesions", ":material/rule:")
    _link("app_pages/patient.py", "Follow the patient", ":material/timeline:")


guard("upload")
st.title("Upload and analyse")
st.caption(
    "Analyse a whole-body bone scan and store it with its result: the study, the models' "
    "masks, the lesions and the burden. A decision aid for a physician, not a diagnosis."
)

try:
    loaded = models()
except ModelFileError as exc:
    st.error(
        f"No usable model: {exc}. Put a trained model folder in `models/` (or point "
        "`BONESCAN_MODELS` at one) and reload this page. The Read a scan page works "
        "without a model."
    )
    st.stop()

files, scan = uploaded_scan("Drop a file to analyse it.")
digest = sha256_of(files)
meta = scan.meta
st.caption(
    f"Read {', '.join(scan.views)} from {meta.source_format}"
    + (f" ({meta.manufacturer})" if meta.manufacturer else "")
    + "."
)

shown: dict[str, Any] | None = st.session_state.get(Keys.UPLOAD_RESULT)
if shown is not None and shown["digest"] != digest:
    shown = None  # the result of other files: not these

st.subheader("Patient and study date")
with database() as db:
    patients = patient_overview(db)
patient_args, problem = _choose_patient(scan, patients)
file_date = meta.study_date
study_date = st.date_input(
    "Study date",
    value=file_date,
    min_value=FIRST_DATE,
    max_value=max(dt.date.today(), file_date or FIRST_DATE),
    format="YYYY-MM-DD",
    help="From the file; correct it when the file's date is wrong.",
)
if file_date is None:
    st.caption("The file gives no study date: enter it to place the scan on the timeline.")
elif study_date is not None and study_date != file_date:
    st.caption(f"The file says {file_date.isoformat()}; the date entered is the one stored.")
if not problem and study_date is None:
    problem = "Enter the study date."
if not problem and shown is not None:
    problem = f"Stored as study {shown['study']['id']}."

clicked = st.button(
    "Analyse and store", type="primary", icon=":material/play_arrow:", disabled=bool(problem)
)
if problem:
    st.caption(problem)

if clicked:
    with st.status("Analysing the scan...", expanded=True) as status:
        st.write(
            f"Quality gate, display images, classifier and segmenter on {loaded.device}, "
            "then lesions and burden, then storing (a file stored before is not analysed "
            "again)..."
        )
        try:
            with database() as db:
                done = ingest(
                    db,
                    files,
                    models=loaded,
                    account=account(),
                    scan=scan,
                    study_date=study_date if isinstance(study_date, dt.date) else None,
                    **patient_args,
                )
                stored = study_with_masks(db, done.study_id)
                pid = int(stored["study"]["patient_id"])
                pseudonym = next(p["pseudonym"] for p in patient_overview(db) if p["id"] == pid)
        except ValueError as exc:
            status.update(label="Nothing was stored", state="error")
            st.error(f"The scan could not be analysed and stored: {exc}")
            st.stop()
        seconds = sum(stored["analysis"]["timings_s"].values())
        status.update(
            label=f"Analysed and stored in {seconds:.1f} s"
            if done.created
            else "Stored before: showing the stored result",
            state="complete",
            expanded=False,
        )
    shown = {
        "digest": digest,
        "created": done.created,
        "analysed_now": done.result is not None,
        "study": stored["study"],
        "analysis": stored["analysis"],
        "masks": stored["masks"],
        "skeletons": stored.get("skeletons") or {},
        # known for a result analysed now; None for one stored before (other models)
        "skeleton_network": (loaded.skeleton is not None) if done.result is not None else None,
        "pseudonym": pseudonym,
        "display": display_images(scan),
        "notes": () if done.result is None else done.result.notes,
    }
    st.session_state[Keys.UPLOAD_RESULT] = shown
    st.session_state[Keys.STUDY_ID] = done.study_id
    st.session_state[Keys.PATIENT_ID] = pid

if shown is not None:
    _show_result(shown)
