"""The Bone Scan Index by skeletal region: a table and a small body map.

The body map draws a study's stored skeleton label maps (ANT and POST, the labels of
:data:`core.anatomy.regions.LABELS`) with every region filled by its involvement (the
fraction of the region the metastasis masks cover, the larger of the two views: the
figure the BSI weights, docs/bsi.md) on one sequential scale from 0 to 100 %, the same
for every study, so two maps compare by colour. Uninvolved bone is light grey and the
background white; the scale starts at a clear yellow, so that a slightly involved
region never passes for uninvolved bone.

The scale (yellow, orange, brown) stays off the overlays' red (metastasis) and green
(bladder) and the trajectory's blue. :func:`body_map_rgb` and :func:`body_map_figure`
are pure (no Streamlit) and tested on their own; :func:`show_bsi_regions` is the thin
renderer the pages call.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.colors import sequential, unlabel_rgb
from plotly.subplots import make_subplots

from core.anatomy.regions import BACKGROUND, LABELS, N_LABELS
from core.burden.charts import RegionRow, bsi_region_rows
from core.config import VIEWS

#: Colours of the involvement scale from just above 0 % to 100 %: plotly's YlOrBr
#: without its two palest steps, which would vanish against the white background.
INVOLVEMENT_COLOURS: tuple[str, ...] = tuple(sequential.YlOrBr[2:])
#: The scale as plotly writes a colour scale (the colour bar's).
INVOLVEMENT_SCALE: tuple[tuple[float, str], ...] = tuple(
    (i / (len(INVOLVEMENT_COLOURS) - 1), c) for i, c in enumerate(INVOLVEMENT_COLOURS)
)
#: Background (no bone) of the map.
BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)
#: Bone without involvement: light grey, apart from the scale's palest yellow.
BONE_RGB: tuple[int, int, int] = (210, 210, 210)
#: Width of one view on the map, pixels (a view is 256 columns: half size).
MAP_WIDTH_PX = 128
#: Rows kept above and below the skeleton when the map is cropped to the body.
ROW_MARGIN = 8
#: The patient's side shown at each view's left and right edge: the patient's right is
#: on the viewer's left of an anterior view, on the viewer's right of a posterior one.
EDGE_SIDES: dict[str, tuple[str, str]] = {"ANT": ("R", "L"), "POST": ("L", "R")}
#: Name of the legend entry of uninvolved bone.
BONE_LEGEND = "Bone, not involved"
#: Columns of the region table, in order, with their headings.
TABLE_COLUMNS: dict[str, str] = {
    "bone": "Region",
    "side": "Side",
    "involvement_pct": "Involved (%)",
    "bsi_pct": "Contribution to BSI (%)",
}


def involvement_rgb(fraction: float) -> tuple[int, int, int]:
    """Return the colour of a region involved by ``fraction`` (0..1) on the map.

    Args:
        fraction: The involved fraction; exactly 0 is uninvolved bone (:data:`BONE_RGB`).

    Returns:
        ``(r, g, b)`` in 0..255.

    Raises:
        ValueError: If ``fraction`` is not in [0, 1].
    """
    if not (0.0 <= fraction <= 1.0):
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if fraction == 0.0:
        return BONE_RGB
    # linear between the scale's colours (plotly's sample_colorscale, without its strings)
    position = fraction * (len(INVOLVEMENT_COLOURS) - 1)
    low = min(int(position), len(INVOLVEMENT_COLOURS) - 2)
    t = position - low
    a = np.asarray(unlabel_rgb(INVOLVEMENT_COLOURS[low]), dtype=float)
    b = np.asarray(unlabel_rgb(INVOLVEMENT_COLOURS[low + 1]), dtype=float)
    r, g, bl = np.rint(a + t * (b - a)).astype(int)
    return int(r), int(g), int(bl)


def label_colours(involvement: Mapping[str, float]) -> np.ndarray:
    """Return the colour of every label value: background white, bone by its involvement.

    Args:
        involvement: ``{region: fraction 0..1}``; a region not named is uninvolved bone.

    Returns:
        uint8 ``(N_LABELS, 3)``: row ``i`` is the colour of label ``i``.

    Raises:
        ValueError: If a fraction is not in [0, 1] (naming the region).
    """
    lut = np.empty((N_LABELS, 3), dtype=np.uint8)
    lut[:] = BONE_RGB
    lut[BACKGROUND] = BACKGROUND_RGB
    for index, name in enumerate(LABELS):
        if index == BACKGROUND or name not in involvement:
            continue
        fraction = float(involvement[name])
        if not (0.0 <= fraction <= 1.0):
            raise ValueError(f"involvement[{name!r}] must be in [0, 1], got {fraction!r}")
        lut[index] = involvement_rgb(fraction)
    return lut


def skeleton_rows(skeletons: Mapping[str, np.ndarray], margin: int = ROW_MARGIN) -> tuple[int, int]:
    """Return ``(start, stop)``: the rows holding bone on any view, with ``margin`` around.

    The map shows these rows only: a whole-body view has long empty stretches above the
    head and below the feet that would make a small map mostly white.

    Args:
        skeletons: ``{view: label map}`` (all of one height).
        margin: Rows kept above and below.

    Returns:
        The half-open row range; the whole height when no view holds bone.

    Raises:
        ValueError: If ``skeletons`` is empty or the maps differ in height.
    """
    if not skeletons:
        raise ValueError("skeletons must hold at least one view")
    heights = {m.shape[0] for m in skeletons.values()}
    if len(heights) != 1:
        raise ValueError(f"skeletons must be of one height, got {sorted(heights)}")
    (height,) = heights
    bone = np.zeros(height, dtype=bool)
    for labels in skeletons.values():
        bone |= (np.asarray(labels) != BACKGROUND).any(axis=1)
    rows = np.flatnonzero(bone)
    if rows.size == 0:
        return 0, height
    return max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)


def body_map_rgb(
    skeleton: np.ndarray,
    involvement: Mapping[str, float],
    *,
    width: int = MAP_WIDTH_PX,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Return one view's body map: its skeleton coloured by involvement, scaled to ``width``.

    Args:
        skeleton: uint8 ``(rows, cols)`` label map (:data:`core.anatomy.regions.LABELS`).
        involvement: ``{region: fraction 0..1}`` (the BSI's ``involvement``).
        width: Width of the picture, pixels; the height keeps the view's proportions.
        rows: ``(start, stop)`` rows to keep (:func:`skeleton_rows`); None keeps all.

    Returns:
        uint8 ``(height, width, 3)`` RGB.

    Raises:
        ValueError: If ``skeleton`` is not a 2-D integer map with labels of the table,
            ``width`` is below 1, or a fraction is not in [0, 1].
    """
    labels = np.asarray(skeleton)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"skeleton must be a 2-D integer label map, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= N_LABELS):
        raise ValueError(f"skeleton holds labels outside 0..{N_LABELS - 1}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if rows is not None:
        labels = labels[rows[0] : rows[1]]
    rgb = label_colours(involvement)[labels]
    height = max(1, round(labels.shape[0] * width / labels.shape[1]))
    # a box filter: each map pixel is the mean colour of the view pixels it covers, so a
    # thin involved rib still tints its pixel instead of vanishing as nearest would
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX))


