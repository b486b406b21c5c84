"""The store benchmark runs (tiny size); the timed run is ``python -m db.bench_store``."""

from __future__ import annotations

import math

import pytest

from db.bench_store import main, run_benchmark


def test_the_benchmark_runs_on_a_tiny_store() -> None:
    result = run_benchmark(20, 60, repeats=2)
    assert set(result) == {"build_s", "time_series_s", "cohort_summary_s"}
    assert all(math.isfinite(v) and v >= 0 for v in result.values())


def test_the_command_line_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--patients", "10", "--studies", "30", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "time_series_s" in out and "cohort_summary_s" in out


def test_the_benchmark_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="patients"):
        run_benchmark(0, 10)
    with pytest.raises(ValueError, match="repeats"):
        run_benchmark(5, 10, repeats=0)
