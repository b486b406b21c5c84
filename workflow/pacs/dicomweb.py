"""Query, retrieve and send studies over DICOMweb (QIDO-RS, WADO-RS, STOW-RS).

DICOMweb rather than DIMSE C-FIND/C-MOVE: every exchange is an outgoing HTTP request,
so the product needs no inbound port, and the PACS needs no AE entry naming our host
and port as a C-MOVE destination. Getting a study is one WADO-RS request instead of a
C-MOVE whose instances arrive on a separate association. The Storage SCP
(:mod:`workflow.pacs.listener`) remains for modalities and PACSs that push.

:class:`PacsClient` wraps :mod:`dicomweb_client` and turns its errors (HTTP status,
refused connection, time-out) into :class:`PacsError`, which names the PACS URL.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pydicom
import requests
from dicomweb_client import DICOMwebClient
from pydicom.errors import InvalidDicomError

from workflow.pacs.settings import PacsSettings

#: QIDO-RS attributes asked for each study.
STUDY_FIELDS = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "NumberOfStudyRelatedInstances",
)

#: Attempts per request, and the first wait between them in ms (doubling): enough to
#: ride out a busy archive (HTTP 503, 429) without keeping a user waiting long on one
#: that is down (the library's default backs off for half a minute).
RETRY_ATTEMPTS = 3
RETRY_WAIT_MS = 250

_T = TypeVar("_T")


class PacsError(RuntimeError):
    """The PACS could not be reached or refused a request."""


@dataclass(frozen=True)
class RemoteStudy:
    """One study as the PACS lists it.

    Attributes:
        study_instance_uid: Its Study Instance UID.
        patient_id: The PACS's PatientID ("" when absent).
        patient_name: The PatientName as text ("" when absent); shown to the user,
            never logged or stored.
        study_date: The study date, or None.
        description: StudyDescription ("" when absent).
        accession_number: AccessionNumber ("" when absent).
        n_instances: NumberOfStudyRelatedInstances, or None when the PACS omits it.
    """

    study_instance_uid: str
    patient_id: str
    patient_name: str
    study_date: dt.date | None
    description: str
    accession_number: str
    n_instances: int | None


def _dicom_date(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip(), "%Y%m%d").date()
    except ValueError:
        return None


def _first(attributes: dict[str, Any], keyword: str) -> Any:
    """The first value of a DICOM JSON attribute, or None."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"unknown keyword {keyword!r}")
    values = attributes.get(f"{tag:08X}", {}).get("Value") or [None]
    return values[0]


def _text(attributes: dict[str, Any], keyword: str) -> str:
    value = _first(attributes, keyword)
    if isinstance(value, dict):  # PersonName: {"Alphabetic": "..."}
        value = value.get("Alphabetic", "")
    return "" if value is None else str(value)


def remote_study(attributes: dict[str, Any]) -> RemoteStudy:
    """Turn one QIDO-RS study result (DICOM JSON) into a :class:`RemoteStudy`.

    Raises:
        ValueError: If the result has no StudyInstanceUID.
    """
    uid = _text(attributes, "StudyInstanceUID")
    if not uid:
        raise ValueError("attributes have no StudyInstanceUID")
    count = _first(attributes, "NumberOfStudyRelatedInstances")
    return RemoteStudy(
        study_instance_uid=uid,
        patient_id=_text(attributes, "PatientID"),
        patient_name=_text(attributes, "PatientName"),
        study_date=_parse_date(_text(attributes, "StudyDate")),
        description=_text(attributes, "StudyDescription"),
        accession_number=_text(attributes, "AccessionNumber"),
        n_instances=None if count is None else int(count),
    )


def part10(ds: pydicom.Dataset) -> bytes:
    """Serialise a dataset as a DICOM Part 10 file (preamble, "DICM", file meta).

    Raises:
        ValueError: If the dataset lacks what the file meta needs (e.g. its SOP UIDs).
    """
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _no_bulk_data(_tag: str, _vr: str, _uri: str) -> None:
    """Leave bulk data (pixels) out of metadata: only the header is wanted."""
    return None


