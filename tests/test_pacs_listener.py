"""The Storage SCP over a real network: pynetdicom as the sender, and a real Orthanc."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from core.analysis import pseudonym_for
from core.auth import AccessDenied
from core.config import COLS, ROWS, VIEWS
from core.networks.models import LoadedModels, load_models
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import NM_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE, write_nm_dicom
from core.scan import Scan, ScanMeta
from db.accounts import create_account
from db.connection import open_db
from tests import orthanc
from tests.test_pipeline import fake_predict_batch
from workflow.pacs.listener import (
    DEFAULT_ACCOUNT,
    STATUS_NOT_NM_CLASS,
    STATUS_SUCCESS,
    VERIFICATION,
    Listener,
    serve,
)
from workflow.pacs.settings import PacsSettings
from workflow.speed_bench import write_untrained_models

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
OUR_AE = "BONESCAN"
SENDER = "GAMMACAM"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LoadedModels:
    return load_models(write_untrained_models(tmp_path_factory.mktemp("models")), device="cpu")


@pytest.fixture(scope="module")
def nm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-frame NM whole-body file (anterior and posterior)."""
    path = tmp_path_factory.mktemp("nm") / "scan.dcm"
    write_nm_dicom(path, to_scan(generate_case(5, 0)), uid_seed="listener-test")
    return path


@pytest.fixture(autouse=True)
def fake_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)


@pytest.fixture
def listener(tmp_path: Path, models: LoadedModels) -> Iterator[Listener]:
    running = start(tmp_path, models, (SENDER, "OTHERCAM"))
    yield running
    running.stop()


def start(
    tmp_path: Path, models: LoadedModels, allowed: Sequence[str], pair_timeout: float = 60.0
) -> Listener:
    settings = PacsSettings(
        ae_title=OUR_AE,
        listen_port=orthanc.free_port(),
        allowed_ae=tuple(allowed),
        quarantine_dir=tmp_path / "quarantine",
    )
    return serve(
        settings,
        db_path=tmp_path / "store.db",
        model_dir=tmp_path / "unused",
        models=models,
        block=False,
        host="127.0.0.1",
        spool_dir=tmp_path / "spool",
        pair_timeout=pair_timeout,
    )


def with_new_uid(ds: Dataset) -> Dataset:
    out = copy.deepcopy(ds)
    out.SOPInstanceUID = generate_uid()
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    return out


def send(
    port: int,
    datasets: Sequence[Dataset],
    calling: str = SENDER,
    contexts: Sequence[str] = (NM_IMAGE_STORAGE,),
) -> list[int]:
    """C-STORE each data set in one association; return the statuses."""
    ae = AE(ae_title=calling)
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate("127.0.0.1", port, ae_title=OUR_AE)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def studies(listener: Listener) -> list[tuple[int, str | None]]:
    with open_db(listener.db_path) as db:
        return [tuple(r) for r in db.execute("SELECT id, source_ae FROM studies ORDER BY id")]


def quarantined(listener: Listener) -> list[Path]:
    folder = listener.settings.quarantine_dir
    return sorted(folder.glob("*.dcm")) if folder.exists() else []


def test_stores_an_nm_scan_once_with_its_source_ae(listener: Listener, nm_file: Path) -> None:
    ds = pydicom.dcmread(nm_file)
    assert send(listener.port, [ds]) == [STATUS_SUCCESS]
    assert listener.wait_idle(60)
    assert [ae for _, ae in studies(listener)] == [SENDER]
    assert send(listener.port, [ds], calling="OTHERCAM") == [STATUS_SUCCESS]
    assert listener.wait_idle(60)
    assert len(studies(listener)) == 1
    assert not quarantined(listener)
    assert not list(listener.spool_dir.iterdir())


def test_answers_c_echo(listener: Listener) -> None:
    ae = AE(ae_title=SENDER)
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=OUR_AE)
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == STATUS_SUCCESS
    assoc.release()


