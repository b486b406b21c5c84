from __future__ import annotations

from pathlib import Path

import pytest

from core.config import age_group, data_dir, db_path


@pytest.mark.parametrize(
    ("age", "group"),
    [(12, "<50"), (49.9, "<50"), (50, "50-70"), (69.99, "50-70"), (70, ">=70"), (93, ">=70")],
)
def test_age_group_boundaries_belong_to_the_upper_group(age: float, group: str) -> None:
    assert age_group(age) == group


@pytest.mark.parametrize("age", [-1, float("nan"), float("inf")])
def test_age_group_refuses_impossible_ages(age: float) -> None:
    with pytest.raises(ValueError, match="age"):
        age_group(age)


def test_db_path_is_overridable_and_its_folder_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a" / "b" / "x.sqlite"
    monkeypatch.setenv("BONESCAN_DB", str(target))
    assert db_path() == target
    assert target.parent.is_dir()


def test_default_db_lives_in_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BONESCAN_DB", raising=False)
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(tmp_path / "d"))
    assert db_path() == tmp_path / "d" / "bonescan.sqlite"
    assert data_dir().is_dir()
