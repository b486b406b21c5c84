"""Read a scan: how the product reads a file, shown before anything is stored."""

from __future__ import annotations

import streamlit as st

from core.config import VIEWS
from core.imaging.display import GREY_LEVELS, display_images
from core.imaging.quality import assess
from ui.auth import guard
from ui.uploads import uploaded_scan

UNKNOWN = "not given"

guard()
st.title("Read a scan")
st.caption(
    "Check how a file is read: views, polarity, windowing and what the file says. "
    "Nothing is stored on this page."
)

_, scan = uploaded_scan("Drop a file to see how it is read.")

verdict = assess(scan)
if verdict.ok:
    st.success("Quality: a diagnostic whole-body bone scan, as far as the quality gate can tell.")
    for caution in verdict.cautions:
        st.info(caution)
else:
    st.warning(f"Quality: {verdict.reason} No burden would be reported as reliable for it.")

meta = scan.meta
st.subheader("What was read")
st.table(
    {
        "format": [meta.source_format],
        "views": [", ".join(scan.views)],
        "polarity": [meta.polarity or "counts (DICOM)"],
        "pixel spacing (mm)": [
            "x".join(f"{s:.2f}" for s in meta.pixel_spacing_mm)
            if meta.pixel_spacing_mm
            else UNKNOWN
        ],
        "sex": [meta.sex or UNKNOWN],
        "age": [f"{meta.age:g}" if meta.age is not None else UNKNOWN],
        "study date": [meta.study_date.isoformat() if meta.study_date else UNKNOWN],
        "manufacturer": [meta.manufacturer or UNKNOWN],
    }
)
for note in meta.notes:
    st.caption(f"• {note}")

images = display_images(scan)
st.subheader("Display images (the paper's grey levels; hot = dark)")
# Always four columns, so a view keeps its proportions whether one or two were read.
shown = [(v, g) for v in VIEWS for g in GREY_LEVELS if (v, g) in images]
for column, (view, level) in zip(st.columns(4), shown, strict=False):
    column.image(images[(view, level)], caption=f"{view}, grey level {level}", clamp=True)
