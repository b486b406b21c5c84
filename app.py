"""Entry point: ``streamlit run app.py``. It only routes; pages do the work."""

from __future__ import annotations

import streamlit as st

from ui.common import device_label

st.set_page_config(
    page_title="Bone-scan tumour burden", page_icon=":material/radiology:", layout="wide"
)

navigation = st.navigation(
    {
        "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
        "Scans": [
            st.Page("pages/upload.py", title="Upload and analyse", icon=":material/upload:"),
            st.Page("pages/review.py", title="Review lesions", icon=":material/rule:"),
            st.Page("pages/viewer.py", title="Read a scan", icon=":material/search:"),
        ],
        "Patients": [
            st.Page("pages/patient.py", title="Patient", icon=":material/person:"),
            st.Page("pages/cohort.py", title="Cohort", icon=":material/groups:"),
        ],
        "Model": [
            st.Page(
                "pages/performance.py", title="Model performance", icon=":material/monitoring:"
            ),
        ],
    }
)
st.sidebar.caption(f"Inference device: {device_label()}")
navigation.run()
