"""The quality gate cautions, and never refuses, when a view's counts are too low for the LSC.

Below :data:`core.burden.repeatability.LOW_COUNTS_PER_VIEW` total counts in a view the
repeatability of BSTBI, BSI and the hotspot count worsens steeply (docs/benchmarks.md),
so a scan passes with a caution naming the view, its counts and the limits at them. Only
count images (phantom, DICOM) are judged: an export's pixel sum says nothing about counts.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import result_from_masks
from core.burden.repeatability import LOW_COUNTS_PER_VIEW, least_significant_change
from core.imaging.quality import MIN_TOTAL_COUNTS, assess
from core.phantom.generate import generate_case, to_scan
from core.scan import Scan, ScanMeta

LOW_MARK = "million counts, below"
#: Totals of a view under and well over the caution's level (both over the refusal's).
LOW, HIGH = 0.7 * LOW_COUNTS_PER_VIEW, 3.0 * LOW_COUNTS_PER_VIEW


@pytest.fixture(scope="module")
def expected() -> Scan:
    """A phantom patient's noise-free counts (both views), to be scaled and sampled."""
    return to_scan(generate_case(11, 2, noise=False))


def _at(scan: Scan, totals: dict[str, float], seed: int = 0) -> Scan:
    """The scan with each view Poisson sampled at the given total counts."""
    rng = np.random.default_rng(seed)
    views = {
        v: rng.poisson(a.astype(np.float64) * totals[v] / float(a.sum())).astype(np.float32)
        for v, a in scan.views.items()
    }
    return Scan(views=views, meta=scan.meta)


def _low(verdict_cautions: tuple[str, ...]) -> list[str]:
    return [c for c in verdict_cautions if LOW_MARK in c]


def test_the_caution_lies_above_the_refusal() -> None:
    assert MIN_TOTAL_COUNTS < 0.6 * LOW_COUNTS_PER_VIEW


def test_a_low_count_view_passes_with_a_caution_naming_it(expected: Scan) -> None:
    verdict = assess(_at(expected, {"ANT": LOW, "POST": HIGH}))
    assert verdict.ok and verdict.code == "ok", verdict.reason
    (caution,) = _low(verdict.cautions)
    total = verdict.measures["ANT.total"]
    assert caution.startswith(f"The anterior view has {total / 1e6:.2f} million counts, below ")
    assert f"below {LOW_COUNTS_PER_VIEW / 1e6:.2f} million" in caution
    # the limits at the view's counts, in the metrics' units
    assert f"BSTBI {least_significant_change('bstbi', total):.4f}" in caution
    assert f"BSI {least_significant_change('bsi', total):.2f} %" in caution
    assert f"{least_significant_change('hotspots', total):.1f} hotspots" in caution
    assert "cannot be told from noise" in caution


def test_both_views_low_give_one_caution_each(expected: Scan) -> None:
    verdict = assess(_at(expected, {"ANT": 0.6 * LOW_COUNTS_PER_VIEW, "POST": LOW}))
    assert verdict.ok
    low = _low(verdict.cautions)
    assert [c.split(" view")[0] for c in low] == ["The anterior", "The posterior"]


def test_enough_counts_give_no_low_count_caution(expected: Scan) -> None:
    enough = 1.05 * LOW_COUNTS_PER_VIEW
    verdict = assess(_at(expected, {"ANT": enough, "POST": enough}))
    assert verdict.ok and _low(verdict.cautions) == []


def test_too_few_counts_are_still_refused_not_cautioned(expected: Scan) -> None:
    few = 0.5 * MIN_TOTAL_COUNTS
    verdict = assess(_at(expected, {"ANT": few, "POST": few}))
    assert not verdict.ok and verdict.code == "too_few_counts"
    assert verdict.cautions == ()


def test_an_export_is_not_judged_by_its_pixel_sum(expected: Scan) -> None:
    # the same pixel values read from a 16-bit export: grey levels, not counts
    low = _at(expected, {"ANT": LOW, "POST": LOW})
    export = Scan(
        views=low.views, meta=ScanMeta(source_format="png", polarity="hot-bright", bit_depth=16)
    )
    verdict = assess(export)
    assert verdict.ok, verdict.reason
    assert verdict.measures["ANT.total"] < LOW_COUNTS_PER_VIEW
    assert _low(verdict.cautions) == []
    assert len(_low(assess(low).cautions)) == 2  # the same values as counts are cautioned


def test_the_caution_reaches_the_analysis_notes(expected: Scan) -> None:
    scan = _at(expected, {"ANT": LOW, "POST": 0.9 * LOW_COUNTS_PER_VIEW})
    masks = {v: np.zeros(a.shape, dtype=np.uint8) for v, a in scan.views.items()}
    result = result_from_masks(scan, masks, {"metastasis": 0.1, "bladder": 0.1})
    assert result.reliable and result.bstbi is not None  # cautioned, not refused
    assert sum(n.startswith("quality: ") and LOW_MARK in n for n in result.notes) == 2
