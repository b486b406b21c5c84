from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.imaging.display import GREY_LEVEL_1_PERCENTILE, grey_level_1
from core.imaging.normalise import (
    MAX_VALUE,
    REFERENCE_PERCENTILE,
    normalise_tensor,
    normalise_view,
    normalise_views,
    reference_level,
)


def test_hand_computed_values() -> None:
    # 0..1000: the 99.9th percentile (linear interpolation) is exactly 999
    counts = np.arange(1001, dtype=np.float32).reshape(7, 143)
    assert reference_level(counts) == pytest.approx(999.0)
    out = normalise_view(counts)
    assert out.dtype == np.float32 and out.shape == (7, 143)
    flat = out.ravel()
    assert flat[0] == 0.0
    assert flat[999] == pytest.approx(1.0)
    assert flat[int(999 * 0.25)] == pytest.approx(np.sqrt(249 / 999))
    hot = counts.copy()
    hot[0, 0] = 999 * 9  # far above the clip at ratio 4
    assert normalise_view(hot)[0, 0] == pytest.approx(MAX_VALUE) == pytest.approx(2.0)


def test_reference_is_the_displays_grey_level_1_percentile() -> None:
    assert REFERENCE_PERCENTILE == GREY_LEVEL_1_PERCENTILE
    rng = np.random.default_rng(1)
    counts = rng.poisson(20, size=(1024, 256)).astype(np.float32)
    counts[500:520, 100:120] += 400
    black = grey_level_1(counts) == 0
    # what the display shows black, the networks see at ratio >= 1 (sqrt >= 1)
    assert black.any()
    assert normalise_view(counts)[black].min() >= 1.0 - 1e-6


def test_blank_view_is_all_zero() -> None:
    assert not normalise_view(np.zeros((16, 8), np.float32)).any()


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(0.01, 1000.0), seed=st.integers(0, 100))
def test_invariant_to_total_counts(scale: float, seed: int) -> None:
    counts = np.random.default_rng(seed).gamma(2.0, 10.0, size=(64, 32)).astype(np.float32)
    out = normalise_view(counts * np.float32(scale))
    np.testing.assert_allclose(out, normalise_view(counts), atol=1e-4)
    assert out.min() >= 0.0 and out.max() <= MAX_VALUE


def test_tensor_and_view_forms_agree() -> None:
    counts = np.random.default_rng(2).poisson(30, size=(32, 16)).astype(np.float32)
    ref = reference_level(counts)
    t = normalise_tensor(
        torch.from_numpy(counts)[None, None], torch.tensor([ref]).reshape(1, 1, 1, 1)
    )
    np.testing.assert_allclose(t[0, 0].numpy(), normalise_view(counts), atol=1e-6)
    batch = normalise_views([counts, counts * 3])
    assert batch.shape == (2, 1, 32, 16)
    with pytest.raises(ValueError):
        normalise_views([counts, counts[:4]])


def test_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        reference_level(np.zeros(5))
    with pytest.raises(ValueError):
        reference_level(np.array([[1.0, np.nan]]))
