"""Against a real Orthanc: find an NM study, pull it (once), send the results back, read them.

The networks are replaced by :func:`tests.test_pipeline.fake_predict_batch` so that the
untrained models still give lesions; everything else (DICOMweb, reading, storing,
building the Secondary Captures and the SR) is the product's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from core.dicom_results.measurement_report import read_bstbi
from core.networks.models import LoadedModels
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from db.connection import open_db
from db.queries import study_with_masks
from db.store import set_lesion_status
from tests import orthanc
from tests.test_pipeline import fake_predict_batch
from workflow.pacs.dicomweb import PacsClient, PacsError
from workflow.pacs.pull import pull_studies, whole_body_scans
from workflow.pacs.push import send_results
from workflow.pacs.settings import PacsSettings

needs_orthanc = pytest.mark.skipif(
    not orthanc.available(),
    reason="Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc "
    "orthanc-dicomweb; scripts/test.sh does it as root)",
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc.OrthancServer]:
    with orthanc.running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


def upload(server: orthanc.OrthancServer, path: Path) -> None:
    """Store a DICOM file in Orthanc through its REST API (as a modality's export would)."""
    request = urllib.request.Request(
        server.url + "/instances", data=path.read_bytes(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["Status"] == "Success"


def validation_errors(ds: pydicom.Dataset, folder: Path) -> list[str]:
    """dciodvfy's "Error" lines for one instance ([] when dciodvfy is not installed)."""
    if shutil.which("dciodvfy") is None:
        return []
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@needs_orthanc
def test_pull_once_then_send_results_back(
    pacs: orthanc.OrthancServer,
    untrained_models: LoadedModels,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    case = generate_case(16, 1, pattern="multiple")
    scan = to_scan(case)
    source = tmp_path / "scan.dcm"
    write_nm_dicom(source, scan, uid_seed=case.case_id)
    upload(pacs, source)
    original = pydicom.dcmread(source)
    client = PacsClient(PacsSettings(dicomweb_url=pacs.dicomweb_url))

    found = client.find_studies(patient_id=scan.meta.patient_id)
    assert [s.study_instance_uid for s in found] == [original.StudyInstanceUID]
    assert found[0].study_date == scan.meta.study_date and found[0].n_instances == 1
    assert client.find_studies(patient_id="nobody-has-this-id") == []

    calls: list[tuple[int, int]] = []
    with open_db(tmp_path / "store.sqlite") as db:
        uids = ["1.2.826.0.1.3680043.8.498.1", original.StudyInstanceUID]
        first = pull_studies(
            db,
            client,
            uids,
            models=untrained_models,
            account="tester",
            progress=lambda d, t: calls.append((d, t)),
        )
        # the unknown study fails with the PACS's answer; the other one is stored
        assert [o.status for o in first] == ["failed", "stored"]
        assert pacs.dicomweb_url in first[0].reason
        assert calls == [(1, 2), (2, 2)]
        stored = first[1]
        assert stored.sop_instance_uids == (original.SOPInstanceUID,)
        assert stored.study_id is not None
        again = pull_studies(
            db, client, [original.StudyInstanceUID], models=untrained_models, account="tester"
        )
        assert [(o.status, o.study_id) for o in again] == [("already stored", stored.study_id)]
        assert db.execute("SELECT count(*) FROM studies").fetchone()[0] == 1

        data = study_with_masks(db, stored.study_id)
        assert data["study"]["study_instance_uid"] == original.StudyInstanceUID
        assert data["study"]["source_ae"] == "DICOMweb 127.0.0.1"
        assert data["lesions"], "the stand-in networks should find lesions"
        set_lesion_status(db, data["lesions"][0]["id"], "removed", "tester", "fracture")
        bstbi = data["analysis"]["bstbi"]

        sent = send_results(db, client, stored.study_id, account="tester")
        assert len(sent.sop_instance_uids) == 3
        assert sent.study_instance_uid == original.StudyInstanceUID
        (row,) = db.execute(
            "SELECT after_json FROM audit_log WHERE action = 'send_results'"
        ).fetchall()
        assert json.loads(row[0])["sop_instance_uids"] == list(sent.sop_instance_uids)
        assert str(original.PatientName) not in row[0]

    back = {str(ds.SOPInstanceUID): ds for ds in client.retrieve_study(sent.study_instance_uid)}
    results = [back[uid] for uid in sent.sop_instance_uids]
    assert [str(ds.SOPClassUID) for ds in results] == [SECONDARY_CAPTURE] * 2 + [COMPREHENSIVE_SR]
    for ds in results:
        assert ds.StudyInstanceUID == original.StudyInstanceUID
        assert ds.PatientID == original.PatientID
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID
        assert validation_errors(ds, tmp_path) == []
    assert read_bstbi(results[2]) == pytest.approx(bstbi, rel=1e-9)


def test_unreachable_pacs_names_its_url() -> None:
    url = f"http://127.0.0.1:{orthanc.free_port()}/dicom-web"
    client = PacsClient(PacsSettings(dicomweb_url=url))
    with pytest.raises(PacsError, match=url):
        client.find_studies(patient_id="X")


def test_client_needs_a_dicomweb_url() -> None:
    with pytest.raises(ValueError, match="dicomweb_url"):
        PacsClient(PacsSettings())


def test_whole_body_scans_pair_single_views_of_one_series(tmp_path: Path) -> None:
    case = generate_case(16, 2)
    scan = to_scan(case)
    study = "1.2.826.0.1.3680043.8.498.10"
    files = {
        "pair-ant": dict(series_uid="1.2.826.0.1.3680043.8.498.11", view_order=("ANT",)),
        "pair-post": dict(series_uid="1.2.826.0.1.3680043.8.498.11", view_order=("POST",)),
        "lonely": dict(series_uid="1.2.826.0.1.3680043.8.498.12", view_order=("ANT",)),
        "both": dict(series_uid="1.2.826.0.1.3680043.8.498.13", view_order=("ANT", "POST")),
    }
    datasets = {}
    for name, options in files.items():
        write_nm_dicom(tmp_path / name, scan, study_uid=study, uid_seed=name, **options)  # type: ignore[arg-type]
        datasets[name] = pydicom.dcmread(tmp_path / name)
    datasets["pair-post"].InstanceNumber = 2
    other = pydicom.dcmread(tmp_path / "both")
    other.Modality = "OT"  # e.g. results sent back earlier
    order = ["pair-post", "both", "lonely", "pair-ant"]
    scans = whole_body_scans([*(datasets[n] for n in order), other])
    names = {id(ds): name for name, ds in datasets.items()}
    assert [[names[id(ds)] for ds in s] for s in scans] == [["both"], ["pair-ant", "pair-post"]]
