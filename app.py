"""Entry point: ``streamlit run app.py``. It only routes; pages do the work.

Every run first asks :func:`ui.auth.gate` who the session is. Signed out (a store with
accounts), the navigation holds only the login page, registered under every page's
address: a bookmark or an expired session's page shows the login, and after sign-in the
same address opens the page asked for. A page a role may not use is left out of that
role's navigation (a viewer has no upload page); the store refuses its writes anyway.
"""

from __future__ import annotations

import streamlit as st

from ui.auth import gate, may, reported_errors, sidebar
from ui.common import device_label, start_logging

st.set_page_config(
    page_title="Bone-scan tumour burden", page_icon=":material/radiology:", layout="wide"
)
start_logging()

HOME = "app_pages/home.py"
LOGIN = "app_pages/login.py"
#: (section, page script, title, icon, address, action its role must be allowed; None:
#: browsing). The scripts live in app_pages/, not pages/: a folder named pages/ beside
#: this script switches Streamlit to its older file-based navigation until the first
#: st.navigation call, so the first deep link into a fresh server ("/review-lesions")
#: showed "Page not found" and a sidebar of file names. No address is a file name.
PAGES: tuple[tuple[str, str, str, str, str, str | None], ...] = (
    ("", HOME, "Home", ":material/home:", "start", None),
    ("Scans", "app_pages/upload.py", "Upload and analyse", ":material/upload:",
     "upload-and-analyse", "upload"),
    ("Scans", "app_pages/pacs.py", "From PACS", ":material/cloud_download:", "from-pacs", "upload"),
    ("Scans", "app_pages/review.py", "Review lesions", ":material/rule:", "review-lesions", None),
    ("Scans", "app_pages/viewer.py", "Read a scan", ":material/search:", "read-a-scan", None),
    ("Patients", "app_pages/patient.py", "Patient", ":material/person:", "patient-record", None),
    ("Patients", "app_pages/cohort.py", "Cohort", ":material/groups:", "cohort-table", None),
    ("Model", "app_pages/performance.py", "Model performance", ":material/monitoring:",
     "model-performance", None),
    ("Model", "app_pages/model_lab.py", "Model lab", ":material/science:", "model-lab", None),
)  # fmt: skip


def _pages() -> dict[str, list[st.Page]]:
    """The signed-in navigation: every page the session's role may use."""
    sections: dict[str, list[st.Page]] = {}
    for section, script, title, icon, address, action in PAGES:
        if action is None or may(action):
            page = st.Page(script, title=title, icon=icon, url_path=address, default=script == HOME)
            sections.setdefault(section, []).append(page)
    return sections


def _login_pages() -> list[st.Page]:
    """The signed-out navigation: the login page under every page's address."""
    return [
        st.Page(
            LOGIN,
            title="Sign in",
            icon=":material/login:",
            url_path=address,
            default=script == HOME,
            visibility="visible" if script == HOME else "hidden",
        )
        for _, script, _, _, address, _ in PAGES
    ]


with reported_errors("showing this page"):
    access = gate()
    if access.signed_in:
        navigation = st.navigation(_pages())
    else:
        navigation = st.navigation(_login_pages(), position="hidden")
    sidebar(access)
    if access.signed_in:
        st.sidebar.caption(f"Inference device: {device_label()}")
    navigation.run()
