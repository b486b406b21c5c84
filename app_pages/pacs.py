"""From PACS: find a patient's NM studies on the PACS, import and analyse them, send results."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core.networks.models import ModelFileError
from ui.auth import guard, names_hidden
from ui.common import Keys, account, database, models
from ui.pacs_panel import (
    NOT_CONFIGURED,
    found_rows,
    outcome_line,
    pacs_settings,
    sendable,
    sent_line,
    study_label,
)
from workflow.pacs.dicomweb import PacsClient, PacsError, RemoteStudy
from workflow.pacs.pull import PullOutcome, pull_studies
from workflow.pacs.push import send_results

BY_ID, BY_DATE = "Patient ID", "Study dates"
#: How far back a date search starts by default (days).
DEFAULT_DAYS = 30

guard("upload")
st.title("From PACS")
st.caption(
    "Find a patient's nuclear-medicine studies on the PACS, import and analyse the "
    "whole-body bone scans among them, and, if you choose, send the results back into "
    "the original study. A decision aid for a physician, not a diagnosis."
)

settings, problem = pacs_settings()
if settings is None:
    st.error(problem)
    st.stop()
if not settings.dicomweb_url:
    st.info(NOT_CONFIGURED, icon=":material/cloud_off:")
    st.stop()
try:
    client = PacsClient(settings)
except ValueError as exc:
    st.error(f"The PACS settings are wrong: {exc}")
    st.stop()
st.caption(f"PACS: {client.url} ({client.source_ae}).")

st.subheader("Search")
by = st.radio("Search by", (BY_ID, BY_DATE), horizontal=True)
today = dt.date.today()
patient_id: str | None = None
since: dt.date | None = None
until: dt.date | None = None
if by == BY_ID:
    patient_id = st.text_input("Patient ID", help="The PACS's patient ID, matched exactly.")
    patient_id = patient_id.strip() or None
else:
    picked = st.date_input(
        "Study dates",
        value=(today - dt.timedelta(days=DEFAULT_DAYS), today),
        max_value=today,
        format="YYYY-MM-DD",
    )
    # a range being picked holds one date until the second click
    dates = [d for d in picked if isinstance(d, dt.date)] if isinstance(picked, tuple) else []
    if dates:
        since, until = dates[0], dates[-1]
ready_to_search = patient_id is not None or since is not None
if st.button("Search", icon=":material/search:", disabled=not ready_to_search):
    st.session_state.pop(Keys.PACS_PICK, None)  # picks among the previous search's studies
    try:
        st.session_state[Keys.PACS_FOUND] = client.find_studies(
            patient_id=patient_id, since=since, until=until
        )
    except PacsError as exc:
        st.session_state.pop(Keys.PACS_FOUND, None)
        st.error(f"The PACS did not answer the search: {exc}. Nothing was stored.")

found: list[RemoteStudy] = st.session_state.get(Keys.PACS_FOUND, [])
by_uid = {s.study_instance_uid: s for s in found}
if Keys.PACS_FOUND in st.session_state:
    if not found:
        st.info("The PACS holds no NM study that matches.")
    else:
        st.dataframe(found_rows(found, names_hidden()), hide_index=True)
        if names_hidden():
            st.caption("Patient names and IDs are hidden (sidebar: Hide patient names).")

if found:
    st.subheader("Import and analyse")
    try:
        loaded = models()
    except ModelFileError as exc:
        st.error(
            f"No usable model: {exc}. Put a trained model folder in `models/` (or point "
            "`BONESCAN_MODELS` at one) and reload this page."
        )
        st.stop()
    chosen = st.multiselect(
        "Studies to import",
        list(by_uid),
        format_func=lambda uid: study_label(by_uid[uid], names_hidden()),
        key=Keys.PACS_PICK,
        placeholder="Choose one or more studies",
    )
    if st.button(
        "Import and analyse", type="primary", icon=":material/download:", disabled=not chosen
    ):
        bar = st.progress(0.0, text=f"Importing {len(chosen)} studies...")

        def _advance(done: int, total: int) -> None:
            bar.progress(done / total, text=f"{done} of {total} studies imported")

        with database() as db:
            outcomes = pull_studies(
                db, client, chosen, models=loaded, account=account(), progress=_advance
            )
        st.session_state[Keys.PACS_OUTCOMES] = outcomes
        st.session_state[Keys.PACS_SENT] = {}
        stored = [o.study_id for o in outcomes if o.study_id is not None]
        if stored:
            st.session_state[Keys.STUDY_ID] = stored[-1]

shown: list[PullOutcome] = st.session_state.get(Keys.PACS_OUTCOMES, [])
if shown:
    st.subheader("Imported")
    for outcome in shown:
        line = outcome_line(outcome, by_uid)
        if outcome.status == "failed":
            st.error(line)
        elif outcome.status == "already stored":
            st.info(line)
        else:
            st.success(line)
    sent: dict[int, str] = st.session_state.setdefault(Keys.PACS_SENT, {})
    ready = sendable(shown)
    if ready:
        st.subheader("Send results to the PACS")
        st.caption(
            "Optional: each view's overlay as a Secondary Capture and the burden as a "
            "structured report (TID 1500), added to the study on the PACS."
        )
    for study_id in ready:
        st.markdown(f"**Study {study_id}**")
        if st.button(
            "Send results to PACS", key=f"{Keys.PACS_SEND}{study_id}", icon=":material/upload:"
        ):
            try:
                with database() as db:
                    result = send_results(db, client, study_id, account=account())
                sent[study_id] = sent_line(result, client.url)
            except (PacsError, ValueError) as exc:
                st.error(f"Study {study_id}: the results were not sent: {exc}")
        if study_id in sent:
            st.success(sent[study_id])