def test_rejects_a_calling_ae_not_allowed(listener: Listener, nm_file: Path) -> None:
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(NM_IMAGE_STORAGE)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=OUR_AE)
    assert assoc.is_rejected and not assoc.is_established
    answer = assoc.acceptor.primitive
    assert answer is not None
    # rejected-permanent, by the service user, calling AE title not recognised
    assert (answer.result, answer.result_source, answer.diagnostic) == (0x01, 0x01, 0x03)
    assert listener.wait_idle(10)
    assert studies(listener) == []


def test_refuses_ct(listener: Listener, nm_file: Path) -> None:
    ct = Dataset()
    ct.file_meta = FileMetaDataset()
    ct.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ct.SOPClassUID = CT_IMAGE_STORAGE
    ct.SOPInstanceUID = generate_uid()
    ct.Modality = "CT"
    ct.Rows = ct.Columns = 2
    ct.BitsAllocated = ct.BitsStored = 16
    ct.HighBit = 15
    ct.PixelRepresentation = ct.SamplesPerPixel = 0
    ct.SamplesPerPixel = 1
    ct.PhotometricInterpretation = "MONOCHROME2"
    ct.PixelData = b"\0" * 8
    ae = AE(ae_title=SENDER)
    ae.add_requested_context(CT_IMAGE_STORAGE)
    ae.add_requested_context(NM_IMAGE_STORAGE)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=OUR_AE)
    assert assoc.is_established
    try:
        assert CT_IMAGE_STORAGE not in {c.abstract_syntax for c in assoc.accepted_contexts}
        with pytest.raises(ValueError, match="presentation context"):
            assoc.send_c_store(ct)
        labelled_ct = with_new_uid(pydicom.dcmread(nm_file))
        labelled_ct.Modality = "CT"
        assert int(assoc.send_c_store(labelled_ct).Status) == STATUS_NOT_NM_CLASS
    finally:
        assoc.release()
    assert listener.wait_idle(10)
    assert studies(listener) == []


def test_secondary_capture_of_another_modality_fails(listener: Listener, nm_file: Path) -> None:
    sc = with_new_uid(pydicom.dcmread(nm_file))
    sc.SOPClassUID = SECONDARY_CAPTURE_STORAGE
    sc.file_meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE_STORAGE)
    sc.Modality = "OT"
    (status,) = send(listener.port, [sc], contexts=(SECONDARY_CAPTURE_STORAGE,))
    assert 0xC000 <= status <= 0xCFFF
    assert listener.wait_idle(10)
    assert studies(listener) == []


def test_a_burst_of_50_is_queued_not_dropped(listener: Listener, nm_file: Path) -> None:
    base = pydicom.dcmread(nm_file)
    batches = [[with_new_uid(base) for _ in range(10)] for _ in range(5)]
    results: list[list[int]] = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(send(listener.port, b))) for b in batches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(s for r in results for s in r) == [STATUS_SUCCESS] * 50
    assert listener.wait_idle(120)
    assert len(studies(listener)) + len(quarantined(listener)) == 50
    assert len(studies(listener)) == 50
    assert not list(listener.spool_dir.iterdir())


def test_an_unreadable_instance_is_quarantined_and_the_next_stored(
    listener: Listener, nm_file: Path
) -> None:
    empty = with_new_uid(pydicom.dcmread(nm_file))
    del empty.PixelData
    good = with_new_uid(pydicom.dcmread(nm_file))
    assert send(listener.port, [empty, good]) == [STATUS_SUCCESS, STATUS_SUCCESS]
    assert listener.wait_idle(60)
    (bad,) = quarantined(listener)
    assert bad.name == f"{empty.SOPInstanceUID}.dcm"
    reason = bad.with_name(bad.name + ".reason.txt").read_text(encoding="utf-8")
    assert "no image data" in reason and SENDER in reason
    assert len(studies(listener)) == 1


