"""The known truth carries through: true-mask BSTBI rises with lesion number and uptake."""

from __future__ import annotations

import pytest

from core.phantom import generate_case


def test_bstbi_rises_with_the_number_of_lesions() -> None:
    values = [
        generate_case(51, 0, pattern=p).truth["bstbi"]["mean"]
        for p in ("solitary", "multiple", "extensive")
    ]
    assert 0 < values[0] < values[1] < values[2] <= 1


def test_bstbi_rises_with_lesion_uptake() -> None:
    cold = generate_case(52, 0, pattern="multiple", uptake_scale=0.5)
    hot = generate_case(52, 0, pattern="multiple", uptake_scale=2.0)
    ids = [les["id"] for les in cold.truth["lesions"]]
    assert ids == [les["id"] for les in hot.truth["lesions"]]
    assert all(
        h["uptake_ratio"] >= c["uptake_ratio"]
        for c, h in zip(cold.truth["lesions"], hot.truth["lesions"], strict=True)
    )
    assert hot.truth["bstbi"]["mean"] > cold.truth["bstbi"]["mean"]


def test_bstbi_is_per_image_and_mean() -> None:
    c = generate_case(53, 0, pattern="oligo")
    b = c.truth["bstbi"]
    parts = [b[k] for k in ("ANT_1", "ANT_2", "POST_1", "POST_2")]
    assert b["mean"] == pytest.approx(sum(parts) / 4, abs=1e-6)


def test_uptake_scale_is_checked() -> None:
    with pytest.raises(ValueError, match="uptake_scale"):
        generate_case(0, 0, uptake_scale=0.0)
