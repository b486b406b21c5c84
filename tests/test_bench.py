"""`python -m core bench`: per-stage latency, throughput and the gated/whole-view agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli import main
from core.analysis import STAGES
from workflow.speed_bench import format_table, run_bench


def test_the_bench_reports_every_stage_and_the_agreement(untrained_model_dir: Path) -> None:
    report = run_bench(1, untrained_model_dir, segment="gated")
    (cpu,) = report["devices"]
    assert cpu["segment"] == "gated" and cpu["cases"] == 1
    assert set(cpu["latency_s"]) == {*STAGES, "total"}
    total = cpu["latency_s"]["total"]["mean"]
    assert total == pytest.approx(sum(cpu["per_case_s"][0][s] for s in STAGES))
    assert cpu["throughput_scans_per_s"] > 0
    agreement = report["agreement"]
    assert agreement["views"] == 2
    assert 0 <= agreement["pixels_differing"] <= 2 * 1024 * 256
    assert 0.0 <= agreement["dice_metastasis"] <= 1.0
    assert report["cpu"] and isinstance(report["cpu_native_bfloat16"], bool)
    table = format_table(report)
    assert table.startswith(f"CPU: {report['cpu']}, with")
    assert "total" in table and "gated vs whole-view" in table
    # a CPU that screens in bfloat16 is compared with float32 on the same scans
    assert ("precision_agreement" in report) == (cpu["precision"] == "bfloat16")


def test_the_command_writes_json(untrained_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--cases", "1", "--model", str(untrained_model_dir), "--json", str(out)]
    assert main([*args, "--segment", "full"]) == 0
    report = json.loads(out.read_text())
    assert report["devices"][0]["segment"] == "full"
    assert report["cases"] == 1


def test_a_cpu_only_bench_times_one_device_and_the_batch_networks(
    untrained_model_dir: Path,
) -> None:
    report = run_bench(1, untrained_model_dir, segment="gated", devices="cpu")
    (cpu,) = report["devices"]
    assert cpu["device"].startswith("CPU")
    assert 0 < cpu["batch_network_s_per_scan"] <= cpu["batch_s"]
    assert "batch net s/scan" in format_table(report)


def test_unknown_or_missing_devices_are_refused(untrained_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="devices"):
        run_bench(1, untrained_model_dir, devices="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            run_bench(1, untrained_model_dir, devices="cuda")
        assert main(["bench", "--cases", "1", "--model", str(untrained_model_dir),
                     "--device", "cuda"]) == 2  # fmt: skip
