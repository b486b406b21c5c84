"""Analyse scans past one machine: Ray reads and runs the networks, the driver stores.

:func:`analyze_stored_ray` analyses the stored studies without an analysis (or, to
re-analyse with the version in use, without an analysis by that version), and
:func:`analyze_files_ray` the scans of files, with Ray Data: the items are spread
over a pool of actors, each loading the models once, that read their batch (stored
studies through their own read connection: SQLite serves readers from several
processes) and run :func:`core.analysis.analyze` on it, on the actor's GPU when Ray
gave it one, else on its CPU. Results stream back to the calling process, the one
writer of the store: each study is stored in its own transaction by
:func:`workflow.ingest.store_stored_result`, the function the plain path uses, so an
interrupted run keeps what it stored and the next one, recomputing what is pending
from the store, repeats nothing.

Ray is optional (``requirements-scale.txt``): without it :data:`ray` is None and
:func:`ray_available` says so; the commands then print :data:`INSTALL_HINT`.

On a cluster every node needs the repository, its environment, the model folder and,
for stored studies, the store at the same paths: workers import this package from
the driver's repository root and open the files by their absolute paths. Workers only
read stored scans, which never change, so a node may hold a copy of the store taken
before the run (SQLite's WAL is unsafe on a network file system).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from core.analysis import AnalysisResult, analyze
from core.networks.models import load_models
from core.reading.readers import read_scan
from core.scan import ScanReadError
from db.connection import open_db
from db.queries import stored_scan, studies_without_analysis, studies_without_analysis_by
from workflow.ingest import store_stored_result

try:
    import ray
    import ray.data
except ImportError:  # optional dependency: requirements-scale.txt
    ray = None  # type: ignore[assignment]

#: What to tell someone who asked for the Ray engine without Ray installed.
INSTALL_HINT = (
    "the Ray engine needs Ray, which is not installed: "
    "pip install -r requirements-scale.txt (or scripts/setup.sh requirements-scale.txt)"
)

#: The repository root, put on the workers' import path.
_ROOT = Path(__file__).resolve().parent.parent

Batch = dict[str, np.ndarray]


class RayUnavailableError(RuntimeError):
    """Ray is not installed (see :data:`INSTALL_HINT`)."""


def ray_available() -> bool:
    """Say whether Ray (with Ray Data) can be imported here."""
    return ray is not None


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Use the running Ray, or join ``address``, or start a local Ray; leave it as found.

    Args:
        address: A cluster's ``HOST:PORT`` (or ``auto``); a local Ray when None.
        num_cpus: CPUs of a local Ray (all when None); ignored with ``address``.

    Raises:
        RayUnavailableError: If Ray is not installed.
        ValueError: If ``num_cpus`` < 1.
    """
    if ray is None:
        raise RayUnavailableError(INSTALL_HINT)
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"num_cpus must be >= 1, got {num_cpus}")
    if ray.is_initialized():
        yield
        return
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(
        address=address,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        yield
    finally:
        ray.shutdown()


def _objects(items: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _pickled(items: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = [pickle.dumps(i, protocol=pickle.HIGHEST_PROTOCOL) for i in items]
    return out


def _read_stored(batch: Batch, db_file: str) -> Batch:
    """Rebuild the batch's stored studies as scans (in a network worker)."""
    with open_db(db_file) as db:
        scans = [stored_scan(db, int(i)) for i in batch["key"]]
    return {"key": batch["key"], "scan": _objects(scans), "error": np.array([""] * len(scans))}


def _read_files(batch: Batch) -> Batch:
    """Read the batch's scan files (in a network worker); an unreadable one carries its error."""
    scans: list[Any] = []
    errors: list[str] = []
    for anterior, posterior in zip(batch["anterior"], batch["posterior"], strict=True):
        try:
            scans.append(
                read_scan(Path(anterior), posterior=Path(posterior) if posterior else None)
            )
            errors.append("")
        except (ScanReadError, OSError) as exc:
            scans.append(None)
            errors.append(str(exc) or type(exc).__name__)
    return {"key": batch["key"], "scan": _objects(scans), "error": np.array(errors)}


class _Analyser:
    """Ray actor: loads the models once, then reads and analyses batches of scans.

    Reading runs in the actor, on its CPUs, rather than in separate tasks: a worker
    given every CPU of its node would otherwise leave none for the read tasks.
    """

    def __init__(
        self, model_dir: str, device: str | None, read: Callable[..., Batch], read_kwargs: dict
    ) -> None:
        if device is None:
            device = "cuda" if ray is not None and ray.get_gpu_ids() else "cpu"
        self.models = load_models(model_dir, device=device)
        self.read = read
        self.read_kwargs = read_kwargs

    def __call__(self, batch: Batch) -> Batch:
        read = self.read(batch, **self.read_kwargs)
        scans = read["scan"]
        ok = [i for i, s in enumerate(scans) if s is not None]
        results: list[AnalysisResult | None] = [None] * len(scans)
        for i, result in zip(ok, analyze([scans[i] for i in ok], self.models), strict=True):
            results[i] = result
        return {"key": batch["key"], "result": _pickled(results), "error": read["error"]}


def _analysed(
    items: list[dict[str, Any]],
    read: Callable[..., Batch],
    read_kwargs: dict[str, Any],
    *,
    model_dir: Path,
    device: str | None,
    batch: int,
    workers: int,
    gpus_per_worker: float,
    cpus_per_worker: float,
) -> Iterator[tuple[int, AnalysisResult | None, str]]:
    """Yield ``(key, result or None, error)`` per item, as the actors finish them."""
    if ray is None:
        raise RayUnavailableError(INSTALL_HINT)
    if not items:
        return
    # The caller shows progress; Ray Data's own bars and plan logs would interleave.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    blocks = max(1, min(len(items), math.ceil(len(items) / batch)))
    ds: ray.data.Dataset = ray.data.from_items(items, override_num_blocks=blocks)
    ds = ds.map_batches(
        _Analyser,
        fn_constructor_kwargs={
            "model_dir": str(model_dir.resolve()),
            "device": device,
            "read": read,
            "read_kwargs": read_kwargs,
        },
        batch_size=batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_gpus=gpus_per_worker,
        num_cpus=cpus_per_worker,
    )
    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for key, blob, error in zip(out["key"], out["result"], out["error"], strict=True):
            yield int(key), pickle.loads(blob), str(error)


def _check_pool(batch: int, workers: int, gpus_per_worker: float, cpus_per_worker: float) -> None:
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus_per_worker must be >= 0, got {gpus_per_worker}")
    if cpus_per_worker <= 0:
        raise ValueError(f"cpus_per_worker must be > 0, got {cpus_per_worker}")


def analyze_stored_ray(
    db_file: Path,
    model_dir: Path,
    *,
    account: str,
    address: str | None = None,
    num_cpus: int | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    device: str | None = None,
    batch: int = 4,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    version: str | None = None,
) -> list[int]:
    """Analyse the stored studies without an analysis on Ray; store each here, one by one.

    What is pending is read from the store when called, and each result is stored in
    its own transaction unless the study got an analysis meanwhile, so a restarted run
    carries on where an interrupted one stopped and stores nothing twice. With
    ``version`` (re-analysis with the version in use, ``analyze-stored --reanalyse``)
    the pending studies are those without an analysis *by that version*; their older
    analyses are kept.

    Args:
        db_file: The store (SQLite file), readable at this path by every worker.
        model_dir: The model folder, readable at this path by every worker.
        account: Who (or which process) analyses, for the audit log (not empty).
        address: A Ray cluster to join (``HOST:PORT``); a local Ray when None. A Ray
            already started in this process is used as it is.
        num_cpus: CPUs of a local Ray (all when None).
        workers: Actors running the networks (>= 1), each loading the models once.
        gpus_per_worker: GPUs Ray gives each actor (0: CPU actors).
        cpus_per_worker: CPUs Ray gives each actor (> 0; also its torch threads).
        device: Where the actors run the models; their GPU when Ray gave them one,
            else the CPU, when None.
        batch: Scans per read task and per network call (>= 1).
        limit: Analyse at most this many studies (all when None).
        progress: Called with (done, total) after each block of results is stored.
        version: Re-analyse for this version: ``model_dir`` must hold it
            (:func:`workflow.ingest.store_stored_result` refuses a result
            made by another). None: only studies without any analysis.

    Returns:
        The new analysis ids.

    Raises:
        RayUnavailableError: If Ray is not installed.
        ValueError: If ``account`` or ``version`` is empty, a count is out of range, or
            ``model_dir`` does not hold ``version``.
    """
    if not account.strip():
        raise ValueError("account must not be empty")
    if version is not None and not version.strip():
        raise ValueError("version must not be empty (None: analyse unanalysed studies)")
    _check_pool(batch, workers, gpus_per_worker, cpus_per_worker)
    if ray is None:
        raise RayUnavailableError(INSTALL_HINT)
    db_file = Path(db_file).resolve()
    done: list[int] = []
    with open_db(db_file) as db:
        if version is None:
            pending = studies_without_analysis(db, limit)
        else:
            pending = studies_without_analysis_by(db, version, limit)
        if not pending:
            return done
        items = [{"key": i} for i in pending]
        count = 0
        with ray_session(address, num_cpus):
            results = _analysed(
                items, _read_stored, {"db_file": str(db_file)}, model_dir=Path(model_dir),
                device=device, batch=batch, workers=workers, gpus_per_worker=gpus_per_worker,
                cpus_per_worker=cpus_per_worker,
            )  # fmt: skip
            for study_id, result, error in results:
                if result is None:
                    raise RuntimeError(f"study {study_id} could not be analysed: {error}")
                analysis_id = store_stored_result(
                    db, study_id, result, account=account, version=version
                )
                if analysis_id is not None:
                    done.append(analysis_id)
                count += 1
                if progress is not None:
                    progress(count, len(pending))
    return done


def analyze_files_ray(
    jobs: Sequence[tuple[str, Sequence[Path]]],
    model_dir: Path,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    device: str | None = None,
    batch: int = 4,
) -> Iterator[tuple[int, AnalysisResult | None, str]]:
    """Read and analyse scan files on Ray; yield each result here as it arrives.

    Args:
        jobs: ``(case name, files)`` per scan: one file, or an anterior/posterior pair;
            readable at these paths by every worker.
        model_dir: The model folder, readable at this path by every worker.
        address: As :func:`analyze_stored_ray`.
        num_cpus: As :func:`analyze_stored_ray`.
        workers: As :func:`analyze_stored_ray`.
        gpus_per_worker: As :func:`analyze_stored_ray`.
        cpus_per_worker: As :func:`analyze_stored_ray`.
        device: As :func:`analyze_stored_ray`.
        batch: As :func:`analyze_stored_ray`.

    Yields:
        ``(index into jobs, result, "")``, or ``(index, None, error)`` for a scan that
        could not be read; in the order they finish.

    Raises:
        RayUnavailableError: If Ray is not installed.
        ValueError: If a job has no file or more than two, or a count is out of range.
    """
    _check_pool(batch, workers, gpus_per_worker, cpus_per_worker)
    if ray is None:
        raise RayUnavailableError(INSTALL_HINT)
    items = []
    for i, (case, files) in enumerate(jobs):
        if not 1 <= len(files) <= 2:
            raise ValueError(f"jobs[{i}] ({case}) must name one or two files, got {len(files)}")
        posterior = str(Path(files[1]).resolve()) if len(files) > 1 else ""
        items.append({"key": i, "anterior": str(Path(files[0]).resolve()), "posterior": posterior})
    with ray_session(address, num_cpus):
        yield from _analysed(
            items, _read_files, {}, model_dir=Path(model_dir), device=device, batch=batch,
            workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
        )  # fmt: skip