def _png_uri(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def body_map_figure(
    skeletons: Mapping[str, np.ndarray],
    involvement: Mapping[str, float],
    *,
    width: int = MAP_WIDTH_PX,
    title: str | None = None,
) -> go.Figure:
    """Return the body map: one picture per view (ANT, POST) and the involvement scale.

    Each view is a ``go.Image`` trace named after it (a PNG of :func:`body_map_rgb`,
    cropped to :func:`skeleton_rows`), titled with the view, with the patient's side
    (``R``/``L``, :data:`EDGE_SIDES`) at its edges. A colour bar (0-100 % involved, the
    marker scale of a trace named ``"Involvement"``) and a legend entry
    (:data:`BONE_LEGEND`) say what the colours mean.

    Args:
        skeletons: ``{view: uint8 label map}`` of the views read (one view is fine).
        involvement: ``{region: fraction 0..1}``; a region not named is uninvolved.
        width: Width of one view, pixels.
        title: Figure title, or None for none.

    Returns:
        The figure, sized in pixels (it is small: show it at its own width).

    Raises:
        ValueError: If ``skeletons`` holds no view of :data:`core.config.VIEWS`, or as
            :func:`body_map_rgb`.
    """
    views = [v for v in VIEWS if v in skeletons]
    if not views:
        raise ValueError(f"skeletons must hold a view of {VIEWS}, got {sorted(skeletons)}")
    rows = skeleton_rows({v: skeletons[v] for v in views})
    pictures = {v: body_map_rgb(skeletons[v], involvement, width=width, rows=rows) for v in views}
    height = next(iter(pictures.values())).shape[0]
    fig = make_subplots(
        rows=1, cols=len(views), subplot_titles=list(views), horizontal_spacing=0.06
    )
    for col, view in enumerate(views, start=1):
        fig.add_trace(
            go.Image(source=_png_uri(pictures[view]), name=view, hoverinfo="skip"),
            row=1,
            col=col,
        )
        left, right = EDGE_SIDES[view]
        for x, text in ((0, left), (width, right)):
            fig.add_annotation(
                x=x,
                y=0,
                text=text,
                showarrow=False,
                yanchor="top",
                xanchor="left" if x == 0 else "right",
                font={"size": 10, "color": "#555"},
                row=1,
                col=col,
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for col in range(1, len(views) + 1):
        # one image pixel is as tall as it is wide
        fig.update_yaxes(scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    # the colour bar and the grey legend entry: traces without points, for their keys
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name="Involvement",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "color": [0.0],
                "colorscale": [list(step) for step in INVOLVEMENT_SCALE],
                "cmin": 0.0,
                "cmax": 100.0,
                "showscale": True,
                "colorbar": {
                    "title": {"text": "Involved<br>(%)", "font": {"size": 11}},
                    "thickness": 10,
                    "len": 0.8,
                    "tickfont": {"size": 10},
                },
            },
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=BONE_LEGEND,
            hoverinfo="skip",
            marker={"symbol": "square", "size": 10, "color": "rgb({},{},{})".format(*BONE_RGB)},
        )
    )
    top = 40 if title else 28
    fig.update_layout(
        title={"text": title} if title else None,
        width=len(views) * (width + 16) + 110,
        height=height + top + 44,
        margin={"l": 8, "r": 8, "t": top, "b": 8},
        paper_bgcolor="white",
        plot_bgcolor="white",
        legend={"orientation": "h", "x": 0, "y": 0, "yanchor": "top", "font": {"size": 10}},
    )
    return fig


