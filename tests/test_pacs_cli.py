"""``python -m core pacs pull|push`` against a real Orthanc named by BONESCAN_PACS_DICOMWEB."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from cli import main
from core.phantom.generate import generate_case, to_scan
from core.reading.dicom import write_nm_dicom
from tests import orthanc
from tests.test_pipeline import fake_predict_batch

needs_orthanc = pytest.mark.skipif(
    not orthanc.available(),
    reason="Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc "
    "orthanc-dicomweb; scripts/test.sh does it as root)",
)


@needs_orthanc
def test_pull_by_patient_then_push(
    tmp_path: Path,
    untrained_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("core.analysis.predict_batch", fake_predict_batch)
    monkeypatch.delenv("BONESCAN_PACS_CONFIG", raising=False)
    monkeypatch.delenv("BONESCAN_PACS_AE", raising=False)
    case = generate_case(17, 2, pattern="multiple")
    scan = to_scan(case)
    path = tmp_path / "scan.dcm"
    write_nm_dicom(path, scan, uid_seed=case.case_id)
    db = str(tmp_path / "store.sqlite")
    with orthanc.running_orthanc(tmp_path / "orthanc") as pacs:
        request = urllib.request.Request(
            pacs.url + "/instances", data=path.read_bytes(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["Status"] == "Success"
        monkeypatch.setenv("BONESCAN_PACS_DICOMWEB", pacs.dicomweb_url)
        pull = ["pacs", "pull", "--patient", str(scan.meta.patient_id), "--db", db]
        pull += ["--model", str(untrained_model_dir), "--device", "cpu", "--yes", "--quiet"]

        assert main(pull) == 0
        out = capsys.readouterr().out
        assert "stored as study 1" in out
        assert str(scan.meta.patient_name) not in out
        assert main(pull) == 0
        assert "already stored as study 1" in capsys.readouterr().out

        assert main(["pacs", "push", "--study", "1", "--db", db]) == 0
        assert "sent 3 instances" in capsys.readouterr().out
        assert len(pacs.get("/instances")) == 4  # type: ignore[arg-type]  # the scan + 3

        # a patient without NM studies: nothing to import, no model loaded
        assert main(["pacs", "pull", "--patient", "nobody", "--db", db, "--yes"]) == 0
        assert "no NM study found" in capsys.readouterr().out


def test_pull_without_a_pacs_url_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BONESCAN_PACS_DICOMWEB", raising=False)
    monkeypatch.delenv("BONESCAN_PACS_CONFIG", raising=False)
    argv = ["pacs", "pull", "--since", "2024-01-01", "--db", str(tmp_path / "s.sqlite")]
    assert main(argv) == 2
    assert "BONESCAN_PACS_DICOMWEB" in capsys.readouterr().err


def test_pull_refuses_a_malformed_date(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BONESCAN_PACS_DICOMWEB", "http://127.0.0.1:9/dicom-web")
    assert main(["pacs", "pull", "--since", "01/02/2024"]) == 2
    assert "--since must be a date" in capsys.readouterr().err
