"""Training batches of the lesion network (core.networks.lesion_training)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from core.anatomy.references import midline_column
from core.anatomy.regions import index_of
from core.config import COLS, ROWS
from core.networks.lesion_net import RATIO_MAX, lesion_inputs
from core.networks.lesion_training import (
    NO_AUGMENT,
    PAIR_MIN_OFFSET,
    LesionAugment,
    add_paired_spots,
    coarse,
    crop_origin,
    make_batch,
)

METASTASIS, BLADDER = 1, 2
TOP = math.log1p(RATIO_MAX)

#: Crops as wide as the view, so that a crop is found by its first row alone.
FULL_WIDTH_NO_AUGMENT = dataclasses.replace(NO_AUGMENT, crop=(256, 256))


def _case(seed: int, lesion_at: tuple[int, int] = (300, 50)) -> tuple[np.ndarray, ...]:
    """One synthetic anterior view: counts (uint16), skeleton map, lesion mask."""
    skeleton = np.zeros((ROWS, COLS), np.uint8)
    skeleton[100:900, 112:144] = index_of("thoracic_spine")
    skeleton[200:700, 40:60] = index_of("humerus_right")
    skeleton[200:700, 196:216] = index_of("humerus_left")
    skeleton[750:850, 60:110] = index_of("pelvis_right")
    skeleton[750:850, 146:196] = index_of("pelvis_left")
    mask = np.zeros((ROWS, COLS), np.uint8)
    r, c = lesion_at
    mask[r : r + 12, c : c + 12] = METASTASIS
    mask[920:960, 112:144] = BLADDER
    lam = np.where(skeleton > 0, 40.0, 6.0)
    lam[mask == METASTASIS] = 120.0
    lam[mask == BLADDER] = 900.0
    counts = np.random.default_rng(seed).poisson(lam).astype(np.uint16)
    return counts, skeleton, mask


def _batch(seeds: tuple[int, ...] = (0, 1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cases = [_case(s, (300 + 200 * s, 45)) for s in seeds]
    counts, skeletons, masks = (np.stack(parts) for parts in zip(*cases, strict=True))
    return counts, skeletons, masks


def _generators(seed: int = 0) -> tuple[torch.Generator, np.random.Generator]:
    return torch.Generator().manual_seed(seed), np.random.default_rng(seed)


def _window_row(big: np.ndarray, small: np.ndarray) -> int | None:
    """The row at which ``small`` equals a full-width window of ``big`` (None if none)."""
    rows = small.shape[-2]
    for top in range(big.shape[-2] - rows + 1):
        if np.array_equal(big[..., top : top + rows, :], small):
            return top
    return None


# --- coarse ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.uint8,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.integers(0, 40),
    )
)
def test_coarse_keeps_the_shape_and_repeats_the_even_pixels(skeleton: np.ndarray) -> None:
    """Each pixel takes the label at its even (row, col): the map at half resolution."""
    out = coarse(skeleton)
    assert out.shape == skeleton.shape and out.dtype == skeleton.dtype
    rows, cols = np.indices(skeleton.shape)
    np.testing.assert_array_equal(out, skeleton[rows - rows % 2, cols - cols % 2])


def test_coarse_loses_a_one_pixel_boundary() -> None:
    """A label on odd rows only disappears (the point of coarsening)."""
    skeleton = np.zeros((8, 8), np.uint8)
    skeleton[3, :] = 5
    assert not coarse(skeleton).any()
    skeleton[2, :] = 5
    np.testing.assert_array_equal(coarse(skeleton)[2:4], 5)


# --- crop_origin -------------------------------------------------------------------------

ON_LESION = LesionAugment(jitter=0, lesion_share=1.0, hot_share=0.0, crop=(64, 32))
ON_HOT = LesionAugment(jitter=0, lesion_share=0.0, hot_share=1.0, crop=(64, 32))
ANYWHERE = LesionAugment(jitter=0, lesion_share=0.0, hot_share=0.0, crop=(64, 32))


def _small_case(r: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    view = np.full((200, 80), 2.0, np.float32)
    skeleton = np.zeros((200, 80), np.uint8)
    skeleton[40:160, 20:60] = index_of("sternum")
    view[skeleton > 0] = 10.0
    mask = np.zeros((200, 80), np.uint8)
    mask[r, c] = METASTASIS
    view[r, c] = 40.0
    return view, skeleton, mask


def _contains(origin: tuple[int, int], crop: tuple[int, int], r: int, c: int) -> bool:
    top, left = origin
    return top <= r < top + crop[0] and left <= c < left + crop[1]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 199), st.integers(0, 79), st.integers(0, 2**32 - 1))
def test_a_lesion_crop_contains_the_lesion(r: int, c: int, seed: int) -> None:
    """lesion_share 1 and no jitter: the crop holds the metastasis pixel, even at an edge."""
    view, skeleton, mask = _small_case(r, c)
    origin = crop_origin(view, skeleton, mask, ON_LESION, np.random.default_rng(seed))
    assert _contains(origin, ON_LESION.crop, r, c)


def test_a_hot_crop_contains_a_hot_pixel_outside_the_lesion() -> None:
    """hot_share 1 and no jitter: the crop is centred near a hot non-metastasis pixel."""
    view, skeleton, mask = _small_case(20, 5)
    view[190, 70] = 100.0  # hot, outside any metastasis
    for seed in range(10):
        origin = crop_origin(view, skeleton, mask, ON_HOT, np.random.default_rng(seed))
        assert _contains(origin, ON_HOT.crop, 190, 70)


def test_without_a_lesion_the_crop_falls_back_to_the_skeleton() -> None:
    """No metastasis pixel: the crop is centred on a skeleton pixel instead."""
    view, skeleton, mask = _small_case(0, 0)
    mask[:] = 0
    skeleton[:] = 0
    skeleton[180, 75] = index_of("sternum")
    for aug in (ON_LESION, ANYWHERE):
        for seed in range(10):
            origin = crop_origin(view, skeleton, mask, aug, np.random.default_rng(seed))
            assert _contains(origin, aug.crop, 180, 75)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 199),
    st.integers(0, 79),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 5, 96, 400]),
    st.booleans(),
)
def test_crop_origins_lie_inside_the_view(
    r: int, c: int, seed: int, jitter: int, with_skeleton: bool
) -> None:
    """Whatever the jitter and shares, the crop fits inside the view."""
    view, skeleton, mask = _small_case(r, c)
    if not with_skeleton:
        skeleton[:] = 0
        mask[:] = 0
    aug = LesionAugment(jitter=jitter, crop=(64, 32))
    top, left = crop_origin(view, skeleton, mask, aug, np.random.default_rng(seed))
    assert 0 <= top <= view.shape[0] - 64
    assert 0 <= left <= view.shape[1] - 32


# --- make_batch --------------------------------------------------------------------------


def test_a_whole_batch_without_augmentation_is_the_inputs_and_the_masks() -> None:
    """whole=True, NO_AUGMENT: x is lesion_inputs of each view, y its mask (int64)."""
    counts, skeletons, masks = _batch()
    x, y = make_batch(counts, skeletons, masks, NO_AUGMENT, *_generators(), whole=True)
    assert x.shape == (2, 3, ROWS, COLS) and x.dtype == torch.float32
    assert y.shape == (2, ROWS, COLS) and y.dtype == torch.int64
    for i in range(2):
        expected = lesion_inputs(counts[i].astype(np.float32), skeletons[i])
        np.testing.assert_array_equal(x[i].numpy(), expected)
        np.testing.assert_array_equal(y[i].numpy(), masks[i])


def test_a_cropped_batch_without_augmentation_crops_inputs_and_labels_together() -> None:
    """Full-width crops (256, 256): x and y are the same window of the view's inputs and mask."""
    counts, skeletons, masks = _batch()
    x, y = make_batch(counts, skeletons, masks, FULL_WIDTH_NO_AUGMENT, *_generators(3))
    assert x.shape == (2, 3, 256, 256) and x.dtype == torch.float32
    assert y.shape == (2, 256, 256) and y.dtype == torch.int64
    for i in range(2):
        full = lesion_inputs(counts[i].astype(np.float32), skeletons[i])
        top = _window_row(full, x[i].numpy())
        assert top is not None
        np.testing.assert_array_equal(y[i].numpy(), masks[i, top : top + 256])


