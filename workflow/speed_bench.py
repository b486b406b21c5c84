"""Benchmark of the pipeline: per-case latency from DICOM file to stored result, by stage.

:func:`run_bench` writes ``n`` phantom scans as two-frame DICOM NM files into a
temporary folder, then, on the CPU and (when present) the GPU:

* **latency**: each file in turn is read (:func:`core.reading.readers.read_scan`), analysed
  (:func:`core.analysis.analyze`, one scan per call) and stored in a fresh SQLite
  store (:func:`workflow.ingest.ingest`); the seconds of every stage (:data:`
  core.analysis.STAGES`) and their total are kept per case. One warm-up case runs
  first and is not counted (first calls allocate and pick kernels).
* **throughput**: all scans (already read) analysed in one batch; scans per second,
  and the networks' share of that batch per scan (classify + segment), which is what a
  GPU speeds up.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.analysis import STAGES, analyze
from core.config import COLS, LABEL_BLADDER, LABEL_METASTASIS, ROWS
from core.evaluation.metrics import dice
from core.imaging.crops import crop_origins, extract_crops
from core.imaging.normalise import normalise_view
from core.lesions.scorer import SCORER
from core.networks.device import cpu_model, describe_device, native_bfloat16
from core.networks.inference import predict_batch, skeleton_labels, whole_view_precision
from core.networks.lesion_net import LESION
from core.networks.models import (
    CLASSIFIER,
    SEGMENTER,
    ClassifierConfig,
    SegmenterConfig,
    build_classifier,
    build_segmenter,
    load_models,
    save_model,
)
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from core.reading.readers import read_scan
from db.connection import open_db
from workflow.ingest import ingest


def write_untrained_models(directory: Path | str, seed: int = 0) -> Path:
    """Save untrained classifier and segmenter weights (for timing only).

    Args:
        directory: The model folder to write.
        seed: Torch seed of the random initialisation.

    Returns:
        The folder.
    """
    torch.manual_seed(seed)
    extra = {"training_data": "untrained (random weights, for timing only)"}
    save_model(directory, CLASSIFIER, build_classifier(), ClassifierConfig(), extra)
    save_model(directory, SEGMENTER, build_segmenter(), SegmenterConfig(), extra)
    return Path(directory)


def write_phantom_dicoms(folder: Path | str, n: int, seed: int = 0) -> list[Path]:
    """Write ``n`` phantom scans (cases 0..n-1 of ``seed``) as DICOM files.

    Args:
        folder: Where to write (created if missing).
        n: Number of cases (>= 1).
        seed: Phantom dataset seed.

    Returns:
        The files, in case order.

    Raises:
        ValueError: If ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        case = generate_case(seed, i)
        path = out / f"{case.case_id}.dcm"
        write_nm_dicom(path, to_scan(case), uid_seed=case.case_id)
        paths.append(path)
    return paths


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def bench_device(
    files: Sequence[Path],
    model_dir: Path | str,
    device: str,
    *,
    batch: bool = True,
    segment: str = "auto",
    precision: str | None = None,
) -> dict[str, Any]:
    """Time the pipeline on one device.

    Args:
        files: DICOM files (at least one).
        model_dir: The model folder.
        device: ``"cpu"`` or ``"cuda"``.
        batch: Also measure throughput in one batch of all scans.
        segment: How the segmenter covers a view (:data:`core.networks.inference.SEGMENT_MODES`).
        precision: The classifier's screening arithmetic
            (:data:`core.networks.device.PRECISIONS`); None: ``$BONESCAN_PRECISION`` or ``auto``.

    Returns:
        ``{"device", "precision", "cases", "latency_s": {stage: {mean, sd, min, max}},
        "per_case_s": [{stage: s}], "throughput_scans_per_s", "batch_s",
        "batch_network_s_per_scan"}``; latency includes ``total`` (read to stored
        result).

    Raises:
        ValueError: If ``files`` is empty.
    """
    if not files:
        raise ValueError("files must not be empty")
    models = load_models(model_dir, device=device, precision=precision)
    per_case: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bonescan-bench-db-") as tmp,
        open_db(Path(tmp) / "bench.sqlite") as db,
    ):
        for k, path in enumerate([files[0], *files]):
            start = time.perf_counter()
            content = path.read_bytes()
            scan = read_scan(path)
            read_s = time.perf_counter() - start
            (result,) = analyze([scan], models, read_seconds=[read_s], segment=segment)
            if k == 0:
                continue  # warm-up, not stored (the same file is stored next)
            ingest(
                db, [(path.name, content)], models=models, account="bench", scan=scan,
                result=result,
            )  # fmt: skip
            timings = {s: result.timings.get(s, 0.0) for s in STAGES}
            timings["total"] = sum(timings.values())
            per_case.append(timings)
    out: dict[str, Any] = {
        "device": describe_device(models.device),
        "precision": models.precision,
        "segment": segment,
        "cases": len(per_case),
        "latency_s": {s: _summary([c[s] for c in per_case]) for s in (*STAGES, "total")},
        "per_case_s": per_case,
    }
    if batch:
        scans = [read_scan(p) for p in files]
        start = time.perf_counter()
        results = analyze(scans, models, segment=segment)
        if models.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        out["batch_s"] = seconds
        out["throughput_scans_per_s"] = len(scans) / seconds
        out["batch_network_s_per_scan"] = statistics.fmean(
            r.timings["classify"] + r.timings["segment"] for r in results
        )
    return out


