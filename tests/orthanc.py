"""A real Orthanc PACS for the tests: started on free loopback ports, stopped afterwards.

Debian's ``orthanc`` and ``orthanc-dicomweb`` packages (``scripts/test.sh`` installs
them when it runs as root). The configuration is written to a temporary folder; nothing
outside it is touched. Tests that need Orthanc are skipped where it is not installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AE = "ORTHANC"


def available() -> bool:
    """True when Orthanc and its DICOMweb plugin are installed."""
    return Path(ORTHANC).exists() and DICOMWEB_PLUGIN.exists()


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class OrthancServer:
    """A running Orthanc.

    Attributes:
        http_port: Its REST and DICOMweb port.
        dicom_port: Its DIMSE port.
        ae_title: Its AE title.
    """

    http_port: int
    dicom_port: int
    ae_title: str = ORTHANC_AE

    @property
    def url(self) -> str:
        """Its REST root."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """Its DICOMweb root."""
        return f"{self.url}/dicom-web"

    def get(self, path: str) -> object:
        """GET a REST path and return the decoded JSON."""
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: object) -> object:
        """POST JSON to a REST path and return the decoded JSON."""
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None


@contextmanager
def running_orthanc(
    folder: Path, modalities: Mapping[str, tuple[str, str, int]] | None = None
) -> Iterator[OrthancServer]:
    """Start Orthanc with its storage in ``folder``; stop it on exit.

    Args:
        folder: An empty temporary folder.
        modalities: ``{name: (AE title, host, port)}`` Orthanc may send to (C-STORE).
    """
    server = OrthancServer(http_port=free_port(), dicom_port=free_port())
    storage = folder / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "bonescan-test-pacs",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": server.http_port,
        "DicomPort": server.dicom_port,
        "DicomAet": server.ae_title,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpBindAddress": "127.0.0.1",
        "DicomBindAddress": "127.0.0.1",
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowMove": True,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomModalities": {k: list(v) for k, v in (modalities or {}).items()},
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = (folder / "orthanc.log").open("w")
    process = subprocess.Popen([ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.get("/system")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "Orthanc did not start: " + (folder / "orthanc.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