def test_the_lesion_share_puts_the_metastasis_in_the_crop() -> None:
    """With lesion_share 1 and no jitter every crop holds metastasis labels."""
    counts, skeletons, masks = _batch()
    aug = LesionAugment(jitter=0, lesion_share=1.0, hot_share=0.0)
    for seed in range(3):
        _, y = make_batch(counts, skeletons, masks, aug, *_generators(seed))
        assert all(bool((y[i] == METASTASIS).any()) for i in range(2))


def test_augmented_crops_never_invent_labels() -> None:
    """With the default augmentation each crop's labels are a window of the (possibly
    flipped) mask, so only the mask's labels appear; inputs stay in range."""
    counts, skeletons, masks = _batch()
    masks[1][masks[1] == BLADDER] = 0  # the second view has no bladder label
    aug = LesionAugment(crop=(256, 256))
    seen_flip = False
    for seed in range(4):
        x, y = make_batch(counts, skeletons, masks, aug, *_generators(seed))
        assert x.shape == (2, 3, 256, 256) and y.shape == (2, 256, 256)
        assert float(x.min()) >= 0.0 and float(x.max()) <= TOP + 1e-6
        for i in range(2):
            labels = y[i].numpy()
            assert set(np.unique(labels)) <= set(np.unique(masks[i]).tolist())
            plain = _window_row(masks[i].astype(np.int64), labels)
            flipped = _window_row(masks[i][:, ::-1].astype(np.int64), labels)
            assert plain is not None or flipped is not None
            seen_flip |= plain is None
    assert seen_flip  # the flips were exercised


