"""LabelMe annotation files <-> uint8 label masks (0 background, 1 metastasis, 2 bladder).

The paper's physicians outlined metastases and the bladder with LabelMe polygons. A
LabelMe file is JSON: ``version``, ``flags``, ``shapes`` (each with ``label``,
``points`` as ``[x, y]`` = [column, row] in pixels of the annotated image,
``group_id``, ``shape_type``, ``flags``), ``imagePath``, ``imageData`` (base64 or
null), ``imageHeight`` and ``imageWidth``.

Reading (:func:`read_labelme`) rasterises shapes exactly as LabelMe's own
``labelme.utils.shape_to_mask`` does, with ``PIL.ImageDraw`` (polygons:
``polygon(xy, outline=1, fill=1)``; a point's integer coordinates are a pixel
centre; Pillow truncates fractional coordinates of the outline, so LabelMe masks
lean up to one pixel towards the top left and so do these). Labels match
case-insensitively after trimming: ``metastasis`` -> 1, ``bladder`` -> 2. Other labels,
and shape types other than ``polygon``, ``rectangle`` and ``circle`` (``line``,
``linestrip``, ``point``, ``mask``), are ignored and reported in
:attr:`LabelMeMask.ignored`. Metastasis shapes are drawn first and bladder shapes
over them: where they overlap the bladder wins (the rule of :mod:`core.burden.indices`).

When the target grid differs from the annotated image (e.g. the annotation was
drawn on a 2048 x 512 export and the mask is wanted on the canonical 1024 x 256),
points are scaled as a bilinear resize maps pixel centres:
``x' = (x + 0.5) * W' / W - 0.5`` (same for y with heights).

Writing (:func:`write_labelme`) turns each 8-connected component of each label into
one polygon through the centres of its outer boundary pixels: the component's outer
contour from :func:`skimage.measure.find_contours` (level 0.5, through the midpoints
of pixel edges) with each vertex moved onto the foreground pixel beside it, and the
vertices on straight runs dropped by :func:`skimage.measure.approximate_polygon`.
Rasterised again that polygon gives back the component exactly; holes in a component
are not written (they come back filled), except that bladder inside a metastasis hole
is restored because bladder is drawn last.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from skimage.measure import approximate_polygon, find_contours

from core.config import LABEL_BACKGROUND, LABEL_BLADDER, LABEL_METASTASIS

#: Version string written into new files (the LabelMe release whose format is followed).
LABELME_VERSION = "5.4.1"
#: Label names, lower case, and their mask values; drawn in this order (bladder last).
LABELS: dict[str, int] = {"metastasis": LABEL_METASTASIS, "bladder": LABEL_BLADDER}
#: Shape types that are rasterised; others are ignored.
SUPPORTED_SHAPE_TYPES: tuple[str, ...] = ("polygon", "rectangle", "circle")

_EIGHT = np.ones((3, 3), dtype=bool)


class LabelMeMask(NamedTuple):
    """What :func:`load_labelme` read.

    Attributes:
        mask: uint8 label mask (0 background, 1 metastasis, 2 bladder) of the target
            shape.
        ignored: One human-readable line per shape that was not drawn, and why.
    """

    mask: np.ndarray
    ignored: tuple[str, ...]


def _check_shape(name: str, shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2 or not all(isinstance(v, int | np.integer) and v > 0 for v in shape):
        raise ValueError(f"{name} must be (rows, columns), two integers > 0, got {shape!r}")
    return int(shape[0]), int(shape[1])


def _scale_points(
    points: list[tuple[float, float]], source: tuple[int, int], target: tuple[int, int]
) -> list[tuple[float, float]]:
    if source == target:
        return points
    sy, sx = target[0] / source[0], target[1] / source[1]
    return [((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5) for x, y in points]


def _points(where: str, raw: Any) -> list[tuple[float, float]]:
    if not isinstance(raw, list):
        raise ValueError(f"{where}: points must be a list of [x, y]")
    out: list[tuple[float, float]] = []
    for p in raw:
        if (
            not isinstance(p, list | tuple)
            or len(p) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in p)
        ):
            raise ValueError(f"{where}: point {p!r} is not [x, y] of two finite numbers")
        out.append((float(p[0]), float(p[1])))
    return out


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape_type: str, xy: list[tuple[float, float]]
) -> str | None:
    """Draw one shape with value 1; return why it was skipped, or None."""
    if shape_type == "polygon":
        if len(xy) < 3:
            return "polygon with fewer than 3 points"
        draw.polygon(xy, outline=1, fill=1)
    elif shape_type == "rectangle":
        if len(xy) != 2:
            return "rectangle without exactly 2 points"
        (x0, y0), (x1, y1) = xy
        draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), outline=1, fill=1)
    elif shape_type == "circle":
        if len(xy) != 2:
            return "circle without exactly 2 points"
        (cx, cy), (px, py) = xy
        d = math.hypot(cx - px, cy - py)
        draw.ellipse((cx - d, cy - d, cx + d, cy + d), outline=1, fill=1)
    else:
        return f"shape_type {shape_type!r} is not one of {SUPPORTED_SHAPE_TYPES}"
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable LabelMe JSON file ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise ValueError(f"{path}: not a LabelMe file (no 'shapes' list)")
    return data


def load_labelme(
    path: str | Path,
    shape: tuple[int, int] | None = None,
    *,
    source_shape: tuple[int, int] | None = None,
) -> LabelMeMask:
    """Read a LabelMe file into a label mask, and report the shapes left out.

    Args:
        path: The ``.json`` file.
        shape: (rows, columns) of the mask wanted; None for the annotated image's own
            size. Points are scaled when it differs from the annotated size.
        source_shape: (rows, columns) of the annotated image, used only when the file
            lacks ``imageHeight``/``imageWidth``.

    Returns:
        :class:`LabelMeMask` with a uint8 mask of ``shape``, values 0, 1, 2.

    Raises:
        ValueError: If the file is not LabelMe JSON, a shape's points are malformed,
            or neither the file nor ``source_shape``/``shape`` gives the image size.
    """
    path = Path(path)
    data = _read_json(path)
    height, width = data.get("imageHeight"), data.get("imageWidth")
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        source = (height, width)
    elif source_shape is not None:
        source = _check_shape("source_shape", source_shape)
    elif shape is not None:
        source = _check_shape("shape", shape)
    else:
        raise ValueError(f"{path}: no imageHeight/imageWidth; pass shape or source_shape")
    target = source if shape is None else _check_shape("shape", shape)

    layers = {value: Image.new("L", (target[1], target[0]), 0) for value in LABELS.values()}
    ignored: list[str] = []
    for i, item in enumerate(data["shapes"]):
        where = f"{path}: shapes[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} is not an object")
        label = str(item.get("label", "")).strip().lower()
        if label not in LABELS:
            ignored.append(f"shapes[{i}]: label {item.get('label')!r} is not one of {list(LABELS)}")
            continue
        shape_type = str(item.get("shape_type") or "polygon")
        xy = _scale_points(_points(where, item.get("points")), source, target)
        why = _draw_shape(ImageDraw.Draw(layers[LABELS[label]]), shape_type, xy)
        if why is not None:
            ignored.append(f"shapes[{i}] ({label}): {why}")

    mask = np.full(target, LABEL_BACKGROUND, dtype=np.uint8)
    for value in LABELS.values():  # bladder last: it wins where shapes overlap
        mask[np.asarray(layers[value], dtype=bool)] = value
    return LabelMeMask(mask=mask, ignored=tuple(ignored))


def read_labelme(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a LabelMe file into a uint8 label mask (see :func:`load_labelme`).

    Args:
        path: The ``.json`` file.
        shape: (rows, columns) wanted, or None for the annotated image's size.

    Returns:
        uint8 mask, 0 background, 1 metastasis, 2 bladder.

    Raises:
        ValueError: As :func:`load_labelme`.
    """
    return load_labelme(path, shape).mask


