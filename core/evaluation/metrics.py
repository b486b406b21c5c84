"""The paper's diagnostic figures: confusion counts, ROC AUC, Dice, Table 2, the split.

* :class:`Confusion` holds the four counts and gives sensitivity, specificity,
  accuracy, PPV and NPV; a figure whose denominator is 0 is ``None`` (undefined,
  shown as ``"n/a"``), never a silent 0 or NaN.
* :func:`format_rate` writes a figure the way the paper's Table 2 does: a
  percentage with two decimals and the fraction, ``"92.59 % (50/54)"``, or only the
  fraction (``"12/13"``) when the denominator is below :data:`FRACTION_ONLY_BELOW`.
* :func:`table2` rebuilds Table 2 (age groups plus "all") from per-case records.
* :func:`lesion_level` and :func:`split_patients` are the paper's 7-level split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd  # no pandas-stubs in the venv
import torch
from monai.metrics import compute_roc_auc

from core.config import AGE_GROUPS, LABEL_METASTASIS, age_group

#: Table 2 writes only the fraction when the denominator is below this (its 15, 13, 12
#: and 9 are fractions; its 21, 24, 31 and 33 are percentages).
FRACTION_ONLY_BELOW = 20
#: What a figure with a zero denominator shows.
NOT_AVAILABLE = "n/a"
#: Columns of :func:`table2`'s frame, in the paper's order.
TABLE2_COLUMNS: tuple[str, ...] = (
    "group",
    "n",
    "sensitivity",
    "specificity",
    "accuracy",
    "PPV",
    "NPV",
    "Dice (metastasis)",
)
#: Name of the row over every case.
ALL_GROUP = "all"
#: Number of lesion-size levels of the split (0 pixels, then one per decade).
N_LEVELS = 7


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class Confusion:
    """Counts of a binary decision against the truth.

    Attributes:
        tp: True positives (>= 0).
        fp: False positives (>= 0).
        tn: True negatives (>= 0).
        fn: False negatives (>= 0).

    Each figure is a float in [0, 1], or None when its denominator is 0.
    """

    tp: int
    fp: int
    tn: int
    fn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "tn", "fn"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn
        )

    @property
    def n(self) -> int:
        """Number of cases."""
        return self.tp + self.fp + self.tn + self.fn

    def fraction(self, figure: str) -> tuple[int, int]:
        """Return (numerator, denominator) of a figure.

        Args:
            figure: ``"sensitivity"``, ``"specificity"``, ``"accuracy"``, ``"ppv"``
                or ``"npv"``.

        Returns:
            The two counts, e.g. ``(tp, tp + fn)`` for sensitivity.

        Raises:
            ValueError: If ``figure`` is not one of those names.
        """
        fractions = {
            "sensitivity": (self.tp, self.tp + self.fn),
            "specificity": (self.tn, self.tn + self.fp),
            "accuracy": (self.tp + self.tn, self.n),
            "ppv": (self.tp, self.tp + self.fp),
            "npv": (self.tn, self.tn + self.fn),
        }
        key = figure.lower()
        if key not in fractions:
            raise ValueError(f"figure must be one of {sorted(fractions)}, got {figure!r}")
        return fractions[key]

    @property
    def sensitivity(self) -> float | None:
        """Sensitivity tp / (tp + fn), or None without positives."""
        return _ratio(*self.fraction("sensitivity"))

    @property
    def specificity(self) -> float | None:
        """Specificity tn / (tn + fp), or None without negatives."""
        return _ratio(*self.fraction("specificity"))

    @property
    def accuracy(self) -> float | None:
        """Accuracy (tp + tn) / n, or None without cases."""
        return _ratio(*self.fraction("accuracy"))

    @property
    def ppv(self) -> float | None:
        """Positive predictive value tp / (tp + fp), or None without positive calls."""
        return _ratio(*self.fraction("ppv"))

    @property
    def npv(self) -> float | None:
        """Negative predictive value tn / (tn + fn), or None without negative calls."""
        return _ratio(*self.fraction("npv"))

    def formatted(self, figure: str) -> str:
        """Return a figure as Table 2 writes it (see :func:`format_rate`).

        Args:
            figure: A name accepted by :meth:`fraction`.

        Returns:
            E.g. ``"92.59 % (50/54)"``, ``"12/13"`` or ``"n/a"``.
        """
        return format_rate(*self.fraction(figure))


def format_rate(numerator: int, denominator: int) -> str:
    """Write a rate the way the paper's Table 2 does.

    Args:
        numerator: Count >= 0.
        denominator: Count >= numerator.

    Returns:
        ``"n/a"`` when the denominator is 0; ``"num/den"`` when it is below
        :data:`FRACTION_ONLY_BELOW`; else the percentage rounded half up to two
        decimals, a space, ``%`` and the fraction: ``"92.59 % (50/54)"``.

    Raises:
        ValueError: If the counts are negative or the numerator exceeds the denominator.
    """
    if numerator < 0 or denominator < 0 or numerator > denominator:
        raise ValueError(
            f"numerator and denominator must satisfy 0 <= numerator <= denominator, "
            f"got {numerator}/{denominator}"
        )
    if denominator == 0:
        return NOT_AVAILABLE
    if denominator < FRACTION_ONLY_BELOW:
        return f"{numerator}/{denominator}"
    # Exact decimal arithmetic: binary floats would round some halves the wrong way.
    percent = (Decimal(100 * numerator) / Decimal(denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    return f"{percent} % ({numerator}/{denominator})"


def format_dice(value: float | None) -> str:
    """Write a Dice coefficient as Table 2 does: three decimals (half up), or ``"n/a"``.

    Args:
        value: Dice in [0, 1], or None.

    Returns:
        E.g. ``"0.739"``.
    """
    if value is None or math.isnan(value):
        return NOT_AVAILABLE
    return str(Decimal(repr(float(value))).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def _binary_vector(name: str, values: Sequence[Any] | np.ndarray) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype != np.bool_ and (
        not np.issubdtype(a.dtype, np.number) or not np.isin(a, (0, 1)).all()
    ):
        raise ValueError(f"{name} must hold only 0/1 or booleans")
    return a.astype(bool)


def confusion(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray) -> Confusion:
    """Count a binary decision against the truth.

    Args:
        y_true: 1-D 0/1 or bool, the truth (1 = metastasis).
        y_pred: 1-D 0/1 or bool, same length, the decision.

    Returns:
        The :class:`Confusion`.

    Raises:
        ValueError: If either is not 1-D 0/1 or their lengths differ.
    """
    t = _binary_vector("y_true", y_true)
    p = _binary_vector("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred lengths differ: {t.size} vs {p.size}")
    return Confusion(
        tp=int(np.sum(t & p)),
        fp=int(np.sum(~t & p)),
        tn=int(np.sum(~t & ~p)),
        fn=int(np.sum(t & ~p)),
    )


def roc_auc(y_true: Sequence[Any] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Return the area under the ROC curve, by ``monai.metrics.compute_roc_auc``.

    Ties between a positive and a negative score count one half.

    Args:
        y_true: 1-D 0/1 or bool, the truth.
        scores: 1-D finite floats, same length, higher = more likely positive.

    Returns:
        AUC in [0, 1]; NaN when ``y_true`` holds only one class (undefined there).

    Raises:
        ValueError: If the inputs are not 1-D, of equal length, 0/1 and finite.
    """
    t = _binary_vector("y_true", y_true)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.shape != t.shape:
        raise ValueError(f"scores must be 1-D of length {t.size}, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if t.all() or not t.any():
        return math.nan
    auc = compute_roc_auc(torch.from_numpy(s), torch.from_numpy(t.astype(np.int64)))
    return float(np.asarray(auc))


def dice(pred_mask: np.ndarray, true_mask: np.ndarray) -> float:
    """Return the Dice coefficient 2|P∩T| / (|P| + |T|) of two binary masks.

    Plain numpy rather than ``monai.metrics.compute_dice``, whose empty-truth rule
    gives NaN (``ignore_empty=True``); here two empty masks agree perfectly and give
    1.0 (MONAI's ``ignore_empty=False``), and an empty truth with a non-empty
    prediction gives 0.0.

    Args:
        pred_mask: bool or 0/1 integer array, any shape.
        true_mask: bool or 0/1 integer array, same shape.

    Returns:
        Dice in [0, 1].

    Raises:
        ValueError: If the shapes differ or a mask holds values other than 0/1.
    """
    p = np.asarray(pred_mask)
    t = np.asarray(true_mask)
    if p.shape != t.shape:
        raise ValueError(f"pred_mask and true_mask shapes differ: {p.shape} vs {t.shape}")
    for name, m in (("pred_mask", p), ("true_mask", t)):
        if m.dtype != np.bool_ and not (
            np.issubdtype(m.dtype, np.integer) and np.isin(m, (0, 1)).all()
        ):
            raise ValueError(f"{name} must be bool or 0/1 integers")
    p = p.astype(bool)
    t = t.astype(bool)
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.sum(p & t)) / total


