"""The Model lab page's sections: the reviewed scans, the fine-tune job and its progress,
the candidate beside the active model, the model versions with promote and roll back,
and the re-analysis of the cohort.

Everyone who may browse sees every section; the controls that start a job or change the
model in use are shown to those who may manage models (admins, :func:`ui.auth.may`), and
the store refuses them to anyone else all the same. Each run first relaunches a job whose
process died (:func:`workflow.jobs.recover_jobs`), so a running job outlives a page
reload and a server restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlite_utils import Database

from core.auth import AccessDenied
from core.config import AGE_GROUPS, db_path
from core.evaluation.model_performance import table2_frame
from db import jobs as job_store
from db.model_registry import list_models, rollback
from ui.auth import may, refusal
from ui.common import account, database
from workflow.centre_dataset import reviewed_summary
from workflow.jobs import (
    cancel_job,
    job_alive,
    job_log_tail,
    job_progress,
    recover_jobs,
    start_fine_tune,
    start_reanalyse,
)
from workflow.model_versions import figures_line, promote_version


class LabKeys:
    """Session-state keys of this page (its widgets and its one-time notice)."""

    #: The fine-tune's time budget, minutes.
    BUDGET = "model_lab_budget"
    #: The fine-tune's cap on training steps (0: as many as the budget allows).
    MAX_STEPS = "model_lab_max_steps"
    #: The version chosen to promote.
    PROMOTE_PICK = "model_lab_promote_pick"
    #: The promotion's confirmation tick.
    PROMOTE_CONFIRM = "model_lab_promote_confirm"
    #: The rollback's confirmation tick.
    ROLLBACK_CONFIRM = "model_lab_rollback_confirm"
    #: What the last action did (str), shown once after the page reruns.
    NOTICE = "model_lab_notice"
    #: The job the progress panel watches (int): when it ends, the whole page reruns.
    WATCHING = "model_lab_watching"


#: The fine-tune's default training time budget, minutes.
DEFAULT_BUDGET_MIN = 40
#: Longest budget the form accepts, minutes (a day).
MAX_BUDGET_MIN = 24 * 60
#: Seconds between refreshes of the progress panel while a job runs.
REFRESH_S = 5
#: Validation figures drawn on the curve, with their names.
CURVE: Mapping[str, str] = {
    "auc_metastasis": "AUC metastasis (crops)",
    "acc_metastasis": "accuracy metastasis (scans)",
    "dice_metastasis": "Dice metastasis",
    "auc_bladder": "AUC bladder (crops)",
    "dice_bladder": "Dice bladder",
}
MARKS_COLUMN = "Marks per negative scan"
ACTIONS_REFUSED = (AccessDenied, ValueError, OSError)


def _when(stamp: str | None) -> str:
    return "" if not stamp else stamp[:16].replace("T", " ") + " UTC"


def _minutes(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _notice(text: str) -> None:
    """Keep a sentence for the next run and rerun the page (it then shows the new state)."""
    st.session_state[LabKeys.NOTICE] = text
    st.rerun()


# --- the reviewed scans -------------------------------------------------------------


def reviewed_section(db: Database) -> dict[str, Any]:
    """Show what an export of the reviewed studies would hold; return the summary."""
    st.subheader("The centre's reviewed scans")
    summary = reviewed_summary(db)
    if not summary["scans"]:
        st.info(
            "No study is marked reviewed yet. A physician marks a study reviewed on the "
            "Review lesions page, with the scan's label; those studies are what a fine-tune "
            "learns from.",
            icon=":material/info:",
        )
    else:
        columns = st.columns(4)
        columns[0].metric("Reviewed scans", summary["scans"])
        columns[1].metric("With metastasis", summary["with_metastasis"])
        columns[2].metric("Without metastasis", summary["without_metastasis"])
        columns[3].metric("Patients", summary["patients"])
        split = summary["split"]
        st.dataframe(
            pd.DataFrame(
                [
                    {"split": name, "patients": split[name]["patients"],
                     "scans": split[name]["scans"]}
                    for name in split
                ]
            ),
            hide_index=True,
        )  # fmt: skip
        st.caption(
            "The split a fine-tune would make, by patient with the paper's 7-level rule: "
            "train learns, calibration chooses the threshold, test compares the candidate "
            "with the active model. No patient is in two splits."
            + (
                f" {summary['synthetic_patients']} of the patients are synthetic."
                if summary.get("synthetic_patients")
                else ""
            )
        )
    if summary.get("skipped"):
        with st.expander(f"{len(summary['skipped'])} reviewed studies cannot be used"):
            st.markdown("\n".join(f"- {line}" for line in summary["skipped"]))
    return summary


# --- starting a fine-tune -----------------------------------------------------------


def fine_tune_section(
    db: Database, summary: Mapping[str, Any], active: job_store.Job | None
) -> None:
    """The admin's form: a time budget and "Fine-tune the active model"."""
    st.subheader("Fine-tune the active model")
    st.caption(
        "Trains the model in use further on the reviewed scans (train split), in the "
        "background, within the time budget, and refits its lesion scorer to the marks "
        "the physicians kept, removed or drew; then chooses its threshold on the "
        "calibration split and measures it beside the model in use on the test split. "
        "The model in use does not change until an admin promotes the candidate."
    )
    if not may("models"):
        st.caption(refusal("models"))
        return
    minutes = st.number_input(
        "Training time budget (minutes)",
        min_value=1,
        max_value=MAX_BUDGET_MIN,
        value=DEFAULT_BUDGET_MIN,
        step=5,
        key=LabKeys.BUDGET,
        help="The training loop's time; exporting, calibrating and comparing come on top "
        "(minutes). A job that is interrupted carries on within what is left.",
    )
    with st.expander("Advanced"):
        max_steps = st.number_input(
            "At most this many training steps (0: as many as the budget allows)",
            min_value=0,
            max_value=100_000,
            value=0,
            step=50,
            key=LabKeys.MAX_STEPS,
            help="A cap for a quick trial run; the time budget still applies.",
        )
    why_not = None
    if active is not None:
        why_not = f"Job {active.id} ({active.kind}) is {active.state}: one job at a time."
    elif not summary["scans"]:
        why_not = "No reviewed scan to learn from yet."
    if why_not:
        st.caption(why_not)
    if st.button(
        "Fine-tune the active model",
        type="primary",
        icon=":material/model_training:",
        disabled=why_not is not None,
    ):
        try:
            job_id = start_fine_tune(
                db,
                time_budget_s=float(minutes) * 60,
                account=account(),
                overrides={"steps": int(max_steps), "val_every": max(1, int(max_steps))}
                if max_steps
                else None,
            )
        except ACTIONS_REFUSED as exc:
            st.error(f"The fine-tune did not start: {exc}")
            return
        st.session_state[LabKeys.WATCHING] = job_id
        _notice(f"Fine-tune job {job_id} started ({minutes} minutes of training).")


