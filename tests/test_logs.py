"""Logging: levels, the rotating file and the console, error ids, no identifying values."""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import core.logs
from core.auth import AccessDenied
from core.logs import (
    REDACTED,
    close_logging,
    error_id,
    hide_in_logs,
    log_dir,
    report_exception,
    scrub,
    setup_logging,
)
from core.reading.uploaded import read_uploaded
from core.scan import ScanReadError
from tests.readers_helpers import nm_dataset, phantom_counts

NAME, PID, BIRTH = "Zarathustra^Quentin", "MRN-99-31337", "19X01231"


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Logging set up under a private data folder; the root logger restored afterwards."""
    monkeypatch.setenv("BONESCAN_DATA_DIR", str(tmp_path / "data"))
    root = logging.getLogger()
    level = root.level
    pydicom_log = logging.getLogger("pydicom")
    propagate = pydicom_log.propagate
    with warnings.catch_warnings():
        yield tmp_path / "data" / "logs" / core.logs.LOG_FILE
        close_logging()
    root.setLevel(level)
    pydicom_log.propagate = propagate


def _text(path: Path) -> str:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text(encoding="utf-8")


def _dicom(**attrs: str) -> bytes:
    buf = io.BytesIO()
    nm_dataset(phantom_counts(96, 64), **attrs).save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_levels_go_to_the_file_and_the_console(
    logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = setup_logging("INFO")
    assert path == logs and path.parent == log_dir()
    log = logging.getLogger("core.test")
    log.debug("a debug detail")
    log.info("an info line")
    log.warning("a warning line")
    text = _text(path)
    assert "a debug detail" not in text
    assert re.search(r"INFO core\.test: an info line", text)
    assert re.search(r"WARNING core\.test: a warning line", text)
    assert "a warning line" in capsys.readouterr().err
    setup_logging("DEBUG", console=False)  # again: handlers replaced, not added
    log.debug("now visible")
    assert _text(path).count("an info line") == 1 and "now visible" in _text(path)
    assert "now visible" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="level"):
        setup_logging("LOUD")


def test_the_level_comes_from_the_environment(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BONESCAN_LOG_LEVEL", "error")
    setup_logging(console=False)
    logging.getLogger("core.test").warning("not kept")
    logging.getLogger("core.test").error("kept")
    text = _text(logs)
    assert "kept" in text and "not kept" not in text


def test_the_file_rotates(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.logs, "LOG_MAX_BYTES", 2_000)
    setup_logging("INFO", console=False)
    for i in range(400):
        logging.getLogger("core.test").info("line %d %s", i, "x" * 40)
    files = sorted(p.name for p in logs.parent.iterdir())
    assert files == ["bonescan.log", *(f"bonescan.log.{i}" for i in range(1, 6))]
    assert all(p.stat().st_size <= 2_200 for p in logs.parent.iterdir())
    assert "line 399" in _text(logs)


def test_error_ids_are_short_and_distinct() -> None:
    ids = {error_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"E-[0-9A-F]{8}", i) for i in ids)


def _fails_deep_inside() -> None:
    raise RuntimeError("index 7 out of range in burden table")


def test_an_unexpected_error_gives_a_short_message_and_a_logged_trace(logs: Path) -> None:
    setup_logging("INFO", console=False)
    try:
        _fails_deep_inside()
    except RuntimeError as exc:
        shown = report_exception(exc, what="storing the scan")
    found = re.search(r"error id (E-[0-9A-F]{8})", shown)
    assert found, shown
    assert shown.startswith("Something went wrong while storing the scan.")
    for detail in ("Traceback", "RuntimeError", "index 7", "_fails_deep_inside", "\n"):
        assert detail not in shown
    text = _text(logs)
    assert f"ERROR bonescan: [{found.group(1)}] failed while storing the scan" in text
    assert "Traceback" in text and "_fails_deep_inside" in text and "index 7" in text


@pytest.mark.parametrize(
    "exc",
    [ScanReadError("scan.png", "the file is empty (0 bytes), so there is no scan in it."),
     AccessDenied("The account 'student' is a viewer, and a viewer may not review lesions.")],
)  # fmt: skip
def test_a_refusal_is_shown_as_it_is_with_an_id(logs: Path, exc: Exception) -> None:
    setup_logging("INFO", console=False)
    shown = report_exception(exc, what="reading the upload")
    assert shown.startswith(str(exc)) and re.search(r"\(error id E-[0-9A-F]{8}\)$", shown)
    text = _text(logs)
    assert "WARNING bonescan:" in text and str(exc) in text and "Traceback" not in text


def test_identifying_values_never_reach_the_log_or_the_user(logs: Path) -> None:
    setup_logging("DEBUG", console=False)
    exc = ValueError(f"no such patient {NAME} with id {PID}")
    shown = report_exception(exc, what="opening the patient", identifying=[NAME, PID])
    hide_in_logs(NAME, PID)
    log = logging.getLogger("core.test")
    log.info("uploaded for %s (%s)", NAME.lower(), PID)
    ds = nm_dataset(phantom_counts(96, 64), PatientName=NAME, PatientID=PID)
    log.debug("dataset read:\n%s", ds)  # pydicom's dump of every element
    log.info("meta PatientName=%s PatientID: %s", "Other^Person", "X-1")
    try:
        raise KeyError(PID)
    except KeyError:
        log.exception("lookup failed")
    text = _text(logs)
    for secret in (NAME, PID, "Zarathustra", "Other^Person", "X-1"):
        assert secret.lower() not in text.lower(), secret
        assert secret.lower() not in shown.lower()
    assert REDACTED in text and "(0010,0010)" in text


def test_pydicom_messages_quoting_a_birth_date_are_not_logged(logs: Path) -> None:
    setup_logging("DEBUG", console=False)
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    catch = Catch()
    logging.getLogger("pydicom").addHandler(catch)
    try:
        data = _dicom(PatientName=NAME, PatientID=PID, PatientBirthDate=BIRTH)
        scan = read_uploaded([("scan.dcm", data)])
    finally:
        logging.getLogger("pydicom").removeHandler(catch)
    assert scan.meta.patient_name == NAME  # kept for the database
    assert any(BIRTH in m for m in seen), "pydicom no longer quotes the value: test is moot"
    text = _text(logs)
    assert BIRTH not in text and NAME not in text and PID not in text


def test_scrub() -> None:
    assert scrub("name Ab and Abc", ["Ab", "Abc", None]) == f"name Ab and {REDACTED}"
    assert scrub("Invalid value for VR DA: '19X0'. More.") == (
        f"Invalid value for VR DA: {REDACTED}. More."
    )
    assert scrub("(0010,0020) Patient ID LO: 'x'\n(0008,0060) Modality CS: 'NM'") == (
        f"(0010,0020) {REDACTED}\n(0008,0060) Modality CS: 'NM'"
    )
