"""A physician's review of the model's lesions, and the burden recomputed after it.

The paper computes BSTBI after physicians delete false-positive lesions (fractures,
degenerative joints, injection sites). Here a *lesion* is one connected component of
a view's metastasis label, numbered as :func:`lesion_components` numbers it, with the
same connectivity as :func:`core.burden.indices.hotspot_count`, so one lesion is one
hotspot. Removing a lesion turns its pixels to background in a copy of the model's
mask; the model's own mask is never changed. A lesion the physician draws (added)
turns background pixels into metastasis; bladder pixels stay bladder ("the bladder
wins", as in :mod:`core.burden.indices`). Then the physician's *mask edits* apply, in
the order they were made (:data:`MASK_EDIT_ACTIONS`): erasing part of a mark
(metastasis -> background), marking the bladder (any label -> bladder) and erasing
bladder (bladder -> background). The burden figures are then computed by
:mod:`core.burden.indices` on the reviewed masks, so a reviewed scan and an unreviewed
one use one formula.

Scan-level hotspots and lesion area are sums over the views present (ANT + POST), as
the per-view figures of one scan are reported together. Given the analysis' readable
skeleton maps, the Bone Scan Index is recomputed on the reviewed masks with the same
function the analysis used (:func:`core.anatomy.bsi.bone_scan_index`), so a review
undone gives back the model's index exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from core.anatomy.bsi import bone_scan_index
from core.burden.indices import (
    HOTSPOT_STRUCTURE,
    bstbi_images,
    hotspot_count,
    lesion_area_cm2,
    scan_bstbi,
)
from core.config import (
    DEFAULT_PIXEL_SPACING_MM,
    LABEL_BACKGROUND,
    LABEL_BLADDER,
    LABEL_METASTASIS,
    VIEWS,
)
from core.imaging.boxes import bounding_box
from core.imaging.display import stored_display_images

#: Why a physician excludes a lesion (the paper's false positives, and a catch-all).
REASONS: tuple[str, ...] = ("fracture", "degenerative joint", "injection site", "other")
#: The reason written to the audit log when a lesion is included again.
RESTORE_REASON = "restored on review"
#: What a physician's mask edit does under its pixels: ``erase`` metastasis ->
#: background, ``bladder`` any label -> bladder, ``erase_bladder`` bladder -> background.
MASK_EDIT_ACTIONS: tuple[str, str, str] = ("erase", "bladder", "erase_bladder")


@dataclass(frozen=True)
class ComponentStats:
    """One lesion: a connected component of a view's metastasis pixels.

    Attributes:
        component: Its number in the label image (1..n).
        area_px: Number of pixels (> 0).
        centroid_row: Mean row of its pixels.
        centroid_col: Mean column of its pixels.
    """

    component: int
    area_px: int
    centroid_row: float
    centroid_col: float


@dataclass(frozen=True)
class BurdenResult:
    """The burden of a scan after review.

    Attributes:
        per_image: ``{(view, level): bstbi}`` of every display image, each in [0, 1].
        scan_bstbi: Their mean (:func:`core.burden.indices.scan_bstbi`).
        hotspots: Metastasis components summed over the views.
        lesion_area_cm2: Metastasis area summed over the views, cm².
        masks: ``{view: label mask}`` after review, uint8, values 0, 1, 2 (new arrays).
        bsi: The Bone Scan Index of the reviewed masks in percent of skeletal mass
            (:func:`core.anatomy.bsi.bone_scan_index`), or None without a skeleton map.
            Computed whatever the quality gate said: the caller decides whether it is
            reliable.
        bsi_regions: ``{region: percent of skeletal mass it contributes}``, the
            involved regions only (sums to ``bsi``); empty without a map.
        bsi_involvement: ``{region: involved fraction in [0, 1]}``, every region seen
            on a map; empty without one.
    """

    per_image: dict[tuple[str, int], float]
    scan_bstbi: float
    hotspots: int
    lesion_area_cm2: float
    masks: dict[str, np.ndarray]
    bsi: float | None = None
    bsi_regions: dict[str, float] = field(default_factory=dict)
    bsi_involvement: dict[str, float] = field(default_factory=dict)


def _label_mask(name: str, mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0 or m.dtype != np.uint8:
        raise ValueError(
            f"{name} must be a non-empty 2-D uint8 label mask, got {m.dtype} {m.shape}"
        )
    if m.max() > LABEL_BLADDER:
        raise ValueError(f"{name} must hold only labels 0, 1, 2, got max {m.max()}")
    return m


def lesion_components(mask: np.ndarray) -> tuple[np.ndarray, list[ComponentStats]]:
    """Number the lesions (metastasis components) of one view's label mask.

    Args:
        mask: uint8 2-D label mask (0 background, 1 metastasis, 2 bladder).

    Returns:
        ``(labels, stats)``: int32 array of ``mask``'s shape, 0 outside lesions and
        1..n on the n components (8-connected, :data:`core.burden.indices.HOTSPOT_STRUCTURE`,
        numbered in raster order); and one :class:`ComponentStats` per component,
        in component order.

    Raises:
        ValueError: If ``mask`` is not a non-empty 2-D uint8 mask with labels 0-2.
    """
    m = _label_mask("mask", mask)
    lesion = m == LABEL_METASTASIS
    labels = np.zeros(m.shape, dtype=np.int32)
    box = bounding_box(lesion)
    if box is None:
        return labels, []
    # Components lie inside the lesions' bounding box, numbered in the same raster order
    # as in the whole view; labelling only the box is faster.
    crop, n = ndimage.label(lesion[box], structure=HOTSPOT_STRUCTURE)
    labels[box] = crop
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(lesion, labels, index)
    centroids = ndimage.center_of_mass(lesion, labels, index)
    stats = [
        ComponentStats(int(i), int(a), float(r), float(c))
        for i, a, (r, c) in zip(index, areas, centroids, strict=True)
    ]
    return labels, stats


def _edit_pixels(where: str, pixels: Any, shape: tuple[int, ...]) -> np.ndarray:
    p = np.asarray(pixels)
    if p.shape != shape:
        raise ValueError(f"{where} must have shape {shape}, got {p.shape}")
    if not (p.dtype == np.bool_ or np.issubdtype(p.dtype, np.integer)):
        raise ValueError(f"{where} must be bool or 0/1 integers, got {p.dtype}")
    return p.astype(bool)


def reviewed_masks(
    model_masks: Mapping[str, np.ndarray],
    lesion_components: Mapping[str, np.ndarray],
    removed: Set[tuple[str, int]],
    added: Mapping[str, np.ndarray] | None = None,
    edits: Sequence[Mapping[str, Any]] = (),
) -> dict[str, np.ndarray]:
    """Return the label masks after the physician's review (pure; the inputs are not changed).

    Model masks, minus the removed lesions, plus the drawn lesions, then the mask edits
    in id order: ``"erase"`` turns metastasis under its pixels into background,
    ``"bladder"`` turns any label into bladder, ``"erase_bladder"`` turns bladder into
    background.

    Args:
        model_masks: ``{view: label mask}`` the model produced, uint8, values 0-2.
        lesion_components: ``{view: labels}``, int32 as :func:`lesion_components` returns
            for that view's model mask (needed for every view named in ``removed``).
        removed: ``{(view, component)}`` lesions the physician removed; their pixels
            become background.
        added: ``{view: drawn}``, bool or 0/1 arrays of the view's shape, lesions the
            physician drew; background pixels under them become metastasis (bladder
            stays bladder). None for no additions.
        edits: Mask edits, each a mapping with ``view``, ``action`` (one of
            :data:`MASK_EDIT_ACTIONS`) and ``pixels`` (bool or 0/1 array of the view's
            shape), as :func:`db.annotations.mask_edits` returns them; applied in order
            of their ``id`` when they carry one (else as given). An edit with a true
            ``undone`` is skipped.

    Returns:
        ``{view: uint8 label mask}``, new arrays, one per model mask.

    Raises:
        ValueError: If a mask is not a uint8 label mask, a removed lesion names a view
            without components or a component number that does not exist, an added
            mask, a component image or an edit has another shape than its view's mask,
            an added mask or edit names a view without a mask, or an edit's action is
            unknown.
    """
    masks = {view: _label_mask(f"model_masks[{view!r}]", m) for view, m in model_masks.items()}
    by_view: dict[str, list[int]] = {}
    for view, component in removed:
        if view not in masks:
            raise ValueError(f"removed: view {view!r} has no model mask")
        if view not in lesion_components:
            raise ValueError(f"removed: view {view!r} has no lesion component image")
        by_view.setdefault(view, []).append(int(component))
    if added is not None:
        unknown = set(added) - set(masks)
        if unknown:
            raise ValueError(f"added: views {sorted(unknown)} have no model mask")
    edited: dict[str, np.ndarray] = {}
    for view, mask in masks.items():
        out = mask.copy()
        if view in by_view:
            labels = np.asarray(lesion_components[view])
            if labels.shape != mask.shape:
                raise ValueError(
                    f"lesion_components[{view!r}] must have shape {mask.shape}, got {labels.shape}"
                )
            n = int(labels.max(initial=0))
            bad = [c for c in by_view[view] if not 1 <= c <= n]
            if bad:
                raise ValueError(f"removed: view {view!r} has no component {bad} (it has 1..{n})")
            out[np.isin(labels, by_view[view]) & (out == LABEL_METASTASIS)] = LABEL_BACKGROUND
        if added is not None and view in added:
            drawn = np.asarray(added[view])
            if drawn.shape != mask.shape:
                raise ValueError(f"added[{view!r}] must have shape {mask.shape}, got {drawn.shape}")
            out[drawn.astype(bool) & (out == LABEL_BACKGROUND)] = LABEL_METASTASIS
        edited[view] = out
    # sorted() is stable: edits without ids keep the order given
    ordered = sorted(enumerate(edits), key=lambda item: int(item[1].get("id") or 0))
    for index, edit in ordered:
        where = f"edits[{index}]"
        edit_view, action = edit.get("view"), edit.get("action")
        if action not in MASK_EDIT_ACTIONS:
            raise ValueError(f"{where}: action must be one of {MASK_EDIT_ACTIONS}, got {action!r}")
        if edit_view not in edited:
            raise ValueError(f"{where}: view {edit_view!r} has no model mask")
        if edit.get("undone"):
            continue
        out = edited[edit_view]
        under = _edit_pixels(f"{where} pixels", edit.get("pixels"), out.shape)
        if action == "erase":
            out[under & (out == LABEL_METASTASIS)] = LABEL_BACKGROUND
        elif action == "bladder":
            out[under] = LABEL_BLADDER
        else:
            out[under & (out == LABEL_BLADDER)] = LABEL_BACKGROUND
    return edited


def recompute_burden(
    displays: Mapping[tuple[str, int], np.ndarray],
    model_masks: Mapping[str, np.ndarray],
    lesion_components: Mapping[str, np.ndarray],
    removed: Set[tuple[str, int]],
    added: Mapping[str, np.ndarray] | None = None,
    *,
    pixel_spacing_mm: tuple[float, float],
    edits: Sequence[Mapping[str, Any]] = (),
    skeletons: Mapping[str, np.ndarray] | None = None,
) -> BurdenResult:
    """Return the scan's burden after removing and adding lesions and editing the masks.

    Args:
        displays: ``{(view, level): image}``, uint8 2-D, 0 = hottest, as
            :func:`core.imaging.display.display_images` returns.
        model_masks: ``{view: label mask}`` the model produced, uint8, values 0-2, the
            shape of that view's displays. Not modified.
        lesion_components: ``{view: labels}``, int32 as :func:`lesion_components`
            returns for that view's model mask (needed for every view named in
            ``removed``).
        removed: ``{(view, component)}`` lesions the physician removed; their pixels
            become background before BSTBI.
        added: ``{view: drawn}``, bool or 0/1 arrays of the view's shape, lesions the
            physician drew; background pixels under them become metastasis (bladder
            stays bladder). Applied after removals. None for no additions.
        pixel_spacing_mm: (row, column) pixel size in mm, for the lesion area.
        edits: The physician's mask edits, applied last (:func:`reviewed_masks`).
        skeletons: ``{view: uint8 (1024, 256) skeleton label map}`` of the views the
            analysis could read (:attr:`core.analysis.AnalysisResult.skeletons`, as
            stored); each view needs a model mask. None or empty: no BSI.

    Returns:
        The :class:`BurdenResult` computed by :mod:`core.burden.indices` on the
        reviewed masks (:func:`reviewed_masks`), with the BSI of those masks on the
        given maps.

    Raises:
        ValueError: As :func:`reviewed_masks`, anything :mod:`core.burden.indices`
            refuses, a skeleton map of a view without a model mask, or one that
            :func:`core.anatomy.bsi.bone_scan_index` refuses.
    """
    edited = reviewed_masks(model_masks, lesion_components, removed, added, edits)
    per_image = bstbi_images(displays, edited)
    present = [v for v in VIEWS if v in edited] + [v for v in edited if v not in VIEWS]
    maps = dict(skeletons or {})
    unknown = sorted(set(maps) - set(edited))
    if unknown:
        raise ValueError(f"skeletons: views {unknown} have no model mask")
    # As core.analysis does: a view's metastasis pixels on its map, views in VIEWS order.
    index = (
        bone_scan_index(
            **{
                f"{v.lower()}_{part}": array
                for v in VIEWS
                if v in maps
                for part, array in (
                    ("skeleton", maps[v]),
                    ("mask", edited[v] == LABEL_METASTASIS),
                )
            }
        )
        if maps
        else None
    )
    return BurdenResult(
        per_image=per_image,
        scan_bstbi=scan_bstbi(per_image),
        hotspots=sum(hotspot_count(edited[v] == LABEL_METASTASIS) for v in present),
        lesion_area_cm2=sum(
            lesion_area_cm2(edited[v] == LABEL_METASTASIS, pixel_spacing_mm) for v in present
        ),
        masks=edited,
        bsi=None if index is None else index.bsi,
        bsi_regions={} if index is None else dict(index.regions),
        bsi_involvement={} if index is None else dict(index.involvement),
    )


# --- review state: lesion statuses as stored, and the burden they give ---


@dataclass(frozen=True)
class StudyImages:
    """What a stored study's review is computed from (all derived from the store).

    Attributes:
        displays: ``{(view, level): uint8 image}`` (:func:`core.imaging.display.display_images`).
        components: ``{view: int32 labels}`` of the model masks
            (:func:`core.burden.lesion_review.lesion_components`, the numbering the lesions carry).
        spacing_mm: (row, column) pixel spacing used for lesion areas.
        skeletons: ``{view: uint8 skeleton label map}`` stored with the analysis
            (:func:`db.queries.study_with_masks`' ``"skeletons"``), for the BSI; empty
            without one.
        bsi_withheld: The analysis' reason for not reporting a BSI (a child:
            :func:`core.anatomy.bsi.withheld_for_age`), or None; a review's burden then
            has no BSI either.
    """

    displays: dict[tuple[str, int], np.ndarray]
    components: dict[str, np.ndarray]
    spacing_mm: tuple[float, float]
    skeletons: dict[str, np.ndarray] = field(default_factory=dict)
    bsi_withheld: str | None = None


def study_images(study: Mapping[str, Any], views: Mapping[str, np.ndarray],
                 masks: Mapping[str, np.ndarray],
                 skeletons: Mapping[str, np.ndarray] | None = None,
                 bsi_withheld: str | None = None) -> StudyImages:  # fmt: skip
    """Rebuild a stored study's display images and lesion numbering.

    Args:
        study: The studies row (:func:`db.queries.study_with_masks`' ``"study"``).
        views: ``{view: float32 counts}`` of the study.
        masks: ``{view: uint8 label mask}`` of its analysis (the model's output).
        skeletons: ``{view: uint8 skeleton label map}`` of its analysis
            (:func:`db.queries.study_with_masks`' ``"skeletons"``); None for none (no BSI).
        bsi_withheld: The analysis' ``bsi_withheld`` (:class:`StudyImages`).

    Returns:
        The :class:`StudyImages`; the spacing is the study's, or the pipeline's default
        when the file gave none (as the analysis used).

    Raises:
        ValueError: If ``views`` is empty.
    """
    if not views:
        raise ValueError("views must hold at least one view")
    row_mm, col_mm = study.get("pixel_spacing_row_mm"), study.get("pixel_spacing_col_mm")
    spacing = (
        (float(row_mm), float(col_mm))
        if row_mm is not None and col_mm is not None
        else DEFAULT_PIXEL_SPACING_MM
    )
    return StudyImages(
        displays=stored_display_images(views, bool(study.get("display_grey_level_1"))),
        components={view: lesion_components(mask)[0] for view, mask in masks.items()},
        spacing_mm=spacing,
        skeletons=dict(skeletons or {}),
        bsi_withheld=bsi_withheld,
    )


def is_drawn(lesion: Mapping[str, Any]) -> bool:
    """Whether a lesion was drawn by a physician (not a component of the model's mask)."""
    return lesion.get("drawn") is not None


def included(lesion: Mapping[str, Any]) -> bool:
    """Whether a lesion counts in the burden (its status is not ``"removed"``)."""
    return bool(lesion["status"] != "removed")


def status_for(lesion: Mapping[str, Any], include: bool) -> str:
    """The status that includes or excludes a lesion: ``model``/``added`` or ``removed``."""
    if not include:
        return "removed"
    return "added" if is_drawn(lesion) else "model"


def lesion_state(
    lesions: Sequence[Mapping[str, Any]], statuses: Mapping[int, str] | None = None
) -> tuple[set[tuple[str, int]], dict[str, np.ndarray]]:
    """The removed model lesions and the kept drawn ones of a review state.

    Args:
        lesions: The analysis' lesions (dicts of :func:`db.queries.study_with_masks`).
        statuses: ``{lesion id: status}`` overriding the lesions' own; None for none.

    Returns:
        ``(removed, added)`` as :func:`reviewed_masks` takes them: ``{(view, component)}``
        of the removed model lesions, and ``{view: bool pixels}`` of the drawn lesions
        that count (the union per view).
    """
    statuses = statuses or {}
    removed: set[tuple[str, int]] = set()
    added: dict[str, np.ndarray] = {}
    for lesion in lesions:
        # a row not stored yet has no id; only an override needs one
        status = statuses.get(int(lesion["id"]), lesion["status"]) if statuses else lesion["status"]
        if is_drawn(lesion):
            if status == "added":
                view = lesion["view"]
                previous = added.get(view)
                drawn = np.asarray(lesion["drawn"], dtype=bool)
                added[view] = drawn if previous is None else previous | drawn
        elif status == "removed":
            removed.add((lesion["view"], int(lesion["component"])))
    return removed, added


def burden(
    images: StudyImages,
    masks: Mapping[str, np.ndarray],
    lesions: Sequence[Mapping[str, Any]],
    *,
    statuses: Mapping[int, str] | None = None,
    edits: Sequence[Mapping[str, Any]] = (),
) -> BurdenResult:
    """Recompute the burden for a review state.

    Args:
        images: From :func:`study_images`.
        masks: The model's masks.
        lesions: The analysis' lesions (dicts of :func:`db.queries.study_with_masks`).
        statuses: ``{lesion id: status}`` overriding the lesions' own (e.g. the
            state about to be saved); None uses the stored statuses. ``{}`` with every
            lesion overridden to its kept status gives the model's own figures.
        edits: The analysis' mask edits (:func:`db.annotations.mask_edits`), applied
            after the lesions; none by default.

    Returns:
        :func:`core.burden.lesion_review.recompute_burden` of that state, with the BSI
        on ``images.skeletons`` (None, with no regions, where ``images.bsi_withheld``).
    """
    removed, added = lesion_state(lesions, statuses)
    result = recompute_burden(
        images.displays,
        masks,
        images.components,
        removed,
        added or None,
        pixel_spacing_mm=images.spacing_mm,
        edits=edits,
        skeletons=images.skeletons,
    )
    if images.bsi_withheld is not None:
        return dataclasses.replace(result, bsi=None, bsi_regions={})
    return result


def model_burden(
    images: StudyImages, masks: Mapping[str, np.ndarray], lesions: Sequence[Mapping[str, Any]]
) -> BurdenResult:
    """The model's own burden: every model lesion kept, no drawn lesion, no mask edit."""
    return burden(
        images,
        masks,
        lesions,
        statuses={int(les["id"]): "removed" if is_drawn(les) else "model" for les in lesions},
    )


def changed_statuses(
    lesions: Sequence[Mapping[str, Any]], include: Mapping[int, bool]
) -> dict[int, str]:
    """The new status of each lesion whose ``include`` tick differs from the store's.

    Args:
        lesions: The analysis' lesions as stored.
        include: ``{lesion id: ticked}`` as the table returned it.

    Returns:
        ``{lesion id: new status}`` for the changed lesions only.
    """
    out: dict[int, str] = {}
    for lesion in lesions:
        lesion_id = int(lesion["id"])
        if lesion_id in include and bool(include[lesion_id]) != included(lesion):
            out[lesion_id] = status_for(lesion, bool(include[lesion_id]))
    return out
