"""Scan commands: ``info`` (read and describe), ``analyze`` (files) and ``analyze-stored``.

``analyze`` and ``analyze-stored`` run in this process, or with ``--engine ray`` on Ray
workers (:mod:`workflow.ray_engine`) while this process prints and stores.

Which model: ``--model DIR`` when given; else the store's version in use
(:func:`workflow.model_versions.active_model_dir`: the promoted one, or the shipped
folder while nothing was promoted) when the store exists; else the shipped folder
(:func:`core.config.model_dir`). ``analyze-stored --reanalyse`` analyses every stored
study that has no analysis by the version in use, keeping the older analyses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.analysis import AnalysisResult, Lesion, analyze, model_identity
from core.config import VIEWS, db_path
from core.config import model_dir as default_model_dir
from core.networks.models import LoadedModels, ModelFileError, load_models
from core.reading.dataset import read_dataset
from core.reading.readers import read_scan
from core.scan import Scan, ScanReadError
from db.connection import open_db
from db.model_registry import get_model
from db.queries import studies_without_analysis, studies_without_analysis_by
from workflow.ingest import analyze_stored, ingest
from workflow.model_versions import active_model_dir, check_identity
from workflow.ray_engine import (
    INSTALL_HINT,
    RayUnavailableError,
    analyze_files_ray,
    analyze_stored_ray,
    ray_available,
)


def run_info(args: argparse.Namespace) -> int:
    """Read one scan and print what the reader found (text, or one JSON object)."""
    try:
        scan = read_scan(args.file, posterior=args.posterior)
    except ScanReadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = scan.meta
    out: dict[str, Any] = {
        "files": list(meta.source_files),
        "format": meta.source_format,
        "views": {
            name: {
                "shape": list(arr.shape),
                "total_counts": round(float(arr.sum()), 1),
                "max_counts": round(float(arr.max()), 2),
            }
            for name, arr in scan.views.items()
        },
        "polarity": meta.polarity,
        "pixel_spacing_mm": list(meta.pixel_spacing_mm) if meta.pixel_spacing_mm else None,
        "sex": meta.sex,
        "age": meta.age,
        "study_date": meta.study_date.isoformat() if meta.study_date else None,
        "manufacturer": meta.manufacturer,
        "notes": list(meta.notes),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:17s} {value}")
    return 0


def _analyze_jobs(args: argparse.Namespace) -> list[tuple[str, list[Path]]]:
    """Return (case name, files of one scan) for every scan the arguments name."""
    jobs: list[tuple[str, list[Path]]] = []
    if args.anterior or args.posterior:
        if not (args.anterior and args.posterior):
            raise ValueError("--anterior and --posterior go together")
        jobs.append((args.anterior.stem, [args.anterior, args.posterior]))
    for path in args.inputs:
        if path.is_dir() and (path / "cases.csv").is_file():
            for case in read_dataset(path):
                files = [case.dicom] if case.dicom else [case.anterior, case.posterior]
                jobs.append((case.case_id, files))
        elif path.is_dir():
            jobs.extend((f.stem, [f]) for f in sorted(path.rglob("*.dcm")))
        else:
            jobs.append((path.stem, [path]))
    if not jobs:
        raise ValueError("no scan given: name files, a folder, or --anterior and --posterior")
    return jobs


def analysis_line(files: Sequence[Path], result: AnalysisResult) -> dict[str, Any]:
    """Return the JSON record ``analyze --json`` prints for one analysed scan.

    Args:
        files: The file(s) the scan was read from.
        result: The analysis.

    Returns:
        A JSON-able dict: file, quality, the gate's cautions on a scan that passed
        (``quality_cautions``, a list of sentences, empty when none), probabilities, the
        call (None when the gate refused the scan), BSTBI and its 4 images, hotspots,
        lesion area, the Bone Scan Index (``bsi``, percent of skeletal mass) and
        ``bsi_regions`` (``{region: percent it contributes}``, involved regions only),
        both None when the gate refused the scan, no skeleton map was read or the
        patient is younger than 18 (a note says why),
        ``lesions`` (one dict per lesion with its ``region``, ``side`` and
        ``region_source``), seconds, device, and the reader's notes when there are any.
    """
    line: dict[str, Any] = {
        "file": " + ".join(str(f) for f in files),
        "quality": "ok" if result.quality.ok else result.quality.reason,
        "quality_cautions": list(result.quality.cautions),
        "metastasis_probability": round(result.probabilities["metastasis"], 4),
        "bladder_probability": round(result.probabilities["bladder"], 4),
        # the model's call, like the burden, only for a diagnostic scan
        "metastasis": bool(result.positives["metastasis"]) if result.reliable else None,
        "bstbi": None if result.bstbi is None else round(result.bstbi, 4),
        "bstbi_images": None
        if result.bstbi_images is None
        else {f"{v}_{lvl}": round(b, 4) for (v, lvl), b in result.bstbi_images.items()},
        "hotspots": result.hotspots,
        "lesion_area_cm2": None
        if result.lesion_area_cm2 is None
        else round(result.lesion_area_cm2, 2),
        # the BSI, like the burden, only for a diagnostic scan with a readable skeleton
        "bsi": None if result.bsi is None else round(result.bsi, 4),
        "bsi_regions": None
        if result.bsi is None
        else {region: round(p, 4) for region, p in result.bsi_regions.items()},
        "lesions": [_lesion_json(les) for les in result.lesions],
        "seconds": round(result.seconds, 3),
        "device": result.device,
    }
    if result.notes:
        line["notes"] = list(result.notes)
    return line


def _lesion_json(lesion: Lesion) -> dict[str, Any]:
    """One lesion of :func:`analysis_line`: where it is, how large, how hot."""
    return {
        "view": lesion.view,
        "component": lesion.component,
        "region": lesion.region,
        # "" (a region from body proportions has no side) is written as null
        "side": lesion.side or None,
        "region_source": lesion.region_source,
        "area_px": lesion.area_px,
        "area_cm2": round(lesion.area_cm2, 2),
        "uptake_ratio": None if lesion.uptake_ratio is None else round(lesion.uptake_ratio, 3),
        "centroid_row": round(lesion.centroid_row, 1),
        "centroid_col": round(lesion.centroid_col, 1),
    }


def _text_line(line: dict[str, Any]) -> str:
    """``analyze``'s text line: ``key=value`` pairs, the lesions as their number."""
    shown = {**line, "lesions": len(line["lesions"])}
    return "  ".join(f"{k}={v}" for k, v in shown.items())


