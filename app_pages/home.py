"""Home: what the product does and the state of the store."""

from __future__ import annotations

import streamlit as st

from core.config import db_path
from db.queries import patient_overview, store_summary, studies_without_analysis
from ui.auth import guard, may
from ui.common import Keys, database

guard()
st.title("Bone-scan tumour burden")
st.markdown(
    """
Reads **99mTc-MDP whole-body bone scans** (planar anterior and posterior views,
1024 x 256) and follows the method of *Liu et al. 2021*:

1. a **ResNet34** classifier tells, on 256 x 256 crops, whether a scan shows bone
   metastasis and the bladder (threshold 0.5, or the model's calibrated one);
2. a **UNet** outlines the metastasis and bladder pixels; with the shipped models a
   **lesion scorer** then weighs each of its marks as a reader does (is the other side
   as hot, is its bone always that hot, where is it) and the scan is called from those
   scores instead of the classifier's crops, so paired normal uptake is not marked;
3. the **Bone Scan Tumour Burden Index** sums the lesions' uptake on the inverted
   8-bit display, leaving out the bladder, and averages it over 4 images
   (anterior and posterior, at 2 grey levels):
"""
)
st.latex(r"\mathrm{BSTBI} = \frac{K\,S_L}{(K-1)\,S_L + S_R - S_B},\qquad K = 5")
st.markdown(
    """
where *S* is the sum of `255 - pixel` over the lesions *L*, the whole image *R* and the
bladder *B*. It is 0 without lesions and 1 when every non-bladder pixel is a lesion.
Physicians remove false-positive lesions (fractures, degenerative joints, injection
sites) before the index is reported, and follow it across treatments.

Beside it, a skeleton network labels the skeleton's regions (skull, spine, ribs, pelvis
and the limbs, left and right), and the **Bone Scan Index** (BSI) gives the percent of
the skeleton's mass that metastasis involves: each region's involved fraction (the
larger of the two views) times its share of skeletal mass (ICRP 23), summed:
"""
)
st.latex(r"\mathrm{BSI}\ (\%) = 100 \sum_{r} \mathrm{involved}(r)\,\mathrm{share}(r)")
st.markdown(
    """
A scan without a skeleton map (no skeleton network, or no skeleton found) has no BSI.

Every figure here is a decision aid for a nuclear-medicine physician, not a diagnosis.
"""
)

with database() as db:
    summary = store_summary(db)
    patients = patient_overview(db)
    waiting = len(studies_without_analysis(db))
for row in patients:
    row["treatments"] = row["treatments"] or "none recorded"

st.subheader("The store")
cols = st.columns(3)
cols[0].metric("Patients", summary.patients)
cols[1].metric("Studies", summary.studies)
cols[2].metric("Synthetic patients", summary.synthetic_patients)
st.caption(f"SQLite file: `{db_path()}`")
if waiting:
    st.warning(
        f"{waiting} of {summary.studies} stored studies are waiting for analysis. On a first "
        "start `scripts/run.sh` analyses the demo cohort in the background "
        "(`python -m core analyze-stored`; log in data/logs/); reload to see progress.",
        icon=":material/hourglass_top:",
    )
if summary.patients and summary.synthetic_patients == summary.patients:
    st.info("Every patient in this store is synthetic (generated phantom), for demonstration.")

if patients:
    st.subheader("Patients")
    st.dataframe(
        patients,
        hide_index=True,
        column_order=(
            "pseudonym",
            "synthetic",
            "sex",
            "birth_year",
            "primary_tumour",
            "studies",
            "first_study",
            "last_study",
            "treatments",
        ),
        column_config={
            "pseudonym": "Patient",
            "sex": "Sex",
            "synthetic": st.column_config.CheckboxColumn("Synthetic"),
            "birth_year": st.column_config.NumberColumn("Born", format="%d"),
            "primary_tumour": "Primary tumour",
            "studies": "Scans",
            "first_study": "First scan",
            "last_study": "Last scan",
            "treatments": "Treatments",
        },
    )
else:
    st.info(
        "The store is empty. `bash scripts/run.sh` fills it with the synthetic demo cohort "
        "on first start, or run `python -m core demo-cohort`."
    )

if may("accounts") and st.session_state.get(Keys.ACCOUNT):
    st.subheader("Accounts")
    st.markdown(
        "Accounts are managed at the server, not in the browser: "
        "`python -m core user add NAME --role admin|clinician|viewer`, "
        "`user passwd NAME`, `user disable NAME`, `user enable NAME`, `user remove NAME`, "
        "`user list` (docs/trust.md). A viewer browses only; a clinician also uploads, "
        "reviews and records treatments; an admin also manages accounts."
    )