def region_table(rows: Sequence[RegionRow]) -> list[dict[str, object]]:
    """Return the region rows as table records keyed by :data:`TABLE_COLUMNS`.

    Args:
        rows: The regions (:func:`core.burden.charts.bsi_region_rows`).

    Returns:
        One dict per region: bone in words, side, involved percent and BSI contribution.
    """
    return [
        {
            "bone": r.bone,
            "side": r.side,
            "involvement_pct": r.involvement_pct,
            "bsi_pct": r.bsi_pct,
        }
        for r in rows
    ]


def show_bsi_regions(
    skeletons: Mapping[str, np.ndarray] | None,
    bsi_regions: Mapping[str, Mapping[str, float]] | None,
    *,
    key: str | None = None,
) -> None:
    """Show the BSI's regions: the table of involved regions beside the body map.

    Args:
        skeletons: ``{view: uint8 label map}`` stored with the analysis, or None/empty
            (then the table only).
        bsi_regions: ``{region: {"involvement": f, "percent": p}}`` of the analysis.
        key: Streamlit key of the map's chart (two maps on one page need two keys).
    """
    regions = dict(bsi_regions or {})
    rows = bsi_region_rows(regions)
    table, picture = st.columns([3, 2])
    with table:
        if rows:
            st.dataframe(
                region_table(rows),
                hide_index=True,
                column_order=list(TABLE_COLUMNS),
                column_config={
                    "bone": "Region",
                    "side": st.column_config.TextColumn(
                        "Side", help="The patient's side; mid for an unpaired bone."
                    ),
                    "involvement_pct": st.column_config.NumberColumn(
                        "Involved (%)",
                        format="%.1f",
                        help="Share of the region's pixels the metastasis masks cover, "
                        "on the view where it is larger.",
                    ),
                    "bsi_pct": st.column_config.NumberColumn(
                        "Contribution to BSI (%)",
                        format="%.2f",
                        help="Involved fraction x the region's share of skeletal mass "
                        "(ICRP 23); the contributions add up to the BSI.",
                    ),
                },
            )
        else:
            st.caption("No skeletal region is involved.")
    with picture:
        views = {v: m for v, m in (skeletons or {}).items() if v in VIEWS}
        if views:
            involvement = {
                name: float(v.get("involvement", 0.0) or 0.0) for name, v in regions.items()
            }
            st.plotly_chart(
                body_map_figure(views, involvement),
                width="content",
                key=key,
                config={"displayModeBar": False, "staticPlot": True},
            )
        else:
            st.caption("No skeleton map is stored with this analysis.")


def bsi_absent_reason(
    analysis: Mapping[str, object], *, skeleton_network: bool | None = None
) -> str | None:
    """Say in words why an analysis has no Bone Scan Index, or None when it has one.

    Args:
        analysis: The stored analysis (``quality``, ``bsi``, ``anatomy_sha256``).
        skeleton_network: Whether the models that analysed it had a skeleton network:
            known when the analysis was made in this session; None when unknown (a
            result stored earlier), then the reason names both possibilities.

    Returns:
        One sentence, or None when ``analysis["bsi"]`` is set.
    """
    if analysis.get("bsi") is not None:
        return None
    if analysis.get("quality") != "ok":
        return (
            "No BSI is reported: the scan failed the quality gate, so, like the BSTBI, "
            "its Bone Scan Index is not reliable."
        )
    if skeleton_network is False:
        return (
            "No BSI: no skeleton network is installed, so the skeleton's regions were not "
            "found (the lesions' regions come from the body's proportions)."
        )
    if skeleton_network or analysis.get("anatomy_sha256"):
        return (
            "No BSI: the skeleton network did not find the skeleton on the views (its map "
            "lacked the spine or the pelvis), so the lesions' regions come from the body's "
            "proportions."
        )
    return (
        "No BSI: no skeleton map was read for this scan (no skeleton network was "
        "installed, or it did not find the skeleton on the views)."
    )
