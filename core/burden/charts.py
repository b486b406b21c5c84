"""Plotly figures of the dashboard and the reports (no Streamlit here).

The BSTBI trajectory (:func:`trajectory_figure`) puts a patient's studies on a time
axis with the treatments behind them as shaded bands, one colour per agent everywhere
(:func:`agent_colour`). Only reliable studies (quality ``ok`` with a BSTBI) are joined
by the line; the others sit on the time axis as grey crosses, so that a
non-diagnostic scan is seen but its burden is never read as if it were reliable.
Colours avoid the overlays' red (metastasis) and green (bladder).

When the studies were analysed by different model versions, each reliable study whose
version differs from the previous reliable study's is ringed (:data:`MODEL_CHANGE_MARKER`,
:func:`model_changes`): a step of the line there may come from the model, not from the
disease.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from core.burden.patient_record import StudyPoint, Treatment
from core.burden.pcwg3 import FLAG_CONFIRMED, FLAG_NOT_CONFIRMED, FLAG_PENDING, FLAG_PROGRESSION

#: The agents offered first on the treatment form, in this order.
COMMON_AGENTS: tuple[str, ...] = (
    "zoledronic acid",
    "androgen deprivation",
    "radium-223",
    "chemotherapy",
)
#: Band colour of each common agent.
AGENT_COLOURS: dict[str, str] = {
    "zoledronic acid": "#7b5ea7",  # violet
    "androgen deprivation": "#f28e2b",  # orange
    "radium-223": "#e377c2",  # pink (orange + pink stays warm where bands overlap)
    "chemotherapy": "#9c755f",  # brown
}
#: Band colour of every other agent.
OTHER_AGENT_COLOUR = "#8c8c8c"
#: Other spellings physicians type, mapped to the common agent.
AGENT_ALIASES: dict[str, str] = {
    "zoledronate": "zoledronic acid",
    "zometa": "zoledronic acid",
    "adt": "androgen deprivation",
    "androgen deprivation therapy": "androgen deprivation",
    "radium 223": "radium-223",
    "ra-223": "radium-223",
    "xofigo": "radium-223",
    "chemo": "chemotherapy",
}
#: Opacity of a treatment band (low: the trajectory stays readable over several bands).
BAND_OPACITY = 0.16
#: Colour of the trajectory (line and markers of reliable studies).
TRAJECTORY_COLOUR = "#3b6fb6"
#: Colour of the crosses of studies without a reliable BSTBI.
UNRELIABLE_COLOUR = "#9a9a9a"
#: Marker of each PCWG3 flag shown on the chart: (legend name, symbol, colour).
PCWG3_MARKERS: dict[str, tuple[str, str, str]] = {
    FLAG_PENDING: ("PCWG3: >= 2 new lesions, to confirm", "diamond-open", "#d95f02"),
    FLAG_CONFIRMED: ("PCWG3: progression confirmed (2+2)", "star", "#b2182b"),
    FLAG_PROGRESSION: ("PCWG3: progression", "star", "#b2182b"),
    FLAG_NOT_CONFIRMED: ("PCWG3: not confirmed (flare?)", "circle-open", "#6b6b6b"),
}


def canonical_agent(agent: str) -> str:
    """Return the common agent name that ``agent`` stands for, else ``agent`` tidied.

    Matching ignores case and surrounding spaces; :data:`AGENT_ALIASES` map other
    spellings (``"Zometa"`` -> ``"zoledronic acid"``).

    Raises:
        ValueError: If ``agent`` is empty.
    """
    name = " ".join(agent.split()).lower()
    if not name:
        raise ValueError("agent must not be empty")
    return AGENT_ALIASES.get(name, name)


def agent_colour(agent: str) -> str:
    """Return the band colour of an agent (:data:`AGENT_COLOURS`, else the 'other' grey)."""
    return AGENT_COLOURS.get(canonical_agent(agent), OTHER_AGENT_COLOUR)


def band_range(
    treatment: Treatment, studies: Sequence[StudyPoint], *, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """Return the dates a treatment's band spans on the time axis.

    An ongoing treatment (no end) runs to the last study date when that is after its
    start, else to ``today``: the axis stays on the studies. A band is at least one day
    wide, so a single infusion still shows.

    Args:
        treatment: The treatment.
        studies: The patient's studies (undated ones are ignored).
        today: "Today" (None: the current date).

    Returns:
        ``(start, end)`` of the band.
    """
    end = treatment.end
    if end is None:
        last = max((s.date for s in studies if s.date is not None), default=None)
        end = last if last is not None and last > treatment.start else today or dt.date.today()
    end = max(end, treatment.start + dt.timedelta(days=1))
    return treatment.start, end


def _signed(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def hover_text(point: StudyPoint, *, baseline: bool = False) -> str:
    """Return the hover text of one study on the trajectory (plotly HTML subset).

    Args:
        point: The study.
        baseline: True for the follow-up baseline (no comparison to show).

    Returns:
        Date, BSTBI (or why there is none), hotspots, new lesions against the baseline
        and the previous study, the PCWG3 flag and delay warnings, one per line.
    """
    date = point.date.isoformat() if point.date else "no date"
    lines = [f"<b>{date}</b>"]
    if point.reliable:
        lines.append(f"BSTBI {point.bstbi:.3f}")
    else:
        lines.append(f"BSTBI not reliable ({point.status})")
    lines.append(f"Hotspots {point.hotspots if point.hotspots is not None else 'n/a'}")
    if baseline:
        lines.append("Baseline of follow-up")
    elif point.in_followup:
        lines.append(
            f"New lesions {point.new_vs_baseline} vs baseline, {point.new_vs_previous} vs previous"
        )
        lines.append(
            f"BSTBI change {_signed(point.bstbi_change_baseline)} vs baseline, "
            f"{_signed(point.bstbi_change_previous)} vs previous"
        )
        if point.pcwg3:
            lines.append(f"PCWG3: {point.pcwg3}")
    lines.extend(f"Warning: {w}" for w in point.warnings)
    return "<br>".join(lines)


#: Days shown on the time axis when a patient has a single study and no treatment.
MIN_SPAN_DAYS = 60
#: Marker of a study analysed by another model version than the previous one:
#: (legend name, symbol, colour); a teal open square, apart from the PCWG3 markers.
MODEL_CHANGE_MARKER: tuple[str, str, str] = ("Model version changed", "square-open", "#17becf")
#: What a model change means for the step between two studies (the page's caption).
MODEL_CHANGE_WARNING = "a step between these studies may come from the model change, not a response"


@dataclass(frozen=True)
class ModelChange:
    """Two consecutive reliable studies analysed by different model versions.

    Attributes:
        before: The earlier study.
        after: The later study (the one marked).
        before_version: The version that analysed ``before``.
        after_version: The version that analysed ``after``.
    """

    before: StudyPoint
    after: StudyPoint
    before_version: str
    after_version: str

    def caption(self) -> str:
        """The sentence shown under the chart, naming both studies and versions."""
        first = self.before.date.isoformat() if self.before.date else "no date"
        second = self.after.date.isoformat() if self.after.date else "no date"
        return (
            f"{first} ({self.before_version}) to {second} ({self.after_version}): "
            f"{MODEL_CHANGE_WARNING}."
        )


def model_changes(
    studies: Sequence[StudyPoint], model_versions: Mapping[int, str | None]
) -> list[ModelChange]:
    """Return where the model version changes between consecutive reliable studies.

    Only reliable dated studies count (the ones the line joins, in date order): a step
    of the line is where a change of models can pass for a change of burden. A study
    whose version is unknown (missing or None) neither marks nor breaks a change.

    Args:
        studies: The patient's studies.
        model_versions: ``{study_id: model version of the analysis shown}``.

    Returns:
        One :class:`ModelChange` per change, in date order.
    """
    dated = sorted(
        (s for s in studies if s.date is not None and s.reliable),
        key=lambda s: s.date or dt.date.min,
    )
    out: list[ModelChange] = []
    previous: tuple[StudyPoint, str] | None = None
    for s in dated:
        version = model_versions.get(s.study_id)
        if not version:
            continue
        if previous is not None and previous[1] != version:
            out.append(ModelChange(previous[0], s, previous[1], version))
        previous = (s, version)
    return out


def trajectory_figure(
    studies: Sequence[StudyPoint],
    treatments: Sequence[Treatment] = (),
    *,
    title: str = "BSTBI over time",
    today: dt.date | None = None,
    model_versions: Mapping[int, str | None] | None = None,
) -> go.Figure:
    """Return the BSTBI trajectory of one patient with the treatments as bands.

    Traces, each named for the legend: ``"BSTBI"`` (reliable studies, joined);
    ``"No reliable BSTBI"`` (other dated studies, crosses at 0); one per PCWG3 flag
    present (:data:`PCWG3_MARKERS`, drawn over the study it concerns). Treatments are
    ``layout.shapes`` rectangles (one per treatment, spanning :func:`band_range`, full
    height, :func:`agent_colour`), labelled with the agent and listed in the legend
    once per agent. Every study's hover text is :func:`hover_text` (with the model
    version when ``model_versions`` is given). With ``model_versions``, a
    :data:`MODEL_CHANGE_MARKER` trace rings each study of :func:`model_changes`.

    Args:
        studies: The patient's studies (undated ones are left out).
        treatments: The patient's treatments.
        title: Figure title.
        today: "Today" for ongoing treatments without a later study (None: the date).
        model_versions: ``{study_id: model version of its analysis shown}``, or None.

    Returns:
        The figure (no template set: the caller's theme applies).
    """
    dated = sorted((s for s in studies if s.date is not None), key=lambda s: s.date or dt.date.min)
    baseline_id = next((s.study_id for s in dated if s.in_followup), None)
    versions = model_versions or {}

    def hover(s: StudyPoint, *, baseline: bool = False) -> str:
        text = hover_text(s, baseline=baseline)
        version = versions.get(s.study_id)
        return f"{text}<br>Model {version}" if version else text

    fig = go.Figure()
    reliable = [s for s in dated if s.reliable]
    fig.add_trace(
        go.Scatter(
            x=[s.date.isoformat() for s in reliable if s.date],
            y=[s.bstbi for s in reliable],
            mode="lines+markers",
            name="BSTBI",
            line={"color": TRAJECTORY_COLOUR, "width": 2},
            marker={"color": TRAJECTORY_COLOUR, "size": 9},
            text=[hover(s, baseline=s.study_id == baseline_id) for s in reliable],
            hovertemplate="%{text}<extra></extra>",
        )
    )
    changes = model_changes(dated, versions)
    if changes:
        name, symbol, colour = MODEL_CHANGE_MARKER
        fig.add_trace(
            go.Scatter(
                x=[c.after.date.isoformat() for c in changes if c.after.date],
                y=[c.after.bstbi for c in changes],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 18,
                    "color": colour,
                    "line": {"color": colour, "width": 2},
                },
                text=[
                    f"Model {c.before_version} -> {c.after_version}<br>{MODEL_CHANGE_WARNING}"
                    for c in changes
                ],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    unreliable = [s for s in dated if not s.reliable]
    if unreliable:
        fig.add_trace(
            go.Scatter(
                x=[s.date.isoformat() for s in unreliable if s.date],
                y=[0.0] * len(unreliable),
                mode="markers",
                name="No reliable BSTBI",
                marker={"color": UNRELIABLE_COLOUR, "symbol": "x", "size": 11},
                text=[hover(s) for s in unreliable],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    for flag, (name, symbol, colour) in PCWG3_MARKERS.items():
        flagged = [s for s in reliable if s.pcwg3 == flag]
        if not flagged:
            continue
        fig.add_trace(
            go.Scatter(
                x=[s.date.isoformat() for s in flagged if s.date],
                y=[s.bstbi for s in flagged],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 20,
                    "color": colour,
                    "line": {"color": colour, "width": 2},
                },
                text=[hover_text(s) for s in flagged],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    seen: set[str] = set()
    for t in treatments:
        x0, x1 = band_range(t, dated, today=today)
        agent = canonical_agent(t.agent)
        fig.add_shape(
            type="rect",
            xref="x",
            yref="paper",
            x0=x0.isoformat(),
            x1=x1.isoformat(),
            y0=0,
            y1=1,
            fillcolor=agent_colour(t.agent),
            opacity=BAND_OPACITY,
            line={"width": 0},
            layer="below",
            name=agent + ("" if t.end else " (ongoing)"),
            legendgroup=agent,
            showlegend=agent not in seen,
            label={"text": t.agent, "textposition": "top left", "font": {"size": 11}},
        )
        seen.add(agent)
    top = max((s.bstbi or 0.0 for s in reliable), default=0.0)
    xaxis: dict[str, object] = {"title": {"text": "Study date"}, "type": "date"}
    dates = {s.date for s in dated if s.date is not None}
    if len(dates) == 1 and not treatments:
        # one study: plotly would zoom to milliseconds around it; show a month each side
        (only,) = dates
        pad = dt.timedelta(days=MIN_SPAN_DAYS // 2)
        xaxis["range"] = [(only - pad).isoformat(), (only + pad).isoformat()]
    fig.update_layout(
        title={"text": title},
        xaxis=xaxis,
        yaxis={
            "title": {"text": "BSTBI (dimensionless, 0-1)"},
            "range": [0, max(0.05, top * 1.2)],
            "tickformat": ".2f",
        },
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0},
        margin={"t": 60, "b": 40},
    )
    return fig
