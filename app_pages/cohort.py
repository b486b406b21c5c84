"""Cohort: every patient in one filterable, paginated table, summary plots and a CSV export."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.burden.charts import MODEL_CHANGE_WARNING
from core.burden.response import (
    DEFAULT_THRESHOLD,
    NO_BSTBI,
    PROGRESSOR,
    RESPONDER,
    RESPONSES,
    SINGLE_SCAN,
    STABLE,
    classify_response,
)
from core.config import AGE_GROUPS, REPO_ROOT
from db.queries import cohort_summary
from ui.auth import guard
from ui.common import Keys, database

#: The patient page, written separately; the table opens it once it exists.
PATIENT_PAGE = "app_pages/patient.py"
UNKNOWN = "unknown"
NOT_ANALYSED = "not analysed"
# Neither red nor green: those mean metastasis and bladder on every image of the product.
RESPONSE_COLOURS = {
    RESPONDER: "#1f5fa8",
    STABLE: "#9aa0a6",
    PROGRESSOR: "#e07b00",
    SINGLE_SCAN: "#d7dbe0",
    NO_BSTBI: "#eceff1",
}
PAGE_SIZES = (25, 50, 100, 200)
SORTS = {
    "Patient": "pseudonym",
    "Latest BSTBI": "latest_bstbi",
    "Change from baseline": "bstbi_change",
    "Latest BSI": "bsi",
    "Last study": "last_study_date",
    "Primary tumour": "primary_tumour",
}
COLUMNS = {
    "pseudonym": "Patient",
    "synthetic": "Synthetic",
    "primary_tumour": "Primary tumour",
    "sex": "Sex",
    "age_group": "Age group",
    "metastasis": "Metastasis",
    "n_studies": "Scans",
    "last_study_date": "Last study",
    "baseline_bstbi": "Baseline BSTBI",
    "latest_bstbi": "Latest BSTBI",
    "bsi": "Latest BSI (%)",
    "bstbi_change": "Change from baseline",
    "response": "Response",
    "model_version": "Model version",
}

guard()
st.title("Cohort")
st.caption(
    "Every patient in the store, with the burden of the latest reliable analysis (quality "
    "ok, with a BSTBI) and its change from the first one, and that analysis' Bone Scan "
    "Index where a skeleton map was read. Click a row to open the patient."
)

with database() as db:
    # All rows at once (docs/benchmarks.md times it): the plots and the CSV need the whole
    # filtered cohort; only the table is paged.
    rows = cohort_summary(db)
if not rows:
    st.info(
        "The store holds no patient yet. Upload a scan, or fill the store with the synthetic "
        "demo cohort: `python -m core demo-cohort`."
    )
    st.stop()

cohort = pd.DataFrame(rows)
cohort["primary_tumour"] = cohort["primary_tumour"].fillna(UNKNOWN)
cohort["sex"] = cohort["sex"].fillna(UNKNOWN)
cohort["age_group"] = cohort["age_group"].fillna(UNKNOWN)
cohort["metastasis"] = cohort["metastasis"].map({True: "yes", False: "no"}).fillna(NOT_ANALYSED)
if "bsi" not in cohort:
    cohort["bsi"] = np.nan  # a store read before it kept the BSI
for column in ("latest_bstbi", "baseline_bstbi", "bstbi_change", "bsi"):
    cohort[column] = pd.to_numeric(cohort[column], errors="coerce")
# The latest reliable analysis' model version; "baseline -> latest" where the two differ,
# since the change from baseline then mixes two models.
latest_version = cohort["model_version"].fillna("").astype(str)
baseline_version = cohort["baseline_model_version"].fillna("").astype(str)
mixed = (baseline_version != "") & (baseline_version != latest_version)
cohort["model_version"] = latest_version.where(~mixed, baseline_version + " -> " + latest_version)

with st.container(border=True):
    st.markdown("**Filters** (an empty choice keeps everyone)")
    c1, c2, c3, c4 = st.columns(4)
    primaries = c1.multiselect(
        "Primary tumour", sorted(cohort["primary_tumour"].unique()), placeholder="All"
    )
    sexes = c2.multiselect("Sex", sorted(cohort["sex"].unique()), placeholder="All")
    ages = c3.multiselect(
        "Age group (at the last study)",
        [g for g in (*AGE_GROUPS, UNKNOWN) if g in set(cohort["age_group"])],
        placeholder="All",
    )
    metastasis = c4.multiselect(
        "Metastasis (latest analysis)", ["yes", "no", NOT_ANALYSED], placeholder="All"
    )
    c5, c6, c7, c8 = st.columns([1, 1, 2, 1])
    threshold = c5.number_input(
        "Response threshold X (BSTBI)",
        min_value=0.001,
        max_value=0.5,
        value=DEFAULT_THRESHOLD,
        step=0.005,
        format="%.3f",
        help="Change from baseline <= -X: responder; >= +X: progressor; else stable.",
    )
    responses = c6.multiselect("Response", RESPONSES, placeholder="All")
    bstbi_range = c7.slider(
        "Latest BSTBI (index, 0-1)", min_value=0.0, max_value=1.0, value=(0.0, 1.0), step=0.01
    )
    keep_unanalysed = c8.checkbox(
        "Include patients without a reliable BSTBI",
        value=True,
        help="Patients with no analysis of diagnostic quality have no BSTBI to filter on.",
    )

# One scan has no change to report (the query gives 0 there: baseline and latest coincide).
cohort.loc[cohort["n_studies"] < 2, "bstbi_change"] = np.nan

cohort["response"] = classify_response(
    cohort["latest_bstbi"], cohort["n_studies"], cohort["bstbi_change"], threshold
)

keep = pd.Series(True, index=cohort.index)
for column, chosen in (
    ("primary_tumour", primaries),
    ("sex", sexes),
    ("age_group", ages),
    ("metastasis", metastasis),
    ("response", responses),
):
    if chosen:
        keep &= cohort[column].isin(chosen)
bstbi = cohort["latest_bstbi"]
keep &= bstbi.between(*bstbi_range) | (bstbi.isna() & keep_unanalysed)
shown = cohort[keep]

n = len(shown)
n_synthetic = int(shown["synthetic"].sum())
st.markdown(f"**{n}** of {len(cohort)} patients match.")
if n_synthetic:
    st.info(
        f"{n_synthetic} of these {n} patients are synthetic (generated phantom, for "
        "demonstration); the Synthetic column marks them."
    )
if not n:
    st.warning("No patient matches these filters.")
    st.stop()

# ---- the table, paginated -------------------------------------------------------------
s1, s2, s3, s4 = st.columns([2, 1, 1, 1])
sort_label = s1.selectbox("Sort by", list(SORTS))
descending = s2.toggle(
    "Descending", value=sort_label in ("Latest BSTBI", "Change from baseline", "Latest BSI")
)
page_size = int(s3.selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(50)))
n_pages = max(1, math.ceil(n / page_size))
# A narrower filter can leave the remembered page past the end; the widget would refuse it.
if st.session_state.get(Keys.COHORT_PAGE, 1) > n_pages:
    st.session_state[Keys.COHORT_PAGE] = n_pages
page = int(
    s4.number_input(f"Page (of {n_pages})", 1, n_pages, value=1, step=1, key=Keys.COHORT_PAGE)
)
ordered = shown.sort_values(
    [SORTS[sort_label], "pseudonym"], ascending=[not descending, True], na_position="last"
)
first = (page - 1) * page_size
page_rows = ordered.iloc[first : first + page_size]
st.caption(f"Rows {first + 1}-{first + len(page_rows)} of {n}")

event = st.dataframe(
    page_rows,
    key=Keys.COHORT_TABLE,
    on_select="rerun",
    selection_mode="single-row",
    hide_index=True,
    width="stretch",
    # up to 15 rows in view without scrolling the table (35 px a row, plus the header)
    height=35 * (min(len(page_rows), 15) + 1) + 3,
    placeholder="-",
    column_order=[c for c in COLUMNS if c != "baseline_bstbi"],
    column_config={
        "pseudonym": "Patient",
        "synthetic": st.column_config.CheckboxColumn("Synthetic"),
        "primary_tumour": "Primary tumour",
        "sex": "Sex",
        "age_group": "Age group",
        "metastasis": "Metastasis",
        "n_studies": st.column_config.NumberColumn("Scans", format="%d"),
        "last_study_date": "Last study",
        "latest_bstbi": st.column_config.NumberColumn("Latest BSTBI", format="%.3f"),
        "bstbi_change": st.column_config.NumberColumn("Change from baseline", format="%+.3f"),
        "bsi": st.column_config.NumberColumn(
            "Latest BSI (%)",
            format="%.2f",
            help="Bone Scan Index of the latest reliable analysis: percent of the skeletal "
            "mass involved. Empty without a skeleton map of that scan.",
        ),
        "response": "Response",
        "model_version": st.column_config.TextColumn(
            "Model version",
            help="The model version of the latest reliable analysis; 'A -> B' when the "
            "baseline was analysed by another version (the change may then come from the "
            "models, not the disease).",
        ),
    },
)
if mixed[keep].any():
    st.caption(
        f"{int(mixed[keep].sum())} patient(s) have a baseline and a latest analysis by "
        f"different model versions ('A -> B' in the Model version column): "
        f"{MODEL_CHANGE_WARNING}. Re-analysing the cohort with the model in use compares "
        "like with like."
    )
selected = event.selection.rows if event is not None else []
if selected and selected[0] < len(page_rows):
    chosen = page_rows.iloc[selected[0]]
    st.session_state[Keys.PATIENT_ID] = int(chosen["patient_id"])
    if (REPO_ROOT / PATIENT_PAGE).is_file():
        # Until the app routes the page, switching fails; the choice is kept either way.
        with contextlib.suppress(StreamlitPageNotFoundError):
            st.switch_page(PATIENT_PAGE)
    st.info(f"{chosen['pseudonym']} chosen; the patient page is not available yet.")

export = ordered[list(COLUMNS)].rename(columns=COLUMNS)
st.download_button(
    f"Download these {n} patients (CSV)",
    export.to_csv(index=False).encode("utf-8"),
    file_name="cohort.csv",
    mime="text/csv",
    icon=":material/download:",
)

# ---- summary plots ---------------------------------------------------------------------
st.subheader("Burden across the cohort")
with_bstbi = shown.dropna(subset=["latest_bstbi"])
left, right = st.columns(2)
if with_bstbi.empty:
    left.info("No patient shown has a reliable BSTBI to plot.")
else:
    order = (
        with_bstbi.groupby("primary_tumour")["latest_bstbi"].median().sort_values().index.tolist()
    )
    box = px.box(
        with_bstbi,
        x="primary_tumour",
        y="latest_bstbi",
        points="all",
        hover_data={"pseudonym": True, "bstbi_change": ":+.3f"},
        category_orders={"primary_tumour": order},
        labels={
            "primary_tumour": "Primary tumour",
            "latest_bstbi": "Latest BSTBI (index, 0-1)",
            "pseudonym": "Patient",
            "bstbi_change": "Change from baseline",
        },
        title="Latest BSTBI by primary tumour",
    )
    box.update_traces(marker={"color": RESPONSE_COLOURS[RESPONDER], "size": 5})
    left.plotly_chart(box, width="stretch")

counts = shown.groupby(["primary_tumour", "response"]).size().rename("patients").reset_index()
bars = px.bar(
    counts,
    x="primary_tumour",
    y="patients",
    color="response",
    color_discrete_map=RESPONSE_COLOURS,
    category_orders={"response": list(RESPONSES)},
    labels={"primary_tumour": "Primary tumour", "patients": "Patients", "response": "Response"},
    title=f"Responders vs progressors (change from baseline beyond ±{threshold:.3f})",
)
right.plotly_chart(bars, width="stretch")

followed = with_bstbi[with_bstbi["n_studies"] >= 2].sort_values("bstbi_change", ascending=False)
if not followed.empty:
    waterfall = go.Figure(
        go.Bar(
            x=list(range(1, len(followed) + 1)),
            y=followed["bstbi_change"],
            marker_color=[RESPONSE_COLOURS[r] for r in followed["response"]],
            customdata=followed[["pseudonym", "primary_tumour", "response"]].to_numpy(),
            hovertemplate="%{customdata[0]} (%{customdata[1]}): %{y:+.3f}, %{customdata[2]}"
            "<extra></extra>",
        )
    )
    for y in (threshold, -threshold):
        waterfall.add_hline(y=y, line_dash="dash", line_color="#5f6368")
    waterfall.update_layout(
        title="Change of BSTBI from baseline, one bar per followed patient (waterfall)",
        xaxis_title="Patients with 2 or more scans, largest rise first",
        yaxis_title="BSTBI change (latest - baseline, index units)",
        showlegend=False,
    )
    st.plotly_chart(waterfall, width="stretch")
st.caption(
    f"Rule: responder when the latest BSTBI is at least {threshold:.3f} below the baseline "
    f"(first reliable analysis), progressor when at least {threshold:.3f} above, stable in "
    "between; patients with one scan have no change. BSTBI alone is not the PCWG3 reading "
    "(>= 2 new lesions, 2+2 rule), which the patient page shows."
)
