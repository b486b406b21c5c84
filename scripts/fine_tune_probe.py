"""Seconds per fine-tuning step on this CPU, for each way of making a step cheaper.

Usage: ``python scripts/fine_tune_probe.py DATASET [--model models] [--steps 6]``

Each setting builds the trainer from the model folder (as ``train --init-from``) and
times ``--steps`` classifier and segmenter steps after two warm-up steps, in CPU seconds
of this process (``time.process_time``; run it with one thread), so that other work on
the machine does not inflate them. Prints one
line per setting: frozen stages, batch, segmenter crop, precision, s/step of each net.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from core.networks.models import CLASSIFIER, SEGMENTER, config_from_dict, read_card
from core.networks.sampling import load_training_data
from core.networks.trainer import TrainOptions, _Trainer, set_train_mode


def main() -> None:
    """Time every setting and print one line each."""
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--model", default="models")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_training_data([args.dataset], progress=False)
    c_cfg = config_from_dict(CLASSIFIER, read_card(args.model, CLASSIFIER)["config"])
    s_base = config_from_dict(SEGMENTER, read_card(args.model, SEGMENTER)["config"])
    settings = [
        (0, 16, (512, 256), True),
        (0, 8, (256, 256), True),
        (2, 8, (256, 256), True),
        (3, 8, (256, 256), True),
        (4, 8, (256, 256), True),
        (3, 8, (256, 256), False),
    ]
    for freeze, batch, crop, amp in settings:
        s_cfg = dataclasses.replace(s_base, train_crop=crop)
        opts = TrainOptions(
            init_from=args.model,
            freeze_stages=freeze,
            batch_size=batch,
            classifier=c_cfg,
            segmenter=s_cfg,
            amp=amp,
            progress=False,
            device="cpu",
            val_cases=0,
        )
        with tempfile.TemporaryDirectory() as out:
            t = _Trainer(data, Path(out), opts)
            set_train_mode(t.classifier, t.frozen[CLASSIFIER])
            set_train_mode(t.segmenter, t.frozen[SEGMENTER])
            times = {}
            for name, fn in (("classifier", t.step_classifier), ("segmenter", t.step_segmenter)):
                for _ in range(2):
                    fn()
                start = time.process_time()
                for _ in range(args.steps):
                    fn()
                times[name] = (time.process_time() - start) / args.steps
        print(
            f"freeze {freeze} batch {batch:2d} seg crop {crop[0]}x{crop[1]} "
            f"{'bf16' if amp else 'fp32'}: classifier {times['classifier']:.2f} s/step, "
            f"segmenter {times['segmenter']:.2f} s/step, both {sum(times.values()):.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