def dice_over_views(
    pred_masks: Mapping[str, np.ndarray],
    true_masks: Mapping[str, np.ndarray],
    label: int = LABEL_METASTASIS,
) -> list[float]:
    """Return the Dice of one class in each view whose annotation holds that class.

    Args:
        pred_masks: ``{view: label_mask}``, uint8 (or any integer) label masks.
        true_masks: ``{view: label_mask}``, same views and shapes.
        label: The class (1 metastasis, 2 bladder).

    Returns:
        One Dice per view of ``true_masks`` (in its order) holding ``label``; empty
        when none does.

    Raises:
        ValueError: If a view of ``true_masks`` is missing from ``pred_masks``, or
            shapes differ.
    """
    out: list[float] = []
    for view, truth in true_masks.items():
        if view not in pred_masks:
            raise ValueError(f"pred_masks has no view {view!r}")
        t = np.asarray(truth) == label
        if t.any():
            out.append(dice(np.asarray(pred_masks[view]) == label, t))
    return out


def mean_dice_over_views(
    pred_masks: Mapping[str, np.ndarray],
    true_masks: Mapping[str, np.ndarray],
    label: int = LABEL_METASTASIS,
) -> float | None:
    """Return the paper's Dice of a class: the mean over the views that hold it.

    Args:
        pred_masks: ``{view: label_mask}``.
        true_masks: ``{view: label_mask}``, same views and shapes.
        label: The class (1 metastasis, 2 bladder).

    Returns:
        The mean Dice in [0, 1], or None when no annotated view holds ``label``.
    """
    values = dice_over_views(pred_masks, true_masks, label)
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class CaseRecord:
    """One test case for :func:`table2`.

    Attributes:
        age: Age in years at the scan.
        y_true: Metastasis according to the reference standard.
        y_pred: The classifier's call.
        dice: Metastasis Dice of the case: one value, or one per view whose annotation
            holds metastasis (:func:`dice_over_views`), or None.
    """

    age: float
    y_true: bool
    y_pred: bool
    dice: float | Sequence[float] | None = None


