"""Which changes are real: repeatability and the least significant change.

The same patient, scanned twice with nothing changed, gets two slightly different
BSTBIs, BSIs and hotspot counts: other total counts, another positioning on the table
and another Poisson noise draw move them. The *repeatability SD* is the pooled
within-patient standard deviation of such repeats; the *least significant change*
(LSC) is ``2.77 x SD`` (``1.96 x sqrt(2)``: the difference of two measurements of the
same thing stays within it in 95 % of pairs). A change between two studies larger than
the LSC is unlikely to be noise; a smaller one cannot be told from noise.

:data:`REPEATABILITY` holds the SDs measured by ``scripts/bench_repeatability.py`` on
phantom re-acquisitions (docs/benchmarks.md, "Repeatability and the least significant
change"), per metric and count level. Count level means total counts per view: of a
study with two views, the smaller of the two totals (the quality gate's
``"<VIEW>.total"`` measures). Between the measured levels the limit is interpolated on
log counts; outside them it is held at the nearest level. Below
:data:`LOW_COUNTS_PER_VIEW` the SD grows steeply, so the quality gate cautions
(:func:`core.imaging.quality.assess`).

Units are those of :class:`core.analysis.AnalysisResult`: BSTBI as a fraction (0-1),
BSI in percent of the skeleton, hotspots as a count.

What the limit does not cover: the repeats it comes from share one count level. The
analysis finds more and larger lesions at higher counts, so all three metrics rise
with the counts (from 0.5 to 1.5 million counts per view, on average BSTBI +0.010, BSI
+0.13 % and 3 more hotspots, about half the LSC). Between two studies whose counts
differ by much, part of a change beyond the LSC can come from the counts. The figures
are from phantom patients (BSI up to 2.5 %), not from real re-acquisitions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: LSC = LSC_FACTOR x repeatability SD (1.96 x sqrt(2), 95 % of repeat pairs).
LSC_FACTOR = 2.77
#: Metrics with a measured limit.
METRICS: tuple[str, ...] = ("bstbi", "bsi", "hotspots")
#: Count level (total counts per view) whose limit applies when a study's counts are
#: unknown: the level at which the aBSI work states its repeatability.
REFERENCE_COUNTS_PER_VIEW = 1.5e6
#: Below this many total counts in a view the repeatability worsens: measured with the
#: crop classifier, the BSTBI's SD was flat from 0.5 to 4 million counts per view
#: (0.0058) and grew to 0.0080 at 0.35 million and 0.0103 at 0.25 million; with the
#: lesion scorer (:data:`REPEATABILITY`) it is 0.0056 from 0.35 million up and 0.0073 at
#: 0.25 million, and the BSI's SD 0.068 from 0.5 million, 0.082-0.086 below. The quality
#: gate cautions below it that small changes cannot be told from noise.
LOW_COUNTS_PER_VIEW = 0.5e6


@dataclass(frozen=True)
class RepeatabilityTable:
    """Measured repeatability SDs per metric and count level.

    Attributes:
        counts_per_view: Count levels measured, total counts per view, ascending, > 0.
        sd: ``{metric: SD at each level}`` in the metric's unit (module docstring), each
            as long as ``counts_per_view`` and >= 0.
        patients: Patients measured per level.
        repeats: Re-acquisitions per patient and level.
        source: Where the figures come from.
    """

    counts_per_view: tuple[float, ...]
    sd: dict[str, tuple[float, ...]] = field(default_factory=dict)
    patients: int = 0
    repeats: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        """Check the table, naming the bad field.

        Raises:
            ValueError: If the levels are not ascending positive numbers, or an SD row
                has another length or a negative or non-finite value.
        """
        levels = self.counts_per_view
        if not levels or any(not (math.isfinite(c) and c > 0) for c in levels):
            raise ValueError(f"counts_per_view must be finite numbers > 0, got {levels!r}")
        if any(b <= a for a, b in itertools.pairwise(levels)):
            raise ValueError(f"counts_per_view must be strictly ascending, got {levels!r}")
        for metric, row in self.sd.items():
            if len(row) != len(levels) or any(not (math.isfinite(s) and s >= 0) for s in row):
                raise ValueError(
                    f"sd[{metric!r}] must hold {len(levels)} finite values >= 0, got {row!r}"
                )

    def lsc(self, metric: str) -> tuple[float, ...]:
        """Return the least significant change at each level (``LSC_FACTOR x SD``).

        Raises:
            ValueError: If ``metric`` has no row.
        """
        return tuple(LSC_FACTOR * s for s in self._row(metric))

    def _row(self, metric: str) -> tuple[float, ...]:
        if metric not in self.sd:
            raise ValueError(f"metric must be one of {tuple(self.sd)}, got {metric!r}")
        return self.sd[metric]


#: The measured limits (docs/benchmarks.md, "Repeatability and the least significant
#: change", second measurement): ``scripts/bench_repeatability.py --patients 12 --repeats
#: 4 --levels 0.25,0.35,0.5,0.75,1,1.5,2.5,4 --patterns drawn,drawn,extensive,none``
#: with the shipped models as they make the calls since issue 26 (the lesion scorer; the
#: whole-view segmenter in bfloat16 on the CPU that measured it). Where the SD does not
#: depend on the counts the levels are pooled into one SD (the script's plateau), given
#: at its lowest level and at 4 million; the levels below keep their own (36 degrees of
#: freedom each). Each row is made non-increasing in counts (a level takes the largest
#: SD of itself and the levels above it), so the limit never shrinks as counts fall.
REPEATABILITY = RepeatabilityTable(
    counts_per_view=(0.25e6, 0.35e6, 0.5e6, 4.0e6),
    sd={
        "bstbi": (0.007332, 0.005551, 0.005551, 0.005551),
        "bsi": (0.08553, 0.0816, 0.06812, 0.06812),
        "hotspots": (1.239, 1.239, 1.098, 1.098),
    },
    patients=12,
    repeats=4,
    source=(
        "phantom re-acquisitions (new placement and Poisson noise, same patient), "
        "scripts/bench_repeatability.py with the lesion scorer, 2026-12-07"
    ),
)


@dataclass(frozen=True)
class ChangeVerdict:
    """Whether a change between two studies is beyond the least significant change.

    Attributes:
        delta: ``current - previous``, in the metric's unit.
        limit: The least significant change that applied (>= 0).
        beyond: True when ``abs(delta) > limit``: unlikely to be noise.
        text: One phrase for the page, e.g. ``"beyond the least significant change
            (+0.42 > 0.31)"``.
    """

    delta: float
    limit: float
    beyond: bool
    text: str


#: Decimals each metric's figures are written with in :attr:`ChangeVerdict.text`.
_DECIMALS = {"bstbi": 4, "bsi": 2, "hotspots": 1}


def _check_metric(metric: str, table: RepeatabilityTable) -> None:
    if metric not in table.sd:
        raise ValueError(f"metric must be one of {tuple(table.sd)}, got {metric!r}")


def least_significant_change(
    metric: str,
    counts_per_view: float | None,
    *,
    table: RepeatabilityTable = REPEATABILITY,
) -> float:
    """Return the least significant change of ``metric`` at a count level.

    Args:
        metric: ``"bstbi"``, ``"bsi"`` or ``"hotspots"``.
        counts_per_view: Total counts per view (the smaller view's of a study); None
            when unknown: the limit at :data:`REFERENCE_COUNTS_PER_VIEW`.
        table: The measured table; :data:`REPEATABILITY` unless a test gives another.

    Returns:
        The LSC in the metric's unit (>= 0), interpolated linearly on log counts
        between the measured levels and held at the end levels outside them.

    Raises:
        ValueError: If ``metric`` is unknown or ``counts_per_view`` is not None nor a
            finite number > 0.
    """
    _check_metric(metric, table)
    if counts_per_view is None:
        counts_per_view = REFERENCE_COUNTS_PER_VIEW
    if isinstance(counts_per_view, bool) or not isinstance(counts_per_view, int | float):
        raise ValueError(f"counts_per_view must be a number or None, got {counts_per_view!r}")
    if not (math.isfinite(counts_per_view) and counts_per_view > 0):
        raise ValueError(f"counts_per_view must be a finite number > 0, got {counts_per_view!r}")
    levels = table.counts_per_view
    lsc = table.lsc(metric)
    if counts_per_view <= levels[0]:
        return lsc[0]
    if counts_per_view >= levels[-1]:
        return lsc[-1]
    # counts noise falls as 1 / sqrt(counts): log counts make the steps even
    x = math.log(counts_per_view)
    for i in range(1, len(levels)):
        if counts_per_view <= levels[i]:
            x0, x1 = math.log(levels[i - 1]), math.log(levels[i])
            w = (x - x0) / (x1 - x0)
            return (1.0 - w) * lsc[i - 1] + w * lsc[i]
    return lsc[-1]  # pragma: no cover - the loop always returns


def change_significance(
    metric: str,
    previous: float,
    current: float,
    counts_per_view: float | None = None,
    *,
    table: RepeatabilityTable = REPEATABILITY,
) -> ChangeVerdict:
    """Say whether the change of ``metric`` from one study to the next is beyond noise.

    Args:
        metric: ``"bstbi"``, ``"bsi"`` or ``"hotspots"``.
        previous: The earlier study's value, in the metric's unit.
        current: The later study's value.
        counts_per_view: Total counts per view of the two studies (the lower of the
            two studies' smaller views: the noisier study sets the limit); None when
            unknown (:data:`REFERENCE_COUNTS_PER_VIEW`).
        table: The measured table; :data:`REPEATABILITY` unless a test gives another.

    Returns:
        The :class:`ChangeVerdict`: beyond when ``abs(current - previous)`` exceeds the
        least significant change (:func:`least_significant_change`).

    Raises:
        ValueError: If ``metric`` is unknown, ``previous`` or ``current`` is not a
            finite number, or ``counts_per_view`` is invalid.
    """
    _check_metric(metric, table)
    for name, value in (("previous", previous), ("current", current)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    limit = least_significant_change(metric, counts_per_view, table=table)
    delta = float(current) - float(previous)
    beyond = abs(delta) > limit
    d = _DECIMALS.get(metric, 3)
    if beyond and delta > 0:
        text = f"beyond the least significant change ({delta:+.{d}f} > {limit:.{d}f})"
    elif beyond:
        text = f"beyond the least significant change ({delta:+.{d}f} < {-limit:.{d}f})"
    else:
        text = f"within the least significant change ({delta:+.{d}f} within ±{limit:.{d}f})"
    return ChangeVerdict(delta=delta, limit=limit, beyond=beyond, text=text)


def repeatability_sd(values_per_patient: Sequence[Sequence[float]]) -> float:
    """Return the pooled within-patient SD of repeated measurements.

    Each patient's sample variance (``ddof=1``) is weighted by its degrees of freedom
    (repeats - 1), the usual pooled estimate; with the same number of repeats for every
    patient it is the square root of the mean within-patient variance. A patient's
    true value does not enter: only how its repeats scatter around their own mean.

    Args:
        values_per_patient: One sequence of repeated values per patient, each with at
            least two finite values.

    Returns:
        The pooled SD (>= 0), in the values' unit.

    Raises:
        ValueError: If there is no patient, a patient has fewer than two values, or a
            value is not finite.
    """
    if len(values_per_patient) == 0:
        raise ValueError("values_per_patient must hold at least one patient")
    squares = 0.0
    dof = 0
    for i, values in enumerate(values_per_patient):
        xs = [float(v) for v in values]
        if len(xs) < 2:
            raise ValueError(
                f"values_per_patient[{i}] must hold at least two values, got {len(xs)}"
            )
        if not all(math.isfinite(v) for v in xs):
            raise ValueError(f"values_per_patient[{i}] must hold finite values, got {xs!r}")
        mean = math.fsum(xs) / len(xs)
        squares += math.fsum((v - mean) ** 2 for v in xs)
        dof += len(xs) - 1
    return math.sqrt(squares / dof)
