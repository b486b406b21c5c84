"""Plotly figures of the dashboard and the reports (no Streamlit here).

The trajectory (:func:`trajectory_figure`) puts a patient's studies on a time axis
with the treatments behind them as shaded bands, one colour per agent everywhere
(:func:`agent_colour`). It follows one index at a time (:data:`METRICS`): the BSTBI, or
the Bone Scan Index (BSI, percent of skeletal mass), which is not a field of
:class:`~core.burden.patient_record.StudyPoint` and comes as ``{study_id: BSI}`` from the
store's time series. Only reliable studies (quality ``ok`` with a BSTBI, and for the BSI
a skeleton map) are joined by the line; the others sit on the time axis as grey
crosses, so that a non-diagnostic scan is seen but its burden is never read as if it
were reliable. Colours avoid the overlays' red (metastasis) and green (bladder).

Each step of the line can be judged against the least significant change
(:func:`step_changes`, :func:`core.burden.repeatability.change_significance`) and
marked half-way along it. :func:`bsi_region_rows` gives the BSI's regions as the
region tables of the pages and the report list them.

When the studies were analysed by different model versions, each reliable study whose
version differs from the previous reliable study's is ringed (:data:`MODEL_CHANGE_MARKER`,
:func:`model_changes`): a step of the line there may come from the model, not from the
disease.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from core.anatomy.regions import LABELS, region
from core.burden.patient_record import StudyPoint, Treatment
from core.burden.pcwg3 import FLAG_CONFIRMED, FLAG_NOT_CONFIRMED, FLAG_PENDING, FLAG_PROGRESSION
from core.burden.repeatability import ChangeVerdict, change_significance

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


@dataclass(frozen=True)
class Metric:
    """A burden figure the trajectory can follow.

    Attributes:
        key: ``"bstbi"`` or ``"bsi"`` (the metric of
            :func:`core.burden.repeatability.change_significance`).
        label: Its short name, ``"BSTBI"`` or ``"BSI"``.
        axis_title: The value axis' title, with the unit.
        decimals: Decimals its values are written with.
        unit: Written after a value (``""`` or ``" %"``).
        tick_format: The value axis' tick format.
        min_top: The value axis reaches at least this high (a flat low line stays low).
    """

    key: str
    label: str
    axis_title: str
    decimals: int
    unit: str
    tick_format: str
    min_top: float

    def text(self, value: float, *, signed: bool = False) -> str:
        """Return ``value`` as the pages write it (``"0.144"``, ``"+1.25 %"``)."""
        return f"{value:{'+' if signed else ''}.{self.decimals}f}{self.unit}"


#: The trajectory's metrics, by key.
METRICS: dict[str, Metric] = {
    "bstbi": Metric("bstbi", "BSTBI", "BSTBI (dimensionless, 0-1)", 3, "", ".2f", 0.05),
    "bsi": Metric("bsi", "BSI", "BSI (% of skeletal mass)", 2, " %", ".1f", 1.0),
}
#: Why a study that passed the quality gate has no BSI: no skeleton map was read.
NO_SKELETON = "no skeleton read"


def metric(key: str) -> Metric:
    """Return the :class:`Metric` called ``key``.

    Raises:
        ValueError: If ``key`` is not one of :data:`METRICS`.
    """
    if key not in METRICS:
        raise ValueError(f"metric must be one of {tuple(METRICS)}, got {key!r}")
    return METRICS[key]


def metric_values(
    studies: Sequence[StudyPoint], key: str, values: Mapping[int, float | None] | None = None
) -> dict[int, float | None]:
    """Return each study's reliable value of the metric, None where it has none.

    A study's burden is only reported when it is reliable (quality ``ok`` with a BSTBI,
    :attr:`~core.burden.patient_record.StudyPoint.reliable`); the BSI of such a study
    also needs a skeleton map, so it can be None where the BSTBI is not.

    Args:
        studies: The patient's studies.
        key: ``"bstbi"`` (read from the studies) or ``"bsi"`` (from ``values``).
        values: ``{study_id: BSI}`` for ``"bsi"`` (e.g. from
            :func:`db.queries.patient_time_series`); ignored for ``"bstbi"``.

    Returns:
        ``{study_id: value or None}`` for every study.

    Raises:
        ValueError: If ``key`` is not one of :data:`METRICS`.
    """
    metric(key)
    if key == "bstbi":
        return {s.study_id: s.bstbi if s.reliable else None for s in studies}
    given = values or {}
    return {s.study_id: given.get(s.study_id) if s.reliable else None for s in studies}


def _missing(point: StudyPoint, m: Metric) -> str:
    """Why a study has no value of ``m``: its status, or that no skeleton was read."""
    return point.status if not point.reliable or m.key == "bstbi" else NO_SKELETON


def hover_text(
    point: StudyPoint,
    *,
    baseline: bool = False,
    metric_key: str = "bstbi",
    value: float | None = None,
) -> str:
    """Return the hover text of one study on the trajectory (plotly HTML subset).

    Args:
        point: The study.
        baseline: True for the follow-up baseline (no comparison to show).
        metric_key: The metric the chart follows; for ``"bsi"`` its value comes first,
            then the BSTBI.
        value: The study's BSI for ``metric_key="bsi"`` (None: not reported).

    Returns:
        Date, the metric (or why there is none), hotspots, new lesions against the
        baseline and the previous study, the PCWG3 flag and delay warnings, one per line.

    Raises:
        ValueError: If ``metric_key`` is not one of :data:`METRICS`.
    """
    m = metric(metric_key)
    date = point.date.isoformat() if point.date else "no date"
    lines = [f"<b>{date}</b>"]
    if m.key == "bsi":
        if value is not None and point.reliable:
            lines.append(f"BSI {m.text(value)}")
        else:
            lines.append(f"BSI not reported ({_missing(point, m)})")
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


@dataclass(frozen=True)
class StepChange:
    """The change of a metric between two consecutive studies on the line, judged.

    Attributes:
        metric: The :class:`Metric`.
        before: The earlier study.
        after: The later study.
        previous: The metric at ``before``.
        current: The metric at ``after``.
        verdict: Whether the change is beyond the least significant change
            (:func:`core.burden.repeatability.change_significance`).
    """

    metric: Metric
    before: StudyPoint
    after: StudyPoint
    previous: float
    current: float
    verdict: ChangeVerdict

    def words(self) -> str:
        """The change in words.

        E.g. ``"BSI +0.42 %, beyond the least significant change 0.31 %"``.
        """
        m = self.metric
        side = "beyond" if self.verdict.beyond else "within"
        return (
            f"{m.label} {m.text(self.verdict.delta, signed=True)}, {side} the least "
            f"significant change {m.text(self.verdict.limit)}"
        )

    def caption(self) -> str:
        """The two dates and :meth:`words`."""
        first = self.before.date.isoformat() if self.before.date else "no date"
        second = self.after.date.isoformat() if self.after.date else "no date"
        return f"{first} to {second}: {self.words()}"


def step_changes(
    studies: Sequence[StudyPoint],
    metric_key: str = "bstbi",
    values: Mapping[int, float | None] | None = None,
    counts: Mapping[int, float | None] | None = None,
) -> list[StepChange]:
    """Return the change between each two consecutive studies on the line, judged.

    The line joins the dated studies with a reliable value of the metric
    (:func:`metric_values`), in date order; each step of it is compared with the least
    significant change at the noisier study's count level (the lower of the two studies'
    counts per view; the reference level when neither is known).

    Args:
        studies: The patient's studies.
        metric_key: ``"bstbi"`` or ``"bsi"``.
        values: ``{study_id: BSI}`` for ``"bsi"``.
        counts: ``{study_id: total counts per view}`` (the smaller view's), or None.

    Returns:
        One :class:`StepChange` per step, in date order.

    Raises:
        ValueError: If ``metric_key`` is not one of :data:`METRICS`.
    """
    m = metric(metric_key)
    value = metric_values(studies, m.key, values)
    line = sorted(
        (s for s in studies if s.date is not None and value[s.study_id] is not None),
        key=lambda s: s.date or dt.date.min,
    )
    counted = counts or {}
    out: list[StepChange] = []
    for before, after in itertools.pairwise(line):
        previous, current = value[before.study_id], value[after.study_id]
        assert previous is not None and current is not None  # the line holds values only
        known = [
            float(c)
            for c in (counted.get(before.study_id), counted.get(after.study_id))
            if c is not None and c > 0
        ]
        verdict = change_significance(m.key, previous, current, min(known) if known else None)
        out.append(StepChange(m, before, after, previous, current, verdict))
    return out


#: Marker of a step beyond the least significant change, by direction: (legend name,
#: symbol, colour); drawn half-way along the step, apart from the studies' markers.
STEP_BEYOND_MARKERS: dict[bool, tuple[str, str, str]] = {
    True: ("Rise beyond the least significant change", "triangle-up", "#8c510a"),
    False: ("Fall beyond the least significant change", "triangle-down", "#01665e"),
}
#: Marker of a step within the least significant change (not told from noise).
STEP_WITHIN_MARKER: tuple[str, str, str] = (
    "Change within the least significant change",
    "circle-open",
    "#8c8c8c",
)


def _midpoint(step: StepChange) -> str:
    # the line holds dated studies only (step_changes)
    a, b = step.before.date or dt.date.min, step.after.date or dt.date.min
    return dt.date.fromordinal((a.toordinal() + b.toordinal()) // 2).isoformat()


def _step_traces(steps: Sequence[StepChange]) -> list[go.Scatter]:
    """The markers half-way along each step: rises and falls beyond the limit, the rest."""
    groups: list[tuple[tuple[str, str, str], list[StepChange]]] = [
        (STEP_BEYOND_MARKERS[True], [c for c in steps if c.verdict.beyond and c.verdict.delta > 0]),
        (
            STEP_BEYOND_MARKERS[False],
            [c for c in steps if c.verdict.beyond and c.verdict.delta <= 0],
        ),
        (STEP_WITHIN_MARKER, [c for c in steps if not c.verdict.beyond]),
    ]
    out = []
    for (name, symbol, colour), chosen in groups:
        if not chosen:
            continue
        out.append(
            go.Scatter(
                x=[_midpoint(c) for c in chosen],
                y=[(c.previous + c.current) / 2 for c in chosen],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 12 if symbol != STEP_WITHIN_MARKER[1] else 9,
                    "color": colour,
                    "line": {"color": colour, "width": 1.5},
                },
                text=[c.caption() for c in chosen],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    return out


def trajectory_figure(
    studies: Sequence[StudyPoint],
    treatments: Sequence[Treatment] = (),
    *,
    title: str = "BSTBI over time",
    today: dt.date | None = None,
    model_versions: Mapping[int, str | None] | None = None,
    metric_key: str = "bstbi",
    values: Mapping[int, float | None] | None = None,
    counts: Mapping[int, float | None] | None = None,
    mark_changes: bool = False,
) -> go.Figure:
    """Return the trajectory of one patient's BSTBI (or BSI) with the treatments as bands.

    Traces, each named for the legend: the metric's label (``"BSTBI"`` or ``"BSI"``:
    the dated studies with a reliable value, joined); ``"No reliable BSTBI"`` /
    ``"No BSI"`` (other dated studies, crosses at 0: unreliable, or for the BSI without
    a skeleton map); one per PCWG3 flag present (:data:`PCWG3_MARKERS`, drawn over the
    study it concerns). Treatments are ``layout.shapes`` rectangles (one per treatment,
    spanning :func:`band_range`, full height, :func:`agent_colour`), labelled with the
    agent and listed in the legend once per agent. Every study's hover text is
    :func:`hover_text` (with the model version when ``model_versions`` is given). With
    ``model_versions``, a :data:`MODEL_CHANGE_MARKER` trace rings each study of
    :func:`model_changes`. With ``mark_changes``, each step of the line
    (:func:`step_changes`) gets a marker half-way along it:
    :data:`STEP_BEYOND_MARKERS` for a rise or fall beyond the least significant
    change, :data:`STEP_WITHIN_MARKER` for one within it, its hover text in words.

    Args:
        studies: The patient's studies (undated ones are left out).
        treatments: The patient's treatments.
        title: Figure title.
        today: "Today" for ongoing treatments without a later study (None: the date).
        model_versions: ``{study_id: model version of its analysis shown}``, or None.
        metric_key: ``"bstbi"`` or ``"bsi"`` (:data:`METRICS`).
        values: ``{study_id: BSI}`` for ``"bsi"`` (:func:`metric_values`).
        counts: ``{study_id: total counts per view}`` for :func:`step_changes`.
        mark_changes: Mark each step against the least significant change.

    Returns:
        The figure (no template set: the caller's theme applies).

    Raises:
        ValueError: If ``metric_key`` is not one of :data:`METRICS`.
    """
    m = metric(metric_key)
    value = metric_values(studies, m.key, values)
    dated = sorted((s for s in studies if s.date is not None), key=lambda s: s.date or dt.date.min)
    baseline_id = next((s.study_id for s in dated if s.in_followup), None)
    versions = model_versions or {}

    def hover(s: StudyPoint, *, baseline: bool = False) -> str:
        text = hover_text(s, baseline=baseline, metric_key=m.key, value=value[s.study_id])
        version = versions.get(s.study_id)
        return f"{text}<br>Model {version}" if version else text

    fig = go.Figure()
    shown = [s for s in dated if value[s.study_id] is not None]
    fig.add_trace(
        go.Scatter(
            x=[s.date.isoformat() for s in shown if s.date],
            y=[value[s.study_id] for s in shown],
            mode="lines+markers",
            name=m.label,
            line={"color": TRAJECTORY_COLOUR, "width": 2},
            marker={"color": TRAJECTORY_COLOUR, "size": 9},
            text=[hover(s, baseline=s.study_id == baseline_id) for s in shown],
            hovertemplate="%{text}<extra></extra>",
        )
    )
    changes = [c for c in model_changes(dated, versions) if value[c.after.study_id] is not None]
    if changes:
        name, symbol, colour = MODEL_CHANGE_MARKER
        fig.add_trace(
            go.Scatter(
                x=[c.after.date.isoformat() for c in changes if c.after.date],
                y=[value[c.after.study_id] for c in changes],
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
    missing = [s for s in dated if value[s.study_id] is None]
    if missing:
        fig.add_trace(
            go.Scatter(
                x=[s.date.isoformat() for s in missing if s.date],
                y=[0.0] * len(missing),
                mode="markers",
                name="No reliable BSTBI" if m.key == "bstbi" else f"No {m.label}",
                marker={"color": UNRELIABLE_COLOUR, "symbol": "x", "size": 11},
                text=[hover(s) for s in missing],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    if mark_changes:
        for trace in _step_traces(step_changes(studies, m.key, values, counts)):
            fig.add_trace(trace)
    for flag, (name, symbol, colour) in PCWG3_MARKERS.items():
        flagged = [s for s in shown if s.pcwg3 == flag]
        if not flagged:
            continue
        fig.add_trace(
            go.Scatter(
                x=[s.date.isoformat() for s in flagged if s.date],
                y=[value[s.study_id] for s in flagged],
                mode="markers",
                name=name,
                marker={
                    "symbol": symbol,
                    "size": 20,
                    "color": colour,
                    "line": {"color": colour, "width": 2},
                },
                text=[hover_text(s, metric_key=m.key, value=value[s.study_id]) for s in flagged],
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
    top = max((value[s.study_id] or 0.0 for s in shown), default=0.0)
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
            "title": {"text": m.axis_title},
            "range": [0, max(m.min_top, top * 1.2)],
            "tickformat": m.tick_format,
        },
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0},
        margin={"t": 60, "b": 40},
    )
    return fig


# --- the Bone Scan Index by skeletal region ----------------------------------------------


@dataclass(frozen=True)
class RegionRow:
    """One involved skeletal region, as the region tables (pages, report) list it.

    Attributes:
        region: The region's name in the table (:data:`core.anatomy.regions.LABELS`).
        bone: The bone in words (``"thoracic spine"``), without the side.
        side: The patient's side, ``"left"``, ``"right"`` or ``"mid"``; ``""`` for a name
            the region table does not know.
        involvement_pct: Percent of the region involved (the larger of the two views).
        bsi_pct: Its contribution to the BSI, percent of skeletal mass.
    """

    region: str
    bone: str
    side: str
    involvement_pct: float
    bsi_pct: float


def _region_order(name: str) -> tuple[int, str]:
    try:
        return region(name).index, name
    except KeyError:  # a name from an older region table: after the known ones
        return len(LABELS), name


def bsi_region_rows(
    bsi_regions: Mapping[str, Mapping[str, float]], *, involved_only: bool = True
) -> list[RegionRow]:
    """Return the regions of a stored BSI as table rows, head to feet, right before left.

    The order is the region table's (:data:`core.anatomy.regions.REGIONS`), not the size
    of the contribution, so two studies' tables list the same region on the same line.

    Args:
        bsi_regions: ``{region: {"involvement": fraction 0..1, "percent": percent of
            skeletal mass}}`` as the store gives it (an analysis' ``bsi_regions``); a
            missing key counts as 0.
        involved_only: Leave out the regions without involvement.

    Returns:
        One :class:`RegionRow` per region.

    Raises:
        ValueError: If an involvement is outside [0, 1] or a percent is negative or not
            finite (naming ``bsi_regions`` and the region).
    """
    rows = []
    for name in sorted(bsi_regions, key=_region_order):
        values = bsi_regions[name]
        involvement = float(values.get("involvement", 0.0) or 0.0)
        percent = float(values.get("percent", 0.0) or 0.0)
        if not (math.isfinite(involvement) and 0.0 <= involvement <= 1.0):
            raise ValueError(f"bsi_regions[{name!r}] involvement must be in [0, 1]: {involvement}")
        if not (math.isfinite(percent) and percent >= 0.0):
            raise ValueError(f"bsi_regions[{name!r}] percent must be >= 0: {percent}")
        if involved_only and involvement <= 0.0:
            continue
        try:
            known = region(name)
            bone, side = known.base.replace("_", " "), str(known.side)
        except KeyError:
            bone, side = name.replace("_", " "), ""
        rows.append(RegionRow(name, bone, side, 100.0 * involvement, percent))
    return rows