def single_views(tmp_path: Path) -> list[Dataset]:
    """The anterior and posterior views of one scan as two single-frame instances."""
    scan = to_scan(generate_case(5, 1))
    study, series = generate_uid(), generate_uid()
    out: list[Dataset] = []
    for view in ("ANT", "POST"):
        path = tmp_path / f"{view}.dcm"
        write_nm_dicom(path, scan, study_uid=study, series_uid=series, view_order=(view,))
        out.append(pydicom.dcmread(path))
    return out


def test_two_single_frame_views_make_one_study(listener: Listener, tmp_path: Path) -> None:
    ant, post = single_views(tmp_path)
    assert send(listener.port, [post]) == [STATUS_SUCCESS]
    assert listener.wait_idle(30)
    assert listener.held_views == 1 and studies(listener) == []
    assert send(listener.port, [ant]) == [STATUS_SUCCESS]
    assert listener.wait_idle(60)
    assert listener.held_views == 0
    assert [ae for _, ae in studies(listener)] == [SENDER]
    with open_db(listener.db_path) as db:
        uids = {r[0] for r in db.execute("SELECT sop_instance_uid FROM study_instances")}
    assert uids == {ant.SOPInstanceUID, post.SOPInstanceUID}


def test_a_lone_view_is_quarantined_after_the_timeout(tmp_path: Path, models: LoadedModels) -> None:
    running = start(tmp_path, models, (SENDER,), pair_timeout=0.5)
    try:
        ant, _ = single_views(tmp_path)
        assert send(running.port, [ant]) == [STATUS_SUCCESS]
        for _ in range(50):
            if quarantined(running):
                break
            threading.Event().wait(0.1)
        (lone,) = quarantined(running)
        reason = lone.with_name(lone.name + ".reason.txt").read_text(encoding="utf-8")
        assert "partner" in reason
        assert studies(running) == []
    finally:
        running.stop()


def test_the_spool_is_analysed_after_a_restart(
    tmp_path: Path, models: LoadedModels, nm_file: Path
) -> None:
    running = start(tmp_path, models, (SENDER,))
    running.stop()
    # an instance received just before the process stopped, not yet analysed
    ds = pydicom.dcmread(nm_file)
    header = {
        "calling_ae": SENDER,
        "sop_instance_uid": ds.SOPInstanceUID,
        "series_instance_uid": ds.SeriesInstanceUID,
        "frames": 2,
    }
    (running.spool_dir / "abc.json").write_text(json.dumps(header), encoding="utf-8")
    (running.spool_dir / "abc.dcm").write_bytes(nm_file.read_bytes())
    # one cut off while it was written (never acknowledged), and the header of another
    (running.spool_dir / "cut.part").write_bytes(nm_file.read_bytes()[:1000])
    (running.spool_dir / "cut.json").write_text("{}", encoding="utf-8")
    again = start(tmp_path, models, (SENDER,))
    try:
        assert again.wait_idle(60)
        assert [ae for _, ae in studies(again)] == [SENDER]
        assert not list(again.spool_dir.iterdir())
    finally:
        again.stop()


def test_refuses_to_start_with_no_allowed_caller(tmp_path: Path, models: LoadedModels) -> None:
    with pytest.raises(ValueError, match="allowed_ae"):
        start(tmp_path, models, ())


