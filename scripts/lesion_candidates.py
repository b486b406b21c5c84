r"""Run the shipped segmenter and skeleton network over cached phantom cases (issue 26).

A measurement and training-data step, not product code. For every case of a lesion
cache (``scripts/train_lesion.py`` builds them: views, exact skeleton maps, lesion
masks) it writes ``<out>/<i>.npz`` with, per view in the canonical orientation: the
views the networks saw (``--pairs P``: with probability P per case, mirrored pairs of
hot spots added first, :func:`core.networks.lesion_training.add_paired_spots`, labelled
background), the segmenter's whole-view labels (no crop gate), its metastasis
probability, the skeleton network's map and the true lesion mask. These are the
candidates the lesion scorer learns from (``scripts/train_scorer.py``).

Run::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/lesion_candidates.py \
        ~/bonescan-runs/lesion/cache/train-s2601 ~/bonescan-runs/scorer/train \
        --cases 360 --pairs 0.5 [--midline-share 0.3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from core.config import VIEWS
from core.imaging.normalise import normalise_view
from core.networks.inference import skeleton_labels
from core.networks.lesion_training import LesionAugment, add_paired_spots
from core.networks.models import load_models


def main(argv: list[str] | None = None) -> int:
    """Write one candidates file per cached case."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cache", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--cases", type=int, required=True)
    p.add_argument("--start", type=int, default=0, help="first case (to split the work)")
    p.add_argument("--pairs", type=float, default=0.0, help="share of cases with added pairs")
    p.add_argument(
        "--midline-share",
        type=float,
        default=0.0,
        help="share of spots on the face/sternum mid-line (anterior views)",
    )
    p.add_argument("--model", type=Path, default=Path("models"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    models = load_models(args.model, device="cpu", precision="float32", lesion=False)
    assert models.skeleton is not None
    rng = np.random.default_rng([args.seed, args.start])
    aug = LesionAugment(pair_prob=1.0, midline_share=args.midline_share)
    posterior_aug = dataclasses.replace(aug, midline_share=0.0)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for i in range(args.start, args.cases):
        path = args.out / f"{i:05d}.npz"
        if path.exists():
            continue
        with np.load(args.cache / f"{i:05d}.npz") as z:
            views = {v: z["views"][k].astype(np.float32) for k, v in enumerate(VIEWS)}
            truth_skel = {v: z["labels"][k] for k, v in enumerate(VIEWS)}
            masks = {v: z["masks"][k] for k, v in enumerate(VIEWS)}
            meta = str(z["meta"])
        if rng.random() < args.pairs:
            # the face and the sternum are hot on the anterior view; behind the spine and
            # the skull's back they are not seen
            views = {
                v: add_paired_spots(
                    views[v], truth_skel[v], masks[v], aug if v == "ANT" else posterior_aug, rng
                )
                for v in views
            }
        skel = skeleton_labels(models, views)
        x = np.stack([normalise_view(views[v]) for v in VIEWS])[:, None]
        with torch.inference_mode():
            logits = models.segmenter(torch.from_numpy(x)).float()
        prob = torch.softmax(logits, 1).numpy()
        labels = prob.argmax(1).astype(np.uint8)
        np.savez_compressed(
            path,
            views=np.stack([views[v] for v in VIEWS]),
            seg=labels,
            p_met=(prob[:, 1] * 255).round().astype(np.uint8),
            skeleton=np.stack([skel[v] for v in VIEWS]),
            masks=np.stack([masks[v] for v in VIEWS]),
            meta=np.array(meta),
        )
        if (i + 1) % 20 == 0:
            print(f"{i + 1}/{args.cases} {(time.time() - start) / (i + 1):.2f} s/case", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
