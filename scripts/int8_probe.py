"""Probe: would int8 quantisation of the classifier meet the CPU latency target, and at what cost?

Not used by the product. Quantises the shipped classifier with PyTorch's FX post-training
static quantisation (x86 backend), calibrated on the crops of 16 scans of a held-aside
phantom set, then times 14 crops (one scan) against the float32 model and compares the
probabilities and the scan calls (at the card's metastasis threshold) on test scans::

    PYTHONPATH=. .venv/bin/python scripts/int8_probe.py data/phantom-lr data/phantom-test

2026-11-27, this 2-core AVX2 machine: 0.44 s against 0.77 s per scan, probabilities
differ by up to 0.045 (median 0.027 per scan), 39 of 40 scan calls agree: outside the
tolerance the product keeps (docs/benchmarks.md), so the classifier stays float32.
"""

from __future__ import annotations

import copy
import sys
import time
import warnings

import numpy as np
import torch
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from core.imaging.crops import crop_origins, extract_crops
from core.imaging.normalise import normalise_view
from core.networks.models import load_models
from core.reading.dataset import load_case_views, read_dataset


def _crops(folder: str, n: int) -> list[np.ndarray]:
    origins = crop_origins()
    out = []
    for case in read_dataset(folder)[:n]:
        scan = load_case_views(case)
        views = [normalise_view(np.asarray(v)) for v in scan.views.values()]
        out.append(np.concatenate([extract_crops(v, origins, 256) for v in views])[:, None])
    return out


def _best_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int = 3) -> float:
    with torch.inference_mode():
        model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return min(times)


def main(calibration: str, test: str, n_test: int = 40) -> None:
    """Quantise, time and compare; prints two lines."""
    warnings.filterwarnings("ignore")  # torch.ao.quantization announces its deprecation
    torch.backends.quantized.engine = "x86"
    models = load_models("models", "cpu")
    threshold = models.classifier_config.thresholds()["metastasis"]
    float_model = models.classifier
    calib = _crops(calibration, 16)
    cases = _crops(test, n_test)
    plain = copy.deepcopy(float_model).eval().to(memory_format=torch.contiguous_format)
    prepared = prepare_fx(plain, get_default_qconfig_mapping("x86"), (torch.from_numpy(calib[0]),))
    with torch.inference_mode():
        for x in calib:
            prepared(torch.from_numpy(x))
    quantised = convert_fx(prepared)
    x = torch.from_numpy(cases[0])
    print(
        f"14 crops: float32 {_best_seconds(float_model, x):.3f} s, "
        f"int8 {_best_seconds(quantised, x):.3f} s"
    )
    diffs, agree = [], 0
    with torch.inference_mode():
        for crops in cases:
            xx = torch.from_numpy(crops)
            pf = torch.sigmoid(float_model(xx)).numpy()
            pq = torch.sigmoid(quantised(xx)).numpy()
            diffs.append(float(np.abs(pf - pq).max()))
            agree += bool((pf[:, 0].max() >= threshold) == (pq[:, 0].max() >= threshold))
    print(
        f"max |p_float32 - p_int8| over {len(cases)} scans: {max(diffs):.4f} (median per "
        f"scan {np.median(diffs):.4f}); scan calls agree {agree}/{len(cases)}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