def _write_masks(folder: Path, case: str, result: AnalysisResult) -> None:
    """Write each view's label mask as ``<case>_<view>_mask.png`` in ``folder``."""
    for view in VIEWS:
        if view in result.masks:
            mask = np.ascontiguousarray(result.masks[view], dtype=np.uint8)
            Image.fromarray(mask).save(folder / f"{case}_{view}_mask.png")


def _load_chosen_models(
    args: argparse.Namespace, *, device: str | None, store: Path | None, writes: bool
) -> LoadedModels:
    """Load the models a scan command runs: ``--model``, else the store's version in use.

    Args:
        args: The command's arguments (``model``).
        device: Where to load them.
        store: The store whose version in use is run; None (or a file that does not
            exist, when nothing will be written): the shipped folder.
        writes: Whether the command stores analyses there; a store only read is not
            written (the shipped folder is not registered).

    Raises:
        ModelFileError: If the folder is unusable, or holds another version than the
            store registered.
    """
    if args.model is not None:
        return load_models(args.model, device=device)
    if store is None or not (writes or store.is_file()):
        return load_models(default_model_dir(), device=device)
    with open_db(store) as db:
        version, folder = active_model_dir(db, register_shipped=writes)
        registered = get_model(db, version)
    models = load_models(folder, device=device)
    check_identity(models, version, None if registered is None else registered["weights_sha256"])
    return models


def _load_models_or_explain(args: argparse.Namespace) -> LoadedModels | None:
    """The models ``analyze`` runs, or None after telling on stderr how to get some."""
    try:
        store = Path(args.db) if args.db else db_path()
        return _load_chosen_models(args, device=args.device, store=store, writes=bool(args.db))
    except ModelFileError as exc:
        model_dir = args.model or default_model_dir()
        print(
            f"error: no usable model in {model_dir} ({exc}).\nThe shipped models live in "
            "models/ of the repository; or train a model with `python -m core generate DATA "
            "--cases 2000` and "
            f"`python -m core train DATA --out {model_dir}`, or pass --model DIR.",
            file=sys.stderr,
        )
        return None


def _ray_missing(args: argparse.Namespace) -> bool:
    """Say whether Ray was asked for but is not installed, after telling how to get it."""
    if args.engine == "ray" and not ray_available():
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return True
    return False


def _ray_pool(args: argparse.Namespace) -> dict[str, Any]:
    """The Ray engine's keyword arguments that the command line sets."""
    return {
        "address": args.address,
        "workers": args.workers,
        "gpus_per_worker": args.gpus_per_worker,
        "cpus_per_worker": args.cpus_per_worker,
        "device": args.device,
        "batch": args.batch,
    }


