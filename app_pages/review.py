"""Review lesions: exclude false positives, draw what the model missed, mark the study reviewed."""

from __future__ import annotations

import zlib
from typing import cast

import numpy as np
import streamlit as st

# Imported here, not in ui/: it registers its frontend on import, which needs the
# running Streamlit of a page. It ships no type information (pyproject.toml's mypy
# overrides say so).
from streamlit_drawable_canvas import st_canvas

from core.burden import lesion_review as rv
from core.config import VIEWS
from db.queries import lesion_history, patient_overview, patient_time_series, study_with_masks
from db.store import BSTBI_COLUMNS
from ui import review_panel as panel
from ui.auth import guard, may, names_hidden, refusal
from ui.common import Keys, account, database
from workflow.review_changes import save_review

guard()
st.title("Review lesions")
st.caption(
    "Untick a lesion the model found that is not a metastasis (a fracture, a degenerative "
    "joint, the injection site), draw a lesion it missed, erase part of a mark or mark the "
    "bladder: BSTBI is recomputed at once and each change is saved under your account; "
    '"Undo last change" takes back the newest one. Then mark the study reviewed with '
    "your scan label. The Bone Scan Index (BSI) follows where the scan has a skeleton map. "
    "The model's own output is never changed."
)

with database() as db:
    patients = [p for p in patient_overview(db) if p["studies"]]
    if not patients:
        st.info(
            "No analysed study yet. Analyse a scan on the upload page, or fill the store "
            "with the synthetic demo cohort (`python -m core demo-cohort`)."
        )
        st.stop()

    # Open what another page chose (a study, else a patient), else the first patient.
    wanted_study = st.session_state.get(Keys.STUDY_ID)
    wanted_patient = st.session_state.get(Keys.PATIENT_ID)
    data = None
    if wanted_study is not None:
        try:
            data = study_with_masks(db, int(wanted_study))
            wanted_patient = data["study"]["patient_id"]
        except ValueError:
            wanted_study = None
    patient_ids = [cast(int, p["id"]) for p in patients]
    names = {
        cast(int, p["id"]): f"{p['pseudonym']}{' (synthetic)' if p['synthetic'] else ''}"
        for p in patients
    }
    patient_id = st.selectbox(
        "Patient",
        patient_ids,
        index=patient_ids.index(wanted_patient) if wanted_patient in patient_ids else 0,
        format_func=names.__getitem__,
    )
    analysed = [s for s in patient_time_series(db, patient_id) if s["analysis_id"]][::-1]
    if not analysed:
        st.info(f"{names[patient_id]} has no analysed study yet.")
        st.stop()
    study_ids = [int(s["study_id"]) for s in analysed]
    labels = {
        int(s["study_id"]): (
            f"{s['study_date'] or 'no date'} - "
            + (f"study {s['study_id']}" if names_hidden() else str(s["source_name"]))
            + " - "
            + (f"BSTBI {s['bstbi']:.4f}" if s["bstbi"] is not None else "burden not reliable")
            + (f", BSI {s['bsi']:.2f} %" if s.get("bsi") is not None else "")
        )
        for s in analysed
    }
    study_id = st.selectbox(
        "Analysed study (latest first)",
        study_ids,
        index=study_ids.index(wanted_study) if wanted_study in study_ids else 0,
        format_func=labels.__getitem__,
    )
    st.session_state[Keys.PATIENT_ID] = patient_id
    st.session_state[Keys.STUDY_ID] = study_id
    if data is None or int(data["study"]["id"]) != study_id:
        data = study_with_masks(db, study_id)
    analysis, masks, lesions = data["analysis"], data["masks"], data["lesions"]
    # the edits of this very analysis, read with it: the burden, the pictures and the
    # annotation panel's state all come from one read
    edits = data["mask_edits"]
    # the skeleton maps stored with the analysis: the BSI is recomputed on them
    images = rv.study_images(
        data["study"],
        data["views"],
        masks,
        data.get("skeletons"),
        bsi_withheld=analysis.get("bsi_withheld") if analysis else None,
    )
    history = lesion_history(db, [int(les["id"]) for les in lesions])
    reliable = analysis["quality"] == "ok"

    st.caption(
        f"Analysis {analysis['id']} by `{analysis['model_version']}` on {analysis['device']}, "
        f"{analysis['created_at']}."
    )
    if not reliable:
        st.warning(
            f"Quality: {analysis['quality']} The burden of this scan is not reliable: "
            "the figures below are shown for inspection only and are not stored."
        )
    else:
        # the gate's cautions stored with the analysis, to be read with its results
        for caution in analysis["quality_cautions"]:
            st.warning(caution, icon=":material/warning:")

    # Kept until the next saved change, not shown once: the canvas reruns the page by
    # itself (its background loads, a stroke ends), which would wipe a one-off notice.
    notice = st.session_state.get(Keys.REVIEW_NOTICE)
    if notice is not None and notice["analysis_id"] != analysis["id"]:
        notice = None
    if notice is not None:
        st.success(notice["text"], icon=":material/check_circle:")

    model = rv.model_burden(images, masks, lesions)
    reviewed = rv.burden(images, masks, lesions, edits=edits)
    suffix = "" if reliable else " (not reliable)"
    cols = st.columns(5)
    cols[0].metric(f"BSTBI, model{suffix}", f"{model.scan_bstbi:.4f}")
    cols[1].metric(
        f"BSTBI, reviewed{suffix}",
        f"{reviewed.scan_bstbi:.4f}",
        delta=f"{reviewed.scan_bstbi - model.scan_bstbi:+.4f}"
        if reviewed.scan_bstbi != model.scan_bstbi
        else None,
        delta_color="off",
    )
    if reviewed.bsi is None or model.bsi is None:
        cols[2].metric(
            f"BSI, reviewed{suffix}",
            "under 18" if images.bsi_withheld else "none",
            help=images.bsi_withheld
            or "No skeleton map is stored with this analysis, so it has no Bone Scan Index.",
        )
    else:
        cols[2].metric(
            f"BSI, reviewed{suffix}",
            f"{reviewed.bsi:.2f} %",
            delta=f"{reviewed.bsi - model.bsi:+.2f} %" if reviewed.bsi != model.bsi else None,
            delta_color="off",
            help=f"Bone Scan Index, percent of skeletal mass; the model's: {model.bsi:.2f} %.",
        )
    removed_spots = reviewed.hotspots - model.hotspots
    cols[3].metric(
        "Hotspots, reviewed", reviewed.hotspots, delta=removed_spots or None, delta_color="off"
    )
    cols[4].metric("Lesion area, reviewed", f"{reviewed.lesion_area_cm2:.1f} cm²")

    left, right = st.columns([5, 4])
    with left:
        st.subheader("Lesions")
        if not lesions:
            st.info("The model found no lesion on this study: nothing to review.")
        # a viewer sees the lesions but cannot change them (the store refuses anyway)
        may_review = may("review")
        if not may_review:
            st.caption(refusal("review"))
        reason = st.selectbox("Reason for excluding a lesion", rv.REASONS, disabled=not may_review)
        table = panel.lesion_table(lesions, history)
        state = zlib.crc32(",".join(les["status"] for les in lesions).encode())
        editor_key = f"{Keys.REVIEW_EDITOR}-{analysis['id']}-{state:08x}"
        edited = st.data_editor(
            table,
            key=editor_key,
            hide_index=True,
            disabled=[c for c in table.columns if c != "include"] if may_review else True,
            column_config={
                "include": st.column_config.CheckboxColumn(
                    "Include", help="Untick to exclude the lesion from the burden"
                ),
                "view": "View",
                "number": st.column_config.NumberColumn("No.", format="%d"),
                "region": "Skeletal region",
                "area_cm2": st.column_config.NumberColumn("Area (cm²)", format="%.2f"),
                "uptake_ratio": st.column_config.NumberColumn(
                    "Uptake ratio", format="%.2f", help="Mean lesion counts / normal bone"
                ),
                "status": "Status",
                "reason": "Reason",
            },
        )
        changes = rv.changed_statuses(lesions, edited["include"].to_dict()) if may_review else {}
        if changes:
            after = save_review(
                db,
                analysis=analysis,
                images=images,
                masks=masks,
                lesions=lesions,
                changes=changes,
                reason=reason,
                account=account(),
            )
            by_id = {int(les["id"]): les for les in lesions}
            what = ", ".join(
                f"{by_id[i]['view']} {by_id[i]['component']} "
                + (f"excluded ({reason})" if s == "removed" else "included again")
                for i, s in changes.items()
            )
            st.session_state[Keys.REVIEW_NOTICE] = {
                "analysis_id": analysis["id"],
                "lesion_id": next(iter(changes)),
                "text": f"{what}: "
                + panel.burden_step(reviewed.scan_bstbi, after.scan_bstbi, reviewed.bsi, after.bsi)
                + ("" if reliable else " (not reliable, not stored)")
                + f". Saved by {account()}.",
            }
            del st.session_state[editor_key]
            st.rerun()

        st.markdown("**BSTBI of each display image**")
        st.dataframe(
            {
                "image": [f"{v}, grey level {g}" for v, g in BSTBI_COLUMNS],
                "model": [model.per_image.get(k) for k in BSTBI_COLUMNS],
                "reviewed": [reviewed.per_image.get(k) for k in BSTBI_COLUMNS],
            },
            hide_index=True,
            column_config={
                "model": st.column_config.NumberColumn("Model", format="%.4f"),
                "reviewed": st.column_config.NumberColumn("Reviewed", format="%.4f"),
            },
        )

    with right:
        st.subheader("On the image")
        selected = None
        if lesions:
            ids = [int(les["id"]) for les in lesions]
            last = notice["lesion_id"] if notice is not None else None
            by_id = {int(les["id"]): les for les in lesions}
            selected = st.selectbox(
                "Highlight lesion",
                ids,
                index=ids.index(last) if last in ids else 0,
                format_func=lambda i: (
                    f"{by_id[i]['view']} {by_id[i]['component']} - "
                    f"{(by_id[i]['skeletal_region'] or 'region unknown').replace('_', ' ')}"
                    + ("" if rv.included(by_id[i]) else " (excluded)")
                ),
            )
        st.caption(
            "Grey level 1. Red: lesions counted; grey ring: excluded; yellow ring: the "
            "highlighted lesion; green: bladder (left out of BSTBI)."
        )
        top, bottom = panel.body_rows(images.displays)
        pictures: dict[str, np.ndarray] = {}
        for column, view in zip(st.columns(2), [v for v in VIEWS if v in masks], strict=False):
            view_lesions = [les for les in lesions if les["view"] == view]
            regions = {
                int(les["id"]): panel.lesion_region(les, images.components[view])
                for les in view_lesions
            }
            excluded = [regions[int(les["id"])] for les in view_lesions if not rv.included(les)]
            picture = panel.review_picture(
                images.displays[(view, 1)],
                reviewed.masks[view],
                np.logical_or.reduce(excluded) if excluded else None,
                [panel.lesion_mark(les, regions[int(les["id"])]) for les in view_lesions],
                highlight=regions.get(selected) if selected is not None else None,
                scale=panel.CANVAS_SCALE,
            )
            pictures[view] = picture
            scale = picture.shape[0] // images.displays[(view, 1)].shape[0]
            column.image(picture[top * scale : bottom * scale], caption=view, width="stretch")

        if selected is not None:
            changes_of = history.get(selected, [])
            st.markdown("**History of the highlighted lesion**")
            if changes_of:
                st.dataframe(
                    [
                        {
                            "when (UTC)": h["at"],
                            "who": h["account"],
                            "change": f"{h['before'] or '-'} -> {h['after'] or '-'}",
                            "reason": h["reason"],
                        }
                        for h in changes_of
                    ],
                    hide_index=True,
                )
            else:
                st.caption("Unchanged since the model found it.")

    if may_review and masks:
        st.subheader("Annotate")
        panel.annotation_panel(
            db,
            st_canvas,
            analysis=analysis,
            images=images,
            masks=masks,
            lesions=lesions,
            edits=edits,
            pictures=pictures,
            rows=(top, bottom),
            state=panel.review_state_tag(lesions, edits),
            bstbi_now=reviewed.scan_bstbi,
            account=account(),
            bsi_now=reviewed.bsi,
        )
    st.subheader("Reviewed")
    panel.reviewed_mark_panel(
        db,
        analysis=analysis,
        images=images,
        masks=masks,
        may_review=may_review,
        bstbi_now=reviewed.scan_bstbi,
        account=account(),
        bsi_now=reviewed.bsi,
    )