@dataclass(frozen=True)
class Table2:
    """:func:`table2`'s result.

    Attributes:
        frame: One row per group (``"<50"``, ``"50-70"``, ``">=70"``, ``"all"``),
            columns :data:`TABLE2_COLUMNS`, every cell a string as the paper writes it.
        confusions: The counts of each group.
        dice: Mean metastasis Dice of each group, or None without Dice values.
    """

    frame: pd.DataFrame
    confusions: dict[str, Confusion]
    dice: dict[str, float | None]


def _as_record(row: CaseRecord | Mapping[str, Any], index: int) -> CaseRecord:
    if isinstance(row, CaseRecord):
        return row
    if isinstance(row, Mapping):
        try:
            return CaseRecord(
                age=row["age"], y_true=row["y_true"], y_pred=row["y_pred"], dice=row.get("dice")
            )
        except KeyError as err:
            raise ValueError(f"rows[{index}] lacks key {err.args[0]!r}") from None
    raise ValueError(f"rows[{index}] must be a CaseRecord or a mapping, got {type(row).__name__}")


def _dice_values(record: CaseRecord, index: int) -> list[float]:
    if record.dice is None:
        return []
    values = [record.dice] if isinstance(record.dice, int | float) else list(record.dice)
    for v in values:
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"rows[{index}].dice must lie in [0, 1], got {v!r}")
    return [float(v) for v in values]


