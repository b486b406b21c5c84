"""Model lab: fine-tune the model in use on the centre's reviewed scans, compare, promote."""

from __future__ import annotations

import streamlit as st

from ui.auth import guard
from ui.model_lab import render

guard()
st.title("Model lab")
st.caption(
    "Teach the model this centre's scans: the studies its physicians marked reviewed "
    "train a candidate from the model in use, which is then measured beside it, the "
    "paper's way, on scans neither has learnt from. An admin decides whether the "
    "candidate goes into use, and can go back."
)
render()