def segment_agreement(files: Sequence[Path], model_dir: Path | str) -> dict[str, Any]:
    """How far gated segmentation differs from whole-view segmentation (CPU).

    Args:
        files: DICOM files (at least one).
        model_dir: The model folder.

    Returns:
        ``{"views", "pixels_differing", "pixels_labelled", "dice_metastasis",
        "dice_bladder", "max_bstbi_difference"}``: label pixels that differ between the
        two modes over all views, the labelled pixels of the whole-view masks, the Dice
        of each label between the modes (pooled over the views), and the largest
        difference of a scan's BSTBI.
    """
    if not files:
        raise ValueError("files must not be empty")
    models = load_models(model_dir, device="cpu")
    scans = [read_scan(p) for p in files]
    full = analyze(scans, models, segment="full")
    gated = analyze(scans, models, segment="gated")
    differing = labelled = 0
    stacked: dict[str, list[np.ndarray]] = {"full": [], "gated": []}
    for f, g in zip(full, gated, strict=True):
        for view, mask in f.masks.items():
            differing += int((mask != g.masks[view]).sum())
            labelled += int((mask > 0).sum())
            stacked["full"].append(mask)
            stacked["gated"].append(g.masks[view])
    a, b = np.stack(stacked["full"]), np.stack(stacked["gated"])
    return {
        "views": len(a),
        "pixels_differing": differing,
        "pixels_labelled": labelled,
        "dice_metastasis": dice(a == LABEL_METASTASIS, b == LABEL_METASTASIS),
        "dice_bladder": dice(a == LABEL_BLADDER, b == LABEL_BLADDER),
        "max_bstbi_difference": max(
            abs(f.raw_bstbi - g.raw_bstbi) for f, g in zip(full, gated, strict=True)
        ),
    }


def precision_agreement(
    files: Sequence[Path], model_dir: Path | str, precision: str
) -> dict[str, Any]:
    """How far screening in ``precision`` (then deciding in float32) differs from float32 (CPU).

    Args:
        files: DICOM files (at least one).
        model_dir: The model folder.
        precision: The screening arithmetic to compare (``bfloat16``).

    Returns:
        ``{"precision", "scans", "calls_differing", "pixels_differing",
        "max_probability_difference": {label: value}, "confirmed_crops_per_scan":
        {"mean", "max"}}``: scans whose call of any label differs, mask pixels that
        differ over all views, the largest difference of a scan probability, and the
        crops run again in float32.

    Raises:
        ValueError: If ``files`` is empty or ``precision`` does not suit the CPU.
    """
    if not files:
        raise ValueError("files must not be empty")
    reference = load_models(model_dir, device="cpu", precision="float32")
    screened = load_models(model_dir, device="cpu", precision=precision)
    calls = pixels = 0
    worst: dict[str, float] = {}
    confirmed = []
    for path in files:
        views = read_scan(path).views
        (a,) = predict_batch(reference, [views])
        (b,) = predict_batch(screened, [views])
        calls += int(a.positive != b.positive)
        pixels += sum(int((a.masks[v] != b.masks[v]).sum()) for v in a.masks)
        for label, p in a.probabilities.items():
            worst[label] = max(worst.get(label, 0.0), abs(p - b.probabilities[label]))
        confirmed.append(b.confirmed_crops)
    return {
        "precision": screened.precision,
        "scans": len(files),
        "calls_differing": calls,
        "pixels_differing": pixels,
        "max_probability_difference": worst,
        "confirmed_crops_per_scan": {"mean": statistics.fmean(confirmed), "max": max(confirmed)},
    }


