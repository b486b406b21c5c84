from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.augment import NO_AUGMENTATION, AugmentConfig, augment_batch, thin_counts
from core.normalise import normalise_tensor

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
