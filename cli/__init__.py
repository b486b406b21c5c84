"""The command line: ``python -m core COMMAND ...``.

Each command is a pair of functions: ``_add_<name>(subparsers)`` declares its
arguments and ``_cmd_<name>(args) -> int`` runs it. Heavy imports (torch, pydicom)
happen inside the command so that ``--help`` stays instant. To add a command,
write the pair and append the ``_add_`` function to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.admin import ADMIN_SUBCOMMANDS

if TYPE_CHECKING:
    from core.analysis import AnalysisResult

_Subparsers = Any  # argparse's _SubParsersAction is private; typed loosely on purpose


def _add_info(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "info",
        help="read a scan (DICOM, PNG/JPEG export, or an ANT/POST pair) and describe it",
        description="Read a scan with the product's reader and print what it found.",
    )
    p.add_argument("file", type=Path, help="DICOM file or exported image (anterior, or both views)")
    p.add_argument("--posterior", type=Path, help="posterior view, when FILE is the anterior")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from core.reading.readers import read_scan
    from core.scan import ScanReadError

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


def _add_init_db(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "init-db",
        help="create or migrate the SQLite store",
        description="Create the SQLite file if missing and apply pending schema migrations.",
    )
    p.add_argument("--db", type=Path, help="SQLite file (default: $BONESCAN_DB or data/)")
    p.set_defaults(func=_cmd_init_db)


def _cmd_init_db(args: argparse.Namespace) -> int:
    from core.config import db_path
    from db.connection import open_db

    path = args.db or db_path()
    with open_db(path) as db:
        tables = sorted(t for t in db.table_names() if not t.startswith("_"))
    print(f"{path}: schema up to date; tables: {', '.join(tables)}")
    return 0


def _add_train(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "train",
        help="train the classifier and the segmenter on a labelled dataset",
        description="Train both networks (ResNet34 crop classifier, FlexibleUNet segmenter) "
        "on a labelled dataset with the paper's 7-level patient split, and write the model "
        "folder (fp16 safetensors + JSON cards with the weights' sha256).",
    )
    p.add_argument(
        "dataset", type=Path, nargs="+", help="labelled dataset folder(s) (cases.csv, images, JSON)"
    )
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--workers", type=int, default=1, help="processes reading the dataset")
    p.add_argument("--steps", type=int, default=3000, help="classifier steps (default 3000)")
    p.add_argument("--seg-steps", type=int, help="segmenter steps (default: --steps)")
    p.add_argument("--batch-size", type=int, default=16, help="crops per step (paper: 16)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam initial rate (paper: 0.01)")
    p.add_argument("--seg-crop-rows", type=int, default=256, help="segmenter crop rows (x 256)")
    p.add_argument(
        "--positive-share", type=float, default=0.5, help="share of classifier crops with lesions"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of init, sampling, augmentation")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the patient split")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: GPU when available)")
    p.add_argument(
        "--no-amp",
        action="store_true",
        help="no bfloat16 mixed precision (used on CUDA and on CPUs with native bfloat16)",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="DIR",
        help="fine-tune: start both networks from this model folder's weights",
    )
    p.add_argument(
        "--hard-negative-share",
        type=float,
        default=0.0,
        help="share of negative classifier crops drawn by hardness (e.g. 0.5; default 0)",
    )
    p.add_argument(
        "--augment",
        choices=("standard", "transfer"),
        default="standard",
        help="augmentation: standard, or transfer (adds blur, 8-bit exports, stretch, labels)",
    )
    p.add_argument("--val-every", type=int, default=500, help="steps between validations")
    p.add_argument("--val-cases", type=int, default=32, help="held-out scans to validate on")
    p.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--stop-after", type=int, help="stop with a checkpoint after this step")
    p.add_argument("--time-budget", type=float, help="seconds the loop may take; cuts steps to fit")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from core.networks.augment import AUGMENTATION_PRESETS
    from core.networks.models import SegmenterConfig
    from core.networks.train import TrainOptions, train_from_folder

    try:
        opts = TrainOptions(
            segmenter=SegmenterConfig(train_crop=(args.seg_crop_rows, 256)),
            steps=args.steps,
            seg_steps=args.seg_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            positive_share=args.positive_share,
            seed=args.seed,
            split_seed=args.split_seed,
            device=args.device,
            amp=not args.no_amp,
            val_every=args.val_every,
            val_cases=args.val_cases,
            checkpoint_every=args.checkpoint_every,
            keep_checkpoint=args.keep_checkpoint,
            time_budget_s=args.time_budget,
            progress=not args.quiet,
            init_from=str(args.init_from) if args.init_from else None,
            hard_negative_share=args.hard_negative_share,
            augment=AUGMENTATION_PRESETS[args.augment],
        )
        result = train_from_folder(
            args.dataset,
            args.out,
            opts,
            resume=args.resume,
            stop_after=args.stop_after,
            workers=args.workers,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = "finished" if result.finished else "stopped (resume with --resume)"
    figures = " ".join(f"{k}={v:.3f}" for k, v in result.validation.items())
    print(f"{result.out_dir}: {state} at step {result.step} in {result.seconds:.0f} s; {figures}")
    return 0


def _add_generate(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "generate",
        help="write a synthetic (phantom) labelled dataset with DICOM and truth files",
        description="Generate synthetic whole-body bone scans drawn like the paper's cohort "
        "and write them as a labelled dataset: cases.csv, view images with LabelMe polygons, "
        "a two-frame DICOM NM file and a truth JSON per case. Case i is the same for any N.",
    )
    p.add_argument("out", type=Path, help="output dataset folder (created if missing)")
    p.add_argument("--cases", type=int, default=100, help="cases, or patients with --longitudinal")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--longitudinal", action="store_true", help="each patient a series of 2-6 scans")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--layouts",
        action="store_true",
        help="also write each case as workstations export it (side-by-side pairs, borders, "
        "labels, tight crops, screens with spot views; PNG and JPEG) under OUT/layouts",
    )
    p.set_defaults(func=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    import time

    from core.phantom.export import generate_dataset

    start = time.perf_counter()
    try:
        path = generate_dataset(
            args.out,
            args.cases,
            args.seed,
            longitudinal=args.longitudinal,
            jobs=args.jobs,
            layouts=args.layouts,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    with path.open(encoding="utf-8") as handle:
        rows = sum(1 for _ in handle) - 1
    unit = "patients" if args.longitudinal else "cases"
    print(f"{path}: {rows} scans ({args.cases} {unit}, seed {args.seed}) in {seconds:.1f} s")
    return 0


def _add_demo_cohort(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "demo-cohort",
        help="fill the store with the synthetic demo cohort (40 patients, about 110 scans)",
        description="Create the demo cohort of synthetic phantom patients, with their "
        "treatments, and store their scans. Each patient is stored whole or not at all.",
    )
    p.add_argument("--db", type=Path, help="SQLite file (default: $BONESCAN_DB or data/)")
    p.add_argument("--patients", type=int, default=None, help="number of patients (40)")
    p.add_argument("--seed", type=int, default=None, help="cohort seed (2021)")
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when the store holds any patient"
    )
    p.set_defaults(func=_cmd_demo_cohort)


def _cmd_demo_cohort(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.config import db_path
    from core.phantom.demo_cohort import (
        DEMO_PATIENTS,
        DEMO_SEED,
        DEMO_SETUP_ACCOUNT,
        case_sha256,
        demo_cohort,
    )
    from core.phantom.generate import to_scan
    from db.connection import open_db
    from db.queries import patient_id_by_pseudonym, store_summary
    from db.store import add_patient, add_treatment, store_study

    path = args.db or db_path()
    n = args.patients or DEMO_PATIENTS
    with open_db(path) as db:
        if args.if_empty and store_summary(db).patients:
            print(f"{path}: the store already holds patients; demo cohort not added")
            return 0
        if args.if_empty and db["accounts"].count:
            # a store with accounts is a department's: it gets no demo data unasked
            print(f"{path}: the store has accounts; demo cohort not added")
            return 0
        studies = added = 0
        for patient in tqdm(demo_cohort(n, args.seed or DEMO_SEED), total=n, unit="patient",
                            desc="demo cohort"):  # fmt: skip
            if patient_id_by_pseudonym(db, patient.pseudonym) is not None:
                continue  # stored by an earlier run
            info = patient.cases[0].patient
            with db.atomic():  # one patient, its scans and treatments: all or nothing
                pid = add_patient(
                    db,
                    pseudonym=patient.pseudonym,
                    name=f"Synthetic patient {patient.pseudonym[5:]}",
                    external_id=info.patient_id,
                    sex=info.sex,
                    birth_year=info.birth_year,
                    primary_tumour=info.primary,
                    synthetic=True,
                    account=DEMO_SETUP_ACCOUNT,
                )
                for case in patient.cases:
                    store_study(
                        db,
                        patient_id=pid,
                        scan=to_scan(case),
                        source_name=f"{case.case_id}.dcm",
                        source_sha256=case_sha256(case),
                        injection_delay_h=case.injection_delay_h,
                        account=DEMO_SETUP_ACCOUNT,
                    )
                    studies += 1
                added += 1
                for t in patient.treatments:
                    add_treatment(db, patient_id=pid, agent=t.agent, start=t.start, end=t.end,
                                  dose=t.dose, account=DEMO_SETUP_ACCOUNT)  # fmt: skip
    print(f"{path}: stored {added} synthetic patients with {studies} studies")
    return 0


def _add_analyze(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse bone scans: quality, models, lesions, BSTBI; optionally store them",
        description="Analyse scans and print one line per scan (JSON with --json): quality, "
        "probabilities, BSTBI per image and per scan, hotspots, lesion area, seconds (read "
        "to result, model loading excluded) and device. Inputs: files (one scan each), an "
        "--anterior/--posterior pair, or a folder (a labelled dataset with cases.csv, else "
        "every *.dcm in it). With --db each scan is stored with its analysis; the patient "
        "is the file's PatientID, pseudonymised (P-<hash>), or a new patient per file "
        "(F-<hash>) when the file has none. Unreadable files are reported on stderr and "
        "skipped (exit 2 at the end).",
    )
    p.add_argument("inputs", type=Path, nargs="*", help="scan files, or a dataset folder")
    p.add_argument("--anterior", type=Path, help="anterior view file (with --posterior)")
    p.add_argument("--posterior", type=Path, help="posterior view file (with --anterior)")
    p.add_argument("--db", type=Path, help="store scans and analyses in this SQLite file")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--masks", type=Path, help="write <case>_<ANT|POST>_mask.png label masks here")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped models/)")
    p.add_argument("--device", help="cpu, cuda ... (default: GPU when available)")
    p.add_argument("--account", default="cli", help="account named in the audit log (cli)")
    p.set_defaults(func=_cmd_analyze)


def _analyze_jobs(args: argparse.Namespace) -> list[tuple[str, list[Path]]]:
    """Return (case name, files of one scan) for every scan the arguments name."""
    from core.reading.dataset import read_dataset

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
        A JSON-able dict: file, quality, probabilities, the call (None when the gate
        refused the scan), BSTBI and its 4 images, hotspots, lesion area, seconds,
        device, and the reader's notes when there are any.
    """
    line: dict[str, Any] = {
        "file": " + ".join(str(f) for f in files),
        "quality": "ok" if result.quality.ok else result.quality.reason,
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
        "seconds": round(result.seconds, 3),
        "device": result.device,
    }
    if result.notes:
        line["notes"] = list(result.notes)
    return line


