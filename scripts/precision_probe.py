"""Probe: how far does the classifier's screening arithmetic stray from float32?

Backs :data:`core.networks.inference.CONFIRM_MARGIN` (docs/benchmarks.md). For every crop of every
scan of the labelled datasets given, runs the shipped classifier in float32 and in the
screening precision (bfloat16 autocast on a CPU), then prints per dataset: the largest
and 99.9th-percentile logit difference per label, how many crops per scan the margin
would send back to float32, how many scan calls would change without that second pass,
and how many change with it (:func:`core.networks.inference.crop_probabilities`)::

    PYTHONPATH=. .venv/bin/python scripts/precision_probe.py data/phantom-lr data/phantom-test

Not used by the product. Takes about 1 s per scan on 2 CPU cores.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from core.imaging.crops import crop_origins, extract_crops
from core.imaging.normalise import normalise_view
from core.networks.inference import CONFIRM_MARGIN, crop_probabilities, rows_to_confirm
from core.networks.models import load_models
from core.reading.dataset import load_case_views, read_dataset


def main(folders: list[str], precision: str = "bfloat16") -> None:
    """Measure and print one block per dataset."""
    models = load_models("models", "cpu", precision=precision)
    thresholds = tuple(models.classifier_config.thresholds().values())
    decision = np.log(np.array(thresholds)) - np.log1p(-np.array(thresholds))
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float16
    origins = crop_origins()
    for folder in folders:
        errors, confirmed, flips_raw, flips_kept, n = [], [], 0, 0, 0
        for case in read_dataset(folder):
            scan = load_case_views(case)
            views = np.stack([normalise_view(np.asarray(v)) for v in scan.views.values()])
            crops = np.concatenate([extract_crops(v, origins, 256) for v in views])[:, None]
            x = torch.from_numpy(crops)
            with torch.inference_mode():
                exact = models.classifier(x).float().numpy()
                with torch.autocast("cpu", dtype=dtype):
                    screened = models.classifier(x).float().numpy()
            product = crop_probabilities(models, views).probabilities.reshape(len(crops), -1)
            errors.append(np.abs(screened - exact))
            confirmed.append(len(rows_to_confirm(screened, thresholds)))
            calls = exact.max(axis=0) >= decision
            flips_raw += int((screened.max(axis=0) >= decision).tolist() != calls.tolist())
            flips_kept += int((product.max(axis=0) >= thresholds).tolist() != calls.tolist())
            n += 1
        err = np.concatenate(errors)
        labels = models.classifier_config.labels
        print(f"{folder}: {n} scans, {len(err)} crops, {precision} screen")
        for j, label in enumerate(labels):
            print(
                f"  {label}: largest logit difference {err[:, j].max():.4f}, "
                f"99.9th percentile {np.quantile(err[:, j], 0.999):.4f}"
            )
        print(
            f"  margin {CONFIRM_MARGIN}: crops run again in float32 per scan "
            f"{np.mean(confirmed):.2f} (max {max(confirmed)}); scan calls differing from "
            f"float32: {flips_raw} screened alone, {flips_kept} with the float32 second pass"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
