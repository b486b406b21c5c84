"""Every command's arguments, without the code that runs them.

Each ``_add_<name>(subparsers)`` declares one command and records, with
``set_defaults(group=..., runner=...)``, the module that runs it and the name of its
runner there (``run_<runner>``): :func:`cli.main` imports only that module, so that
``--help`` and the store commands start without the imaging and network libraries.
This module therefore imports nothing heavier than :mod:`argparse` and the roles of
:mod:`core.auth`. To add a command, write its ``_add_`` function here, append it to
:data:`SUBCOMMANDS`, and write ``run_<name>(args) -> int`` in its group's module.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.auth import ROLES

_Subparsers = Any  # argparse's _SubParsersAction is private; typed loosely on purpose


#: Help of ``--model`` for the commands that otherwise run the store's version in use.
MODEL_HELP = "model folder (default: the store's version in use, else the shipped models/)"


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, help="SQLite file (default: $BONESCAN_DB or data/)")


def _add_info(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "info",
        help="read a scan (DICOM, PNG/JPEG export, or an ANT/POST pair) and describe it",
        description="Read a scan with the product's reader and print what it found.",
    )
    p.add_argument("file", type=Path, help="DICOM file or exported image (anterior, or both views)")
    p.add_argument("--posterior", type=Path, help="posterior view, when FILE is the anterior")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(group="cli.scans", runner="info")


def _add_init_db(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "init-db",
        help="create or migrate the SQLite store",
        description="Create the SQLite file if missing and apply pending schema migrations.",
    )
    _db_arg(p)
    p.set_defaults(group="cli.store", runner="init_db")


def _add_demo_cohort(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "demo-cohort",
        help="fill the store with the synthetic demo cohort (40 patients, about 110 scans)",
        description="Create the demo cohort of synthetic phantom patients, with their "
        "treatments, and store their scans. Each patient is stored whole or not at all.",
    )
    _db_arg(p)
    p.add_argument("--patients", type=int, default=None, help="number of patients (40)")
    p.add_argument("--seed", type=int, default=None, help="cohort seed (2021)")
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when the store holds any patient"
    )
    p.set_defaults(group="cli.data", runner="demo_cohort")


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
    p.add_argument(
        "--steps", type=int, help="classifier steps (default 3000; fine-tune: the time budget's)"
    )
    p.add_argument("--seg-steps", type=int, help="segmenter steps (default: --steps)")
    p.add_argument("--batch-size", type=int, help="crops per step (paper: 16; fine-tune: 8)")
    p.add_argument("--lr", type=float, help="Adam initial rate (paper: 0.01; fine-tune: 1e-4)")
    p.add_argument("--seg-crop-rows", type=int, help="segmenter crop rows (x 256; default 256)")
    p.add_argument(
        "--positive-share",
        type=float,
        help="share of classifier crops with lesions (default 0.5; fine-tune: 0.3)",
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
        help="fine-tune: start both networks from this model folder's weights, with the "
        "fine-tune defaults (core/networks/fine_tune.py: early encoder stages frozen, batch 8, "
        "lr 1e-4, hard negatives); options given explicitly win",
    )
    p.add_argument(
        "--hard-negative-share",
        type=float,
        help="share of negative classifier crops drawn by hardness (default 0; fine-tune 0.5)",
    )
    p.add_argument(
        "--scorer-epochs",
        type=int,
        help="fine-tune from a folder with a lesion scorer: epochs refitting it to the "
        "centre's marks (default 300; 0 copies it unchanged)",
    )
    p.add_argument(
        "--augment",
        choices=("standard", "transfer"),
        default="standard",
        help="augmentation: standard, or transfer (adds blur, 8-bit exports, stretch, labels)",
    )
    p.add_argument("--val-every", type=int, help="steps between validations (500; fine-tune 50)")
    p.add_argument("--val-cases", type=int, help="held-out scans to validate on (32; fine-tune 16)")
    p.add_argument(
        "--checkpoint-every", type=int, help="steps between checkpoints (250; fine-tune 25)"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--stop-after", type=int, help="stop with a checkpoint after this step")
    p.add_argument("--time-budget", type=float, help="seconds the loop may take; cuts steps to fit")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(group="cli.models", runner="train")


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
        "labels, bands, tight crops, heads at the top edge, clipped white displays, screens "
        "with spot views, single views with R/L markers as _ANT/_POST files; PNG and JPEG) "
        "under OUT/layouts",
    )
    p.add_argument(
        "--centre",
        default="training",
        help="the centre the cases come from (core.phantom.centres): training (default, the "
        "settings the models learn from) or second (an external centre: fewer counts, more "
        "blur, 2.5 x the benign findings, JPEG views, other patients)",
    )
    p.set_defaults(group="cli.data", runner="generate")


def _engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine (Ray needs: pip install -r requirements-scale.txt)")
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: read and run the networks on Ray "
        "workers, store from this process",
    )
    g.add_argument(
        "--address",
        help="with --engine ray: join this Ray cluster (HOST:PORT); default: a local Ray",
    )
    g.add_argument(
        "--workers", type=int, default=1, help="with --engine ray: network workers (default 1)"
    )
    g.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        help="with --engine ray: GPUs per network worker (default 0: CPU workers)",
    )
    g.add_argument(
        "--cpus-per-worker",
        type=float,
        default=1.0,
        help="with --engine ray: CPUs (torch threads) per network worker (default 1)",
    )


def _add_analyze(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse bone scans: quality, models, lesions, BSTBI, BSI; optionally store them",
        description="Analyse scans and print one line per scan (JSON with --json): quality, "
        "probabilities, BSTBI per image and per scan, hotspots, lesion area, the Bone Scan "
        "Index (bsi, percent of skeletal mass, and bsi_regions, each region's contribution; "
        "null when the scan is not diagnostic or no skeleton network read it), the lesions "
        "(region, side, region_source; their number in text), seconds (read "
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
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.add_argument("--device", help="cpu, cuda ... (default: GPU when available)")
    p.add_argument("--account", default="cli", help="account named in the audit log (cli)")
    p.add_argument(
        "--batch", type=int, default=4, help="with --engine ray: scans per network call (4)"
    )
    _engine_args(p)
    p.set_defaults(group="cli.scans", runner="analyze")


def _add_analyze_stored(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "analyze-stored",
        help="analyse the stored studies that have no analysis yet (e.g. the demo cohort)",
        description="Run the models on every stored study without an analysis and store "
        "each result in its own transaction (an interrupted run keeps what it finished; "
        "run it again to carry on).",
    )
    _db_arg(p)
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.add_argument("--device", help="cpu, cuda ... (default: GPU when available)")
    p.add_argument("--account", default="cli", help="account named in the audit log (cli)")
    p.add_argument("--batch", type=int, default=4, help="scans per network call (default 4)")
    p.add_argument("--limit", type=int, help="analyse at most this many studies")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--reanalyse",
        action="store_true",
        help="analyse every study without an analysis by the store's model in use (after a "
        "promotion); older analyses are kept",
    )
    _engine_args(p)
    p.set_defaults(group="cli.scans", runner="analyze_stored")


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
    p.set_defaults(group="cli.models", runner="bench")


def _add_evaluate(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure the networks and the classical baseline on a labelled dataset",
        description="Print the paper's Table 2 (overall and by age group), ROC AUC of "
        "metastasis and bladder and Dice of bladder, for the networks and for the classical "
        "baseline (core.evaluation.baseline), on a labelled dataset; optionally write them "
        "as JSON.",
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
    p.set_defaults(group="cli.models", runner="evaluate")


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
    p.set_defaults(group="cli.models", runner="calibrate")


def _add_user(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "user",
        help="manage accounts: add, remove, passwd, list, disable, enable",
        description="Manage the accounts that may sign in to the dashboard. The first "
        "account must be an admin: python -m core user add NAME --role admin",
    )
    actions = p.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("name", help="username: letters, digits or . _ @ -")
    add.add_argument("--role", required=True, choices=ROLES, help="what the account may do")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = actions.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    passwd = actions.add_parser("passwd", help="set an account's password")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    listing = actions.add_parser("list", help="list the accounts")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    for name, words in (("disable", "stop an account signing in"), ("enable", "allow it again")):
        toggle = actions.add_parser(name, help=words)
        toggle.add_argument("name")
    for action in actions.choices.values():
        _db_arg(action)
    p.set_defaults(group="cli.store", runner="user")


def _add_backup(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "backup",
        help="copy the store consistently while the dashboard runs",
        description="Copy the SQLite store with SQLite's online backup API (a consistent "
        "copy even while the dashboard writes), check it and print its row counts.",
    )
    p.add_argument("dest", type=Path, help="the copy's file, or a folder to put it in")
    p.add_argument("--force", action="store_true", help="overwrite DEST if it exists")
    _db_arg(p)
    p.set_defaults(group="cli.store", runner="backup")


def _add_restore(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "restore",
        help="replace the store with a backup (stop the dashboard first)",
        description="Check the backup (integrity_check), keep the current store as "
        "<store>.before-restore-<time>.sqlite, and copy the backup over the store. Stop "
        "the dashboard first.",
    )
    p.add_argument("src", type=Path, help="a backup made by 'backup'")
    _db_arg(p)
    p.set_defaults(group="cli.store", runner="restore")


def _add_pacs(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "pacs",
        help="pull NM studies from the PACS, or push a study's results to it (DICOMweb)",
        description="Exchange studies with the PACS over DICOMweb (QIDO-RS, WADO-RS, "
        "STOW-RS); its URL is $BONESCAN_PACS_DICOMWEB or dicomweb_url in the [pacs] table "
        "of $BONESCAN_PACS_CONFIG. 'pull' finds the NM studies of a patient or a date "
        "range, analyses and stores them; 'push' sends one stored study's results (two "
        "Secondary Captures and a structured report) into its study on the PACS.",
    )
    actions = p.add_subparsers(dest="pacs_action", metavar="ACTION", required=True)
    pull = actions.add_parser("pull", help="find NM studies on the PACS, analyse and store them")
    which = pull.add_mutually_exclusive_group(required=True)
    which.add_argument("--patient", metavar="ID", help="the PACS's PatientID")
    which.add_argument("--since", metavar="DATE", help="first study date, YYYY-MM-DD")
    pull.add_argument("--until", metavar="DATE", help="last study date, YYYY-MM-DD (with --since)")
    pull.add_argument("--model", type=Path, help=MODEL_HELP)
    pull.add_argument("--device", help="cpu, cuda ... (default: GPU when available)")
    pull.add_argument("--yes", action="store_true", help="import every study found, no question")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    push = actions.add_parser("push", help="send a stored study's results to the PACS")
    push.add_argument("--study", type=int, required=True, metavar="STUDY_ID", help="stored study")
    for action in actions.choices.values():
        _db_arg(action)
        action.add_argument("--account", default="cli", help="account named in the audit log (cli)")
    p.set_defaults(group="cli.pacs", runner="pacs")


def _add_listen(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "listen",
        help="receive NM studies as a DICOM Storage SCP, analyse and store them",
        description="Listen for C-STORE associations from the AE titles allowed in the "
        "settings ($BONESCAN_PACS_ALLOWED_AE), analyse each whole-body scan received and "
        "store it; runs until interrupted.",
    )
    p.add_argument("--port", type=int, help="port to listen on (default: the settings', 11112)")
    p.add_argument("--ae-title", help="our AE title (default: the settings', BONESCAN)")
    _db_arg(p)
    p.add_argument("--model", type=Path, help=MODEL_HELP)
    p.set_defaults(group="cli.pacs", runner="listen")


def _add_models(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "models",
        help="model versions: list them, promote one into use, roll back",
        description="The model versions the store knows (the shipped folder, each "
        "fine-tuned candidate) and the one in use: every process of the store (dashboard, "
        "listener, analyze without --model) switches at its next analysis. Promoting and "
        "rolling back need an admin account in a store with accounts.",
    )
    actions = p.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    actions.add_parser("list", help="list the versions; * marks the one in use")
    promote = actions.add_parser("promote", help="put a registered version in use")
    promote.add_argument("version", help="the version, as 'models list' prints it")
    actions.add_parser("rollback", help="go back to the version in use before the current one")
    for action in actions.choices.values():
        _db_arg(action)
        action.add_argument(
            "--account",
            default=os.environ.get("USER") or "cli",
            help="account named in the audit log (default: $USER, else cli)",
        )
    p.set_defaults(group="cli.versions", runner="models")


def _add_jobs(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "jobs",
        help="list the background jobs (fine-tune, re-analyse), run or cancel one",
        description="The Model lab page's background jobs: 'list' prints the latest; "
        "'run JOB_ID' runs a queued or running job in this process (what the page "
        "launches, and launches again after a restart; it resumes where it stopped); "
        "'cancel JOB_ID' ends one and stops its process.",
    )
    actions = p.add_subparsers(dest="jobs_action", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run a queued or running job (internal)")
    run.add_argument("job_id", type=int, metavar="JOB_ID")
    listing = actions.add_parser("list", help="list the latest jobs")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    cancel = actions.add_parser(
        "cancel",
        help="cancel a queued or running job (its process is stopped; the model in use stays)",
    )
    cancel.add_argument("job_id", type=int, metavar="JOB_ID")
    cancel.add_argument("--account", default="cli", help="account named in the audit log (cli)")
    for action in actions.choices.values():
        _db_arg(action)
    p.set_defaults(group="cli.jobs", runner="jobs")


def _add_dataset(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "dataset",
        help="export the centre's reviewed studies as a labelled dataset with a patient split",
        description="Write the studies marked reviewed on the review page in the labelled "
        "dataset format (cases.csv, view images with the physicians' masks as LabelMe "
        "polygons, the physicians' scan labels) with split.csv: patients split by the paper's "
        "7-level rule into train, calibration and test (20 % of each level to test, then "
        "20 % of the rest to calibration). Patients appear by pseudonym only.",
    )
    actions = p.add_subparsers(dest="dataset_action", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the reviewed studies to a new folder")
    export.add_argument(
        "--reviewed", type=Path, required=True, metavar="OUT", help="new or empty folder"
    )
    export.add_argument("--split-seed", type=int, default=0, help="patient split seed (0)")
    _db_arg(export)
    p.set_defaults(group="cli.dataset", runner="dataset")


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
    _add_models,
    _add_user,
    _add_backup,
    _add_restore,
    _add_pacs,
    _add_listen,
    _add_jobs,
    _add_dataset,
]