@pytest.mark.skipif(not orthanc.available(), reason="Orthanc is not installed")
def test_orthanc_sends_a_study_to_the_listener(
    tmp_path: Path, models: LoadedModels, nm_file: Path
) -> None:
    running = start(tmp_path, models, (orthanc.ORTHANC_AE,))
    try:
        modality = (OUR_AE, "127.0.0.1", running.port)
        with orthanc.running_orthanc(tmp_path / "orthanc", {"bonescan": modality}) as server:
            request = urllib.request.Request(
                server.url + "/instances", data=nm_file.read_bytes(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                instance = json.loads(response.read())["ID"]
            server.post("/modalities/bonescan/store", [instance])
        assert running.wait_idle(60)
        assert [ae for _, ae in studies(running)] == [orthanc.ORTHANC_AE]
    finally:
        running.stop()


def test_a_scan_failing_the_quality_gate_is_stored_as_not_diagnostic(
    listener: Listener, tmp_path: Path
) -> None:
    # As an upload: stored with its verdict and no burden, not quarantined.
    rng = np.random.default_rng(0)
    views = {v: rng.poisson(3.0, (ROWS, COLS)).astype(np.float32) for v in VIEWS}
    path = tmp_path / "noise.dcm"
    write_nm_dicom(path, Scan(views=views, meta=ScanMeta(patient_id="NOISE-1")))
    assert send(listener.port, [pydicom.dcmread(path)]) == [STATUS_SUCCESS]
    assert listener.wait_idle(60)
    assert quarantined(listener) == []
    assert len(studies(listener)) == 1
    with open_db(listener.db_path) as db:
        quality, bstbi = db.execute("SELECT quality, bstbi FROM analyses").fetchone()
    assert quality != "ok" and bstbi is None


def test_logs_name_the_patient_by_pseudonym_only(
    listener: Listener, nm_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = pydicom.dcmread(nm_file)
    with caplog.at_level(logging.INFO, logger="workflow.pacs.listener"):
        send(listener.port, [ds, ds])
        assert listener.wait_idle(60)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert pseudonym_for(str(ds.PatientID), "") in text
    assert "stored study" in text and "already stored" in text
    assert str(ds.PatientID) not in text and str(ds.PatientName) not in text


def test_in_a_store_with_accounts_the_listener_needs_an_uploading_account(
    tmp_path: Path, models: LoadedModels, nm_file: Path
) -> None:
    with open_db(tmp_path / "store.db") as db:
        create_account(db, username="admin", password="a long enough password", role="admin")
    with pytest.raises(AccessDenied):
        start(tmp_path, models, (SENDER,))
    with open_db(tmp_path / "store.db") as db:
        create_account(
            db, username=DEFAULT_ACCOUNT, password="another long password", role="clinician"
        )
    running = start(tmp_path, models, (SENDER,))
    try:
        assert send(running.port, [pydicom.dcmread(nm_file)]) == [STATUS_SUCCESS]
        assert running.wait_idle(60)
        assert [ae for _, ae in studies(running)] == [SENDER]
    finally:
        running.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_with_client_certificates(tmp_path: Path, models: LoadedModels, nm_file: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    settings = PacsSettings(
        ae_title=OUR_AE,
        listen_port=orthanc.free_port(),
        allowed_ae=(SENDER,),
        quarantine_dir=tmp_path / "quarantine",
        tls_cert=cert,
        tls_key=key,
        tls_ca=cert,
    )
    running = serve(
        settings,
        db_path=tmp_path / "store.db",
        model_dir=tmp_path / "unused",
        models=models,
        block=False,
        host="127.0.0.1",
        spool_dir=tmp_path / "spool",
    )
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
        client.load_cert_chain(cert, key)
        ae = AE(ae_title=SENDER)
        ae.add_requested_context(NM_IMAGE_STORAGE)
        assoc = ae.associate(
            "127.0.0.1", running.port, ae_title=OUR_AE, tls_args=(client, "127.0.0.1")
        )
        assert assoc.is_established
        assert int(assoc.send_c_store(pydicom.dcmread(nm_file)).Status) == STATUS_SUCCESS
        assoc.release()
        assert running.wait_idle(60)
        assert len(studies(running)) == 1
        # without a client certificate the TLS handshake fails: no association
        anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
        assoc = ae.associate(
            "127.0.0.1", running.port, ae_title=OUR_AE, tls_args=(anonymous, "127.0.0.1")
        )
        assert not assoc.is_established
        # and plain DICOM is not spoken at all
        assert not ae.associate("127.0.0.1", running.port, ae_title=OUR_AE).is_established
    finally:
        running.stop()
