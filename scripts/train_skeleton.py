r"""Train the skeleton-segmentation network on phantom cases, on the CPU, resumably.

1. **Cache.** Generates phantom cases (views and exact skeleton label maps,
   :mod:`core.phantom.skeleton_truth`) into compressed ``.npz`` files under
   ``--cache`` (default ``$HOME/bonescan-runs/skeleton/cache``): ``train-s<seed>``
   with the generator's own variety (ages, builds, counts, blur, placement; every
   other case with a forced arm position so the rarer poses are common enough), and
   ``val-s<seed+7919>``, a held-out set of OTHER seeds and OTHER settings (forced
   ages at the extremes, metastatic and superscan patterns, benign findings, every
   arm pose). Existing files are kept, so an interrupted cache resumes.
2. **Benchmark.** Seconds per step in float32 and in bfloat16 autocast at the
   configured threads, written to the log; ``--precision auto`` takes the faster.
3. **Train.** Dice + cross-entropy (MONAI ``DiceCELoss``), AdamW, warm-up then cosine
   learning rate; augmentation of :mod:`core.anatomy.training`. A checkpoint (model,
   optimizer, step, random generator states) is written atomically every
   ``--ckpt-every`` steps and on SIGTERM/SIGINT, so ``--resume`` continues exactly;
   ``train.csv`` logs step, loss, learning rate and seconds per step; every
   ``--eval-every`` steps the mean Dice on the held-out cache goes to ``eval.csv``
   and the network to ``<out>/model/skeleton.{safetensors,json}`` (and
   ``<out>/best/`` when it is the best so far).

Run in the background with one thread::

    OMP_NUM_THREADS=1 nohup nice -n 10 .venv/bin/python scripts/train_skeleton.py \
        --out ~/bonescan-runs/skeleton/run1 > ~/bonescan-runs/skeleton/run1.out 2>&1 &
    # later, after a stop or a crash:
    OMP_NUM_THREADS=1 nohup nice -n 10 .venv/bin/python scripts/train_skeleton.py \
        --out ~/bonescan-runs/skeleton/run1 --resume >> ~/bonescan-runs/skeleton/run1.out 2>&1 &
"""

from __future__ import annotations

import os

# one thread unless told otherwise: this machine is shared (set before torch loads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import json
import math
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.anatomy.network import (
    SkeletonNetConfig,
    build_network,
    oriented,
    predict_logits,
    save_skeleton_network,
)
from core.anatomy.regions import LABELS, N_LABELS
from core.anatomy.training import (
    SkeletonAugment,
    augment_batch,
    autocast,
    dice_from_counts,
    load_checkpoint,
    overlap_counts,
    save_checkpoint,
    train_step,
)
from core.config import VIEWS
from core.networks.device import cpu_model, native_bfloat16
from core.phantom.generate import generate_case
from core.phantom.skeleton_truth import case_label_maps

RUNS = Path.home() / "bonescan-runs" / "skeleton"
#: Offset of the validation seed from the training seed (a prime: no overlap of streams).
VAL_SEED_OFFSET = 7919
_ARMS = ("abdomen", "abducted", "sides")
_VAL_AGES = (16, 35, 58, 77, 92)
_VAL_PATTERNS = ("multiple", "extensive", "superscan", "oligo")
_VAL_BENIGN = (("degenerative",), ("injection_site", "rib_fracture"), ("post_operative",), ())