def _analyze_results(
    args: argparse.Namespace, jobs: Sequence[tuple[str, list[Path]]], models: LoadedModels
) -> Iterator[tuple[int, Scan | None, AnalysisResult | None, str]]:
    """Yield ``(job index, scan or None, result or None, error)`` per job, on the engine asked.

    The Ray engine yields no scan (ingest reads the files again) and yields in the order
    the workers finish.
    """
    if args.engine == "ray":
        assert models.directory is not None  # load_models always records it
        for index, result, error in analyze_files_ray(jobs, models.directory, **_ray_pool(args)):
            yield index, None, result, error
        return
    for index, (_case, files) in enumerate(jobs):
        start = time.perf_counter()
        try:
            scan = read_scan(files[0], posterior=files[1] if len(files) > 1 else None)
        except (ScanReadError, OSError) as exc:
            yield index, None, None, str(exc)
            continue
        (result,) = analyze([scan], models, read_seconds=[time.perf_counter() - start])
        yield index, scan, result, ""


def run_analyze(args: argparse.Namespace) -> int:
    """Analyse each scan named, print one line per scan, and store or write masks on request.

    An unreadable file is reported on stderr and skipped; the exit status is then 2.
    """
    if _ray_missing(args):
        return 2
    try:
        jobs = _analyze_jobs(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models = _load_models_or_explain(args)
    if models is None:
        return 2
    if args.masks:
        args.masks.mkdir(parents=True, exist_ok=True)
    failed = False
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(open_db(args.db)) if args.db else None
        for index, scan, result, error in _analyze_results(args, jobs, models):
            case, files = jobs[index]
            try:
                contents = [(f.name, f.read_bytes()) for f in files] if db is not None else []
            except OSError as exc:
                error = str(exc)
            if result is None or error:
                print(f"error: {error}", file=sys.stderr)
                failed = True
                continue
            line = analysis_line(files, result)
            if db is not None:
                stored = ingest(
                    db, contents, models=models, account=args.account, scan=scan, result=result
                )
                line.update(study_id=stored.study_id, analysis_id=stored.analysis_id,
                            stored=stored.created)  # fmt: skip
            if args.masks:
                _write_masks(args.masks, case, result)
            if args.json:
                print(json.dumps(line), flush=True)
            else:
                print(_text_line(line), flush=True)
    return 2 if failed else 0


def run_analyze_stored(args: argparse.Namespace) -> int:
    """Analyse the stored studies without an analysis, each in its own transaction.

    With ``--reanalyse``: those without an analysis by the store's version in use.
    """
    if _ray_missing(args):
        return 2
    if args.reanalyse and args.model is not None:
        print(
            "error: --reanalyse analyses with the store's version in use; promote a version "
            "first (python -m core models promote VERSION) instead of passing --model",
            file=sys.stderr,
        )
        return 2
    path = args.db or db_path()
    try:
        # With Ray the workers load their own; loading here too finds a bad folder
        # before any worker starts.
        device = "cpu" if args.engine == "ray" else args.device
        models = _load_chosen_models(args, device=device, store=Path(path), writes=True)
    except ModelFileError as exc:
        print(f"error: no usable model in {args.model or 'the store'} ({exc})", file=sys.stderr)
        return 2
    assert models.directory is not None  # load_models always records it
    model_dir, version = models.directory, model_identity(models)[0]
    with open_db(path) as db:
        if args.reanalyse:
            total = len(studies_without_analysis_by(db, version, args.limit))
        else:
            total = len(studies_without_analysis(db, args.limit))
        with tqdm(total=total, unit="study", desc="analysing", disable=args.quiet) as bar:

            def advance(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            try:
                if args.engine == "ray":
                    ids = analyze_stored_ray(
                        path, model_dir, account=args.account, limit=args.limit,
                        progress=advance, version=version if args.reanalyse else None,
                        **_ray_pool(args),
                    )  # fmt: skip
                else:
                    ids = analyze_stored(
                        db, models, account=args.account, batch=args.batch, limit=args.limit,
                        progress=advance, reanalyse=args.reanalyse,
                    )  # fmt: skip
            except (ValueError, RayUnavailableError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    if args.reanalyse:
        print(f"{path}: re-analysed {len(ids)} stored studies with {version}")
    else:
        print(f"{path}: analysed {len(ids)} stored studies")
    return 0
