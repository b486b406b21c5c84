"""The per-scan stages' shortcuts give exactly (bit for bit) what the plain calls give.

Labelling and dilation run on a mask's bounding box only, BSTBI's sums are integer
sums, grey level 1 is computed in place and grey level 2 by
a table. Each is compared here with the plain numpy/scipy formulation on the whole
view: every float with ``==`` (no tolerance) and every array with ``np.array_equal``
and its dtype. No timings are tested.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import ndimage

from core.burden.indices import (
    BLADDER_MARGIN_PX,
    BODY_FRACTION,
    HOTSPOT_STRUCTURE,
    bstbi,
    bstbi_images,
    hotspot_count,
    normal_bone_reference,
)
from core.burden.lesion_review import ComponentStats, lesion_components
from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS
from core.imaging.display import GREY_LEVEL_1_PERCENTILE, display_images, grey_level_1, grey_level_2
from core.imaging.regions import BodyBox, body_box
from core.phantom.generate import generate_case, to_scan
from core.scan import Scan, ScanMeta

EXPORT_8BIT = ScanMeta(source_format="png", polarity="hot-bright", bit_depth=8)

# --- references: plain whole-view numpy/scipy calls ----------------------------------------


def _ref_lesion_components(mask: np.ndarray) -> tuple[np.ndarray, list[ComponentStats]]:
    labels, n = ndimage.label(mask == LABEL_METASTASIS, structure=HOTSPOT_STRUCTURE)
    labels = labels.astype(np.int32, copy=False)
    if n == 0:
        return labels, []
    index = np.arange(1, n + 1)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    centroids = ndimage.center_of_mass(np.ones(mask.shape), labels, index)
    return labels, [
        ComponentStats(int(i), int(a), float(c[0]), float(c[1]))
        for i, a, c in zip(index, areas, centroids, strict=True)
    ]


def _ref_normal_bone_reference(
    counts: np.ndarray, lesion: np.ndarray, bladder: np.ndarray | None
) -> np.ndarray:
    c = np.asarray(counts).astype(np.float64)
    excluded = lesion.astype(bool)
    if bladder is not None and bladder.any():
        excluded |= ndimage.binary_dilation(
            bladder.astype(bool), structure=HOTSPOT_STRUCTURE, iterations=BLADDER_MARGIN_PX
        )
    kept = ~excluded
    if not kept.any():
        return kept
    body = kept & (c > BODY_FRACTION * np.percentile(c[kept], 99.9))
    if not body.any():
        return body
    return body & (c > np.median(c[body]))


def _ref_body_box(counts: np.ndarray) -> BodyBox:
    heat = 255.0 - _ref_grey_level_1(counts).astype(np.float32)
    rows, cols = heat.shape
    smooth = ndimage.gaussian_filter(heat, 2.0)
    labels, n = ndimage.label(smooth >= 6.0)
    if n == 0:
        return BodyBox(0.0, float(rows - 1), (cols - 1) / 2.0)
    sizes = np.bincount(labels.ravel())[1:]
    body = labels == int(np.argmax(sizes)) + 1
    body_rows = np.flatnonzero(body.any(axis=1))
    top, bottom = float(body_rows[0]), float(body_rows[-1])
    if bottom <= top:
        return BodyBox(0.0, float(rows - 1), (cols - 1) / 2.0)
    lo = int(top + 0.20 * (bottom - top))
    hi = int(top + 0.45 * (bottom - top)) + 1
    weights = smooth[lo:hi] * body[lo:hi]
    sums = weights.sum(axis=1)
    valid = sums > 0
    if not valid.any():
        return BodyBox(top, bottom, (cols - 1) / 2.0)
    centres = (weights[valid] @ np.arange(cols, dtype=np.float64)) / sums[valid]
    return BodyBox(top, bottom, float(np.median(centres)))


def _ref_grey_level_1(counts: np.ndarray) -> np.ndarray:
    a = np.asarray(counts).astype(np.float64)
    top = float(np.percentile(a, GREY_LEVEL_1_PERCENTILE))
    if top <= 0:
        return np.full(a.shape, 255, dtype=np.uint8)
    darkness = 255.0 * np.clip(a / top, 0.0, 1.0)
    return (255 - np.floor(darkness + 0.5)).astype(np.uint8)


def _ref_grey_level_2(g1: np.ndarray) -> np.ndarray:
    return (255 - np.clip(2 * (255 - g1.astype(np.int32)), 0, 255)).astype(np.uint8)


def _ref_bstbi(display: np.ndarray, lesion: np.ndarray, bladder: np.ndarray, k: float) -> float:
    lesion = lesion & ~bladder
    heat = 255 - display.astype(np.int64)
    s_l = float(heat[lesion].sum())
    if s_l == 0.0:
        return 0.0
    value = k * s_l / ((k - 1.0) * s_l + float(heat.sum()) - float(heat[bladder].sum()))
    return min(1.0, max(0.0, value))


# --- scans ----------------------------------------------------------------------------------


def _mapped(scan: Scan, f: Callable[[np.ndarray], np.ndarray], meta: ScanMeta) -> Scan:
    views = {
        v: np.asarray(f(np.array(a, dtype=np.float64)), dtype=np.float32)
        for v, a in scan.views.items()
    }
    return Scan(views=views, meta=meta)


def _rows_cut(a: np.ndarray) -> np.ndarray:
    return np.where(np.arange(ROWS)[:, None] < 300, 0.0, a)


def _hot_corner(a: np.ndarray) -> np.ndarray:
    out = np.round(a / a.max() * 200)
    out[:4, :30] = 255  # hot pixels at the field's edge: filters' borders are exercised
    out[2, 5:9] = 0  # wrapped pixels right beside them
    return out


@pytest.fixture(scope="module")
def phantoms() -> list[Scan]:
    return [to_scan(generate_case(0, i)) for i in range(3)] + [
        to_scan(generate_case(7, 0, pattern="superscan")),
        to_scan(generate_case(7, 1, age=12)),
    ]


@pytest.fixture(scope="module")
def variants(phantoms: list[Scan]) -> list[Scan]:
    ph = phantoms[1]
    rng = np.random.default_rng(0)
    return [
        _mapped(ph, lambda a: np.round(a / a.max() * 200), EXPORT_8BIT),
        _mapped(ph, lambda a: np.minimum(np.round(a / a.max() * 600), 255), EXPORT_8BIT),
        _mapped(ph, lambda a: np.mod(np.round(a / a.max() * 400), 256), EXPORT_8BIT),
        _mapped(ph, _hot_corner, EXPORT_8BIT),
        _mapped(ph, lambda a: rng.poisson(3.0, a.shape), ph.meta),
        _mapped(ph, lambda a: rng.poisson(3.0, a.shape), EXPORT_8BIT),
        _mapped(ph, lambda a: a * 0.0, ph.meta),
        _mapped(ph, lambda a: a * 0.0 + 7.0, EXPORT_8BIT),
        _mapped(ph, _rows_cut, ph.meta),
        _mapped(ph, lambda a: a + rng.random(a.shape), ph.meta),  # no row is all background
        _mapped(ph, lambda a: np.roll(a, 500, axis=0), ph.meta),  # body across both edges
    ]


# --- lesions and burden ---------------------------------------------------------------------


def _masks_of(case_seed: int, index: int) -> tuple[Scan, dict[str, np.ndarray]]:
    case = generate_case(case_seed, index)
    return to_scan(case), case.masks


def _edge_masks() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    m = np.zeros((ROWS, COLS), np.uint8)
    out.append(m.copy())  # no lesion
    m[0, 0] = m[1, 1] = m[ROWS - 1, COLS - 1] = 1  # corners, 8-connected pair
    m[500:520, 100:140] = 2
    m[510, 98:103] = 1  # a lesion touching the bladder
    out.append(m.copy())
    out.append((rng.random((ROWS, COLS)) < 0.02).astype(np.uint8))  # many specks
    full = np.ones((ROWS, COLS), np.uint8)
    out.append(full)
    bladder_edge = np.zeros((ROWS, COLS), np.uint8)
    bladder_edge[ROWS - 3 :, :4] = 2  # bladder at the corner: dilation meets the edge
    bladder_edge[100:103, 50] = 1
    out.append(bladder_edge)
    return out


def _cases() -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for seed, index in ((0, 1), (0, 6), (2, 3)):
        scan, masks = _masks_of(seed, index)
        pairs += [(scan.views[v], masks[v]) for v in scan.views]
    counts = pairs[0][0]
    pairs += [(counts, m) for m in _edge_masks()]
    return pairs


@pytest.fixture(scope="module")
def lesion_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    return _cases()


def test_lesion_components_are_bit_identical(
    lesion_cases: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    for _, mask in lesion_cases:
        labels, stats = lesion_components(mask)
        ref_labels, ref_stats = _ref_lesion_components(mask)
        assert labels.dtype == ref_labels.dtype and np.array_equal(labels, ref_labels)
        assert stats == ref_stats


def test_hotspot_count_matches_whole_view_labelling(
    lesion_cases: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    for _, mask in lesion_cases:
        lesion = mask == LABEL_METASTASIS
        assert hotspot_count(lesion) == ndimage.label(lesion, structure=HOTSPOT_STRUCTURE)[1]


def test_normal_bone_reference_is_bit_identical(
    lesion_cases: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    for counts, mask in lesion_cases:
        lesion, bladder = mask == LABEL_METASTASIS, mask == LABEL_BLADDER
        for b in (bladder, None):
            got = normal_bone_reference(counts, lesion, b)
            assert np.array_equal(got, _ref_normal_bone_reference(counts, lesion, b))


def test_bstbi_is_bit_identical(lesion_cases: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for counts, mask in lesion_cases:
        g1 = _ref_grey_level_1(counts)
        displays = {("ANT", 1): g1, ("ANT", 2): _ref_grey_level_2(g1)}
        got = bstbi_images(displays, {"ANT": mask})
        for key, image in displays.items():
            lesion, bladder = mask == LABEL_METASTASIS, mask == LABEL_BLADDER
            want = _ref_bstbi(image, lesion, bladder, 5.0)
            assert got[key] == want == bstbi(image, lesion, bladder)


def test_body_box_and_display_are_bit_identical(phantoms: list[Scan], variants: list[Scan]) -> None:
    for scan in phantoms + variants:
        disp = display_images(scan)
        for view, a in scan.views.items():
            assert body_box(a) == _ref_body_box(a)
            g1 = grey_level_1(a)
            assert g1.dtype == np.uint8 and np.array_equal(g1, _ref_grey_level_1(a))
            assert np.array_equal(disp[(view, 2)], _ref_grey_level_2(disp[(view, 1)]))


def test_grey_level_2_table_covers_every_value() -> None:
    g1 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    got = grey_level_2(g1)
    assert got.dtype == np.uint8 and np.array_equal(got, _ref_grey_level_2(g1))
