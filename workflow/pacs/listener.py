"""The DICOM Storage SCP: receive NM bone scans from the PACS or a camera, analyse, store.

:func:`serve` starts a pynetdicom Storage SCP (C-STORE for NM Image Storage and
Secondary Capture, C-ECHO for verification). Every other SOP class is refused at
association, and an association whose calling AE title is not in
:attr:`PacsSettings.allowed_ae` is rejected (rejected-permanent, calling AE title not
recognised), so an empty allow-list is refused when starting.

The network threads only check and spool: a received instance whose Modality is NM is
written to a spool folder and queued, and the sender gets success as soon as it is on
disk; any other
Modality gets a failure status (``0xA900`` data set does not match the SOP class for
an NM Image Storage instance, ``0xC000`` for a Secondary Capture of another modality).
Analysis runs on one worker thread, which loads the models once and opens its own store
connection. The spool is on disk, so a burst is queued rather than dropped and
instances received but not yet analysed when the process stops are analysed after the
next start.

Which model: the store's version in use (:class:`workflow.model_versions.ActiveModels`),
looked up before each study is analysed and loaded again only when it changed, so a
promotion or rollback takes effect at the next study; the study being analysed keeps
the models it started with, and a version that cannot be loaded leaves the listener on
the models it holds (logged). A fixed folder (``--model DIR``) or models passed in are
used as they are.

The worker pairs two single-frame views of one series (anterior and posterior, keyed by
calling AE title and SeriesInstanceUID): the first waits for its partner; a lone view
is quarantined after ``pair_timeout`` seconds. A scan is analysed and stored through
:func:`workflow.ingest.ingest` with ``source_ae`` the calling AE title; an instance
stored before is logged as already stored. A scan that fails the quality gate is
stored with its verdict and no burden, as an upload is, so that it shows on the
patient's page as not diagnostic (and a warning is logged). An instance the reader
refuses, or whose analysis or storing raises, is moved to
:attr:`PacsSettings.quarantine_dir` with ``<name>.reason.txt`` beside it, and the
listener carries on. Logs name the patient by pseudonym, never
by name or ID.

Access: the listener writes as ``account`` (default ``pacs-listener``). In a store with
accounts, :func:`db.access.require_role` lets only an enabled clinician or admin
upload, so an admin must create that account first
(``python -m core user add pacs-listener --role clinician``); :func:`serve` checks this
when starting and raises :class:`core.auth.AccessDenied` otherwise (an account
disabled later sends each instance to the quarantine, with that reason). In a store
without accounts (demo mode, batch use) every write is allowed.

TLS: when :attr:`PacsSettings.uses_tls`, associations are wrapped in TLS with our
certificate and key; with :attr:`PacsSettings.tls_ca` set, the peer must present a
certificate chaining to that CA (mutual TLS), otherwise peers are identified by their
AE title only.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import shutil
import ssl
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from sqlite_utils import Database

from core.analysis import analyze, model_identity, pseudonym_for
from core.networks.models import load_models
from core.reading.dicom import NM_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE
from core.reading.uploaded import read_uploaded, sha256_of
from db.access import require_role
from db.connection import open_db
from db.model_registry import active_version
from db.queries import study_by_source
from workflow.ingest import ingest
from workflow.model_versions import ActiveModels

if TYPE_CHECKING:
    from pynetdicom.events import Event
    from pynetdicom.transport import ThreadedAssociationServer

    from core.networks.models import LoadedModels
    from workflow.pacs.settings import PacsSettings

log = logging.getLogger(__name__)

#: SOP classes whose instances are accepted.
STORAGE_CLASSES: tuple[str, ...] = (NM_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE)
#: The Verification SOP class (C-ECHO).
VERIFICATION = "1.2.840.10008.1.1"
#: C-STORE status: success.
STATUS_SUCCESS = 0x0000
#: C-STORE status: the spool could not be written (refused, out of resources).
STATUS_OUT_OF_RESOURCES = 0xA700
#: C-STORE status: an NM Image Storage instance whose Modality is not NM.
STATUS_NOT_NM_CLASS = 0xA900
#: C-STORE status: refused for another reason (not NM, or a caller not allowed).
STATUS_REFUSED = 0xC000
#: C-STORE status: the data set cannot be decoded.
STATUS_CANNOT_UNDERSTAND = 0xC210
#: Default seconds a single-frame view waits for the other view of its series.
PAIR_TIMEOUT_S = 60.0
#: Default account the listener writes as.
DEFAULT_ACCOUNT = "pacs-listener"

_UID = re.compile(r"^[0-9.]{1,64}$")


@dataclass(frozen=True)
class _Item:
    """A spooled instance: its file and what the handler read from its header."""

    path: Path
    calling_ae: str
    sop_uid: str
    series_uid: str
    frames: int

    @property
    def name(self) -> str:
        """The file name given to the reader and stored as the study's source."""
        return f"{self.sop_uid or self.path.stem}.dcm"


