"""Entry point: ``streamlit run app.py``. It only routes; pages do the work."""

from __future__ import annotations

import streamlit as st

from ui.common import device_label

st.set_page_config(
    page_title="Bone-scan tumour burden", page_icon=":material/radiology:", layout="wide"
)

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/viewer.py", title="Read a scan", icon=":material/search:"),
    ]
)
st.sidebar.caption(f"Inference device: {device_label()}")
navigation.run()