class PacsClient:
    """A PACS reached over DICOMweb.

    Args:
        settings: The node's settings; ``dicomweb_url`` must be set.
        timeout: Seconds each HTTP request may take.

    Raises:
        ValueError: If ``settings.dicomweb_url`` is unset or not an http(s) URL.
    """

    def __init__(self, settings: PacsSettings, *, timeout: float = 60.0) -> None:
        url = (settings.dicomweb_url or "").rstrip("/")
        if not url:
            raise ValueError(
                "settings.dicomweb_url is not set (BONESCAN_PACS_DICOMWEB or dicomweb_url "
                "in the [pacs] table of $BONESCAN_PACS_CONFIG)"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"settings.dicomweb_url must be an http(s) URL, got {url!r}")
        self.url = url
        self.settings = settings
        self._client = DICOMwebClient(url, timeout=timeout)
        self._client.set_http_retry_params(
            max_attempts=RETRY_ATTEMPTS, wait_exponential_multiplier=RETRY_WAIT_MS
        )

    @property
    def source_ae(self) -> str:
        """How studies pulled from this PACS are labelled: its AE title, else its host."""
        if self.settings.pacs_ae:
            return self.settings.pacs_ae
        return f"DICOMweb {urlsplit(self.url).hostname}"

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run one request, turning the library's errors into :class:`PacsError`."""
        try:
            return fn()
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise PacsError(f"PACS {self.url}: {what} failed (HTTP {status})") from exc
        except requests.RequestException as exc:
            raise PacsError(f"PACS {self.url}: {what} failed ({type(exc).__name__})") from exc
        except (InvalidDicomError, ValueError) as exc:
            raise PacsError(f"PACS {self.url}: {what} failed: unreadable answer ({exc})") from exc

    def find_studies(
        self,
        *,
        patient_id: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> list[RemoteStudy]:
        """List the PACS's NM studies of a patient and/or a date range (QIDO-RS).

        Args:
            patient_id: The PACS's PatientID (exact match).
            since: First study date included.
            until: Last study date included.

        Returns:
            The studies, oldest first (undated last).

        Raises:
            ValueError: If no filter is given, or ``since`` is after ``until``.
            PacsError: If the PACS cannot be queried.
        """
        if patient_id is None and since is None and until is None:
            raise ValueError("give patient_id, since or until")
        if since is not None and until is not None and since > until:
            raise ValueError(f"since {since} is after until {until}")
        filters: dict[str, Any] = {"ModalitiesInStudy": "NM"}
        if patient_id is not None:
            if not patient_id.strip():
                raise ValueError("patient_id must not be empty")
            filters["PatientID"] = patient_id.strip()
        if since is not None or until is not None:
            low = "" if since is None else _dicom_date(since)
            high = "" if until is None else _dicom_date(until)
            filters["StudyDate"] = f"{low}-{high}"
        found = self._call(
            "study search",
            lambda: self._client.search_for_studies(search_filters=filters, fields=STUDY_FIELDS),
        )
        studies = [remote_study(a) for a in found]
        return sorted(studies, key=lambda s: (s.study_date is None, s.study_date or dt.date.min))

    def retrieve_study(self, study_uid: str) -> list[pydicom.Dataset]:
        """Download every instance of a study (WADO-RS).

        Raises:
            ValueError: If ``study_uid`` is empty.
            PacsError: If the PACS cannot deliver it.
        """
        if not study_uid.strip():
            raise ValueError("study_uid must not be empty")
        return self._call(
            f"retrieving study {study_uid}", lambda: self._client.retrieve_study(study_uid)
        )

    def first_instance_metadata(
        self, study_uid: str, sop_instance_uid: str | None = None
    ) -> pydicom.Dataset:
        """The header (no pixels) of one instance of a study.

        Results sent back repeat its patient and study attributes and reference it.

        Args:
            study_uid: The study.
            sop_instance_uid: The instance wanted (the analysed one); when None, or
                when the PACS no longer holds it, the study's first instance.

        Raises:
            ValueError: If ``study_uid`` is empty.
            PacsError: If the PACS cannot deliver it or holds no instance of the study.
        """
        if not study_uid.strip():
            raise ValueError("study_uid must not be empty")
        wanted = ("SeriesInstanceUID", "SOPInstanceUID")
        found: list[dict[str, Any]] = []
        if sop_instance_uid:
            found = self._call(
                f"searching instance {sop_instance_uid}",
                lambda: self._client.search_for_instances(
                    study_instance_uid=study_uid,
                    fields=wanted,
                    search_filters={"SOPInstanceUID": sop_instance_uid},
                ),
            )
        if not found:
            found = self._call(
                f"searching instances of study {study_uid}",
                lambda: self._client.search_for_instances(
                    study_instance_uid=study_uid, fields=wanted, limit=1
                ),
            )
        if not found:
            raise PacsError(f"PACS {self.url}: study {study_uid} has no instance")
        series = _text(found[0], "SeriesInstanceUID")
        sop = _text(found[0], "SOPInstanceUID")
        metadata = self._call(
            f"retrieving metadata of instance {sop}",
            lambda: self._client.retrieve_instance_metadata(study_uid, series, sop),
        )
        return pydicom.Dataset.from_json(metadata, bulk_data_uri_handler=_no_bulk_data)

    def store(self, datasets: Sequence[pydicom.Dataset]) -> None:
        """Send instances to the PACS (STOW-RS).

        Raises:
            ValueError: If ``datasets`` is empty.
            PacsError: If the PACS refuses any of them.
        """
        if not datasets:
            raise ValueError("datasets must not be empty")
        # dicomweb-client writes each dataset as it is; one built in memory has no
        # preamble and "DICM" prefix, which archives then keep and serve unreadable.
        files = [pydicom.dcmread(io.BytesIO(part10(ds))) for ds in datasets]
        response = self._call("storing instances", lambda: self._client.store_instances(files))
        failed = getattr(response, "FailedSOPSequence", None)
        if failed:
            uids = [str(getattr(item, "ReferencedSOPInstanceUID", "?")) for item in failed]
            raise PacsError(f"PACS {self.url}: refused instances {uids}")