def test_several_crops_per_view() -> None:
    """``crops_per_view`` cuts that many crops of the default size from each view, in order."""
    counts, skeletons, masks = _batch()
    aug = LesionAugment(jitter=0, lesion_share=1.0, hot_share=0.0)
    x, y = make_batch(counts, skeletons, masks, aug, *_generators(1), crops_per_view=3)
    assert x.shape == (6, 3, *aug.crop) and y.shape == (6, *aug.crop)
    assert all(bool((y[i] == METASTASIS).any()) for i in range(6))
    with pytest.raises(ValueError, match="crops_per_view"):
        make_batch(counts, skeletons, masks, aug, *_generators(1), crops_per_view=0)


def test_make_batch_is_reproducible_from_its_generators() -> None:
    """The same generator seeds give the same batch."""
    counts, skeletons, masks = _batch()
    a = make_batch(counts, skeletons, masks, LesionAugment(), *_generators(5))
    b = make_batch(counts, skeletons, masks, LesionAugment(), *_generators(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("which", ["skeletons", "masks", "all_2d"])
def test_make_batch_refuses_mismatched_shapes(which: str) -> None:
    """Arrays that do not share one (B, H, W) shape raise ValueError."""
    counts, skeletons, masks = _batch()
    if which == "skeletons":
        skeletons = skeletons[:1]
    elif which == "masks":
        masks = masks[:, :512]
    else:
        counts, skeletons, masks = counts[0], skeletons[0], masks[0]
    with pytest.raises(ValueError):
        make_batch(counts, skeletons, masks, NO_AUGMENT, *_generators())


# --- add_paired_spots ------------------------------------------------------------------


def test_paired_spots_are_mirrored_off_the_midline_and_leave_the_mask() -> None:
    """Each added spot has a partner at its mirror about the mid-line; masks are untouched."""
    counts, skeleton, mask = _case(0)
    view = counts.astype(np.float32)
    # exact mirrors (no shift, equal sides) so the partner is found where it must be
    aug = LesionAugment(
        pair_prob=1.0, pairs_mean=3.0, pair_sigma=(3.0, 3.0), pair_asymmetry=0.0, pair_shift=0
    )
    added = 0
    for seed in range(6):
        out = add_paired_spots(view, skeleton, mask, aug, np.random.default_rng(seed))
        diff = ndimage.gaussian_filter(out - view, 2.0)
        assert diff.min() > -1e-6  # only added counts
        if not diff.any():
            continue
        pieces, n = ndimage.label(diff > 0.3 * diff.max())
        centres = ndimage.center_of_mass(diff, pieces, range(1, n + 1))
        mid = midline_column(skeleton)
        for r, c in centres:
            assert abs(c - mid) >= PAIR_MIN_OFFSET - 3
            # the mirrored place got counts too (a partner within about 15 % and 2 rows)
            here = diff[round(r), round(c)]
            there = diff[max(0, round(r) - 3) : round(r) + 4, round(2 * mid - c)].max()
            assert there > 0.4 * here, f"spot at {(r, c)} has no mirrored partner"
        added += n
        # no spot touches the lesion or the bladder, so the labels stay true
        assert float(np.abs(out - view)[mask != 0].max()) < 0.05 * 40 * 4
    assert added > 0


def test_no_pairs_when_the_probability_is_zero() -> None:
    """``pair_prob`` 0 (and NO_AUGMENT) return the view unchanged."""
    counts, skeleton, mask = _case(1)
    view = counts.astype(np.float32)
    assert NO_AUGMENT.pair_prob == 0.0
    out = add_paired_spots(view, skeleton, mask, NO_AUGMENT, np.random.default_rng(0))
    np.testing.assert_array_equal(out, view)
