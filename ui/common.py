"""What every page shares: session-state keys (the only place they are named) and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlite_utils import Database

from core.config import db_path
from core.device import describe_device
from db.connection import open_db


class Keys:
    """Session-state keys; pages use these constants, never string literals."""

    #: The patient chosen on one page and opened on another (patient id, int).
    PATIENT_ID = "patient_id"


@contextmanager
def database() -> Iterator[Database]:
    """Open a fresh connection to the store for this script run."""
    with open_db(db_path()) as db:
        yield db


@st.cache_resource
def device_label() -> str:
    """The inference device in words, computed once per process."""
    return describe_device()
