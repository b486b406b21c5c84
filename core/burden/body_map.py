"""A study's skeleton coloured by involvement: the body map of the Bone Scan Index.

The map draws a study's stored skeleton label maps (ANT and POST, the labels of
:data:`core.anatomy.regions.LABELS`) with every region filled by its involvement (the
fraction of the region the metastasis masks cover, the larger of the two views: the
figure the BSI weights, docs/bsi.md) on one sequential scale from 0 to 100 %, the same
for every study, so two maps compare by colour. Uninvolved bone is light grey and the
background white; the scale starts at a clear yellow, so that a slightly involved
region never passes for uninvolved bone. The scale (yellow, orange, brown) stays off
the overlays' red (metastasis) and green (bladder) and the trajectory's blue.

Pure: the upload page (:mod:`ui.body_map`) and the patient report
(:mod:`workflow.report`) draw the same pictures from here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image
from plotly.colors import sequential, unlabel_rgb

from core.anatomy.regions import BACKGROUND, LABELS, N_LABELS
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


def body_map_pair(
    skeletons: Mapping[str, np.ndarray],
    involvement: Mapping[str, float],
    *,
    width: int = MAP_WIDTH_PX,
    gap: int = 8,
) -> np.ndarray:
    """Return the views' body maps side by side (ANT, then POST), cropped to the body.

    Args:
        skeletons: ``{view: uint8 label map}``, at least one view, all of one height.
        involvement: ``{region: fraction 0..1}``.
        width: Width of each view's map, pixels.
        gap: White columns between two maps.

    Returns:
        uint8 ``(height, n * width + (n - 1) * gap, 3)`` RGB.

    Raises:
        ValueError: As :func:`skeleton_rows` and :func:`body_map_rgb`.
    """
    views = [v for v in VIEWS if v in skeletons]
    if not views:
        raise ValueError(f"skeletons must hold one of {VIEWS}")
    rows = skeleton_rows({v: skeletons[v] for v in views})
    maps = [body_map_rgb(skeletons[v], involvement, width=width, rows=rows) for v in views]
    spacer = np.full((maps[0].shape[0], gap, 3), BACKGROUND_RGB, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for k, picture in enumerate(maps):
        parts += [spacer, picture] if k else [picture]
    return np.concatenate(parts, axis=1)
