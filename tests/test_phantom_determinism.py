"""The phantom is deterministic for a seed, and case i does not depend on the others."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import COLS, ROWS, VIEWS
from core.phantom import PhantomCase, generate_case, generate_series, to_scan


def _same(a: PhantomCase, b: PhantomCase) -> bool:
    return (
        all(np.array_equal(a.views[v], b.views[v]) for v in VIEWS)
        and all(np.array_equal(a.masks[v], b.masks[v]) for v in VIEWS)
        and json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)
    )


def test_same_seed_same_case() -> None:
    a = generate_case(5, 3)
    b = generate_case(5, 3)
    assert _same(a, b)
    assert a.case_id == b.case_id == "phantom-s5-00003"


def test_case_does_not_depend_on_order_or_count() -> None:
    later = generate_case(5, 4)
    generate_case(5, 0)  # another case generated first must not shift the stream
    again = generate_case(5, 4)
    assert _same(later, again)


def test_different_seed_or_index_differs() -> None:
    a = generate_case(1, 0)
    assert not np.array_equal(a.views["ANT"], generate_case(2, 0).views["ANT"])
    assert not np.array_equal(a.views["ANT"], generate_case(1, 1).views["ANT"])


def test_views_are_float32_counts_of_the_canonical_shape() -> None:
    c = generate_case(0, 1)
    for v in VIEWS:
        arr = c.views[v]
        assert arr.dtype == np.float32 and arr.shape == (ROWS, COLS)
        assert arr.min() >= 0
        assert np.array_equal(arr, np.round(arr))  # Poisson counts are whole numbers
        assert c.masks[v].dtype == np.uint8 and c.masks[v].shape == (ROWS, COLS)
        assert set(np.unique(c.masks[v])) <= {0, 1, 2}


def test_total_counts_are_realistic() -> None:
    # real whole-body views hold 0.3-1.5 million counts (GE Discovery 670: 0.36-0.68 M)
    totals = [float(generate_case(9, i).views[v].sum()) for i in range(8) for v in VIEWS]
    assert all(0.25e6 <= t <= 2.0e6 for t in totals)
    assert min(totals) < 0.7e6 and max(totals) > 0.8e6  # the level varies from scan to scan


def test_noise_free_render_is_the_poisson_mean() -> None:
    noisy = generate_case(3, 2)
    clean = generate_case(3, 2, noise=False)
    for v in VIEWS:
        assert np.array_equal(noisy.masks[v], clean.masks[v])
        # same scan: the Poisson draw scatters around the expected counts
        assert abs(noisy.views[v].sum() / clean.views[v].sum() - 1) < 0.01
        assert not np.array_equal(noisy.views[v], clean.views[v])


def test_forcing_an_attribute_keeps_the_body() -> None:
    a = generate_case(4, 7, age=70)
    b = generate_case(4, 7, age=71)
    assert a.truth["body"]["vertex_row"] == b.truth["body"]["vertex_row"]
    assert a.patient.age == 70 and b.patient.age == 71


def test_series_is_deterministic() -> None:
    s1 = generate_series(2, 1, n_scans=2)
    s2 = generate_series(2, 1, n_scans=2)
    assert [c.case_id for c in s1] == [c.case_id for c in s2]
    assert all(_same(a, b) for a, b in zip(s1, s2, strict=True))


def test_to_scan_carries_the_metadata() -> None:
    c = generate_case(0, 2)
    scan = to_scan(c)
    assert scan.meta.manufacturer == "bonescan-phantom"
    assert scan.meta.source_format == "phantom"
    assert scan.meta.pixel_spacing_mm == c.pixel_spacing_mm
    assert scan.meta.study_date == c.scan_date
    assert scan.meta.sex == c.patient.sex and scan.meta.age == c.patient.age
    assert scan.meta.patient_id == c.patient.patient_id
    assert scan.meta.birth_date is not None and scan.meta.birth_date.year == c.patient.birth_year


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1, "index": 0}, "seed"),
        ({"seed": 0, "index": -2}, "index"),
    ],
)
def test_bad_seed_or_index_is_refused(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_case(kwargs["seed"], kwargs["index"])


def test_bad_forced_values_are_refused() -> None:
    with pytest.raises(ValueError, match="pattern"):
        generate_case(0, 0, pattern="everywhere")
    with pytest.raises(ValueError, match="pattern"):
        generate_case(0, 0, pattern="solitary", metastasis=False)
    with pytest.raises(ValueError, match="primary"):
        generate_case(0, 0, primary="spleen")
    with pytest.raises(ValueError, match="force"):
        generate_case(0, 0, benign=("tattoo",))
    with pytest.raises(ValueError, match="n_scans"):
        generate_series(0, 0, n_scans=7)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), index=st.integers(0, 10**6))
def test_any_case_is_well_formed(seed: int, index: int) -> None:
    c = generate_case(seed, index)
    for v in VIEWS:
        assert c.views[v].shape == (ROWS, COLS) and c.views[v].dtype == np.float32
        assert set(np.unique(c.masks[v])) <= {0, 1, 2}
        assert 0.25e6 <= float(c.views[v].sum()) <= 2.0e6
    assert c.has_metastasis == any((c.masks[v] == 1).any() for v in VIEWS)
    assert c.case_id == f"phantom-s{seed}-{index:05d}"
    json.dumps(c.truth)  # JSON-able as it is