def lesion_cost(files: Sequence[Path], model_dir: Path | str, repeats: int = 3) -> dict[str, Any]:
    """The calls' seconds per scan against the two networks' bare forward pass (CPU).

    For a folder with a lesion network or a lesion scorer (issue 26). Both are timed in
    this call, on the same scans, so that the ratio holds on any machine: the two
    networks' bare forward pass, in float32 (the reference issue 26 names), is the
    classifier on every crop of both views plus the segmenter on both whole views
    (nothing else: no gate, no normalisation); the other path is everything the product
    does from counts to masks and calls, in the arithmetic it uses on this machine
    (``precision``; the scorer's segmenter runs in bfloat16 on a CPU that does it
    natively, :func:`core.networks.inference.whole_view_precision`): the skeleton
    network, then the lesion network with its inputs, or the segmenter on whole views
    with each mark's features and score.

    Args:
        files: DICOM files (at least one).
        model_dir: A model folder with a lesion network.
        repeats: Passes over the scans; the fastest is kept.

    Returns:
        ``{"scans", "two_networks_bare_s", "lesion_path_s", "ratio", "precision"}``
        (seconds per scan; the lesion path's arithmetic).

    Raises:
        ValueError: If ``files`` is empty or the folder has no lesion network.
    """
    if not files:
        raise ValueError("files must not be empty")
    with_lesion = load_models(model_dir, device="cpu")
    if with_lesion.lesion is None and with_lesion.scorer is None:
        raise ValueError(f"model_dir: {model_dir} has neither a lesion network nor a scorer")
    scans = [read_scan(p).views for p in files]
    cfg = with_lesion.classifier_config
    origins = crop_origins((ROWS, COLS), cfg.crop_size, cfg.crop_stride)

    def bare() -> None:
        for views in scans:
            normalised = [normalise_view(np.asarray(v)) for v in views.values()]
            crops = np.concatenate([extract_crops(v, origins, cfg.crop_size) for v in normalised])
            whole = torch.from_numpy(np.stack(normalised)[:, None])
            with torch.inference_mode():
                with_lesion.classifier(torch.from_numpy(crops[:, None]))
                with_lesion.segmenter(whole)

    def lesion_path() -> None:
        for views in scans:
            maps = skeleton_labels(with_lesion, views) if with_lesion.skeleton else None
            predict_batch(with_lesion, [views], skeletons=[maps])

    def fastest(run: Any) -> float:
        run()  # warm-up: allocation and kernel choice
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return best / len(scans)

    two, lesion = fastest(bare), fastest(lesion_path)
    return {
        "scans": len(scans),
        "two_networks_bare_s": two,
        "lesion_path_s": lesion,
        "ratio": lesion / two,
        "precision": whole_view_precision(with_lesion) if with_lesion.lesion is None else "float32",
    }


