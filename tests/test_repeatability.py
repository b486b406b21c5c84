"""Repeatability SD, least significant change and change verdicts (core.burden.repeatability)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.burden.repeatability import (
    LOW_COUNTS_PER_VIEW,
    LSC_FACTOR,
    METRICS,
    REFERENCE_COUNTS_PER_VIEW,
    REPEATABILITY,
    RepeatabilityTable,
    change_significance,
    least_significant_change,
    repeatability_sd,
)

# Two levels a factor 4 apart: 2 M lies half-way on log counts.
TABLE = RepeatabilityTable(
    counts_per_view=(1e6, 4e6),
    sd={"bstbi": (0.004, 0.002), "bsi": (0.2, 0.1), "hotspots": (1.0, 0.5)},
    patients=2,
    repeats=2,
    source="test",
)


# --- repeatability_sd -------------------------------------------------------------


def test_pooled_sd_of_equal_repeats_is_the_root_of_the_mean_variance() -> None:
    # patient 1: mean 2, variance ((-1)^2 + 1^2) / 1 = 2; patient 2: variance 0
    assert repeatability_sd([[1.0, 3.0], [5.0, 5.0]]) == pytest.approx(1.0)
    # variances 4 ((4 + 0 + 4) / 2) and 3 ((1 + 1 + 4) / 2): sqrt(3.5)
    assert repeatability_sd([[0.0, 2.0, 4.0], [1.0, 1.0, 4.0]]) == pytest.approx(math.sqrt(3.5))


def test_pooled_sd_weighs_patients_by_their_degrees_of_freedom() -> None:
    # sums of squares 2 (1 df) and 18 (2 df): 20 / 3
    assert repeatability_sd([[1.0, 3.0], [0.0, 3.0, 6.0]]) == pytest.approx(math.sqrt(20.0 / 3.0))


def test_pooled_sd_ignores_where_each_patient_lies() -> None:
    shifted = repeatability_sd([[101.0, 103.0], [-5.0, -5.0]])
    assert shifted == pytest.approx(repeatability_sd([[1.0, 3.0], [5.0, 5.0]]))


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([], "values_per_patient"),
        ([[1.0, 2.0], [1.0]], r"values_per_patient\[1\]"),
        ([[1.0, math.nan]], r"values_per_patient\[0\]"),
        ([[1.0, math.inf]], r"values_per_patient\[0\]"),
    ],
)
def test_pooled_sd_rejects_bad_values(values: list[list[float]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        repeatability_sd(values)


# --- least_significant_change -------------------------------------------------------


def test_lsc_is_2_77_times_the_sd_at_a_measured_level() -> None:
    assert LSC_FACTOR == 2.77
    assert least_significant_change("bsi", 1e6, table=TABLE) == pytest.approx(0.554)
    assert least_significant_change("bsi", 4e6, table=TABLE) == pytest.approx(0.277)
    assert least_significant_change("hotspots", 1e6, table=TABLE) == pytest.approx(2.77)
    assert TABLE.lsc("bstbi") == pytest.approx((0.01108, 0.00554))


def test_lsc_is_interpolated_on_log_counts() -> None:
    # 2 M is half-way between 1 M and 4 M on log counts: SD 0.15
    assert least_significant_change("bsi", 2e6, table=TABLE) == pytest.approx(2.77 * 0.15)


def test_lsc_is_held_at_the_end_levels() -> None:
    assert least_significant_change("bsi", 0.2e6, table=TABLE) == pytest.approx(0.554)
    assert least_significant_change("bsi", 40e6, table=TABLE) == pytest.approx(0.277)


def test_unknown_counts_take_the_reference_level() -> None:
    assert REFERENCE_COUNTS_PER_VIEW == 1.5e6
    # log(1.5) / log(4) = 0.292481 of the way: SD 0.2 - 0.1 x 0.292481 = 0.170752
    assert least_significant_change("bsi", None, table=TABLE) == pytest.approx(
        2.77 * 0.170752, rel=1e-5
    )
    assert least_significant_change("bsi", None) == least_significant_change("bsi", 1.5e6)


@pytest.mark.parametrize(
    ("metric", "counts", "match"),
    [
        ("bsx", 1e6, "metric"),
        ("BSI", 1e6, "metric"),
        ("bsi", 0.0, "counts_per_view"),
        ("bsi", -1e6, "counts_per_view"),
        ("bsi", math.nan, "counts_per_view"),
        ("bsi", math.inf, "counts_per_view"),
        ("bsi", "1e6", "counts_per_view"),
        ("bsi", True, "counts_per_view"),
    ],
)
def test_lsc_rejects_bad_arguments(metric: str, counts: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        least_significant_change(metric, counts, table=TABLE)  # type: ignore[arg-type]


# --- change_significance ----------------------------------------------------------


def test_a_rise_beyond_the_limit() -> None:
    v = change_significance("bsi", 1.0, 1.6, 1e6, table=TABLE)
    assert v.delta == pytest.approx(0.6) and v.limit == pytest.approx(0.554)
    assert v.beyond
    assert v.text == "beyond the least significant change (+0.60 > 0.55)"


def test_a_fall_beyond_the_limit() -> None:
    v = change_significance("bsi", 1.6, 1.0, 1e6, table=TABLE)
    assert v.delta == pytest.approx(-0.6) and v.beyond
    assert v.text == "beyond the least significant change (-0.60 < -0.55)"


def test_a_change_within_the_limit() -> None:
    v = change_significance("bsi", 1.0, 1.3, 1e6, table=TABLE)
    assert not v.beyond
    assert v.text == "within the least significant change (+0.30 within ±0.55)"
    same = change_significance("hotspots", 4, 4, 4e6, table=TABLE)
    assert same.delta == 0.0 and not same.beyond
    assert same.text == "within the least significant change (+0.0 within ±1.4)"


def test_a_change_equal_to_the_limit_is_within() -> None:
    v = change_significance("hotspots", 0.0, 2.77, 1e6, table=TABLE)
    assert not v.beyond


def test_bstbi_figures_keep_four_decimals() -> None:
    v = change_significance("bstbi", 0.010, 0.025, 1e6, table=TABLE)
    assert v.beyond
    assert v.text == "beyond the least significant change (+0.0150 > 0.0111)"


def test_fewer_counts_widen_the_limit() -> None:
    rise = (1.0, 1.5)  # +0.5: beyond at 4 M (0.28), within at 1 M (0.55)
    assert change_significance("bsi", *rise, 4e6, table=TABLE).beyond
    assert not change_significance("bsi", *rise, 1e6, table=TABLE).beyond


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("bsx", 1.0, 2.0), "metric"),
        (("bsi", math.nan, 2.0), "previous"),
        (("bsi", 1.0, math.inf), "current"),
        (("bsi", None, 2.0), "previous"),
        (("bsi", 1.0, "2"), "current"),
        (("bsi", 1.0, 2.0, -5.0), "counts_per_view"),
    ],
)
def test_change_significance_rejects_bad_arguments(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        change_significance(*args, table=TABLE)  # type: ignore[arg-type]


# --- the table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"counts_per_view": ()}, "counts_per_view"),
        ({"counts_per_view": (2e6, 1e6)}, "counts_per_view"),
        ({"counts_per_view": (0.0, 1e6)}, "counts_per_view"),
        ({"counts_per_view": (1e6, 2e6), "sd": {"bsi": (0.1,)}}, r"sd\['bsi'\]"),
        ({"counts_per_view": (1e6, 2e6), "sd": {"bsi": (0.1, -0.1)}}, r"sd\['bsi'\]"),
        ({"counts_per_view": (1e6, 2e6), "sd": {"bsi": (0.1, math.nan)}}, r"sd\['bsi'\]"),
    ],
)
def test_a_bad_table_is_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RepeatabilityTable(**kwargs)  # type: ignore[arg-type]


def test_the_measured_table_covers_every_metric_and_the_low_count_level() -> None:
    assert set(REPEATABILITY.sd) == set(METRICS)
    assert REPEATABILITY.patients >= 2 and REPEATABILITY.repeats >= 2
    levels = REPEATABILITY.counts_per_view
    assert levels[0] <= LOW_COUNTS_PER_VIEW <= levels[-1]
    assert levels[0] <= REFERENCE_COUNTS_PER_VIEW <= levels[-1]
    for metric in METRICS:
        assert all(s > 0 for s in REPEATABILITY.sd[metric]), metric


counts = st.floats(min_value=1e4, max_value=1e8, allow_nan=False)


@given(metric=st.sampled_from(METRICS), a=counts, b=counts)
def test_the_limit_is_non_negative_and_never_shrinks_with_fewer_counts(
    metric: str, a: float, b: float
) -> None:
    low, high = min(a, b), max(a, b)
    lsc_low = least_significant_change(metric, low)
    lsc_high = least_significant_change(metric, high)
    assert lsc_high >= 0.0
    assert lsc_low >= lsc_high - 1e-12
