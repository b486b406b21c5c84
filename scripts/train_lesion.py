r"""Train the lesion network (issue 26) on phantom cases, on the CPU, resumably.

1. **Cache.** Generates phantom cases (views, exact skeleton maps, lesion masks) into
   compressed ``.npz`` files under ``--cache`` (default
   ``$HOME/bonescan-runs/lesion/cache``): ``train-s<seed>`` at the training centre,
   one case in three a negative with degenerative uptake forced (mostly paired,
   :data:`core.phantom.findings.PAIRED_DEGENERATIVE`), and ``val-s<seed+7919>`` at
   the **second** centre (:data:`core.phantom.centres.SECOND`: other counts, blur,
   benign rates and exports), half of them metastatic. Existing files are kept.
2. **Benchmark.** Seconds per step in float32 and bfloat16 autocast; ``--precision
   auto`` takes the faster.
3. **Train.** Dice (metastasis and bladder, not background) + cross-entropy (MONAI
   ``DiceCELoss``) on 128 x 128 crops of full
   resolution (:mod:`core.networks.lesion_training`), AdamW, warm-up then cosine. A
   checkpoint every ``--ckpt-every`` steps and on SIGTERM/SIGINT; ``--resume``
   continues exactly. Every ``--eval-every`` steps the held-out figures (metastasis and
   bladder Dice, scan AUC, marks per negative scan, lesions found) go to ``eval.csv``
   and the network to ``<out>/model/`` (and ``<out>/best/`` by AUC, then Dice).

Run in the background with one thread::

    OMP_NUM_THREADS=1 nohup nice -n 10 .venv/bin/python scripts/train_lesion.py \
        --out ~/bonescan-runs/lesion/run1 > ~/bonescan-runs/lesion/run1.out 2>&1 &
    # later: the same command with --resume (append to the .out file)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_skeleton import _append_csv, _trim_csv, learning_rate, log

from core.anatomy.network import oriented
from core.anatomy.training import autocast, load_checkpoint, save_checkpoint, train_step
from core.config import VIEWS
from core.evaluation.metrics import roc_auc
from core.networks.device import cpu_model, native_bfloat16
from core.networks.lesion_net import (
    LesionNetConfig,
    build_network,
    predict_probabilities,
    save_lesion_network,
    scan_score,
)
from core.networks.lesion_training import NO_AUGMENT, LesionAugment, make_batch
from core.phantom.centres import SECOND
from core.phantom.generate import generate_case
from core.phantom.skeleton_truth import case_label_maps

RUNS = Path.home() / "bonescan-runs" / "lesion"
VAL_SEED_OFFSET = 7919
#: Smallest connected piece of a metastasis mask counted as a mark, pixels.
MIN_MARK_PIXELS = 10
_ARMS = ("abdomen", "abducted", "sides")


def train_forcing(i: int) -> dict[str, Any]:
    """Case ``i`` of the training cache: one in three a negative with degenerative uptake."""
    out: dict[str, Any] = {}
    if i % 3 == 1:
        out.update(metastasis=False, benign=("degenerative",))
    if i % 4 == 3:
        out["arm_position"] = _ARMS[(i // 4) % 3]
    return out


def val_forcing(i: int) -> dict[str, Any]:
    """Case ``i`` of the held-out cache: the second centre, half metastatic."""
    out: dict[str, Any] = {"centre": SECOND, "metastasis": i % 2 == 1}
    if i % 3 == 0:
        out["benign"] = ("degenerative",)
    return out


def build_cache(folder: Path, seed: int, n: int, forcing: Any, log_path: Path) -> None:
    """Generate cases ``0..n-1`` of ``seed`` into ``folder`` (existing files are kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    t0, made = time.time(), 0
    for i in range(n):
        path = folder / f"{i:05d}.npz"
        if path.exists():
            continue
        forced = forcing(i)
        case = generate_case(seed, i, **forced)
        maps = case_label_maps(seed, i, **forced)
        views = np.stack([case.views[v] for v in VIEWS])
        if float(views.max()) < 65535 and np.array_equal(views, np.round(views)):
            views = views.astype(np.uint16)
        meta = {
            "case_id": case.case_id,
            "metastasis": bool(case.truth.get("metastasis_visible", False)),
            "age": case.patient.age,
        }
        tmp = folder / f"{i:05d}.tmp.npz"
        np.savez_compressed(
            tmp,
            views=views,
            labels=np.stack([maps[v] for v in VIEWS]),
            masks=np.stack([case.masks[v] for v in VIEWS]),
            meta=np.array(json.dumps(meta)),
        )
        tmp.replace(path)
        made += 1
        if made % 50 == 0:
            log(
                log_path,
                f"cache {folder.name}: {i + 1}/{n} ({(time.time() - t0) / made:.2f} s/case)",
            )
    log(log_path, f"cache {folder.name}: {n} cases ready ({made} new)")


@dataclass
class Data:
    """Cached views in the anterior orientation (two items per case, ANT then POST)."""

    counts: np.ndarray
    skeletons: np.ndarray
    masks: np.ndarray
    metastasis: np.ndarray  # per case


def load_cache(folder: Path, n: int) -> Data:
    """Load cases ``0..n-1``, both views, POST flipped to the anterior orientation."""
    counts, skels, masks, met = [], [], [], []
    for i in range(n):
        with np.load(folder / f"{i:05d}.npz") as z:
            meta = json.loads(str(z["meta"]))
            met.append(meta["metastasis"])
            for k, v in enumerate(VIEWS):
                counts.append(oriented(v, z["views"][k]))
                skels.append(oriented(v, z["labels"][k]))
                masks.append(oriented(v, z["masks"][k]))
    return Data(np.stack(counts), np.stack(skels), np.stack(masks), np.array(met, dtype=bool))


def evaluate(model: torch.nn.Module, data: Data) -> dict[str, Any]:
    """Held-out figures on whole views (exact skeleton maps, coarsened as in the product)."""
    model.eval()
    inter = np.zeros(3)
    total = np.zeros(3)
    scores, marks_neg, found, lesions = [], [], 0, 0
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    aug = LesionAugment(
        camera=NO_AUGMENT.camera, gamma_prob=0.0, flip_prob=0.0, coarse_skeleton_prob=1.0
    )
    n_cases = len(data.metastasis)
    for case in range(n_cases):
        sl = slice(2 * case, 2 * case + 2)
        x, y = make_batch(
            data.counts[sl], data.skeletons[sl], data.masks[sl], aug, gen, rng, whole=True
        )
        with autocast("float32"):
            probs = predict_probabilities(model, x.numpy())
        pred = probs.argmax(1)
        truth = y.numpy()
        for label in (1, 2):
            inter[label] += float(((pred == label) & (truth == label)).sum())
            total[label] += float((pred == label).sum() + (truth == label).sum())
        scores.append(scan_score(probs[:, 1]))
        marks = 0
        for v in range(2):
            pieces, n = ndimage.label(pred[v] == 1)
            sizes = np.bincount(pieces.ravel(), minlength=n + 1)
            marks += int((sizes[1:] >= MIN_MARK_PIXELS).sum())
            tl, tn = ndimage.label(truth[v] == 1)
            for k in range(1, tn + 1):
                lesions += 1
                found += int((pred[v][tl == k] == 1).any())
        if not data.metastasis[case]:
            marks_neg.append(marks)
    auc = roc_auc(data.metastasis.astype(int), np.array(scores))
    return {
        "dice_metastasis": round(float(2 * inter[1] / max(total[1], 1)), 4),
        "dice_bladder": round(float(2 * inter[2] / max(total[2], 1)), 4),
        "scan_auc": round(float(auc), 4),
        "marks_per_negative": round(float(np.mean(marks_neg)) if marks_neg else 0.0, 2),
        "lesions_found": round(found / max(lesions, 1), 4),
        "scores": [round(s, 4) for s in scores],
    }


def bench(
    model: torch.nn.Module, data: Data, aug: LesionAugment, batch: int, steps: int, per_view: int
) -> dict[str, float]:
    """Seconds per training step in float32 and bfloat16 (a throw-away copy)."""
    out = {}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    for precision in ("float32", "bfloat16"):
        model.load_state_dict(state)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for k in range(steps + 1):
            t = time.perf_counter()
            items = rng.integers(0, len(data.counts), max(1, batch // per_view))
            x, y = make_batch(
                data.counts[items],
                data.skeletons[items],
                data.masks[items],
                aug,
                gen,
                rng,
                crops_per_view=per_view,
            )
            train_step(model, opt, loss_fn, x, y, precision)
            if k:
                times.append(time.perf_counter() - t)
        out[precision] = round(float(np.median(times)), 3)
    model.load_state_dict(state)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=RUNS / "run1")
    p.add_argument("--cache", type=Path, default=RUNS / "cache")
    p.add_argument("--cases", type=int, default=360)
    p.add_argument("--val-cases", type=int, default=60)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16, help="crops per step")
    p.add_argument("--crops-per-view", type=int, default=4, help="crops cut from each view")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--seed", type=int, default=2601)
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--bench-steps", type=int, default=3)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--cache-only", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the caches, then train (or resume) and evaluate."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out: Path = args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    log_path, ckpt = out / "train.log", out / "checkpoint.pt"
    if args.resume and not ckpt.exists():
        raise SystemExit(f"--resume: no checkpoint at {ckpt}")
    log(log_path, f"start: {' '.join(sys.argv)} (pid {os.getpid()}, {args.threads} thread(s))")
    train_dir = args.cache.expanduser() / f"train-s{args.seed}"
    val_seed = args.seed + VAL_SEED_OFFSET
    val_dir = args.cache.expanduser() / f"val-s{val_seed}"
    build_cache(val_dir, val_seed, args.val_cases, val_forcing, log_path)
    build_cache(train_dir, args.seed, args.cases, train_forcing, log_path)
    if args.cache_only:
        return 0
    train, val = load_cache(train_dir, args.cases), load_cache(val_dir, args.val_cases)
    log(log_path, f"data: {len(train.counts)} training views, {len(val.counts)} held-out views")
    cfg = LesionNetConfig()
    aug = LesionAugment()
    torch.manual_seed(args.seed)
    model = build_network(cfg)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen, rng = torch.Generator().manual_seed(args.seed), np.random.default_rng(args.seed)
    step, best = 0, (-1.0, -1.0)
    precision = args.precision
    bench_s: dict[str, float] = {}
    if args.resume:
        step, state = load_checkpoint(ckpt, model, opt)
        fixed = ("seed", "cases", "val_cases", "batch", "crops_per_view")
        changed = [k for k in fixed if state["args"].get(k) != str(getattr(args, k))]
        if changed:
            raise SystemExit(f"--resume: {changed} differ from the checkpoint's {state['args']}")
        gen.set_state(state["torch_gen"])
        rng.bit_generator.state = state["numpy_rng"]
        best = tuple(state.get("best", best))
        bench_s = dict(state.get("bench", {}))
        if precision == "auto":
            precision = str(state["precision"])
        for name in ("train.csv", "eval.csv"):
            _trim_csv(out / name, step)
        log(log_path, f"resumed at step {step} (precision {precision}, best {best})")
    else:
        bench_s = bench(model, train, aug, args.batch, args.bench_steps, args.crops_per_view)
        log(
            log_path,
            f"bench, batch {args.batch} of {aug.crop}, {args.threads} thread(s), "
            f"{cpu_model()}, native bf16 {native_bfloat16()}: {bench_s}",
        )
        (out / "bench.json").write_text(json.dumps(bench_s, indent=2) + "\n", encoding="utf-8")
        if precision == "auto":
            precision = min(bench_s, key=bench_s.__getitem__)
    log(log_path, f"training in {precision}, steps {step}..{args.steps}")
    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True
        log(log_path, f"signal {signum}: checkpoint and stop after this step")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def checkpoint() -> None:
        save_checkpoint(
            ckpt,
            model,
            opt,
            step,
            {
                "torch_gen": gen.get_state(),
                "numpy_rng": rng.bit_generator.state,
                "precision": precision,
                "best": list(best),
                "bench": bench_s,
                "config": cfg.to_dict(),
                "args": {k: str(v) for k, v in vars(args).items()},
            },
        )

    t_start = time.time()
    while step < args.steps and not stop["now"]:
        t = time.perf_counter()
        lr = learning_rate(step, args.lr, args.steps, args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        items = rng.integers(0, len(train.counts), max(1, args.batch // args.crops_per_view))
        x, y = make_batch(
            train.counts[items],
            train.skeletons[items],
            train.masks[items],
            aug,
            gen,
            rng,
            crops_per_view=args.crops_per_view,
        )
        loss = train_step(model, opt, loss_fn, x, y, precision)
        step += 1
        sec = time.perf_counter() - t
        _append_csv(
            out / "train.csv",
            ("step", "loss", "lr", "sec_per_step", "elapsed_s"),
            (step, f"{loss:.5f}", f"{lr:.6g}", f"{sec:.3f}", f"{time.time() - t_start:.0f}"),
        )
        if step % 25 == 0:
            log(log_path, f"step {step} loss {loss:.4f} lr {lr:.2e} {sec:.2f} s/step")
        if step % args.eval_every == 0 or step == args.steps:
            res = evaluate(model, val)
            keys = (
                "dice_metastasis",
                "dice_bladder",
                "scan_auc",
                "marks_per_negative",
                "lesions_found",
            )
            _append_csv(out / "eval.csv", ("step", *keys), (step, *(res[k] for k in keys)))
            card = {
                "training": {
                    "step": step,
                    "precision": precision,
                    "cache": str(train_dir),
                    "cases": args.cases,
                    "seed": args.seed,
                    "sec_per_step": bench_s,
                },
                "metrics": {"held_out": str(val_dir), **{k: res[k] for k in keys}},
            }
            save_lesion_network(out / "model", model, cfg, card)
            key = (res["scan_auc"], res["dice_metastasis"])
            if key > best:
                best = key
                save_lesion_network(out / "best", model, cfg, card)
            log(log_path, f"eval step {step}: " + ", ".join(f"{k} {res[k]}" for k in keys))
        if step % args.ckpt_every == 0 or stop["now"] or step == args.steps:
            checkpoint()
    log(log_path, f"stopped at step {step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
