"""What every page shares: session-state keys (the only place they are named) and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlite_utils import Database

from core.config import db_path
from core.logs import setup_logging
from core.networks.device import describe_device
from core.networks.models import LoadedModels, load_models
from db.connection import open_db
from db.model_registry import get_model
from workflow.model_versions import active_model_dir, check_identity

#: Account name written to the audit log while no login exists (demo mode).
DEMO_ACCOUNT = "demo"


class Keys:
    """Session-state keys; pages use these constants, never string literals."""

    #: The patient chosen on one page and opened on another (patient id, int).
    PATIENT_ID = "patient_id"
    #: The study chosen on one page and opened on another (study id, int).
    STUDY_ID = "study_id"
    #: Cohort page: the patient table's widget key (its row selection opens the patient).
    COHORT_TABLE = "cohort_table"
    #: Cohort page: the page number of the paginated patient table.
    COHORT_PAGE = "cohort_page"
    #: Model performance page: the labelled dataset folder to evaluate on.
    EVAL_DATASET = "eval_dataset"
    #: Review page: prefix of the lesion table's widget key (the analysis and its review
    #: state are appended, so that a saved change redraws the table from the store).
    REVIEW_EDITOR = "review_editor"
    #: Review page: the last saved change (dict: ``analysis_id``, ``lesion_id``, ``text``),
    #: shown while that analysis is open until the next change replaces it (not once:
    #: the drawing canvas reruns the page by itself).
    REVIEW_NOTICE = "review_notice"
    #: The upload page's last stored result, shown again while its files stay dropped.
    UPLOAD_RESULT = "upload_result"
    #: The upload page's overlay opacity slider.
    UPLOAD_OPACITY = "upload_opacity"
    #: Patient page: its patient selectbox (kept in step with PATIENT_ID).
    PATIENT_PICK = "patient_pick"
    #: Patient page: the burden index the trajectory follows (``"bstbi"`` or ``"bsi"``).
    PATIENT_METRIC = "patient_metric"
    #: The signed-in account's username (str); absent while signed out or in demo mode.
    ACCOUNT = "account"
    #: The signed-in account's role, re-read from the store on every run (str), or None
    #: in demo mode (every action allowed); absent while signed out.
    ROLE = "role"
    #: When the signed-in session last did something (aware UTC datetime), for idle expiry.
    LAST_ACTIVITY = "last_activity"
    #: A message for the login page (why the session was signed out), shown once.
    LOGIN_NOTICE = "login_notice"
    #: The sidebar switch "Hide patient names" (bool): pseudonyms only, pages and exports.
    HIDE_NAMES = "hide_names"
    #: From PACS page: the studies the last search found (list of RemoteStudy).
    PACS_FOUND = "pacs_found"
    #: From PACS page: the pick list of studies to import (Study Instance UIDs).
    PACS_PICK = "pacs_pick"
    #: From PACS page: what the last import did (list of PullOutcome), shown until the next.
    PACS_OUTCOMES = "pacs_outcomes"
    #: From PACS page: what was sent back per study ({study id: sentence}).
    PACS_SENT = "pacs_sent"
    #: From PACS page: prefix of each "Send results to PACS" button's key (study id appended).
    PACS_SEND = "pacs_send"


@contextmanager
def database() -> Iterator[Database]:
    """Open a fresh connection to the store for this script run."""
    with open_db(db_path()) as db:
        yield db


@st.cache_resource(show_spinner=False)
def start_logging() -> str:
    """Set up logging (file and console, :func:`core.logs.setup_logging`) once per process.

    Returns:
        The log file's path.
    """
    return str(setup_logging())


@st.cache_resource
def device_label() -> str:
    """The inference device in words, computed once per process."""
    return describe_device()


# Two entries: the version in use and the one before it, so that a session still
# analysing with the old models after a promotion does not make the process load twice.
@st.cache_resource(show_spinner="Loading the models...", max_entries=2)
def _load_models(directory: str, weights_sha256: str) -> LoadedModels:
    del weights_sha256  # part of the key: other weights in the same folder load anew
    return load_models(directory)


def models() -> LoadedModels:
    """The store's model version in use, loaded once per process and version.

    The version is read from the store on every call (:func:`active_model_dir`: the
    promoted one, else the shipped folder, ``$BONESCAN_MODELS`` or ``models/``), so a
    promotion or rollback switches the dashboard at the next script run. A page calls
    this once per run and analyses with that one object, so no analysis mixes two models.

    Returns:
        Both networks, on the GPU when there is one.

    Raises:
        core.networks.models.ModelFileError: If the folder is missing, incomplete, its
            weights do not match their recorded hash, or it holds another version than
            the store registered (not cached: the next run tries again).
    """
    with database() as db:
        version, folder = active_model_dir(db)
        registered = get_model(db, version)
    weights = "" if registered is None else str(registered["weights_sha256"])
    loaded = _load_models(str(folder), weights)
    check_identity(loaded, version, weights or None)
    return loaded


def account() -> str:
    """The account that page actions are recorded under (the audit log's ``who``).

    Returns:
        The signed-in account's username, or :data:`DEMO_ACCOUNT` when nobody is signed
        in (demo mode, where the store allows every write; in a store with accounts the
        store refuses a write by this name).
    """
    username = st.session_state.get(Keys.ACCOUNT)
    return str(username) if username else DEMO_ACCOUNT