def train_forcing(i: int) -> dict[str, Any]:
    """Forced settings of training case ``i``: every other case gets an arm pose."""
    return {} if i % 2 == 0 else {"arm_position": _ARMS[(i // 2) % 3]}


def val_forcing(i: int) -> dict[str, Any]:
    """Forced settings of validation case ``i``: other ages, patterns, findings, poses."""
    out: dict[str, Any] = {
        "arm_position": _ARMS[i % 3],
        "age": _VAL_AGES[i % len(_VAL_AGES)],
        "sex": "MF"[i % 2],
        "benign": _VAL_BENIGN[i % len(_VAL_BENIGN)],
    }
    if i % 2 == 1:
        out["pattern"] = _VAL_PATTERNS[(i // 2) % len(_VAL_PATTERNS)]
        out["uptake_scale"] = 1.5
    else:
        out["metastasis"] = False
    if out["sex"] == "M":
        out["primary"] = "lung"  # a primary every sex and age can have
    else:
        out["primary"] = "breast"
    return out


def log(path: Path, message: str) -> None:
    """Append a time-stamped line to the text log and print it."""
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
    print(line, flush=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


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
        # Poisson counts are whole numbers: uint16 holds them exactly at a third the size
        if float(views.max()) < 65535 and np.array_equal(views, np.round(views)):
            views = views.astype(np.uint16)
        meta = {
            "case_id": case.case_id,
            "forced": {k: list(v) if isinstance(v, tuple) else v for k, v in forced.items()},
            "age": case.patient.age,
            "arm_position": case.truth["body"]["arm_position"],
            "height_mm": case.truth["body"]["height_mm"],
        }
        tmp = folder / f"{i:05d}.tmp.npz"
        np.savez_compressed(
            tmp,
            views=views,
            labels=np.stack([maps[v] for v in VIEWS]),
            meta=np.array(json.dumps(meta)),
        )
        tmp.replace(path)
        made += 1
        if made % 25 == 0:
            log(
                log_path,
                f"cache {folder.name}: {i + 1}/{n} ({(time.time() - t0) / made:.2f} s/case)",
            )
    log(log_path, f"cache {folder.name}: {n} cases ready ({made} new)")


@dataclass
class Data:
    """Cached cases in memory, in the anterior orientation.

    Attributes:
        counts: (N, 1024, 256) uint16 or float32 counts, one item per view.
        labels: (N, 1024, 256) uint8 label maps.
        names: Case id and view of each item.
    """

    counts: np.ndarray
    labels: np.ndarray
    names: list[str]


def load_cache(folder: Path, n: int) -> Data:
    """Load cases ``0..n-1`` of a cache folder, both views, POST flipped to anterior."""
    counts, labels, names = [], [], []
    for i in range(n):
        with np.load(folder / f"{i:05d}.npz") as z:
            meta = json.loads(str(z["meta"]))
            for k, v in enumerate(VIEWS):
                counts.append(oriented(v, z["views"][k]))
                labels.append(oriented(v, z["labels"][k]))
                names.append(f"{meta['case_id']}:{v}")
    dtype = np.uint16 if all(c.dtype == np.uint16 for c in counts) else np.float32
    return Data(np.stack(counts).astype(dtype), np.stack(labels), names)


def batch_of(data: Data, items: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (counts float32 (B, 1, H, W), labels int64 (B, H, W)) of the chosen items."""
    c = torch.from_numpy(data.counts[items].astype(np.float32))[:, None]
    y = torch.from_numpy(data.labels[items].astype(np.int64))
    return c, y


def learning_rate(step: int, base: float, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of ``base`` at ``total`` steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t)))


def evaluate(model: torch.nn.Module, cfg: SkeletonNetConfig, data: Data) -> dict[str, Any]:
    """Return the held-out Dice at full resolution (per label over the whole set)."""
    model.eval()
    total = np.zeros((N_LABELS, 3), dtype=np.int64)
    for start in range(0, len(data.names), 8):
        sl = slice(start, start + 8)
        with autocast("float32"):
            logits = predict_logits(model, cfg, data.counts[sl].astype(np.float32))
        pred = logits.argmax(1).numpy()
        for p, t in zip(pred, data.labels[sl], strict=True):
            total += overlap_counts(p, t, N_LABELS)
    dice = dice_from_counts(total)
    per = {LABELS[k]: round(v, 4) for k, v in dice.items()}
    worst = min(per, key=per.__getitem__)
    return {
        "mean_dice": round(float(np.mean(list(dice.values()))), 4),
        "min_dice": per[worst],
        "worst_label": worst,
        "per_label": per,
    }


def bench(
    model: torch.nn.Module,
    cfg: SkeletonNetConfig,
    data: Data,
    aug: SkeletonAugment,
    batch: int,
    steps: int,
) -> dict[str, float]:
    """Return seconds per training step in float32 and bfloat16 (a throw-away copy)."""
    out = {}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    for precision in ("float32", "bfloat16"):
        model.load_state_dict(state)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for k in range(steps + 1):
            t = time.perf_counter()
            c, y = batch_of(data, rng.integers(0, len(data.names), batch))
            x, yy = augment_batch(c, y, cfg, aug, gen)
            train_step(model, opt, loss_fn, x, yy, precision)
            if k:  # the first step pays for allocation and kernel selection
                times.append(time.perf_counter() - t)
        out[precision] = round(float(np.median(times)), 3)
    model.load_state_dict(state)
    return out


def _trim_csv(path: Path, step: int) -> None:
    """Drop rows after ``step`` (a killed run logged past its last checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(kept)


def _append_csv(path: Path, header: Sequence[str], row: Sequence[Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(header)
        w.writerow(row)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=RUNS / "run1", help="run folder (under $HOME)")
    p.add_argument("--cache", type=Path, default=RUNS / "cache", help="phantom cache folder")
    p.add_argument("--cases", type=int, default=300, help="training cases")
    p.add_argument("--val-cases", type=int, default=40, help="held-out cases")
    p.add_argument("--steps", type=int, default=30000, help="total optimisation steps")
    p.add_argument("--batch", type=int, default=8, help="views per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    p.add_argument("--seed", type=int, default=101, help="training cache and run seed")
    p.add_argument("--input-shape", type=int, nargs=2, default=(512, 128), metavar=("ROWS", "COLS"))
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--bench-steps", type=int, default=3, help="timed steps per precision")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--cache-only", action="store_true", help="build the caches and stop")
    args = p.parse_args(argv)
    args.input_shape = tuple(args.input_shape)  # one spelling in the checkpoint's args
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Build the caches, then train (or resume) and evaluate."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out: Path = args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train.log"
    ckpt = out / "checkpoint.pt"
    if args.resume and not ckpt.exists():
        raise SystemExit(f"--resume: no checkpoint at {ckpt}")
    log(log_path, f"start: {' '.join(sys.argv)} (pid {os.getpid()}, {args.threads} thread(s))")
    train_dir = args.cache.expanduser() / f"train-s{args.seed}"
    val_seed = args.seed + VAL_SEED_OFFSET
    val_dir = args.cache.expanduser() / f"val-s{val_seed}"
    build_cache(train_dir, args.seed, args.cases, train_forcing, log_path)
    build_cache(val_dir, val_seed, args.val_cases, val_forcing, log_path)
    if args.cache_only:
        return 0
    train = load_cache(train_dir, args.cases)
    val = load_cache(val_dir, args.val_cases)
    log(log_path, f"data: {len(train.names)} training views, {len(val.names)} held-out views")

    cfg = SkeletonNetConfig(input_shape=tuple(args.input_shape))
    aug = SkeletonAugment()
    torch.manual_seed(args.seed)
    model = build_network(cfg)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    step, best = 0, -1.0
    precision = args.precision
    bench_s: dict[str, float] = {}
    if args.resume:
        step, state = load_checkpoint(ckpt, model, opt)
        # the same data and shapes, or the run would not continue the one checkpointed
        fixed = ("seed", "cases", "val_cases", "batch", "input_shape")
        changed = [k for k in fixed if state["args"].get(k) != str(getattr(args, k))]
        if changed:
            raise SystemExit(f"--resume: {changed} differ from the checkpoint's {state['args']}")
        gen.set_state(state["torch_gen"])
        rng.bit_generator.state = state["numpy_rng"]
        best = float(state.get("best", -1.0))
        bench_s = dict(state.get("bench", {}))
        if precision == "auto":
            precision = str(state["precision"])
        for name in ("train.csv", "eval.csv"):
            _trim_csv(out / name, step)
        log(log_path, f"resumed at step {step} (precision {precision}, best Dice {best:.4f})")
    else:
        bench_s = bench(model, cfg, train, aug, args.batch, args.bench_steps)
        log(
            log_path,
            f"bench, batch {args.batch} of {cfg.input_shape}, {args.threads} thread(s), "
            f"{cpu_model()}, native bf16 {native_bfloat16()}: "
            f"float32 {bench_s['float32']:.2f} s/step, bfloat16 autocast "
            f"{bench_s['bfloat16']:.2f} s/step",
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
                "best": best,
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
        items = rng.integers(0, len(train.names), args.batch)
        c, y = batch_of(train, items)
        x, yy = augment_batch(c, y, cfg, aug, gen)
        loss = train_step(model, opt, loss_fn, x, yy, precision)
        step += 1
        sec = time.perf_counter() - t
        _append_csv(
            out / "train.csv",
            ("step", "loss", "lr", "sec_per_step", "elapsed_s"),
            (step, f"{loss:.5f}", f"{lr:.6g}", f"{sec:.3f}", f"{time.time() - t_start:.0f}"),
        )
        if step % 50 == 0:
            log(log_path, f"step {step} loss {loss:.4f} lr {lr:.2e} {sec:.2f} s/step")
        if step % args.eval_every == 0 or step == args.steps:
            res = evaluate(model, cfg, val)
            _append_csv(
                out / "eval.csv",
                ("step", "mean_dice", "min_dice", "worst_label", "per_label"),
                (
                    step,
                    res["mean_dice"],
                    res["min_dice"],
                    res["worst_label"],
                    json.dumps(res["per_label"]),
                ),
            )
            card = {
                "training": {
                    "step": step,
                    "precision": precision,
                    "cache": str(train_dir),
                    "cases": args.cases,
                    "seed": args.seed,
                    "sec_per_step": bench_s,
                },
                "metrics": {"held_out": str(val_dir), **res},
            }
            save_skeleton_network(out / "model", model, cfg, card)
            if res["mean_dice"] > best:
                best = res["mean_dice"]
                save_skeleton_network(out / "best", model, cfg, card)
            log(
                log_path,
                f"eval step {step}: mean Dice {res['mean_dice']:.4f}, worst "
                f"{res['worst_label']} {res['min_dice']:.4f} (best {best:.4f})",
            )
        if step % args.ckpt_every == 0 or stop["now"] or step == args.steps:
            checkpoint()
    log(log_path, f"stopped at step {step}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
