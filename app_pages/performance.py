"""Model performance: the card of the model version in use, its recorded evaluation beside
the paper's figures, and an evaluation on a labelled dataset chosen on the page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from core.config import model_dir
from core.evaluation.model_performance import (
    DEMO_LABELLED_CASES,
    DEMO_LABELLED_SEED,
    NO_MODEL,
    demo_labelled_dir,
    ensure_demo_labelled,
    evaluate_with_progress,
    evaluation_report,
    has_figures,
    headline_frame,
    load_report,
    model_status,
    paper_figures,
    roc_curve,
    save_report,
    table2_frame,
)
from core.networks.models import ModelFileError
from core.scan import ScanReadError
from db.model_registry import get_model, last_activation
from ui.auth import guard
from ui.common import Keys, database, models
from workflow.model_versions import active_model_dir

#: Overlay colours of the product, reused for each label's ROC curve.
LABEL_COLOURS = {"metastasis": "#d62728", "bladder": "#2ca02c"}
BASELINE_COLOUR = "#5f6368"
UNTRAINED = "untrained"


def _mb(n: Any) -> str:
    return f"{int(n) / 1e6:.1f} MB" if isinstance(n, int) else "?"


def _reporter(bar: Any, what: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{what}: {done} of {total} scans")

    return report


def _card_facts(card: dict[str, Any]) -> dict[str, str]:
    config = card.get("config") or {}
    weights = card.get("weights") or {}
    training = card.get("training") or {}
    data = card.get("training_data")
    if isinstance(data, dict):
        data_text = ", ".join(f"{k} {v}" for k, v in data.items() if k != "data_fingerprint")
    else:
        data_text = str(data) if data else "not recorded"
    validation = training.get("validation") or {}
    params = weights.get("parameters")
    thresholds = config.get("label_thresholds")
    calibration = (card.get("calibration") or {}).get("metastasis_threshold") or {}
    if thresholds:
        threshold_text = (
            f"metastasis {thresholds[0]}, bladder {thresholds[1]}: calibrated on "
            f"{calibration.get('chosen_on', 'a held-aside set')}"
        )
    elif calibration:  # the lesion network keeps one calibrated threshold in its config
        threshold_text = (
            f"{config.get('threshold')}: calibrated on {calibration.get('chosen_on', '?')}"
        )
    else:
        threshold_text = f"{config.get('threshold', 0.5)} (the paper's)"
    facts = {
        "architecture": str(config.get("architecture", "?")),
        "parameters": f"{params / 1e6:.1f} M" if isinstance(params, int) else "?",
        "weights": f"{weights.get('file', '?')}, {weights.get('dtype', '?')}, "
        f"{_mb(weights.get('bytes'))}",
        "SHA-256": str(weights.get("sha256", "?"))[:16] + "...",
        "trained on": data_text,
        "seed": str(card.get("seed")),
        "training": ", ".join(
            f"{k} {training[k]}" for k in ("steps", "lr", "batch_size", "device") if k in training
        )
        or "not recorded",
        "validation": ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in validation.items()
        )
        or "not recorded",
    }
    if config.get("architecture") == "resnet34":
        facts["decision threshold"] = threshold_text
    else:
        pixel = config.get("metastasis_pixel_threshold")
        facts["decision threshold"] = (
            f"metastasis pixels at softmax >= {pixel}" if pixel else "argmax"
        ) + "; kept only in crops the classifier's thresholds open"
    return facts


def _in_use() -> tuple[str | None, Path, dict[str, Any] | None]:
    """Return the version in use, the folder it loads from and its registry row.

    The version every analysis of this store runs with (:func:`ui.common.models` loads
    the same one): the promoted one, else the shipped folder. Read only, since a page
    view stores nothing. A folder the store cannot name a version for (missing, a card
    unreadable) still gives the folder, whose problems the page shows.

    Returns:
        ``(version, folder, row)``: version None when it cannot be named; row None when
        the version is not registered (yet).
    """
    with database() as db:
        try:
            version, folder = active_model_dir(db, register_shipped=False)
        except ModelFileError:
            promoted = last_activation(db)
            row = get_model(db, promoted) if promoted is not None else None
            return promoted, Path(row["path"]) if row is not None else model_dir(), row
        return version, folder, get_model(db, version)


def _version_words(version: str | None, row: dict[str, Any] | None) -> str:
    """The version in use in words, for the caption above its card."""
    if version is None:
        return "No model version could be named for this folder"
    if row is None or row["kind"] == "shipped":
        origin = "the shipped models"
    else:
        origin = "a fine-tuned candidate" + (f" of `{row['parent']}`" if row["parent"] else "")
    return f"Version `{version}` ({origin}), used for every analysis in this store"


def _roc_figure(report: dict[str, Any], label: str) -> go.Figure | None:
    cases = report.get("cases") or {}
    fig = go.Figure()
    for method, rows, colour, dash in (
        ("networks", cases.get("model"), LABEL_COLOURS[label], "solid"),
        ("classical baseline", cases.get("baseline"), BASELINE_COLOUR, "dash"),
    ):
        if not rows:
            continue
        try:
            fpr, tpr = roc_curve([r[label] for r in rows], [r[f"score_{label}"] for r in rows])
        except ValueError:
            return None  # one class only: no curve
        auc = (report["overall"] if method == "networks" else report["baseline"]["overall"]).get(
            f"auc_{label}"
        )
        name = f"{method} (AUC {auc:.3f})" if auc is not None else method
        fig.add_scatter(x=fpr, y=tpr, mode="lines", name=name, line={"color": colour, "dash": dash})
    if not fig.data:
        return None
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "#bdbdbd", "dash": "dot"}
    )
    fig.update_layout(
        title=f"ROC curve: {label} (per scan)",
        xaxis_title="False-positive rate (1 - specificity)",
        yaxis_title="True-positive rate (sensitivity)",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
        legend={"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom"},
    )
    return fig


def _show_report(report: dict[str, Any]) -> None:
    dataset = report.get("dataset") or {}
    facts = [f"{report.get('n_cases', '?')} scans"]
    if dataset.get("n_metastasis") is not None:
        facts.append(f"{dataset['n_metastasis']} with metastasis")
    if dataset.get("path"):
        facts.append(f"dataset `{dataset['path']}`")
    if dataset.get("date"):
        facts.append(f"evaluated {dataset['date']}")
    if report.get("device"):
        facts.append(f"on {report['device']}")
    if report.get("seconds_per_case") is not None:
        facts.append(f"{report['seconds_per_case']:.3f} s per scan")
    st.caption("; ".join(facts))
    if report.get("command"):
        st.caption(f"Command: `{report['command']}`")
    networks = report["overall"] if has_figures(report) else None
    st.dataframe(
        headline_frame(networks, report["baseline"]["overall"]),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Paper: Liu et al. 2021, 123 test patients. Target: the project's goal on a held-out "
        "phantom set. Rates as Table 2 writes them: percentage (count) from 20 cases, the "
        "fraction alone below."
    )
    st.markdown("**Table 2, networks** (overall and by age group)")
    if networks is not None:
        st.dataframe(table2_frame(report), hide_index=True, width="stretch")
    else:
        st.info("The networks were not run in this evaluation (classical baseline only).")
    st.markdown("**Table 2, the paper** (Liu et al. 2021)")
    st.dataframe(table2_frame(paper_figures()), hide_index=True, width="stretch")
    st.markdown("**Table 2, classical baseline** (hot spots above the bone background)")
    st.dataframe(table2_frame(report["baseline"]), hide_index=True, width="stretch")
    if not report.get("cases"):
        st.caption(
            "ROC curves need each scan's score: the card records the figures only. "
            "Evaluate on this page to see the curves."
        )
        return
    for column, label in zip(st.columns(len(LABEL_COLOURS)), LABEL_COLOURS, strict=True):
        fig = _roc_figure(report, label)
        if fig is None:
            column.caption(f"No ROC curve of {label}: every scan of this set has it, or none does.")
        else:
            column.plotly_chart(fig, width="stretch")


guard()
st.title("Model performance")
st.caption(
    "The networks of Liu et al. 2021 as trained here, measured the way the paper measures "
    "them. Every figure on this page comes from synthetic (phantom) scans: the models have "
    "seen no real patient."
)

# ---- the model card -------------------------------------------------------------------
version, folder, registered = _in_use()
status = model_status(folder)
st.subheader("The model in use")
st.caption(f"{_version_words(version, registered)}. Model folder: `{status.directory}`")
if status.problems:
    # a promoted candidate's folder is mended by going back to a version, not by training
    fix = (
        "Put a version whose folder is in place back in use: `python -m core models "
        "rollback`, or promote another (`python -m core models list`)."
        if registered is not None and registered["kind"] != "shipped"
        else "The shipped models live in `models/` of the repository; or train one with "
        "`python -m core generate DATA "
        f"--cases 2000` and `python -m core train DATA --out {status.directory}`."
    )
    st.warning(
        "No usable model: "
        + "; ".join(status.problems)
        + f". {fix} The classical baseline can still be evaluated below.",
        icon=":material/warning:",
    )
if status.cards:
    if any(UNTRAINED in str(c.get("training_data", "")) for c in status.cards.values()):
        st.warning(
            "These weights are untrained (random, for timing only): their figures mean nothing.",
            icon=":material/warning:",
        )
    facts = {name: _card_facts(card) for name, card in status.cards.items()}
    names = list(facts)
    st.dataframe(
        {
            "property": list(facts[names[0]]),
            **{name: list(values.values()) for name, values in facts.items()},
        },
        hide_index=True,
        width="stretch",
    )
    with st.expander("The cards as stored (JSON)"):
        for name, card in status.cards.items():
            st.markdown(f"`{name}.json`")
            st.json(card, expanded=False)

st.subheader("Recorded evaluation")
recorded = status.metrics
if has_figures(recorded):
    st.caption("The held-out evaluation stored in the model card.")
    _show_report(recorded)
elif status.cards:
    st.info(
        "No evaluation is recorded in the model card. Record one on a held-out set with "
        f"`python -m core evaluate DATASET --model {status.directory} --update-card`, or "
        "evaluate on a labelled dataset below.",
        icon=":material/info:",
    )
else:
    st.info("No model card to read an evaluation from.", icon=":material/info:")

# ---- evaluate on a dataset chosen here -------------------------------------------------
st.subheader("Evaluate on a labelled dataset")
default_folder = demo_labelled_dir()
folder_text = st.text_input(
    "Labelled dataset folder (cases.csv, view images, LabelMe annotations)",
    value=str(default_folder),
    key=Keys.EVAL_DATASET,
)
folder = Path(folder_text.strip()).expanduser()
is_demo = folder.resolve() == default_folder.resolve()
st.caption(
    f"The default is the demo labelled set: {DEMO_LABELLED_CASES} phantom scans of seed "
    f"{DEMO_LABELLED_SEED}, a seed no training run uses, generated on first use "
    f"(`python -m core generate {default_folder} --cases {DEMO_LABELLED_CASES} "
    f"--seed {DEMO_LABELLED_SEED}`)."
)
limit = int(
    st.number_input(
        "Evaluate the first N scans", min_value=1, max_value=100_000, value=DEMO_LABELLED_CASES
    )
)
if not status.usable:
    st.caption("Without a usable model, the evaluation runs the classical baseline only.")

report = load_report(folder, status.key) or load_report(folder, NO_MODEL)
if st.button(
    "Evaluate again" if report else "Evaluate", type="primary", icon=":material/play_arrow:"
):
    bar = st.progress(0.0, text="Starting...")
    try:
        if is_demo and not (folder / "cases.csv").is_file():
            ensure_demo_labelled(
                folder,
                progress=_reporter(bar, "Generating the demo set"),
            )
        if not (folder / "cases.csv").is_file():
            raise ValueError(f"{folder}: no cases.csv here; not a labelled dataset folder")
        loaded = None
        if status.usable:
            try:
                loaded = models()
            except ModelFileError as exc:
                st.warning(f"The networks could not load ({exc}); baseline only.")
        evaluation = evaluate_with_progress(
            folder,
            loaded,
            limit=limit,
            progress=_reporter(bar, "Evaluating"),
        )
    except (ValueError, ScanReadError, OSError) as exc:
        bar.empty()
        st.error(str(exc))
        st.stop()
    report = evaluation_report(evaluation, folder, status)
    save_report(report, folder, report["model"]["key"])
    bar.empty()
    st.success(f"Evaluated {evaluation.n_cases} scans; the result is kept for the next visit.")

if report:
    st.markdown(f"**Result on `{folder}`**")
    _show_report(report)
else:
    st.caption("No evaluation of this folder with this model yet.")
