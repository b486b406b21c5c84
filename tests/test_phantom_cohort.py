"""Phantom patients follow the paper's Table 1 (demographics only: fast)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from core.phantom.cohort import (
    P_METASTASIS,
    PRIMARIES,
    TABLE1,
    PatientInfo,
    age_at,
    sample_patient,
)

N = 1500


@pytest.fixture(scope="module")
def patients() -> list[PatientInfo]:
    return [sample_patient(np.random.default_rng([11, i]), f"P{i}")[0] for i in range(N)]


def _within(observed: int, n: int, p: float, z: float = 3.5) -> bool:
    return abs(observed - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


def test_metastasis_fraction_is_about_45_percent(patients: list[PatientInfo]) -> None:
    assert abs(P_METASTASIS - 280 / 621) < 1e-12
    assert _within(sum(p.metastasis for p in patients), N, 280 / 621)


@pytest.mark.parametrize("group", ["metastasis", "no_metastasis"])
def test_primary_tumours_follow_table1(patients: list[PatientInfo], group: str) -> None:
    row = TABLE1[group]
    members = [p for p in patients if p.metastasis == (group == "metastasis")]
    total = sum(row.values())
    for primary in PRIMARIES:
        count = sum(p.primary == primary for p in members)
        expected = row.get(primary, 0) / total
        if expected == 0:
            assert count == 0, primary
        else:
            assert _within(count, len(members), expected), (group, primary, count)


def test_table1_is_the_papers() -> None:
    assert sum(TABLE1["metastasis"].values()) == 280
    assert sum(TABLE1["no_metastasis"].values()) == 341


def test_sex_follows_the_primary_and_the_cohort(patients: list[PatientInfo]) -> None:
    assert _within(sum(p.sex == "M" for p in patients), N, 389 / 621)
    assert all(p.sex == "M" for p in patients if p.primary == "prostate")
    assert all(p.sex == "F" for p in patients if p.primary == "ovary")
    breast = [p for p in patients if p.primary == "breast"]
    assert sum(p.sex == "F" for p in breast) >= 0.95 * len(breast)


def test_age_range_and_median(patients: list[PatientInfo]) -> None:
    ages = np.array([p.age for p in patients])
    assert ages.min() >= 12 and ages.max() <= 93
    assert 64 <= np.median(ages) <= 68
    assert (ages < 20).any()  # bone primaries include adolescents


def test_birth_date_matches_age(patients: list[PatientInfo]) -> None:
    rng = np.random.default_rng(0)
    for p in patients[:200]:
        pat, date = sample_patient(rng, "x", age=p.age, primary=p.primary)
        assert age_at(pat, date) == pat.age == p.age
        assert pat.birth_year == pat.birth_date.year


def test_forced_values_are_kept() -> None:
    p, date = sample_patient(
        np.random.default_rng(1), "x", metastasis=True, primary="breast", sex="M", age=40,
        scan_date=dt.date(2019, 5, 1),
    )  # fmt: skip
    assert (p.metastasis, p.primary, p.sex, p.age, date) == (
        True, "breast", "M", 40, dt.date(2019, 5, 1),
    )  # fmt: skip


def test_forced_values_are_checked() -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="primary"):
        sample_patient(rng, "x", primary="spleen")
    with pytest.raises(ValueError, match="sex"):
        sample_patient(rng, "x", sex="X")
    with pytest.raises(ValueError, match="age"):
        sample_patient(rng, "x", age=5)
