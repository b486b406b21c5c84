r"""Measurement for issue 26: what one shared ResNet34 encoder would cost on this CPU.

Not product code. It times, in float32 and in bfloat16 autocast, on the threads given:

* **training steps** at batch 8 of 256 x 256 crops: today's two networks (a classifier
  step on crops and a segmenter step on crops) against one shared network (MONAI
  ``FlexibleUNet`` with a ResNet34 encoder and, on the encoder's deepest features, a
  pooled linear head for the crop labels; both losses, one backward pass), with 1 or
  several input channels (the view, its left-right mirror, the other view, a
  region-reference map);
* **inference** of one scan (two 1024 x 256 views): today's bare forward pass (the
  classifier on the 14 crops of :mod:`core.imaging.crops` and the segmenter on both
  whole views) against the shared network on both whole views, whose crop verdicts come
  from 8 x 8 windows of its deepest features at the crop stride (one pass, no crops).

Untrained weights: the cost does not depend on them::

    PYTHONPATH=. OMP_NUM_THREADS=2 .venv/bin/python scripts/shared_encoder_probe.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from monai.networks.nets import FlexibleUNet
from torch import nn
from torch.nn import functional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import COLS, ROWS
from core.imaging.crops import CROP_SIZE, CROP_STRIDE
from core.networks.models import build_classifier, build_segmenter

#: Down-sampling of the encoder's deepest features (five stride-2 stages).
DEEPEST_STRIDE = 32


class SharedNet(nn.Module):
    """A FlexibleUNet whose encoder also feeds a crop-label head.

    ``forward`` returns (segmentation logits (N, 3, H, W), crop logits (N, 2, h, w)): the
    crop logits are the head applied to the mean of each crop-sized window of the
    deepest features, at the crop stride (one window per 256 x 256 crop).
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.unet = FlexibleUNet(
            in_channels=in_channels,
            out_channels=3,
            backbone="resnet34",
            pretrained=False,
            spatial_dims=2,
        )
        self.head = nn.Conv2d(512, 2, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Segmentation and crop logits of ``x`` (N, C, H, W), sides multiples of 32."""
        features = self.unet.encoder(x)
        seg = self.unet.segmentation_head(self.unet.decoder(features, self.unet.skip_connect))
        window = CROP_SIZE // DEEPEST_STRIDE
        stride = max(1, CROP_STRIDE // DEEPEST_STRIDE)
        pooled = functional.avg_pool2d(features[-1], window, stride=stride)
        return seg, self.head(pooled)


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: oneDNN picks its kernels on the first call
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _autocast(bf16: bool) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def main(argv: list[str] | None = None) -> int:
    """Time the steps and passes and print a markdown table; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--channels", type=int, nargs="+", default=[1, 4])
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows: list[tuple[str, str, float]] = []
    crops = torch.rand(a.batch, 1, CROP_SIZE, CROP_SIZE) * 2
    seg_target = torch.randint(0, 3, (a.batch, CROP_SIZE, CROP_SIZE))
    cls_target = torch.randint(0, 2, (a.batch, 2)).float()
    classifier, segmenter = build_classifier(), build_segmenter()
    c_opt = torch.optim.Adam(classifier.parameters(), 1e-4)
    s_opt = torch.optim.Adam(segmenter.parameters(), 1e-4)

    def two_step(bf16: bool) -> None:
        for net, opt, loss_of in (
            (
                classifier,
                c_opt,
                lambda: functional.binary_cross_entropy_with_logits(
                    classifier(crops).float(), cls_target
                ),
            ),
            (
                segmenter,
                s_opt,
                lambda: functional.cross_entropy(segmenter(crops).float(), seg_target),
            ),
        ):
            net.train()
            opt.zero_grad(set_to_none=True)
            with _autocast(bf16):
                loss = loss_of()
            loss.backward()
            opt.step()

    for bf16 in (False, True):
        rows.append(
            (
                "train step, today's two networks, 1 channel",
                _name(bf16),
                _time(partial(two_step, bf16), a.repeats),
            )
        )
    for ch in a.channels:
        shared = SharedNet(ch)
        opt = torch.optim.Adam(shared.parameters(), 1e-4)
        x = torch.rand(a.batch, ch, CROP_SIZE, CROP_SIZE) * 2

        def shared_step(
            bf16: bool,
            shared: SharedNet = shared,
            opt: torch.optim.Optimizer = opt,
            x: torch.Tensor = x,
        ) -> None:
            shared.train()
            opt.zero_grad(set_to_none=True)
            with _autocast(bf16):
                seg, crop_logits = shared(x)
                loss = functional.cross_entropy(seg.float(), seg_target) + (
                    functional.binary_cross_entropy_with_logits(
                        crop_logits.float().mean((2, 3)), cls_target
                    )
                )
            loss.backward()
            opt.step()

        for bf16 in (False, True):
            rows.append(
                (
                    f"train step, shared network, {ch} channel(s)",
                    _name(bf16),
                    _time(partial(shared_step, bf16), a.repeats),
                )
            )

    views = torch.rand(2, 1, ROWS, COLS) * 2
    n_crops = 14
    view_crops = torch.rand(n_crops, 1, CROP_SIZE, CROP_SIZE) * 2
    classifier.eval()
    segmenter.eval()

    @torch.no_grad()
    def today(bf16: bool) -> None:
        with _autocast(bf16):
            classifier(view_crops)
            segmenter(views)

    for bf16 in (False, True):
        rows.append(
            (
                "inference per scan, today's two networks (bare forward)",
                _name(bf16),
                _time(partial(today, bf16), a.repeats),
            )
        )
    for ch in a.channels:
        shared = SharedNet(ch).eval()
        xv = torch.rand(2, ch, ROWS, COLS) * 2

        @torch.no_grad()
        def one_pass(bf16: bool, shared: SharedNet = shared, xv: torch.Tensor = xv) -> None:
            with _autocast(bf16):
                shared(xv)

        for bf16 in (False, True):
            rows.append(
                (
                    f"inference per scan, shared network, {ch} channel(s)",
                    _name(bf16),
                    _time(partial(one_pass, bf16), a.repeats),
                )
            )

    print(f"{a.threads} thread(s), batch {a.batch}, {a.repeats} repeats after a warm-up")
    print("| what | arithmetic | seconds |")
    print("|---|---|---|")
    for what, arith, sec in rows:
        print(f"| {what} | {arith} | {sec:.3f} |")
    return 0


def _name(bf16: bool) -> str:
    return "bfloat16 autocast" if bf16 else "float32"


if __name__ == "__main__":
    raise SystemExit(main())
