"""The responder / stable / progressor rule (core.burden.response), by hand and as invariants."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.burden.response import (
    NO_BSTBI,
    PROGRESSOR,
    RESPONDER,
    RESPONSES,
    SINGLE_SCAN,
    STABLE,
    classify_response,
)

NAN = float("nan")


def _classify(rows: list[tuple[float, int, float]], threshold: float = 0.02) -> list[str]:
    latest, scans, change = zip(*rows, strict=True)
    out = classify_response(pd.Series(latest), pd.Series(scans), pd.Series(change), threshold)
    return list(out)


def test_hand_computed_cases() -> None:
    rows = [
        (NAN, 3, NAN),  # no reliable analysis
        (0.10, 1, 0.0),  # one scan: no change
        (0.05, 2, -0.02),  # exactly -X: responder
        (0.15, 2, 0.02),  # exactly +X: progressor
        (0.12, 4, 0.0199),  # just under X: stable
        (0.08, 2, -0.0199),
        (0.30, 3, 0.25),
    ]
    assert _classify(rows) == [
        NO_BSTBI,
        SINGLE_SCAN,
        RESPONDER,
        PROGRESSOR,
        STABLE,
        STABLE,
        PROGRESSOR,
    ]


def test_index_is_kept() -> None:
    idx = pd.Index(["p7", "p3"])
    out = classify_response(
        pd.Series([0.1, 0.2], index=idx),
        pd.Series([2, 2], index=idx),
        pd.Series([-0.5, 0.5], index=idx),
        0.1,
    )
    assert list(out.index) == ["p7", "p3"] and list(out) == [RESPONDER, PROGRESSOR]


@pytest.mark.parametrize("threshold", [0.0, -0.1, math.nan, math.inf])
def test_bad_threshold_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        _classify([(0.1, 2, 0.0)], threshold)


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="same length"):
        classify_response(pd.Series([0.1]), pd.Series([2, 3]), pd.Series([0.0]), 0.02)


@given(
    change=st.floats(-1, 1),
    threshold=st.floats(0.001, 0.5),
    scans=st.integers(0, 10),
)
def test_category_follows_the_change(change: float, threshold: float, scans: int) -> None:
    (got,) = _classify([(0.2, scans, change)], threshold)
    assert got in RESPONSES
    if scans < 2:
        assert got == SINGLE_SCAN
    elif change <= -threshold:
        assert got == RESPONDER
    elif change >= threshold:
        assert got == PROGRESSOR
    else:
        assert got == STABLE
