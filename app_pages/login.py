"""Sign in: the only page of a store with accounts until someone signs in."""

from __future__ import annotations

import streamlit as st

from db.access import account_count
from ui.auth import try_sign_in
from ui.common import Keys, database

st.title("Bone-scan tumour burden")
st.subheader("Sign in")
notice = st.session_state.pop(Keys.LOGIN_NOTICE, None)
if notice:
    st.info(notice, icon=":material/logout:")
with database() as db:
    accounts = account_count(db)
if not accounts:
    st.warning(
        "This store holds real (non-synthetic) patients and no account yet, so nobody can "
        "sign in. An administrator makes the first account at the server: "
        "`python -m core user add NAME --role admin` (see docs/trust.md).",
        icon=":material/admin_panel_settings:",
    )

left, _ = st.columns([1, 2])
with left.form("sign_in", clear_on_submit=True):
    username = st.text_input("Username", autocomplete="username")
    password = st.text_input("Password", type="password", autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
if submitted:
    if try_sign_in(username, password):
        st.rerun()
    st.error("Wrong username or password.", icon=":material/block:")
st.caption(
    "Patient data is shown only after sign-in. Accounts are managed at the server "
    "(`python -m core user ...`); ask an administrator for one."
)