# --- the running job ----------------------------------------------------------------


def curve_figure(history: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    """The validation curve: each figure of :data:`CURVE` against the step, or None."""
    fig = go.Figure()
    steps = [row.get("step") for row in history]
    for key, label in CURVE.items():
        values = [row.get(key) for row in history]
        if any(isinstance(v, int | float) for v in values):
            fig.add_scatter(x=steps, y=values, mode="lines+markers", name=label)
    if not fig.data:
        return None
    fig.update_layout(
        title="Validation while training (held-out part of the train split)",
        xaxis_title="step",
        yaxis_title="figure",
        yaxis_range=[0, 1.02],
        height=320,
        margin={"t": 40, "b": 40},
    )
    return fig


def _show_progress(job: job_store.Job) -> None:
    record = job_progress(job)
    if record is None:
        st.caption("No progress recorded yet.")
        return
    step, total = record.get("step"), record.get("total")
    unit = "steps" if job.kind == "fine-tune" else "studies"
    if isinstance(step, int) and isinstance(total, int) and total > 0:
        st.progress(min(1.0, step / total), text=f"{step} of {total} {unit}")
    columns = st.columns(3)
    columns[0].metric("Elapsed (this session)", _minutes(record.get("elapsed_s")))
    columns[1].metric("Time left (estimate)", _minutes(record.get("eta_s")))
    loss = record.get("loss") or {}
    if loss:
        columns[2].metric("Loss", " / ".join(f"{v:.3f}" for v in loss.values()))
    fig = curve_figure(record.get("validation_history") or [])
    if fig is not None:
        st.plotly_chart(fig, width="stretch")
    for note in record.get("notes") or []:
        st.caption(note)


def _last_outcome(job: job_store.Job) -> None:
    """Say how the latest job ended."""
    if job.state == "failed":
        st.error(
            f"The last job ({job.kind}, job {job.id}, started by {job.started_by}) failed: "
            f"{job.message}. The model in use did not change.",
            icon=":material/error:",
        )
    elif job.kind == "reanalyse":
        st.success(
            f"The last job re-analysed {job.result.get('studies', 0)} studies with "
            f"{job.result.get('model', 'the active model')} ({_when(job.finished_at)}).",
            icon=":material/check_circle:",
        )
    else:
        st.success(
            f"The last fine-tune (job {job.id}) finished {_when(job.finished_at)}: "
            f"candidate {job.result.get('candidate', '?')}, compared below.",
            icon=":material/check_circle:",
        )


def job_panel() -> None:
    """The active job's stage and progress, or how the last job ended (refreshes itself).

    It first relaunches the active job if its process died (on every run of the page
    and every refresh of the panel), so a job outlives a reload and a server restart.
    """
    relaunched = recover_jobs(db_path())
    if relaunched:
        st.info(
            f"Job {relaunched[0]} had stopped (a restart?); it was started again and "
            "carries on from where it stopped.",
            icon=":material/restart_alt:",
        )
    with database() as db:
        active = job_store.active_job(db)
        latest = job_store.list_jobs(db, limit=1)
    watching = st.session_state.get(LabKeys.WATCHING)
    if active is None:
        if watching is not None:
            # the job this page watched just ended: redraw everything (comparison, versions)
            st.session_state.pop(LabKeys.WATCHING, None)
            st.rerun(scope="app")
        if latest:
            _last_outcome(latest[0])
        else:
            st.caption("No job has run yet.")
        return
    st.session_state[LabKeys.WATCHING] = active.id
    what = "Fine-tune" if active.kind == "fine-tune" else "Re-analysis"
    st.markdown(
        f"**{what}, job {active.id}**: {active.message or active.state} (started by "
        f"{active.started_by}, {_when(active.started_at or active.created_at)})"
    )
    if not job_alive(active):
        st.warning(
            "Its process is not running (another page is starting it again); it carries "
            "on from where it stopped.",
            icon=":material/hourglass_empty:",
        )
    _show_progress(active)
    refresh, cancel = st.columns(2)
    refresh.button("Refresh", icon=":material/refresh:")  # a click reruns this panel
    if may("models") and cancel.button(
        "Cancel this job",
        icon=":material/cancel:",
        help="Stops the job's process and marks it failed. The model in use does not "
        "change; a fine-tune's checkpoint stays in its folder.",
    ):
        try:
            with database() as db:
                cancel_job(db, active.id, account())
        except ValueError as exc:  # it ended on its own meanwhile
            st.info(str(exc), icon=":material/info:")
        except AccessDenied as exc:
            st.error(str(exc), icon=":material/block:")
        else:
            st.session_state.pop(LabKeys.WATCHING, None)
            st.rerun(scope="app")
    log = job_log_tail(active)
    if log:
        with st.expander("The job's output (last lines)"):
            st.code(log, language=None)


def job_section(active: job_store.Job | None) -> None:
    """The progress panel, refreshed every :data:`REFRESH_S` seconds while a job runs."""
    st.subheader("Job")
    panel = st.fragment(job_panel, run_every=dt.timedelta(seconds=REFRESH_S) if active else None)
    panel()


# --- the candidate beside the active model ------------------------------------------


def comparison_frame(comparison: Mapping[str, Any], names: Mapping[str, str]) -> pd.DataFrame:
    """Both models' Table 2 (overall and by age group) and marks per negative scan.

    Args:
        comparison: A fine-tune result's ``comparison`` (``candidate`` and ``active``
            grouped figures).
        names: ``{"candidate": label, "active": label}`` for the model column.

    Returns:
        One row per group and model (each group's candidate row, then the active one),
        columns ``model``, those of :func:`core.evaluation.model_performance.table2_frame`
        and :data:`MARKS_COLUMN`.
    """
    frames = []
    for rank, side in enumerate(("candidate", "active")):
        figures = comparison[side]
        frame = table2_frame(figures)
        groups = [*AGE_GROUPS, None]
        marks = [
            (figures["by_age"][g] if g else figures["overall"]).get("marks_per_negative_scan")
            for g in groups
        ]
        frame[MARKS_COLUMN] = ["n/a" if m is None else f"{m:.2f}" for m in marks]
        frame.insert(0, "model", names[side])
        frame["_group"] = range(len(frame))
        frame["_side"] = rank
        frames.append(frame)
    both = pd.concat(frames, ignore_index=True).sort_values(["_group", "_side"])
    return both.drop(columns=["_group", "_side"]).reset_index(drop=True)


def comparison_section(db: Database) -> None:
    """The latest finished fine-tune's candidate beside the model it started from."""
    finished = [j for j in job_store.list_jobs(db, kind="fine-tune") if j.state == "finished"]
    if not finished:
        return
    job = finished[0]
    result = job.result
    comparison = result.get("comparison")
    if not isinstance(comparison, Mapping):
        return
    candidate, parent = str(result.get("candidate")), str(result.get("parent"))
    st.subheader("Candidate beside the active model")
    test = comparison.get("test_set") or {}
    st.caption(
        f"Fine-tune job {job.id}, finished {_when(job.finished_at)}: candidate "
        f"**{candidate}** from **{parent}**, both measured on the test split "
        f"({test.get('scans', '?')} scans, {test.get('with_metastasis', '?')} with "
        f"metastasis, {test.get('patients', '?')} patients) that neither trained on."
    )
    names = {"candidate": f"candidate {candidate}", "active": f"active {parent}"}
    st.dataframe(comparison_frame(comparison, names), hide_index=True, width="stretch")
    calibration = result.get("calibration") or {}
    data = result.get("data") or {}
    steps = result.get("steps") or {}
    facts = []
    if data:
        facts.append("data: " + ", ".join(f"{k} {v.get('scans')} scans" for k, v in data.items()))
    if steps:
        facts.append(f"steps: classifier {steps.get('classifier')}, segmenter "
                     f"{steps.get('segmenter')}")  # fmt: skip
    if calibration:
        facts.append(
            f"threshold {calibration.get('threshold')} chosen on "
            f"{calibration.get('scans')} calibration scans"
        )
    if facts:
        st.caption("; ".join(facts) + ".")
    st.caption(
        f"{MARKS_COLUMN}: hotspots the model marks, on average, on a scan without "
        "metastasis (false marks a physician would remove). Promote the candidate below "
        "only if it does better on what matters here."
    )


# --- the model versions -------------------------------------------------------------


def versions_frame(models: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The registered versions, newest first, as the page's table shows them."""
    rows = []
    for m in reversed(models):
        card = m.get("card") or {}
        rows.append(
            {
                "version": m["version"],
                "kind": m["kind"],
                "parent": m.get("parent") or "",
                "created": _when(m.get("created_at")),
                "by": m.get("created_by") or "",
                "figures": figures_line(card),
                "weights hash": str(m.get("weights_sha256", ""))[:12],
                "active": "in use" if m.get("active") else "",
            }
        )
    return pd.DataFrame(rows)


def versions_section(db: Database) -> None:
    """The registered versions, with Promote and Roll back for admins."""
    st.subheader("Model versions")
    models = list_models(db)
    if not models:
        st.caption("No version registered yet (the shipped one is, once a job or an analysis "
                   "has met it).")  # fmt: skip
        return
    st.dataframe(versions_frame(models), hide_index=True, width="stretch")
    st.caption(
        "Figures: the candidate's on its fine-tune's test split; the shipped model's as "
        "its card records them. Weights: the start of the sha256 of both weight files."
    )
    if not may("models"):
        st.caption(refusal("models"))
        return
    left, right = st.columns(2)
    with left:
        choices = [str(m["version"]) for m in reversed(models) if not m["active"]]
        if not choices:
            st.caption("Every registered version is the one in use.")
        else:
            version = st.selectbox("Version to put in use", choices, key=LabKeys.PROMOTE_PICK)
            sure = st.checkbox(
                f"I have compared {version} with the model in use; put it in use for everyone",
                key=LabKeys.PROMOTE_CONFIRM,
            )
            if st.button("Promote", icon=":material/upgrade:", disabled=not sure):
                try:
                    promote_version(db, str(version), account())
                except ACTIONS_REFUSED as exc:
                    st.error(f"{version} was not promoted: {exc}")
                else:
                    st.session_state.pop(LabKeys.PROMOTE_CONFIRM, None)
                    _notice(f"{version} is now the model in use. Re-analyse the cohort "
                            "below to give every stored study its analysis.")  # fmt: skip
    with right:
        sure = st.checkbox(
            "Go back to the version in use before this one", key=LabKeys.ROLLBACK_CONFIRM
        )
        if st.button("Roll back", icon=":material/undo:", disabled=not sure):
            try:
                now = rollback(db, account())
            except ACTIONS_REFUSED as exc:
                st.error(f"Nothing was rolled back: {exc}")
            else:
                st.session_state.pop(LabKeys.ROLLBACK_CONFIRM, None)
                _notice(f"Rolled back: {now} is the model in use again.")


# --- re-analysis and the job history --------------------------------------------------


def reanalyse_section(db: Database, active: job_store.Job | None) -> None:
    """ "Re-analyse the cohort with the active model" (admins)."""
    st.subheader("Re-analyse the cohort")
    st.caption(
        "Analyses every stored study that has no analysis by the model in use, in the "
        "background; earlier analyses are kept, and the pages show the active model's."
    )
    if not may("models"):
        st.caption(refusal("models"))
        return
    if active is not None:
        st.caption(f"Job {active.id} is {active.state}: one job at a time.")
    if st.button(
        "Re-analyse the cohort with the active model",
        icon=":material/replay:",
        disabled=active is not None,
    ):
        try:
            job_id = start_reanalyse(db, account=account())
        except ACTIONS_REFUSED as exc:
            st.error(f"The re-analysis did not start: {exc}")
            return
        st.session_state[LabKeys.WATCHING] = job_id
        _notice(f"Re-analysis job {job_id} started.")


def history_section(db: Database) -> None:
    """The latest jobs."""
    found = job_store.list_jobs(db, limit=20)
    if not found:
        return
    with st.expander(f"Jobs ({len(found)} latest)"):
        st.dataframe(
            pd.DataFrame(
                [
                    {"job": j.id, "kind": j.kind, "state": j.state, "by": j.started_by,
                     "created": _when(j.created_at), "finished": _when(j.finished_at),
                     "message": j.message}
                    for j in found
                ]
            ),
            hide_index=True,
            width="stretch",
        )  # fmt: skip


def render() -> None:
    """The whole page below its title."""
    notice = st.session_state.pop(LabKeys.NOTICE, None)
    if notice:
        st.success(notice, icon=":material/check_circle:")
    with database() as db:
        active = job_store.active_job(db)
        summary = reviewed_section(db)
        fine_tune_section(db, summary, active)
    job_section(active)
    with database() as db:
        comparison_section(db)
        versions_section(db)
        reanalyse_section(db, active)
        history_section(db)
