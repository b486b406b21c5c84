"""The Bone Scan Index by skeletal region on a page: a table and a small body map.

The map's pictures are :mod:`core.burden.body_map`'s (a study's skeleton coloured by
involvement); :func:`body_map_figure` puts them in one plotly figure with the scale,
and :func:`show_bsi_regions` is the thin renderer the pages call.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots
from streamlit.delta_generator import DeltaGenerator
from streamlit.elements.lib.column_types import ColumnConfig

from core.burden.body_map import (
    BONE_RGB,
    EDGE_SIDES,
    INVOLVEMENT_SCALE,
    MAP_WIDTH_PX,
    body_map_rgb,
    skeleton_rows,
)
from core.burden.charts import RegionRow, bsi_region_rows
from core.config import VIEWS

#: Name of the legend entry of uninvolved bone.
BONE_LEGEND = "Bone, not involved"
#: Columns of the region table, in order, with their headings.
TABLE_COLUMNS: dict[str, str] = {
    "bone": "Region",
    "side": "Side",
    "involvement_pct": "Involved (%)",
    "bsi_pct": "Contribution to BSI (%)",
}


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


def _table_config() -> dict[str, str | ColumnConfig]:
    return {
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
    }


def show_study_regions(
    container: DeltaGenerator,
    bsi: float | None,
    bsi_regions: Mapping[str, Mapping[str, float]] | None,
) -> None:
    """One study's BSI and its involved regions, under its picture (two studies side by side).

    Args:
        container: Where to draw (a column of the page).
        bsi: The study's BSI in percent, or None (an unreliable scan, no skeleton map).
        bsi_regions: ``{region: {"involvement": f, "percent": p}}`` of its analysis.
    """
    if bsi is None:
        container.caption("No Bone Scan Index for this study.")
        return
    rows = bsi_region_rows(dict(bsi_regions or {}))
    if not rows:
        container.caption(f"BSI {bsi:.2f} % of the skeleton: no region involved.")
        return
    container.caption(f"BSI {bsi:.2f} % of the skeleton, by region:")
    container.dataframe(
        region_table(rows),
        hide_index=True,
        column_order=list(TABLE_COLUMNS),
        column_config=_table_config(),
    )


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
                column_config=_table_config(),
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
        analysis: The stored analysis (``quality``, ``bsi``, ``bsi_withheld``,
            ``anatomy_sha256``).
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
    withheld = analysis.get("bsi_withheld")
    if withheld:
        return str(withheld)
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
