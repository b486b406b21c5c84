"""The paper's 7-level patient split (core.evaluation.metrics.lesion_level, split_patients)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.evaluation.metrics import lesion_level, split_patients


@pytest.mark.parametrize(
    ("pixels", "level"),
    [
        (0, 0),
        (1, 1),
        (9, 1),
        (10, 2),
        (99, 2),
        (100, 3),
        (999, 3),
        (1000, 4),
        (9999, 4),
        (10000, 5),
        (99999, 5),
        (100000, 6),
        (10**7, 6),
    ],
)
def test_level_boundaries(pixels: int, level: int) -> None:
    assert lesion_level(pixels) == level


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_level_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="pixels"):
        lesion_level(bad)  # type: ignore[arg-type]


def test_tiny_levels_round_half_up() -> None:
    # Level sizes 1, 2, 3, 8: 0.2, 0.4, 0.6, 1.6 -> 0, 0, 1, 2 test patients.
    pixels = {"a": 0, "b1": 5, "b2": 7, "c1": 50, "c2": 60, "c3": 70}
    pixels.update({f"d{i}": 500 for i in range(8)})
    _, test = split_patients(pixels)
    by_level = Counter(lesion_level(pixels[p]) for p in test)
    assert by_level == {2: 1, 3: 2}


def test_deterministic_and_seed_dependent() -> None:
    pixels = {f"p{i:03d}": i * 37 for i in range(200)}
    assert split_patients(pixels, seed=3) == split_patients(dict(reversed(pixels.items())), seed=3)
    assert split_patients(pixels, seed=3) != split_patients(pixels, seed=4)


def test_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        split_patients({"a": 1}, test_fraction=1.0)
    with pytest.raises(ValueError, match="'b'"):
        split_patients({"a": 1, "b": -4})


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh", min_size=1, max_size=6),
        st.sampled_from([0, 3, 42, 420, 4200, 42000, 420000]) | st.integers(0, 10**6),
        max_size=60,
    ),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 0.2, 0.25, 0.5]),
)
def test_split_invariants(pixels: dict[str, int], seed: int, fraction: float) -> None:
    train, test = split_patients(pixels, test_fraction=fraction, seed=seed)
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(pixels)
    levels = Counter(lesion_level(v) for v in pixels.values())
    test_levels = Counter(lesion_level(pixels[p]) for p in test)
    for level, n in levels.items():
        assert test_levels[level] == math.floor(n * fraction + 0.5)