#: Which devices :func:`run_bench` times: ``auto`` is the CPU and, when present, the GPU.
BENCH_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def run_bench(
    n: int,
    model_dir: Path | str,
    *,
    seed: int = 0,
    segment: str = "auto",
    devices: str = "auto",
    precision: str | None = None,
) -> dict[str, Any]:
    """Benchmark on the CPU and, when present, the GPU.

    Args:
        n: Phantom cases (>= 1).
        model_dir: The model folder.
        seed: Phantom dataset seed.
        segment: How the segmenter covers a view (:data:`core.networks.inference.SEGMENT_MODES`).
        devices: One of :data:`BENCH_DEVICES`; ``cuda`` times the GPU alone and skips
            the CPU agreement checks (for a lent GPU machine, whose time is short).
        precision: The classifier's screening arithmetic on each device
            (:data:`core.networks.device.PRECISIONS`); None: ``$BONESCAN_PRECISION`` or ``auto``.

    Returns:
        ``{"cases", "torch_threads", "cpu", "cpu_native_bfloat16", "devices":
        [bench_device(...)], "agreement",
        "precision_agreement"}``; ``agreement`` is :func:`segment_agreement` on the same
        scans (absent for ``devices="cuda"``), ``precision_agreement`` is
        :func:`precision_agreement` (present when the CPU screened in another precision
        than float32).

    Raises:
        ValueError: If ``devices`` is unknown, or ``cuda`` when no GPU is present.
    """
    if devices not in BENCH_DEVICES:
        raise ValueError(f"devices must be one of {BENCH_DEVICES}, got {devices!r}")
    if devices == "cuda" and not torch.cuda.is_available():
        raise ValueError("devices='cuda' but no CUDA GPU is present")
    names = {
        "auto": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
        "cpu": ["cpu"],
        "cuda": ["cuda"],
    }[devices]
    report: dict[str, Any] = {
        "cases": n,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_native_bfloat16": native_bfloat16(),
    }
    with tempfile.TemporaryDirectory(prefix="bonescan-bench-") as tmp:
        files = write_phantom_dicoms(tmp, n, seed)
        report["devices"] = [
            bench_device(files, model_dir, d, segment=segment, precision=precision) for d in names
        ]
        if "cpu" in names:
            report["agreement"] = segment_agreement(files, model_dir)
            if any((Path(model_dir) / f"{n}.json").is_file() for n in (LESION, SCORER)):
                report["lesion_cost"] = lesion_cost(files, model_dir)
            cpu = report["devices"][0]["precision"]
            if cpu != "float32":
                report["precision_agreement"] = precision_agreement(files, model_dir, cpu)
    return report


def format_table(report: dict[str, Any]) -> str:
    """Return the benchmark as a text table: mean +- sd seconds per stage and device."""
    devices = report["devices"]
    lines = []
    if "cpu" in report:
        bf16 = "with" if report.get("cpu_native_bfloat16") else "without"
        lines.append(f"CPU: {report['cpu']}, {bf16} bfloat16 instructions")
    header = f"{'stage':16s}" + "".join(
        f"{(d['device'] + ', ' + d.get('precision', 'float32'))[:26]:>28s}" for d in devices
    )
    lines.append(header)
    for stage in (*STAGES, "total"):
        cells = "".join(
            f"{d['latency_s'][stage]['mean']:>17.3f} +- {d['latency_s'][stage]['sd']:6.3f}"
            for d in devices
        )
        lines.append(f"{stage:16s}{cells}")
    lines.append(
        f"{'batch scans/s':16s}"
        + "".join(f"{d.get('throughput_scans_per_s', float('nan')):>28.2f}" for d in devices)
    )
    lines.append(
        f"{'batch net s/scan':16s}"
        + "".join(f"{d.get('batch_network_s_per_scan', float('nan')):>28.4f}" for d in devices)
    )
    agreement = report.get("agreement")
    if agreement:
        lines.append(
            f"gated vs whole-view segmentation on {agreement['views']} views: "
            f"{agreement['pixels_differing']} of {agreement['pixels_labelled']} labelled "
            f"pixels differ; Dice metastasis {agreement['dice_metastasis']:.4f}, bladder "
            f"{agreement['dice_bladder']:.4f}; largest BSTBI difference "
            f"{agreement['max_bstbi_difference']:.5f}"
        )
    cost = report.get("lesion_cost")
    if cost:
        lines.append(
            f"calls without the classifier {cost['lesion_path_s']:.3f} s/scan "
            f"({cost.get('precision', 'float32')}) vs the two networks' bare forward pass "
            f"{cost['two_networks_bare_s']:.3f} s/scan (float32) on the CPU, same run "
            f"({cost['scans']} scans): ratio {cost['ratio']:.2f}"
        )
    screened = report.get("precision_agreement")
    if screened:
        worst = ", ".join(f"{k} {v:.4f}" for k, v in screened["max_probability_difference"].items())
        lines.append(
            f"{screened['precision']} screen + float32 decisions vs float32 on "
            f"{screened['scans']} scans: {screened['calls_differing']} calls and "
            f"{screened['pixels_differing']} mask pixels differ; largest probability "
            f"difference {worst}; crops run again in float32 per scan "
            f"{screened['confirmed_crops_per_scan']['mean']:.2f} (max "
            f"{screened['confirmed_crops_per_scan']['max']})"
        )
    return "\n".join(lines)