def annotation_path(image_path: str | Path) -> Path:
    """Return the LabelMe file that belongs to an image: same folder and stem, ``.json``.

    Args:
        image_path: The image file.

    Returns:
        The sibling ``.json`` path (it may not exist).
    """
    return Path(image_path).with_suffix(".json")


def read_labelme_for_image(image_path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Read the label mask of an image from its sibling LabelMe file.

    A missing ``.json`` means nothing was annotated. When the file lacks the image
    size, the image's own size (read from its header) is used.

    Args:
        image_path: The annotated image.
        shape: (rows, columns) of the mask wanted, e.g. ``(ROWS, COLS)``.

    Returns:
        uint8 mask of ``shape``; all 0 when there is no annotation file.

    Raises:
        ValueError: If the annotation file is unreadable or malformed.
    """
    target = _check_shape("shape", shape)
    json_path = annotation_path(image_path)
    if not json_path.exists():
        return np.zeros(target, dtype=np.uint8)
    source: tuple[int, int] | None = None
    data = _read_json(json_path)
    if not (isinstance(data.get("imageHeight"), int) and isinstance(data.get("imageWidth"), int)):
        try:
            with Image.open(image_path) as im:
                source = (im.height, im.width)
        except OSError as err:
            raise ValueError(f"{json_path}: no image size, and {image_path}: {err}") from None
    return load_labelme(json_path, target, source_shape=source).mask


def _outer_contour(padded: np.ndarray, first: tuple[int, int]) -> np.ndarray:
    """Return the pixel-edge outer contour through the top edge of ``first`` (padded frame).

    At level 0.5 each vertex is the midpoint of an edge between a foreground and a
    background pixel; ``fully_connected="high"`` joins diagonal foreground pixels
    (8-connected components, 4-connected holes) and ``positive_orientation="low"``
    runs the outer contour clockwise on screen. The raster-first pixel's top edge
    lies on its component's outer contour and on no other.
    """
    contours = find_contours(
        padded.astype(np.float64), 0.5, fully_connected="high", positive_orientation="low"
    )
    top = (first[0] - 0.5, float(first[1]))
    for contour in contours:
        hits = np.flatnonzero((contour[:, 0] == top[0]) & (contour[:, 1] == top[1]))
        if len(hits):
            # closed contours repeat their first vertex at the end; start at the top edge
            return np.roll(contour[:-1], -int(hits[0]), axis=0)
    raise RuntimeError("find_contours missed the top edge of a foreground pixel")


def trace_boundary(component: np.ndarray) -> list[tuple[int, int]]:
    """Return the outer boundary of one 8-connected component, as (row, col) pixels.

    The component's outer contour from :func:`skimage.measure.find_contours` runs
    along pixel edges; each of its vertices is moved onto the centre of the
    foreground pixel beside it, because LabelMe reads a point's integer coordinates
    as a pixel centre. The result goes clockwise on screen from the component's
    first pixel in raster order, and pixels passed twice (one-pixel-wide parts) are
    listed each time.

    Args:
        component: 2-D bool array holding one 8-connected component (anything else
            in it is ignored only if not 8-connected to the first pixel).

    Returns:
        The boundary pixels in order, without repeating the first at the end; one
        pixel for a single-pixel component; empty for an empty array.

    Raises:
        ValueError: If ``component`` is not 2-D.
    """
    comp = np.asarray(component, dtype=bool)
    if comp.ndim != 2:
        raise ValueError(f"component must be a 2-D array, got shape {comp.shape}")
    padded = np.pad(comp, 1)
    nz = np.argwhere(padded)
    if len(nz) == 0:
        return []
    first = (int(nz[0][0]), int(nz[0][1]))
    edges = _outer_contour(padded, first)
    # one coordinate of each vertex is a half: of the two pixels it splits, keep the
    # foreground one
    low = np.floor(edges).astype(np.intp)
    high = np.ceil(edges).astype(np.intp)
    keep_low = padded[low[:, 0], low[:, 1]]
    pixels = np.where(keep_low[:, None], low, high)
    # consecutive vertices on the same pixel's edges collapse into that pixel; the
    # first pixel's edges before its top edge close the loop, so they are dropped
    moved = np.ones(len(pixels), dtype=bool)
    moved[1:] = np.any(pixels[1:] != pixels[:-1], axis=1)
    path = pixels[moved]
    end = len(path)
    while end > 1 and (path[end - 1] == path[0]).all():
        end -= 1
    return [(int(r) - 1, int(c) - 1) for r, c in path[:end]]


def mask_to_polygons(mask: np.ndarray) -> list[tuple[str, list[tuple[int, int]]]]:
    """Return one outer-boundary polygon per 8-connected component of each label.

    Each polygon goes through the centres of the component's boundary pixels
    (:func:`trace_boundary`); :func:`skimage.measure.approximate_polygon` then drops
    the vertices that lie on the segment between two kept ones (straight runs, and
    runs that double back along it). Its tolerance is below the distance of any pixel
    centre off such a segment within the mask, so the outline still passes through the
    same pixel centres and the polygon, rasterised again by :func:`read_labelme`,
    gives back the component exactly (holes filled).

    Args:
        mask: uint8 2-D label mask, values 0, 1, 2.

    Returns:
        ``[(label_name, [(row, col), ...]), ...]``, metastasis components first, each
        polygon at least 3 vertices (a repeated vertex pads tiny components).

    Raises:
        ValueError: If ``mask`` is not a 2-D uint8 label mask.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.dtype != np.uint8:
        raise ValueError(f"mask must be a 2-D uint8 label mask, got {m.dtype} {m.shape}")
    if m.size and m.max() > LABEL_BLADDER:
        raise ValueError("mask must hold only labels 0, 1, 2")
    # a pixel centre off the line through two others is at least 1 / (their distance)
    # away from it, and no two centres of the mask are further apart than its diagonal
    tolerance = 0.5 / math.hypot(*m.shape) if m.size else 0.0
    out: list[tuple[str, list[tuple[int, int]]]] = []
    for name, value in LABELS.items():
        labelled, _ = ndimage.label(m == value, structure=_EIGHT)
        boxes = ndimage.find_objects(labelled)
        for index, box in enumerate(boxes, start=1):
            if box is None:
                continue
            contour = np.array(trace_boundary(labelled[box] == index), dtype=np.float64)
            kept = contour
            # a closed path of fewer than 4 unit steps has no vertex on a straight run
            if len(contour) > 3:
                # closed: the chain ends where it starts, so that vertex is always kept
                closed = np.vstack([contour, contour[:1]])
                kept = approximate_polygon(closed, tolerance)[:-1]
            poly = [(int(r) + box[0].start, int(c) + box[1].start) for r, c in kept]
            while len(poly) < 3:
                poly.append(poly[-1])
            out.append((name, poly))
    return out


def write_labelme(
    path: str | Path,
    mask: np.ndarray,
    image_path: str,
    image_shape: tuple[int, int],
) -> None:
    """Write a label mask as a LabelMe file (version 5.4.1, ``imageData`` null).

    Args:
        path: The ``.json`` file to write (its folder must exist).
        mask: uint8 2-D label mask (0, 1, 2) on any grid, e.g. the canonical 1024 x 256.
        image_path: The ``imagePath`` field: the annotated image, conventionally its
            file name relative to the JSON's folder.
        image_shape: (rows, columns) of that image; points are scaled from the mask's
            grid to it (see the module docstring) when they differ.

    Raises:
        ValueError: If ``mask`` is not a 2-D uint8 label mask or ``image_shape`` is
            not two integers > 0.
    """
    target = _check_shape("image_shape", image_shape)
    polygons = mask_to_polygons(mask)
    source = (int(mask.shape[0]), int(mask.shape[1]))
    shapes: list[dict[str, Any]] = []
    for name, poly in polygons:
        xy = _scale_points([(float(c), float(r)) for r, c in poly], source, target)
        shapes.append(
            {
                "label": name,
                "points": [[x, y] for x, y in xy],
                "group_id": None,
                "description": "",
                "shape_type": "polygon",
                "flags": {},
                "mask": None,
            }
        )
    document: dict[str, Any] = {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": target[0],
        "imageWidth": target[1],
    }
    Path(path).write_text(json.dumps(document, indent=2), encoding="utf-8")