def _cmd_analyze(args: argparse.Namespace) -> int:
    import contextlib
    import time

    import numpy as np
    from PIL import Image

    from core.analysis import analyze
    from core.config import VIEWS
    from core.config import model_dir as default_model_dir
    from core.networks.models import ModelFileError, load_models
    from core.reading.readers import read_scan
    from core.scan import ScanReadError
    from db.connection import open_db
    from workflow.ingest import ingest

    try:
        jobs = _analyze_jobs(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model_dir = args.model or default_model_dir()
    try:
        models = load_models(model_dir, device=args.device)
    except ModelFileError as exc:
        print(
            f"error: no usable model in {model_dir} ({exc}).\nThe shipped models live in "
            "models/ of the repository; or train a model with `python -m core generate DATA "
            "--cases 2000` and "
            f"`python -m core train DATA --out {model_dir}`, or pass --model DIR.",
            file=sys.stderr,
        )
        return 2
    if args.masks:
        args.masks.mkdir(parents=True, exist_ok=True)
    failed = False
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(open_db(args.db)) if args.db else None
        for case, files in jobs:
            start = time.perf_counter()
            try:
                contents = [(f.name, f.read_bytes()) for f in files]
                scan = read_scan(files[0], posterior=files[1] if len(files) > 1 else None)
            except (ScanReadError, OSError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed = True
                continue
            (result,) = analyze([scan], models, read_seconds=[time.perf_counter() - start])
            line = analysis_line(files, result)
            if db is not None:
                stored = ingest(
                    db, contents, models=models, account=args.account, scan=scan, result=result
                )
                line.update(study_id=stored.study_id, analysis_id=stored.analysis_id,
                            stored=stored.created)  # fmt: skip
            if args.masks:
                for view in VIEWS:
                    if view in result.masks:
                        mask = np.ascontiguousarray(result.masks[view], dtype=np.uint8)
                        Image.fromarray(mask).save(args.masks / f"{case}_{view}_mask.png")
            if args.json:
                print(json.dumps(line), flush=True)
            else:
                print("  ".join(f"{k}={v}" for k, v in line.items()), flush=True)
    return 2 if failed else 0


def _add_analyze_stored(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "analyze-stored",
        help="analyse the stored studies that have no analysis yet (e.g. the demo cohort)",
        description="Run the models on every stored study without an analysis and store "
        "each result in its own transaction (an interrupted run keeps what it finished; "
        "run it again to carry on).",
    )
    p.add_argument("--db", type=Path, help="SQLite file (default: $BONESCAN_DB or data/)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped models/)")
    p.add_argument("--device", help="cpu, cuda ... (default: GPU when available)")
    p.add_argument("--account", default="cli", help="account named in the audit log (cli)")
    p.add_argument("--batch", type=int, default=4, help="scans per network call (default 4)")
    p.add_argument("--limit", type=int, help="analyse at most this many studies")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_analyze_stored)


def _cmd_analyze_stored(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.config import db_path
    from core.config import model_dir as default_model_dir
    from core.networks.models import ModelFileError, load_models
    from db.connection import open_db
    from db.queries import studies_without_analysis
    from workflow.ingest import analyze_stored

    model_dir = args.model or default_model_dir()
    try:
        models = load_models(model_dir, device=args.device)
    except ModelFileError as exc:
        print(f"error: no usable model in {model_dir} ({exc})", file=sys.stderr)
        return 2
    path = args.db or db_path()
    with open_db(path) as db:
        total = len(studies_without_analysis(db, args.limit))
        with tqdm(total=total, unit="study", desc="analysing", disable=args.quiet) as bar:

            def advance(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            try:
                ids = analyze_stored(
                    db, models, account=args.account, batch=args.batch, limit=args.limit,
                    progress=advance,
                )  # fmt: skip
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    print(f"{path}: analysed {len(ids)} stored studies")
    return 0


def _add_bench(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "bench",
        help="time the pipeline from DICOM file to stored result, per stage, CPU and GPU",
        description="Write N phantom scans as DICOM files in a temporary folder and time, "
        "per case, read, quality, display, classify, segment, lesions/burden and store "
        "(one warm-up case not counted), and the throughput of one batch; on the CPU and, "
        "where present, the GPU. Prints a table and writes JSON.",
    )
    p.add_argument("--cases", type=int, default=20, help="phantom scans (default 20)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped models/)")
    p.add_argument(
        "--untrained",
        action="store_true",
        help="time untrained models saved to a temporary folder (no shipped model needed)",
    )
    p.add_argument("--json", type=Path, help="JSON output (default: data/bench.json)")
    p.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    p.add_argument(
        "--segment",
        choices=("auto", "full", "gated"),
        default="auto",
        help="segmenter coverage: whole views, only the rows the classifier opened, or auto "
        "(gated on the CPU, whole views on a GPU)",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="devices to time: auto (the CPU and, when present, the GPU), cpu, or cuda "
        "(the GPU alone, without the CPU agreement check)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16", "float16"),  # core.networks.device.PRECISIONS
        help="classifier screening arithmetic (default: $BONESCAN_PRECISION or auto: "
        "bfloat16 on a CPU with bfloat16 instructions, float16 on a GPU, else float32); "
        "decisions are float32's",
    )
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    import tempfile

    from core.config import data_dir
    from core.config import model_dir as default_model_dir
    from core.networks.models import ModelFileError
    from workflow.speed_bench import format_table, run_bench, write_untrained_models

    if args.cases < 1:
        print("error: --cases must be >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bonescan-untrained-") as tmp:
        model_dir = args.model or default_model_dir()
        if args.untrained:
            model_dir = write_untrained_models(tmp)
            print("untrained models (random weights): timings only, outputs meaningless")
        try:
            report = run_bench(
                args.cases,
                model_dir,
                seed=args.seed,
                segment=args.segment,
                devices=args.device,
                precision=args.precision,
            )
        except ModelFileError as exc:
            print(
                f"error: no usable model in {model_dir} ({exc}); train one with "
                "`python -m core train DATA --out models`, or add --untrained",
                file=sys.stderr,
            )
            return 2
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    report["untrained"] = bool(args.untrained)
    out = args.json or data_dir() / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_table(report))
    print(f"{out}: written ({args.cases} cases; seconds per case, mean +- sd)")
    return 0


def _add_evaluate(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure the networks and the classical baseline on a labelled dataset",
        description="Print the paper's Table 2 (overall and by age group), ROC AUC of "
        "metastasis and bladder and Dice of bladder, for the networks and for the classical "
        "baseline (core.evaluation.baseline), on a labelled dataset; optionally write them as JSON.",
    )
    p.add_argument("dataset", type=Path, help="labelled dataset folder (cases.csv, images, JSON)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped models/)")
    p.add_argument("--json", type=Path, help="write the figures to this JSON file")
    p.add_argument("--limit", type=int, help="evaluate only the first N cases")
    p.add_argument("--batch", type=int, default=8, help="scans per network call (default 8)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: GPU when available)")
    p.add_argument(
        "--update-card",
        action="store_true",
        help="store the overall figures in the model folder's JSON cards",
    )
    p.add_argument(
        "--baseline-only", action="store_true", help="run only the classical baseline (no model)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from core.config import model_dir as default_model_dir
    from core.evaluation.evaluate import describe_dataset, evaluate_dataset, format_report
    from core.networks.models import (
        CLASSIFIER,
        SEGMENTER,
        LoadedModels,
        ModelFileError,
        load_models,
        update_card,
    )
    from core.scan import ScanReadError

    if args.baseline_only and args.update_card:
        print("error: --update-card needs the networks, not --baseline-only", file=sys.stderr)
        return 2
    model_dir = args.model or default_model_dir()
    models: LoadedModels | None = None
    try:
        if not args.baseline_only:
            models = load_models(model_dir, args.device)
        evaluation = evaluate_dataset(
            args.dataset, models, limit=args.limit, batch=args.batch, progress=not args.quiet
        )
    except (ModelFileError, ScanReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = evaluation.to_json()
    print(format_report(evaluation, title=f"{args.dataset}: {evaluation.n_cases} scans"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    if args.update_card:
        command = ["python -m core evaluate", str(args.dataset), "--model", str(model_dir)]
        if args.limit is not None:
            command += ["--limit", str(args.limit)]
        metrics = {
            "dataset": describe_dataset(args.dataset, evaluation),
            "command": " ".join(command),
            "device": evaluation.device,
            **report,
        }
        for name in (CLASSIFIER, SEGMENTER):
            update_card(model_dir, name, metrics=metrics)
        print(f"figures stored in the cards of {model_dir}")
    return 0


def _add_calibrate(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "calibrate",
        help="choose the classifier's scan-level metastasis threshold on a held-aside set",
        description="Compute each scan's metastasis probability (the maximum over its "
        "crops) on a labelled dataset that neither training nor testing uses, print "
        "sensitivity and specificity at the paper's 0.5 and at the threshold with the "
        "largest Youden index, and with --write store that threshold in the classifier "
        "card (it then decides the scan's call and opens the segmentation gate).",
    )
    p.add_argument("dataset", type=Path, help="labelled dataset folder (not the test set)")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped models/)")
    p.add_argument("--cases", type=int, help="only the first N cases")
    p.add_argument("--write", action="store_true", help="store the threshold in the card")
    p.add_argument("--json", type=Path, help="write the per-scan probabilities and the choice")
    p.set_defaults(func=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np
    from tqdm import tqdm

    from core.config import model_dir as default_model_dir
    from core.networks.calibrate import apply_calibration, choose_threshold, rates_at, scan_scores
    from core.networks.models import ModelFileError, load_models
    from core.scan import ScanReadError

    model_dir = args.model or default_model_dir()
    try:
        models = load_models(model_dir, device="cpu")
        with tqdm(unit="scan", desc="calibrate") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            ids, truth, scores = scan_scores(models, args.dataset, args.cases, progress=progress)
        choice = choose_threshold(truth, scores)
    except (ModelFileError, ScanReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    y, s = np.asarray(truth), np.asarray(scores)
    current = models.classifier_config.thresholds()["metastasis"]
    for label, t in (("paper's 0.5", 0.5), ("card's now", current)):
        at = rates_at(y, s, t)
        print(
            f"{label:12s} threshold {t:.4f}: sensitivity {at.sensitivity:.3f}, "
            f"specificity {at.specificity:.3f}"
        )
    print(
        f"{'Youden best':12s} threshold {choice.threshold:.4f}: sensitivity "
        f"{choice.sensitivity:.3f}, specificity {choice.specificity:.3f} "
        f"({len(ids)} scans, {int(y.sum())} with metastasis)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "choice": dataclasses.asdict(choice),
                    "scans": [
                        {"case": c, "metastasis": t, "probability": p}
                        for c, t, p in zip(ids, truth, scores, strict=True)
                    ],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    if args.write:
        command = f"python -m core calibrate {args.dataset} --model {model_dir} --write"
        if args.cases is not None:
            command += f" --cases {args.cases}"
        apply_calibration(
            model_dir,
            choice,
            dataset=str(args.dataset),
            n_cases=len(ids),
            n_positive=int(y.sum()),
            command=command,
        )
        print(f"metastasis threshold {choice.threshold:.4f} stored in {model_dir}/classifier.json")
    return 0


#: Every command's ``_add_`` function, in the order ``--help`` lists them.
SUBCOMMANDS: list[Callable[[_Subparsers], None]] = [
    _add_info,
    _add_init_db,
    _add_demo_cohort,
    _add_train,
    _add_generate,
    _add_analyze,
    _add_analyze_stored,
    _add_bench,
    _add_evaluate,
    _add_calibrate,
    *ADMIN_SUBCOMMANDS,  # user, backup, restore (cli/admin.py)
]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Bone-scan tumour-burden tools (Liu et al. 2021): read, generate, "
        "train, evaluate and analyse whole-body bone scans.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status: 0 on success, 2 on bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)
