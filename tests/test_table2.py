"""Every figure of the paper's Table 2, rebuilt from its counts (core.evaluation.metrics.table2)."""

from __future__ import annotations

import pytest

from core.evaluation.metrics import TABLE2_COLUMNS, CaseRecord, Confusion, table2

# (group, age used, tp, fn, tn, fp) as read off the paper's Table 2.
COUNTS = [
    ("<50", 45, 2, 0, 12, 1),
    ("50-70", 50, 28, 3, 39, 5),
    (">=70", 70, 20, 1, 8, 4),
]

# The paper's Table 2, cell by cell.
PAPER = {
    "<50": ["15", "2/2", "12/13", "14/15", "2/3", "12/12", "0.717"],
    "50-70": [
        "75",
        "90.32 % (28/31)",
        "88.64 % (39/44)",
        "89.33 % (67/75)",
        "84.85 % (28/33)",
        "92.86 % (39/42)",
        "0.742",
    ],
    ">=70": [
        "33",
        "95.24 % (20/21)",
        "8/12",
        "84.85 % (28/33)",
        "83.33 % (20/24)",
        "8/9",
        "0.740",
    ],
    "all": [
        "123",
        "92.59 % (50/54)",
        "85.51 % (59/69)",
        "88.62 % (109/123)",
        "83.33 % (50/60)",
        "93.65 % (59/63)",
        "0.739",
    ],
}

# Per-view Dice of the metastasis cases. The paper's 0.739 over all is not the mean of
# 0.717, 0.742 and 0.740 weighted by metastasis cases (that gives 0.740); pooling per-view
# values gets there when the two <50 cases each have two views with metastasis.
VIEW_DICE = {"<50": (0.7166, 2), "50-70": (0.7416, 1), ">=70": (0.7396, 1)}


def _records() -> list[CaseRecord]:
    records: list[CaseRecord] = []
    for group, age, tp, fn, tn, fp in COUNTS:
        value, views = VIEW_DICE[group]
        dice = [value] * views
        records += [CaseRecord(age, True, True, dice) for _ in range(tp)]
        records += [CaseRecord(age + 0.5, True, False, dice) for _ in range(fn)]
        records += [CaseRecord(age + 1, False, False) for _ in range(tn)]
        records += [CaseRecord(age + 2, False, True) for _ in range(fp)]
    return records


def test_every_cell_of_table2() -> None:
    result = table2(_records())
    frame = result.frame
    assert tuple(frame.columns) == TABLE2_COLUMNS
    assert list(frame["group"]) == ["<50", "50-70", ">=70", "all"]
    for _, row in frame.iterrows():
        assert list(row)[1:] == PAPER[row["group"]], row["group"]


def test_group_sums_equal_all() -> None:
    result = table2(_records())
    groups = [result.confusions[g] for g in ("<50", "50-70", ">=70")]
    total = groups[0] + groups[1] + groups[2]
    assert total == result.confusions["all"] == Confusion(tp=50, fp=10, tn=59, fn=4)
    assert sum(int(n) for n in result.frame["n"][:3]) == int(result.frame["n"][3])


def test_raw_dice_per_group() -> None:
    result = table2(_records())
    assert result.dice["<50"] == pytest.approx(0.7166)
    assert result.dice["all"] == pytest.approx((4 * 0.7166 + 31 * 0.7416 + 21 * 0.7396) / 56)


def test_mappings_and_empty_groups() -> None:
    result = table2([{"age": 55, "y_true": 1, "y_pred": 1}])
    row = result.frame.set_index("group").loc["<50"]
    assert row["n"] == "0"
    assert row["sensitivity"] == "n/a"
    assert row["Dice (metastasis)"] == "n/a"
    assert result.confusions["50-70"] == Confusion(1, 0, 0, 0)


def test_bad_rows_are_refused() -> None:
    with pytest.raises(ValueError, match=r"rows\[0\].*y_pred"):
        table2([{"age": 55, "y_true": 1}])
    with pytest.raises(ValueError, match=r"rows\[1\]\.age"):
        table2([CaseRecord(55, True, True), CaseRecord(-3, True, True)])
    with pytest.raises(ValueError, match=r"rows\[0\]\.dice"):
        table2([CaseRecord(55, True, True, 1.5)])