def table2(rows: Iterable[CaseRecord | Mapping[str, Any]]) -> Table2:
    """Build the paper's Table 2: diagnostic figures by age group and over all cases.

    The Dice of a group pools the per-view values of its cases (a case-level float
    counts as one view), as the paper's Dice of a class is the mean over the views
    whose annotation holds that class.

    Args:
        rows: Per-case :class:`CaseRecord` (or mappings with keys ``age``, ``y_true``,
            ``y_pred`` and optional ``dice``).

    Returns:
        :class:`Table2`: formatted frame, counts and Dice per group. Groups without
        cases show ``n`` 0 and ``"n/a"``.

    Raises:
        ValueError: If a row lacks a key, has an invalid age or a Dice outside [0, 1].
    """
    groups = (*AGE_GROUPS, ALL_GROUP)
    counts = {g: Confusion(0, 0, 0, 0) for g in groups}
    dice_values: dict[str, list[float]] = {g: [] for g in groups}
    for i, row in enumerate(rows):
        record = _as_record(row, i)
        try:
            group = age_group(float(record.age))
        except (TypeError, ValueError) as err:
            raise ValueError(f"rows[{i}].age: {err}") from None
        one = confusion([bool(record.y_true)], [bool(record.y_pred)])
        values = _dice_values(record, i)
        for g in (group, ALL_GROUP):
            counts[g] = counts[g] + one
            dice_values[g].extend(values)
    mean_dice = {g: (float(np.mean(v)) if v else None) for g, v in dice_values.items()}
    cells = [
        [
            g,
            str(counts[g].n),
            *(counts[g].formatted(f) for f in ("sensitivity", "specificity", "accuracy")),
            counts[g].formatted("ppv"),
            counts[g].formatted("npv"),
            format_dice(mean_dice[g]),
        ]
        for g in groups
    ]
    frame = pd.DataFrame(cells, columns=list(TABLE2_COLUMNS))
    return Table2(frame=frame, confusions=counts, dice=mean_dice)


def lesion_level(pixels: int) -> int:
    """Return the paper's lesion-size level of an annotated lesion pixel count.

    Args:
        pixels: Number of annotated lesion pixels (integer >= 0).

    Returns:
        0 for 0 pixels, 1 for 1-9, 2 for 10-99, 3 for 100-999, 4 for 1000-9999,
        5 for 10000-99999, 6 for 100000 and more.

    Raises:
        ValueError: If ``pixels`` is not an integer >= 0.
    """
    if isinstance(pixels, bool) or not isinstance(pixels, int | np.integer) or pixels < 0:
        raise ValueError(f"pixels must be an integer >= 0, got {pixels!r}")
    # Integer digit count, not log10: floats misplace exact powers of ten.
    return min(len(str(int(pixels))), N_LEVELS - 1) if pixels else 0


def split_patients(
    patient_lesion_pixels: Mapping[str, int],
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """Split patients into training and test sets within each lesion-size level.

    Each patient is placed in the level of its annotated lesion pixel count (the
    caller decides how a patient's count is formed, e.g. the sum over its views).
    Within a level the patients are sorted, shuffled with
    ``numpy.random.default_rng(seed)`` (one generator, levels 0 to 6 in order) and the
    first ``floor(n * test_fraction + 0.5)`` (rounded half up) go to the test set.
    With the default 0.2 a level of 1 or 2 patients is all training, 3 to 7 patients
    give 1 test patient, 8 to 12 give 2, and so on.

    Args:
        patient_lesion_pixels: ``{patient_id: lesion_pixels}``; counts integers >= 0.
        test_fraction: Share of each level for the test set, in [0, 1).
        seed: Seed of the shuffle; the same input and seed give the same split.

    Returns:
        (train, test): sorted patient ids, disjoint, together all patients.

    Raises:
        ValueError: If ``test_fraction`` is outside [0, 1) or a count is invalid.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction!r}")
    levels: dict[int, list[str]] = {lvl: [] for lvl in range(N_LEVELS)}
    for patient, pixels in patient_lesion_pixels.items():
        try:
            levels[lesion_level(pixels)].append(patient)
        except ValueError as err:
            raise ValueError(f"patient_lesion_pixels[{patient!r}]: {err}") from None
    rng = np.random.default_rng(seed)
    train: list[str] = []
    test: list[str] = []
    for lvl in range(N_LEVELS):
        members = sorted(levels[lvl])
        if not members:
            continue
        order = rng.permutation(len(members))
        # Exact arithmetic on the decimal the caller wrote, so that halves round up.
        n_test = math.floor(len(members) * Fraction(str(test_fraction)) + Fraction(1, 2))
        test.extend(members[i] for i in order[:n_test])
        train.extend(members[i] for i in order[n_test:])
    return sorted(train), sorted(test)
