"""Rasterise a body with its findings to anterior and posterior count images.

The physics, kept deliberately simple and cheap:

* **Projection.** Each primitive adds ``uptake * path_length`` to the pixels it
  covers (path length from :mod:`core.phantom.primitives`), evaluated at pixel centres
  inside the primitive's bounding box only (no per-pixel Python loops).
* **Attenuation.** Activity at depth ``d`` (mm from the anterior skin) in a body
  ``T`` mm thick reaches the anterior detector with weight ``exp(-MU * d)`` and the
  posterior one with ``exp(-MU * (T - d))`` (:data:`MU_PER_MM`, broad-beam water at
  140 keV with scatter in the window). That is why the spine, scapulae and kidneys
  are clearer posteriorly and the sternum and face anteriorly. Soft tissue, spread
  through the depth, gets the integrated weight ``(1 - exp(-MU L)) / MU``.
* **Collimator blur**, depth dependent: ``FWHM(z) = sqrt(FWHM0**2 + (K z)**2)`` for a
  source ``z`` mm from the collimator face (LEHR-like: about 7.5 mm at 10 cm).
  Background anatomy is split between a near and a far layer (linear in ``z``) and
  each layer is blurred once with ``scipy.ndimage.gaussian_filter``; lesions and the
  bladder are blurred on their own patch with the exact ``FWHM`` of their depth.
* **Counts.** The noise-free image is scaled to a drawn total and Poisson sampled.

Everything is drawn in the anterior orientation (patient's right on the image
left); the posterior view is the same grid mirrored left-right at the end.

**Masks.** A lesion's mask on a view is where its own added, attenuated and blurred
counts reach ``max(MASK_LOCAL_FRACTION * local, MASK_PEAK_FRACTION * peak)``:
``local`` is the noise-free image without lesions and bladder at the lesion centre
(the bone level a reader compares with) and ``peak`` the lesion's largest added
value. A lesion whose peak stays below ``MASK_LOCAL_FRACTION * local`` is invisible
on that view and draws no mask there. Holes in the union of lesion masks are filled
(an outline has none). The bladder mask is where the bladder's blurred
counts reach half its peak, drawn only when that peak reaches
``BLADDER_VISIBLE_FRACTION`` of the view's bone reference (99th percentile of the
image without lesions and bladder). Bladder wins overlaps (label 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS
from core.phantom.anatomy import Body
from core.phantom.primitives import Blob, Primitive, Tube

#: Pixel spacing of the generated grid, (row, column) mm: 1024 x 2.3 = 2.355 m field.
PIXEL_MM = 2.3
#: Effective linear attenuation of soft tissue at 140 keV, per mm.
MU_PER_MM = 0.010
#: Collimator response: FWHM at the face (mm) and growth per mm of distance.
FWHM0_MM, FWHM_SLOPE = 4.5, 0.06
#: Gap between the skin and the collimator face, mm.
GAP_MM = 25.0
#: Distances (mm) of the near and far background layers from the collimator face.
NEAR_MM, FAR_MM = 40.0, 240.0
#: Lesion mask rule, see the module docstring.
MASK_LOCAL_FRACTION, MASK_PEAK_FRACTION = 0.2, 0.4
#: Bladder mask rule, see the module docstring.
BLADDER_MASK_FRACTION, BLADDER_VISIBLE_FRACTION = 0.5, 0.3

_ANT, _POST = 0, 1


@dataclass(frozen=True)
class Placement:
    """Where the body lies in the field and how the camera blurred it.

    Attributes:
        vertex_row: Row of the vertex (top of the head), float.
        centre_col: Column of the body midline on the anterior view, float.
        blur_scale: Multiplies every FWHM (scan speed, camera distance), 1.0-1.7 drawn.
    """

    vertex_row: float
    centre_col: float
    blur_scale: float = 1.0


@dataclass(frozen=True)
class Hotspot:
    """A focal addition rendered on its own patch (a lesion or the bladder).

    Attributes:
        key: Identifier (lesion id, or ``"bladder"``).
        centre: (x, y) mm.
        depth: Depth from the anterior skin, mm.
        thickness: Body AP thickness there, mm.
        patch: 2-D float64 projected activity (path-integrated, before attenuation)
            on the pixel grid, top-left pixel at ``origin``.
        origin: (row, col) of ``patch[0, 0]`` in the anterior orientation.
    """

    key: str
    centre: tuple[float, float]
    depth: float
    thickness: float
    patch: np.ndarray
    origin: tuple[int, int]


@dataclass
class RenderResult:
    """What :func:`render` produced (all arrays in view orientation).

    Attributes:
        expected: ``{view: float64 (1024, 256)}`` noise-free counts after scaling.
        background: ``{view: ...}`` the same without lesions and bladder.
        masks: ``{view: uint8 (1024, 256)}`` labels 0/1/2.
        lesion_pixels: ``{lesion id: {view: pixels over that lesion's own threshold}}``
            (before the bladder overwrote any overlap).
        lesion_contrast: ``{lesion id: {view: peak added / local level}}``.
        bladder_pixels: ``{view: mask pixel count}``.
        bladder_peak_ratio: ``{view: bladder peak / bone reference}``.
        scale: Counts per unit of rendered activity.
    """

    expected: dict[str, np.ndarray]
    background: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    lesion_pixels: dict[str, dict[str, int]] = field(default_factory=dict)
    lesion_contrast: dict[str, dict[str, float]] = field(default_factory=dict)
    bladder_pixels: dict[str, int] = field(default_factory=dict)
    bladder_peak_ratio: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0


def fwhm_mm(distance_mm: float | np.ndarray) -> float | np.ndarray:
    """Return the collimator FWHM (mm) for a source ``distance_mm`` from the face."""
    return np.sqrt(FWHM0_MM**2 + (FWHM_SLOPE * np.asarray(distance_mm)) ** 2)


def _sigma_px(distance_mm: float, blur_scale: float) -> float:
    return (
        float(fwhm_mm(distance_mm))
        * blur_scale
        / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        / (PIXEL_MM)
    )


class Canvas:
    """Four accumulation layers (ANT near/far, POST near/far) in anterior orientation."""

    def __init__(self, placement: Placement) -> None:
        """Create empty layers for a body placed by ``placement``."""
        self.p = placement
        self.layers = np.zeros((4, ROWS, COLS), dtype=np.float64)

    # pixel <-> mm ------------------------------------------------------------------
    def to_px(self, x: float, y: float) -> tuple[float, float]:
        """Return (row, col) in the anterior orientation of the point (x, y) mm."""
        return self.p.vertex_row + y / PIXEL_MM, self.p.centre_col + x / PIXEL_MM

    def grid(
        self, xmin: float, xmax: float, ymin: float, ymax: float
    ) -> tuple[int, int, np.ndarray, np.ndarray] | None:
        """Return (r0, c0, x_mm, y_mm): mm coordinates of the pixels in a mm bounding box.

        ``x_mm`` is a (1, w) row, ``y_mm`` an (h, 1) column, so that they broadcast.

        Returns None when the box misses the field.
        """
        r0 = max(0, math.floor(self.p.vertex_row + ymin / PIXEL_MM))
        r1 = min(ROWS, math.ceil(self.p.vertex_row + ymax / PIXEL_MM) + 1)
        c0 = max(0, math.floor(self.p.centre_col + xmin / PIXEL_MM))
        c1 = min(COLS, math.ceil(self.p.centre_col + xmax / PIXEL_MM) + 1)
        if r1 <= r0 or c1 <= c0:
            return None
        ys = (np.arange(r0, r1) - self.p.vertex_row) * PIXEL_MM
        xs = (np.arange(c0, c1) - self.p.centre_col) * PIXEL_MM
        return r0, c0, xs[None, :], ys[:, None]

    def splat(
        self,
        r0: int,
        c0: int,
        activity: np.ndarray,
        depth: np.ndarray | float,
        thickness: np.ndarray | float,
    ) -> None:
        """Add projected ``activity`` at ``depth`` into the four layers."""
        h, w = activity.shape
        d = np.clip(depth, 0.0, None)
        back = np.clip(np.asarray(thickness) - d, 0.0, None)
        for k, dist in ((0, d), (2, back)):
            att = activity * np.exp(-MU_PER_MM * dist)
            f = np.clip((dist + GAP_MM - NEAR_MM) / (FAR_MM - NEAR_MM), 0.0, 1.0)
            self.layers[k, r0 : r0 + h, c0 : c0 + w] += att * (1.0 - f)
            self.layers[k + 1, r0 : r0 + h, c0 : c0 + w] += att * f

    def splat_soft(self, r0: int, c0: int, path: np.ndarray, per_mm: float) -> None:
        """Add soft tissue with path length ``path`` (mm), activity ``per_mm``, spread in depth.

        Soft tissue goes half to each layer of a view; it is smooth, so where it sits
        in depth hardly shows.
        """
        h, w = path.shape
        val = per_mm * (1.0 - np.exp(-MU_PER_MM * path)) / MU_PER_MM
        for k in range(4):
            self.layers[k, r0 : r0 + h, c0 : c0 + w] += 0.5 * val


def tube_field(
    tube: Tube, canvas: Canvas
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Rasterise a tube: path length and interpolated depth, thickness, uptake.

    Returns:
        (r0, c0, path_mm, depth, thickness, uptake) on the tube's bounding box, each a
        float64 (h, w) array (path 0 outside the tube), or None when off the field.
    """
    xy = tube.xy
    rmax = float(tube.radius.max())
    g = canvas.grid(
        float(xy[:, 0].min()) - rmax,
        float(xy[:, 0].max()) + rmax,
        float(xy[:, 1].min()) - rmax,
        float(xy[:, 1].max()) + rmax,
    )
    if g is None:
        return None
    r0, c0, x_mm, y_mm = g
    if not tube.caps:
        return _slab_field(tube, r0, c0, x_mm, y_mm)
    a = xy[:-1, :, None, None]
    ab = (xy[1:] - xy[:-1])[:, :, None, None]
    px = x_mm[None] - a[:, 0]
    py = y_mm[None] - a[:, 1]
    ll = (ab[:, 0] ** 2 + ab[:, 1] ** 2) + 1e-12
    t = np.clip((px * ab[:, 0] + py * ab[:, 1]) / ll, 0.0, 1.0)
    dx = px - t * ab[:, 0]
    dy = py - t * ab[:, 1]
    rad = tube.radius[:-1, None, None] + t * np.diff(tube.radius)[:, None, None]
    u = np.sqrt(dx * dx + dy * dy) / rad
    i = np.argmin(u, axis=0)
    u_min = np.take_along_axis(u, i[None], 0)[0]
    t_min = np.take_along_axis(t, i[None], 0)[0]

    def interp(v: np.ndarray) -> np.ndarray:
        return v[i] + t_min * (v[i + 1] - v[i])

    inside = u_min < 1.0
    path = np.where(inside, 2.0 * interp(tube.half_depth) * np.sqrt(np.clip(1 - u_min**2, 0, 1)), 0)
    return r0, c0, path, interp(tube.depth), interp(tube.thickness), interp(tube.uptake)


def _slab_field(
    tube: Tube, r0: int, c0: int, x_mm: np.ndarray, y_mm: np.ndarray
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A flat-ended tube read as a vertical slab: half-width ``radius`` at each vertex's y.

    Used for the trunk outline, whose width changes fast with height (neck to
    shoulders); a swept circle would round the shoulders into a cape.
    """
    ys = tube.xy[:, 1]
    yy = np.broadcast_to(y_mm, (y_mm.shape[0], x_mm.shape[1]))
    xc = np.interp(yy, ys, tube.xy[:, 0])
    w = np.interp(yy, ys, tube.radius)
    u = np.abs(x_mm - xc) / w
    inside = (u < 1.0) & (yy >= ys[0]) & (yy <= ys[-1])
    hd = np.interp(yy, ys, tube.half_depth)
    path = np.where(inside, 2.0 * hd * np.sqrt(np.clip(1.0 - u * u, 0.0, None)), 0.0)
    return (
        r0,
        c0,
        path,
        np.interp(yy, ys, tube.depth),
        np.interp(yy, ys, tube.thickness),
        np.interp(yy, ys, tube.uptake),
    )


def blob_path(blob: Blob, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """Return the path length (mm) through an ellipsoid (or shell) at points (x_mm, y_mm)."""
    a, b, c = blob.axes
    ca, sa = math.cos(blob.angle), math.sin(blob.angle)
    dx, dy = x_mm - blob.centre[0], y_mm - blob.centre[1]
    p = dx * ca + dy * sa
    q = -dx * sa + dy * ca
    if blob.power == 2.0:
        u2 = (p / a) ** 2 + (q / b) ** 2
    else:
        u2 = np.abs(p / a) ** blob.power + np.abs(q / b) ** blob.power
    path = 2.0 * c * np.sqrt(np.clip(1.0 - u2, 0.0, None))
    if blob.shell > 0:
        ai, bi, ci = a - blob.shell, b - blob.shell, c - blob.shell
        if ai > 0 and bi > 0 and ci > 0:
            v2 = (p / ai) ** 2 + (q / bi) ** 2
            path = path - 2.0 * ci * np.sqrt(np.clip(1.0 - v2, 0.0, None))
    return path


def blob_field(blob: Blob, canvas: Canvas) -> tuple[int, int, np.ndarray] | None:
    """Rasterise an ellipsoid: (r0, c0, path_mm) on its bounding box, or None off field."""
    a, b, _ = blob.axes
    ca, sa = abs(math.cos(blob.angle)), abs(math.sin(blob.angle))
    ex = math.hypot(a * ca, b * sa)
    ey = math.hypot(a * sa, b * ca)
    g = canvas.grid(
        blob.centre[0] - ex, blob.centre[0] + ex, blob.centre[1] - ey, blob.centre[1] + ey
    )
    if g is None:
        return None
    r0, c0, x_mm, y_mm = g
    return r0, c0, blob_path(blob, x_mm, y_mm)


def draw(canvas: Canvas, prims: Iterable[Primitive], gain: float = 1.0) -> None:
    """Add bone-like primitives (uptake per mm of path, times ``gain``) to the canvas."""
    for prim in prims:
        if isinstance(prim, Tube):
            tf = tube_field(prim, canvas)
            if tf is None:
                continue
            r0, c0, path, depth, thick, upt = tf
            canvas.splat(r0, c0, gain * upt * path, depth, thick)
        else:
            bf = blob_field(prim, canvas)
            if bf is None:
                continue
            r0, c0, path = bf
            canvas.splat(r0, c0, gain * prim.uptake * path, prim.depth, prim.thickness)


def draw_soft(canvas: Canvas, body: Body, per_mm: float) -> None:
    """Add the soft-tissue outline: head, neck, trunk and legs by maximum, arms on top."""
    # the union of the core parts uses the largest path, so joins do not double up
    core = np.zeros((ROWS, COLS), dtype=np.float64)
    lungs = [p for p in body.soft if p.region == "lung"]
    for prim in body.soft:
        if prim.region == "lung":
            continue
        if isinstance(prim, Tube):
            tf = tube_field(prim, canvas)
            if tf is None:
                continue
            r0, c0, path = tf[0], tf[1], tf[2]
        else:
            bf = blob_field(prim, canvas)
            if bf is None:
                continue
            r0, c0, path = bf
        h, w = path.shape
        np.maximum(core[r0 : r0 + h, c0 : c0 + w], path, out=core[r0 : r0 + h, c0 : c0 + w])
    for lung in lungs:
        assert isinstance(lung, Blob)
        bf = blob_field(lung, canvas)
        if bf is not None:
            r0, c0, path = bf
            h, w = path.shape
            sub = core[r0 : r0 + h, c0 : c0 + w]
            np.maximum(sub - 0.8 * path, 0.0, out=sub)
    canvas.splat_soft(0, 0, core, per_mm)
    for prim in body.arms_soft:
        if isinstance(prim, Tube):
            tf = tube_field(prim, canvas)
            if tf is not None:
                canvas.splat_soft(tf[0], tf[1], tf[2], per_mm)


def _blur_layers(canvas: Canvas) -> tuple[np.ndarray, np.ndarray]:
    s_near = _sigma_px(NEAR_MM, canvas.p.blur_scale)
    s_far = _sigma_px(FAR_MM, canvas.p.blur_scale)
    out = []
    for k in (0, 2):
        near = ndimage.gaussian_filter(canvas.layers[k], s_near, mode="constant", truncate=3.5)
        far = ndimage.gaussian_filter(canvas.layers[k + 1], s_far, mode="constant", truncate=3.5)
        out.append(near + far)
    return out[0], out[1]


def _blur_patch(hs: Hotspot, placement: Placement) -> list[tuple[int, int, np.ndarray]]:
    """Blur a hotspot patch for each view: [(r0, c0, blurred)] (ANT, POST), cropped."""
    out = []
    front = max(hs.depth, 0.0)
    back = max(hs.thickness - hs.depth, 0.0)
    for dist in (front, back):
        sigma = _sigma_px(dist + GAP_MM, placement.blur_scale)
        pad = math.ceil(3.5 * sigma) + 1
        att = math.exp(-MU_PER_MM * dist)
        big = np.pad(hs.patch * att, pad)
        blurred = ndimage.gaussian_filter(big, sigma, mode="constant", truncate=3.5)
        r0, c0 = hs.origin[0] - pad, hs.origin[1] - pad
        # crop to the field
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1 = min(r0 + blurred.shape[0], ROWS)
        cc1 = min(c0 + blurred.shape[1], COLS)
        if rr1 <= rr0 or cc1 <= cc0:
            out.append((0, 0, np.zeros((0, 0))))
            continue
        out.append((rr0, cc0, blurred[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]))
    return out


def render(
    canvas: Canvas,
    lesions: Sequence[Hotspot],
    bladder: Hotspot | None,
    *,
    total_counts_ant: float,
    rng: np.random.Generator | None,
    count_limits: tuple[float, float] = (0.25e6, 2.0e6),
) -> tuple[dict[str, np.ndarray], RenderResult]:
    """Blur, add the hotspots, draw the masks, scale to counts and add Poisson noise.

    Args:
        canvas: Background anatomy already drawn (bones, soft tissue, organs, benign).
        lesions: Metastases as hotspots (key = lesion id).
        bladder: The bladder hotspot, or None.
        total_counts_ant: Wanted total counts of the anterior view; the posterior view
            gets what the same scale gives, both then kept inside ``count_limits``.
        rng: Generator for the Poisson noise; None returns the noise-free counts.
        count_limits: Smallest and largest total counts of a view.

    Returns:
        ``(views, result)``: views ``{"ANT", "POST"}`` float32 (1024, 256) counts in
        view orientation (posterior mirrored), and the :class:`RenderResult`.
    """
    bg = list(_blur_layers(canvas))
    ref = [float(np.percentile(b, 99.0)) for b in bg]
    img = [b.copy() for b in bg]
    masks = [np.zeros((ROWS, COLS), dtype=np.uint8) for _ in range(2)]
    lesion_pixels: dict[str, dict[str, int]] = {}
    lesion_contrast: dict[str, dict[str, float]] = {}
    names = ("ANT", "POST")
    for hs in lesions:
        rc = canvas.to_px(*hs.centre)
        r_i = int(np.clip(round(rc[0]), 0, ROWS - 1))
        c_i = int(np.clip(round(rc[1]), 0, COLS - 1))
        lesion_pixels[hs.key] = {}
        lesion_contrast[hs.key] = {}
        for v, (r0, c0, blurred) in enumerate(_blur_patch(hs, canvas.p)):
            if blurred.size == 0:
                lesion_pixels[hs.key][names[v]] = 0
                lesion_contrast[hs.key][names[v]] = 0.0
                continue
            h, w = blurred.shape
            img[v][r0 : r0 + h, c0 : c0 + w] += blurred
            local = max(float(bg[v][r_i, c_i]), 1e-9)
            peak = float(blurred.max())
            lesion_contrast[hs.key][names[v]] = round(peak / local, 4)
            if peak < MASK_LOCAL_FRACTION * local:
                lesion_pixels[hs.key][names[v]] = 0
                continue
            m = blurred >= max(MASK_LOCAL_FRACTION * local, MASK_PEAK_FRACTION * peak)
            masks[v][r0 : r0 + h, c0 : c0 + w][m] = LABEL_METASTASIS
            lesion_pixels[hs.key][names[v]] = int(m.sum())
    for lab in masks:
        # a mask outline holds no holes: LabelMe polygons cannot keep them either
        met = lab == LABEL_METASTASIS
        if met.any():
            box = ndimage.find_objects(met.astype(np.uint8))[0]
            lab[box][ndimage.binary_fill_holes(met[box])] = LABEL_METASTASIS
    bladder_pixels = {"ANT": 0, "POST": 0}
    bladder_ratio = {"ANT": 0.0, "POST": 0.0}
    if bladder is not None:
        for v, (r0, c0, blurred) in enumerate(_blur_patch(bladder, canvas.p)):
            if blurred.size == 0:
                continue
            h, w = blurred.shape
            img[v][r0 : r0 + h, c0 : c0 + w] += blurred
            peak = float(blurred.max())
            bladder_ratio[names[v]] = round(peak / max(ref[v], 1e-9), 4)
            if peak >= BLADDER_VISIBLE_FRACTION * ref[v]:
                m = blurred >= BLADDER_MASK_FRACTION * peak
                masks[v][r0 : r0 + h, c0 : c0 + w][m] = LABEL_BLADDER
                bladder_pixels[names[v]] = int(m.sum())
    tot_a, tot_p = float(img[0].sum()), float(img[1].sum())
    scale = total_counts_ant / max(tot_a, 1e-12)
    lo, hi = count_limits
    if max(tot_a, tot_p) * scale > hi:
        scale = hi / max(tot_a, tot_p)
    if min(tot_a, tot_p) * scale < lo:
        scale = lo / min(tot_a, tot_p)
    expected = [np.clip(i * scale, 0.0, None) for i in img]
    expected[1] = expected[1][:, ::-1]
    bgs = [bg[0] * scale, (bg[1] * scale)[:, ::-1]]
    masks[1] = np.ascontiguousarray(masks[1][:, ::-1])
    if rng is None:
        views = {n: e.astype(np.float32) for n, e in zip(names, expected, strict=True)}
    else:
        views = {n: rng.poisson(e).astype(np.float32) for n, e in zip(names, expected, strict=True)}
    result = RenderResult(
        expected={n: np.ascontiguousarray(e) for n, e in zip(names, expected, strict=True)},
        background={n: np.ascontiguousarray(b) for n, b in zip(names, bgs, strict=True)},
        masks=dict(zip(names, masks, strict=True)),
        lesion_pixels=lesion_pixels,
        lesion_contrast=lesion_contrast,
        bladder_pixels=bladder_pixels,
        bladder_peak_ratio=bladder_ratio,
        scale=scale,
    )
    return views, result