def _failure(status: int, comment: str) -> Dataset:
    out = Dataset()
    out.Status = status
    out.ErrorComment = comment[:64]  # LO: at most 64 characters
    return out


def tls_context(settings: PacsSettings) -> ssl.SSLContext:
    """Build the server-side TLS context of ``settings``.

    Args:
        settings: With ``tls_cert`` and ``tls_key`` set; ``tls_ca`` makes client
            certificates required.

    Returns:
        The context for :meth:`pynetdicom.AE.start_server`.

    Raises:
        ValueError: If ``settings`` has no certificate.
        OSError, ssl.SSLError: If a PEM file cannot be read.
    """
    if settings.tls_cert is None or settings.tls_key is None:
        raise ValueError("settings must name tls_cert and tls_key for TLS")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_ca is not None:
        context.load_verify_locations(cafile=settings.tls_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Listener:
    """A running Storage SCP with its analysis worker (:func:`serve` starts one).

    Attributes:
        settings: The node's settings.
        db_path: The store the worker writes to.
        spool_dir: Received instances waiting for analysis.
        account: The account the worker writes as.
        port: The port listened on.
    """

    def __init__(
        self,
        settings: PacsSettings,
        *,
        db_path: Path,
        models: LoadedModels,
        account: str,
        spool_dir: Path,
        pair_timeout: float,
        active: ActiveModels | None = None,
    ) -> None:
        self.settings = settings
        self.db_path = db_path
        self.spool_dir = spool_dir
        self.account = account
        self.port = settings.listen_port
        self._models = models
        # None: ``models`` for good (a fixed folder); else follow the store's version
        self._active = active
        self._failed_version: str | None = None
        self._pair_timeout = pair_timeout
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._held: dict[tuple[str, str], tuple[_Item, float]] = {}
        self._idle = threading.Condition()
        self._outstanding = 0
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._worker_error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="pacs-listener-worker")
        self._server: ThreadedAssociationServer | None = None

    # -- network side -------------------------------------------------------------------

    def _start(self, host: str) -> None:
        ae = AE(ae_title=self.settings.ae_title)
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class)
        ae.add_supported_context(VERIFICATION)
        ae.require_calling_aet = list(self.settings.allowed_ae)
        context = tls_context(self.settings) if self.settings.uses_tls else None
        self._requeue_spool()
        server = ae.start_server(
            (host, self.settings.listen_port),
            block=False,
            ssl_context=context,
            evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
        )
        if server is None:  # only a blocking start returns None
            raise RuntimeError("the Storage SCP did not start")
        self._server = server
        self._worker.start()
        self.port = int(server.server_address[1])
        log.info(
            "listening as %s on %s:%d%s; accepting %s",
            self.settings.ae_title,
            host,
            self.port,
            " (TLS)" if context else "",
            ", ".join(self.settings.allowed_ae),
        )

    def _on_store(self, event: Event) -> int | Dataset:
        """Check and spool one received instance; analysis happens on the worker."""
        calling = str(event.assoc.requestor.ae_title).strip()
        if not self.settings.may_send(calling):
            return _failure(STATUS_REFUSED, f"calling AE {calling} is not allowed")
        try:
            ds = event.dataset
            modality = str(ds.get("Modality", "") or "").strip().upper()
            sop_uid = str(ds.get("SOPInstanceUID", "") or "").strip()
            series_uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except Exception as exc:  # pydicom raises many kinds on a damaged data set
            log.warning("from %s: an instance that cannot be decoded (%s)", calling, exc)
            return _failure(STATUS_CANNOT_UNDERSTAND, "the data set cannot be decoded")
        if modality != "NM":
            what = modality or "none"
            log.info("from %s: refused an instance of Modality %s", calling, what)
            status = (
                STATUS_NOT_NM_CLASS
                if str(event.request.AffectedSOPClassUID) == NM_IMAGE_STORAGE
                else STATUS_REFUSED
            )
            return _failure(status, f"Modality {what} is not NM; only bone scans")
        stem = uuid.uuid4().hex
        item = _Item(
            self.spool_dir / f"{stem}.dcm",
            calling,
            sop_uid if _UID.match(sop_uid) else "",
            series_uid,
            frames,
        )
        try:
            self._spool(item, event.encoded_dataset(include_meta=True))
        except OSError as exc:
            log.error("cannot write the spool %s: %s", self.spool_dir, exc)
            for suffix in (".part", ".json"):
                item.path.with_suffix(suffix).unlink(missing_ok=True)
            return _failure(STATUS_OUT_OF_RESOURCES, "cannot spool the instance")
        self._enqueue(item)
        return STATUS_SUCCESS

    def _spool(self, item: _Item, data: bytes) -> None:
        # The header first, then the instance renamed into place: a .dcm in the spool
        # is always complete and has its header.
        header = {
            "calling_ae": item.calling_ae,
            "sop_instance_uid": item.sop_uid,
            "series_instance_uid": item.series_uid,
            "frames": item.frames,
        }
        item.path.with_suffix(".json").write_text(json.dumps(header), encoding="utf-8")
        part = item.path.with_suffix(".part")
        part.write_bytes(data)
        os.replace(part, item.path)

    def _requeue_spool(self) -> None:
        """Queue what an earlier run received but did not finish, oldest first."""
        for part in self.spool_dir.glob("*.part"):
            part.unlink(missing_ok=True)  # never acknowledged: the sender saw a failure
        for header in self.spool_dir.glob("*.json"):
            if not header.with_suffix(".dcm").exists():
                header.unlink(missing_ok=True)  # its instance never arrived whole
        found = sorted(self.spool_dir.glob("*.dcm"), key=lambda p: p.stat().st_mtime)
        for path in found:
            try:
                header = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
                item = _Item(
                    path,
                    str(header["calling_ae"]),
                    str(header["sop_instance_uid"]),
                    str(header["series_instance_uid"]),
                    int(header["frames"]),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._quarantine(
                    [_Item(path, "", "", "", 1)], f"the spool header is unreadable ({exc})"
                )
                continue
            self._enqueue(item)
        if found:
            log.info("re-queued %d instance(s) from the spool %s", len(found), self.spool_dir)

    def _enqueue(self, item: _Item) -> None:
        with self._idle:
            self._outstanding += 1
        self._queue.put(item)

    # -- worker side --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            with open_db(self.db_path) as db:
                while not self._stopping.is_set():
                    try:
                        item = self._queue.get(timeout=self._wait_s())
                    except queue.Empty:
                        item = None
                    if item is not None:
                        try:
                            self._take(db, item)
                        except Exception:  # e.g. the store stayed locked: keep serving
                            log.exception("from %s: left in the spool", item.calling_ae)
                        finally:
                            with self._idle:
                                self._outstanding -= 1
                                self._idle.notify_all()
                    self._expire_held()
        except BaseException as exc:  # the store cannot be opened: stop and say so
            self._worker_error = exc
            log.exception("the listener's worker stopped")
        finally:
            with self._idle:
                self._idle.notify_all()

    def _wait_s(self) -> float:
        if not self._held:
            return 1.0
        soonest = min(deadline for _, deadline in self._held.values())
        return min(1.0, max(0.0, soonest - time.monotonic()))

    def _take(self, db: Database, item: _Item) -> None:
        if not item.path.exists():
            return  # handled already, e.g. the same instance queued twice
        if item.frames > 1 or not item.series_uid:
            self._process(db, [item])
            return
        # By SOP Instance UID alone (no file hash matches ""): a view of a pair stored
        # before must not wait for a partner that will not come again.
        if item.sop_uid and study_by_source(db, "", [item.sop_uid]) is not None:
            log.info("from %s: instance already stored", item.calling_ae)
            self._remove([item])
            return
        key = (item.calling_ae, item.series_uid)
        held = self._held.pop(key, None)
        if held is None or held[0].sop_uid == item.sop_uid:
            if held is not None:
                self._remove([held[0]])  # the same view sent again: keep the newer copy
            self._held[key] = (item, time.monotonic() + self._pair_timeout)
            return
        self._process(db, [held[0], item])

    def _expire_held(self) -> None:
        now = time.monotonic()
        for key, (item, deadline) in list(self._held.items()):
            if deadline <= now:
                del self._held[key]
                self._quarantine(
                    [item],
                    f"a single view whose partner (series {item.series_uid}) did not arrive "
                    f"within {self._pair_timeout:g} s; a whole-body scan needs the anterior "
                    "and the posterior view",
                )

    @property
    def model_version(self) -> str:
        """The version of the models the next study would be analysed with, if unchanged."""
        return model_identity(self._models)[0]

    def _current_models(self, db: Database) -> LoadedModels:
        """The models for the next study: the store's version in use when followed."""
        if self._active is None:
            return self._models
        held = self.model_version
        try:
            self._models = self._active.get(db)
        except Exception as exc:  # an unusable folder must not stop the node
            wanted = active_version(db)
            if wanted != self._failed_version:
                log.error("cannot load the model version in use %s (%s); analysing with %s",
                          wanted, exc, held)  # fmt: skip
                self._failed_version = wanted
            return self._models
        self._failed_version = None
        if self.model_version != held:
            log.info("model version in use changed: %s -> %s", held, self.model_version)
        return self._models

    def _process(self, db: Database, items: Sequence[_Item]) -> None:
        calling = items[0].calling_ae
        try:
            files = [(item.name, item.path.read_bytes()) for item in items]
            digest = sha256_of(files)
            start = time.perf_counter()
            scan = read_uploaded(files)
            read_s = time.perf_counter() - start
            pseudonym = pseudonym_for(scan.meta.patient_id, digest)
            uids = [uid for _, uid in scan.meta.instances]
            found = study_by_source(db, digest, uids)
            if found is not None and found[1] is not None:
                log.info(
                    "from %s: already stored (study %d, patient %s)", calling, found[0], pseudonym
                )
                self._remove(items)
                return
            # one models object for the whole study: a switch lands at the next one
            models = self._current_models(db)
            (result,) = analyze([scan], models, read_seconds=[read_s])
            done = ingest(
                db,
                files,
                models=models,
                account=self.account,
                scan=scan,
                read_seconds=read_s,
                result=result,
                source_ae=calling,
            )
        except Exception as exc:  # refused by the reader or the store, or a failure
            self._quarantine(items, f"{type(exc).__name__}: {exc}")
            return
        if done.created and not result.quality.ok:
            # Stored as an upload would be: with its verdict, its burden not reported,
            # so that a physician sees what arrived and why it is not read.
            log.warning(
                "from %s: stored study %d (patient %s), not diagnostic: %s",
                calling,
                done.study_id,
                pseudonym,
                result.quality.reason,
            )
        elif done.created:
            positive = result.positives.get("metastasis")
            log.info(
                "from %s: stored study %d (patient %s): BSTBI %s, metastasis %s",
                calling,
                done.study_id,
                pseudonym,
                "n/a" if result.bstbi is None else f"{result.bstbi:.4f}",
                "positive" if positive else "negative",
            )
        else:
            log.info(
                "from %s: already stored (study %d, patient %s)", calling, done.study_id, pseudonym
            )
        self._remove(items)

    def _remove(self, items: Sequence[_Item]) -> None:
        for item in items:
            item.path.unlink(missing_ok=True)
            item.path.with_suffix(".json").unlink(missing_ok=True)

    def _quarantine(self, items: Sequence[_Item], reason: str) -> None:
        folder = self.settings.quarantine_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for item in items:
                target = folder / item.name
                n = 1
                while target.exists():
                    target = folder / f"{Path(item.name).stem}-{n}.dcm"
                    n += 1
                shutil.move(item.path, target)
                note = f"{reason}\ncalling AE: {item.calling_ae or 'unknown'}\n"
                target.with_name(target.name + ".reason.txt").write_text(note, encoding="utf-8")
                item.path.with_suffix(".json").unlink(missing_ok=True)
                log.warning("quarantined %s: %s", target, reason)
        except OSError as exc:
            log.error("cannot quarantine in %s (%s); kept in the spool", folder, exc)

    # -- control ------------------------------------------------------------------------

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued instance is handled (a view held for its partner is).

        Args:
            timeout: Seconds to wait at most; None waits for as long as it takes.

        Returns:
            True when idle, False on timeout or when the worker has stopped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._outstanding > 0:
                if not self._worker.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(0.5 if left is None else min(left, 0.5))
        return True

    @property
    def held_views(self) -> int:
        """Single-frame views waiting for their partner."""
        return len(self._held)

    def stop(self) -> None:
        """Stop listening, let the worker finish its current instance, and return.

        Instances still queued or held stay in the spool and are analysed after the
        next start.
        """
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stopping.set()
        self._queue.put(None)
        if self._worker.is_alive():
            self._worker.join()
        self._stopped.set()
        log.info("listener stopped")

    def block(self) -> None:
        """Wait until :meth:`stop` is called or the process is interrupted (then stop)."""
        try:
            while not self._stopped.wait(0.5):
                if not self._worker.is_alive():
                    self.stop()
                    if self._worker_error is not None:
                        raise RuntimeError("the listener's worker stopped") from (
                            self._worker_error
                        )
        except KeyboardInterrupt:
            self.stop()


def serve(
    settings: PacsSettings,
    *,
    db_path: Path,
    model_dir: Path | None = None,
    account: str = DEFAULT_ACCOUNT,
    block: bool = True,
    host: str = "0.0.0.0",
    spool_dir: Path | None = None,
    pair_timeout: float = PAIR_TIMEOUT_S,
    models: LoadedModels | None = None,
) -> Listener:
    """Start the Storage SCP and its analysis worker.

    Args:
        settings: AE title, port, allow-list, quarantine folder and TLS files.
        db_path: The store to write to.
        model_dir: A fixed model folder (loaded once, on the GPU when there is one);
            None: the store's version in use, followed study by study (see the module
            docstring).
        account: The account the listener writes as (see the module docstring).
        block: Serve until interrupted (then stop cleanly) before returning; when
            False, return the running listener at once.
        host: The interface to listen on.
        spool_dir: Where received instances wait; ``pacs-spool`` beside the store
            when None. What it holds is queued again at start.
        pair_timeout: Seconds a single-frame view waits for its partner (> 0).
        models: Models already loaded, used for good (``model_dir`` is then not read).

    Returns:
        The :class:`Listener` (stopped when ``block``).

    Raises:
        ValueError: If ``settings.allowed_ae`` is empty, ``account`` is empty or
            ``pair_timeout`` <= 0; :class:`core.networks.models.ModelFileError` for
            unusable models.
        core.auth.AccessDenied: If the store has accounts and ``account`` may not upload.
        OSError: If the port cannot be bound or a TLS file cannot be read.
    """
    if not settings.allowed_ae:
        raise ValueError(
            "settings.allowed_ae is empty, so no node could send: name the calling AE "
            "titles to accept (BONESCAN_PACS_ALLOWED_AE)"
        )
    if not account.strip():
        raise ValueError("account must not be empty")
    if not pair_timeout > 0:
        raise ValueError(f"pair_timeout must be > 0, got {pair_timeout!r}")
    db_path = Path(db_path)
    active = None
    with open_db(db_path) as db:
        require_role(db, account, "upload")
        if models is not None:
            loaded = models
        elif model_dir is not None:
            loaded = load_models(model_dir)
        else:
            active = ActiveModels()
            loaded = active.get(db)
    log.info("analysing with model version %s%s", model_identity(loaded)[0],
             " (the store's version in use, followed)" if active else "")  # fmt: skip
    spool = Path(spool_dir) if spool_dir is not None else db_path.parent / "pacs-spool"
    spool.mkdir(parents=True, exist_ok=True)
    listener = Listener(
        settings,
        db_path=db_path,
        models=loaded,
        account=account,
        spool_dir=spool,
        pair_timeout=pair_timeout,
        active=active,
    )
    listener._start(host)
    if block:
        listener.block()
    return listener
