from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch.nn import functional

from core.imaging.normalise import normalise_tensor
from core.networks.augment import (
    AUGMENTATION_PRESETS,
    NO_AUGMENTATION,
    TRANSFER_AUGMENTATION,
    AugmentConfig,
    augment_batch,
    display_export,
    gaussian_blur,
    geometric_grid,
    thin_counts,
)

GEOMETRY_ONLY = AugmentConfig(
    thin_prob=0.0,
    intensity_range=(1.0, 1.0),
    scale_range=(0.85, 1.15),
    shift=0.1,
    flip_prob=0.5,
)


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _blobs(n: int = 8, h: int = 64, w: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts 1000 inside labelled blobs, 10 elsewhere; masks 1 and 2 on the blobs."""
    masks = torch.zeros(n, h, w, dtype=torch.uint8)
    masks[:, 10:22, 4:12] = 1  # left, upper: asymmetric so a flip shows
    masks[:, 40:50, 18:28] = 2
    counts = torch.where(masks > 0, 1000.0, 10.0)[:, None]
    return counts, masks


def test_no_augmentation_only_normalises() -> None:
    counts, masks = _blobs()
    ref = torch.full((8,), 1000.0)
    x, m = augment_batch(counts, ref, masks, NO_AUGMENTATION, _gen())
    torch.testing.assert_close(x, normalise_tensor(counts, 1000.0))
    assert torch.equal(m, masks.long())


def test_flip_mirrors_image_and_mask_exactly() -> None:
    counts, masks = _blobs(2)
    cfg = AugmentConfig(
        thin_prob=0.0, intensity_range=(1, 1), scale_range=(1, 1), shift=0.0, flip_prob=1.0
    )
    x, m = augment_batch(counts, torch.full((2,), 1000.0), masks, cfg, _gen())
    torch.testing.assert_close(x, torch.flip(normalise_tensor(counts, 1000.0), [-1]))
    assert torch.equal(m, torch.flip(masks.long(), [-1]))


def _dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_masks_move_with_images() -> None:
    counts, masks = _blobs(16)
    x, m = augment_batch(counts, torch.full((16,), 1000.0), masks, GEOMETRY_ONLY, _gen(3))
    stale = 0
    for i in range(16):
        hot = x[i, 0] > 0.55  # halfway between background (0.1) and blob (1.0)
        assert _dice(hot, m[i] > 0) > 0.9
        for label in (1, 2):  # labels keep their own blob (the upper-left one is 1)
            assert (hot & (m[i] == label)).sum() > 0.85 * (m[i] == label).sum()
        stale += _dice(hot, masks[i] > 0) < 0.8
    assert stale >= 8  # the unmoved mask would not fit: the geometry changed things


def test_same_seed_same_result_and_other_seed_differs() -> None:
    counts, masks = _blobs(4)
    ref = torch.full((4,), 1000.0)
    cfg = AugmentConfig(thin_prob=1.0)
    a = augment_batch(counts, ref, masks, cfg, _gen(5))
    b = augment_batch(counts, ref, masks, cfg, _gen(5))
    c = augment_batch(counts, ref, masks, cfg, _gen(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_thinning_is_binomial() -> None:
    counts = torch.full((2, 1, 200, 200), 100.0)
    out = thin_counts(counts, torch.tensor([0.3, 1.0]), _gen(1))
    assert torch.equal(out, out.round())
    # Binomial(100, 0.3): mean 30, variance 21
    assert out[0].mean().item() == pytest.approx(30.0, abs=0.2)
    assert out[0].var().item() == pytest.approx(21.0, rel=0.05)
    assert torch.equal(out[1], counts[1])


def test_thinning_keeps_the_normalised_level() -> None:
    gen = torch.Generator()
    gen.manual_seed(0)
    counts = torch.poisson(torch.full((4, 1, 128, 64), 200.0), generator=gen)
    ref = torch.full((4,), 200.0)
    cfg = replace(NO_AUGMENTATION, thin_prob=1.0, thin_range=(0.25, 0.25))
    x, _ = augment_batch(counts, ref, torch.zeros(4, 128, 64, dtype=torch.uint8), cfg, gen)
    plain = normalise_tensor(counts, 200.0)
    # the reference scales with the counts kept, so the level stays and noise grows
    assert x.mean().item() == pytest.approx(plain.mean().item(), rel=0.02)
    assert x.std().item() > 1.5 * plain.std().item()


def test_views_with_tiny_counts_are_not_thinned() -> None:
    counts = torch.full((1, 1, 8, 8), 0.4)
    cfg = AugmentConfig(
        thin_prob=1.0, intensity_range=(1, 1), scale_range=(1, 1), shift=0.0, flip_prob=0.0
    )
    x, _ = augment_batch(counts, torch.tensor([0.4]), torch.zeros(1, 8, 8), cfg, _gen())
    torch.testing.assert_close(x, torch.ones_like(x))


def test_config_and_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="thin_range"):
        AugmentConfig(thin_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="shift"):
        AugmentConfig(shift=0.6)
    with pytest.raises(ValueError, match="masks"):
        augment_batch(
            torch.zeros(2, 1, 8, 8), torch.ones(2), torch.zeros(2, 4, 8), NO_AUGMENTATION, _gen()
        )


def _poisson_blobs(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    counts, masks = _blobs(n)
    return torch.poisson(counts, generator=_gen(11)), masks


def test_new_fields_off_run_only_the_standard_stages() -> None:
    # With the export/camera fields off, the batch is exactly the standard pipeline
    # (thinning, intensity, normalisation, geometry) drawn from the same generator in
    # the same order: no extra stage and no extra random draw.
    counts, masks = _poisson_blobs()
    cfg = AugmentConfig(thin_prob=1.0)
    x, m = augment_batch(counts, torch.full((8,), 1000.0), masks, cfg, _gen(7))

    gen = _gen(7)
    n = counts.shape[0]
    lo, hi = cfg.thin_range
    keep = lo + (hi - lo) * torch.rand(n, generator=gen)
    assert bool((torch.rand(n, generator=gen) < cfg.thin_prob).all())
    want = thin_counts(counts.float(), keep, gen)
    ref = torch.full((8,), 1000.0) * keep
    ilo, ihi = cfg.intensity_range
    ref = ref / torch.exp(
        math.log(ilo) + (math.log(ihi) - math.log(ilo)) * torch.rand(n, generator=gen)
    )
    want = normalise_tensor(want, ref.reshape(n, 1, 1, 1))
    grid = geometric_grid(n, tuple(counts.shape[2:]), cfg, gen, torch.device("cpu"))
    want = functional.grid_sample(
        want, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    want_m = (
        functional.grid_sample(
            masks[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
        )[:, 0]
        .round()
        .long()
    )
    assert torch.equal(x, want)
    assert torch.equal(m, want_m)
    assert AUGMENTATION_PRESETS["standard"] == AugmentConfig()


def test_transfer_augmentation_keeps_shapes_and_ranges() -> None:
    counts, masks = _poisson_blobs(16)
    x, m = augment_batch(counts, torch.full((16,), 1000.0), masks, TRANSFER_AUGMENTATION, _gen(2))
    assert x.shape == (16, 1, 64, 32) and m.shape == (16, 64, 32)
    assert x.dtype == torch.float32 and m.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 2.0 and bool(torch.isfinite(x).all())
    assert set(m.unique().tolist()) <= {0, 1, 2}


def test_stretch_moves_masks_with_images() -> None:
    counts, masks = _blobs(16)
    cfg = replace(NO_AUGMENTATION, stretch=0.3)
    x, m = augment_batch(counts, torch.full((16,), 1000.0), masks, cfg, _gen(4))
    changed = 0
    for i in range(16):
        hot = x[i, 0] > 0.55
        assert _dice(hot, m[i] > 0) > 0.9
        changed += not torch.equal(m[i], masks[i].long())
    assert changed >= 12  # the aspect ratio did change


def test_export_gives_at_most_256_levels_and_a_matching_reference() -> None:
    counts, masks = _poisson_blobs(8)
    levels, ref = display_export(
        counts, torch.full((8,), 1000.0), torch.full((8,), 0.5), torch.full((8,), 1.0)
    )
    assert torch.equal(levels, levels.round()) and levels.min() >= 0 and levels.max() <= 255
    assert len(levels.unique()) <= 256
    torch.testing.assert_close(ref, torch.full((8,), 255.0))  # reference above the window
    cfg = replace(NO_AUGMENTATION, export_prob=1.0)
    x, _ = augment_batch(counts, torch.full((8,), 1000.0), masks, cfg, _gen(3))
    for i in range(8):
        # normalisation maps each level to one value: at most 256 distinct inputs
        assert len(x[i].unique()) <= 256
    # the blob (about the reference) stays bright and the background dark
    assert x[:, 0, 12, 6].min() > 0.8 and x[:, 0, 2, 30].max() < 0.6


def test_blur_spreads_a_point_and_keeps_its_sum() -> None:
    x = torch.zeros(2, 1, 33, 33)
    x[:, 0, 16, 16] = 100.0
    y = gaussian_blur(x, torch.tensor([0.0, 1.5]))
    torch.testing.assert_close(y[0], x[0])
    assert float(y[1].sum()) == pytest.approx(100.0, rel=1e-4)
    assert float(y[1, 0, 16, 16]) < 10.0 and float(y[1, 0, 16, 18]) > 1.0


def test_burned_in_labels_and_borders_never_set_mask_pixels() -> None:
    n = 32
    counts = torch.poisson(torch.full((n, 1, 64, 48), 500.0), generator=_gen(1))
    masks = torch.ones(n, 64, 48, dtype=torch.uint8)  # metastasis everywhere
    cfg = replace(NO_AUGMENTATION, label_prob=1.0, border_prob=1.0)
    x, m = augment_batch(counts, torch.full((n,), 500.0), masks, cfg, _gen(5))
    plain = normalise_tensor(counts, 500.0)
    drawn = m == 0
    assert set(m.unique().tolist()) == {0, 1}  # only ever cleared, never set
    assert drawn.sum(dim=(1, 2)).min() > 0  # every item got something
    # pixels outside the drawings are untouched; labels sit at or above the crop's max
    assert torch.equal(x[:, 0][~drawn], plain[:, 0][~drawn])
    top = plain.reshape(n, -1).amax(1)
    for i in range(n):
        corners = [x[i, 0, :12, :12], x[i, 0, :12, -12:], x[i, 0, -12:, :12], x[i, 0, -12:, -12:]]
        assert max(float(c.max()) for c in corners) >= float(top[i]) - 1e-6
    assert float(x.max()) <= 2.0


def test_new_config_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="stretch"):
        AugmentConfig(stretch=0.6)
    with pytest.raises(ValueError, match="export_gamma"):
        AugmentConfig(export_gamma=(0.0, 1.0))
    with pytest.raises(ValueError, match="blur_prob"):
        AugmentConfig(blur_prob=1.5)
