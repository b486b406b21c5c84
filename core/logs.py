"""Logging: levels, a rotating file under ``data_dir()/logs`` and the console; error ids.

Call :func:`setup_logging` once at start (the dashboard and the command line); modules
log with ``logging.getLogger(__name__)``. A failure shown to a user is reported with
:func:`report_exception`: the log gets the details (stack trace included) under a short
error id, and the user gets one sentence and that id, never a stack trace.

Patient-identifying DICOM values (PatientName, PatientID, birth date...) are kept in the
database only. Code never logs a scan's metadata, and every handler set up here also
passes records through :class:`IdentifierFilter`, which masks values registered with
:func:`hide_in_logs` and anything that looks like a DICOM patient element
(``(0010,xxxx)``, ``PatientName=...``) should an exception's text carry one.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import secrets
import warnings
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from core.auth import AccessDenied
from core.config import data_dir
from core.scan import ScanReadError

#: The log file's name inside the log folder.
LOG_FILE = "bonescan.log"
#: The log file rotates at this size, keeping :data:`LOG_BACKUPS` older files.
LOG_MAX_BYTES = 5_000_000
LOG_BACKUPS = 5
#: What replaces a patient-identifying value in a log record.
REDACTED = "[redacted]"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_bonescan_handler"  # set on the handlers made here, so setup can replace them
# A pydicom element line of the Patient group, e.g. "(0010,0010) Patient's Name PN: 'X'".
_DICOM_PATIENT_ELEMENT = re.compile(r"(\(0010,\s?[0-9A-Fa-f]{4}\))[^\n]*")
# pydicom's validation warnings quote the element's value, which may be identifying.
_DICOM_INVALID_VALUE = re.compile(r"(Invalid value for VR \w\w:\s*)('[^']*'|\"[^\"]*\"|\S+)")
# "PatientName=X", "PatientID: X", "Patient's Name: X" in free text.
_PATIENT_KEYWORD = re.compile(
    r"(\bPatient(?:'s)?\s?(?:Name|ID|Birth\s?Date|Address|Telephone\s?Numbers)\b\s*[:=]\s*)"
    r"('[^']*'|\"[^\"]*\"|\S+)",
    re.IGNORECASE,
)
_hidden: deque[str] = deque(maxlen=10_000)
_hidden_pattern: re.Pattern[str] | None = None  # one alternation of _hidden, rebuilt on change


def _alternation(values: Iterable[str]) -> re.Pattern[str] | None:
    # longest first, so a whole name is masked before a part of it
    unique = sorted(set(values), key=len, reverse=True)
    if not unique:
        return None
    return re.compile("|".join(re.escape(v) for v in unique), re.IGNORECASE)


def log_dir() -> Path:
    """Return the log folder, ``data_dir()/logs``, creating it."""
    path = data_dir() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _level(level: str | int | None) -> int:
    if level is None:
        level = os.environ.get("BONESCAN_LOG_LEVEL", "INFO")
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {level!r}")
    return value


def scrub(text: str, identifying: Iterable[str | None] = ()) -> str:
    """Mask patient-identifying values in ``text``.

    Args:
        text: A message or formatted stack trace.
        identifying: Values to mask wherever they appear (None and values under 3
            characters are ignored: too short to mask without garbling the text); the
            values registered with :func:`hide_in_logs` are masked as well.

    Returns:
        ``text`` with those values, DICOM patient elements and ``PatientName=...``-like
        pairs replaced by :data:`REDACTED`.
    """
    extra = _alternation(v.strip() for v in identifying if v and len(v.strip()) >= 3)
    for pattern in (extra, _hidden_pattern):
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
    text = _DICOM_PATIENT_ELEMENT.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _DICOM_INVALID_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _PATIENT_KEYWORD.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def hide_in_logs(*values: str | None) -> None:
    """Register patient-identifying values (e.g. a file's PatientName) never to be logged.

    Every handler set up by :func:`setup_logging` masks them from then on, in messages
    and stack traces alike. The register keeps the latest 10,000 values of the process.
    """
    global _hidden_pattern
    new = [v.strip() for v in values if v and len(v.strip()) >= 3 and v.strip() not in _hidden]
    if new:
        _hidden.extend(new)
        _hidden_pattern = _alternation(_hidden)


class IdentifierFilter(logging.Filter):
    """Rewrite each record with patient-identifying values masked (see :func:`scrub`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message and stack trace in place; always keep the record."""
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def setup_logging(
    level: str | int | None = None, *, directory: Path | None = None, console: bool = True
) -> Path:
    """Log to a rotating file and (optionally) the console; safe to call again.

    Args:
        level: ``"DEBUG"``, ``"INFO"``, ``"WARNING"``, ... or a number; default
            ``$BONESCAN_LOG_LEVEL`` or INFO.
        directory: The log folder; default :func:`log_dir`.
        console: Also log to standard error.

    pydicom's own log and warnings are silenced: its validation messages quote element
    values (a malformed birth date, say), and every failure it raises reaches the user
    as a :class:`core.scan.ScanReadError` anyway.

    Returns:
        The log file's path.

    Raises:
        ValueError: If ``level`` is not a logging level.
    """
    number = _level(level)
    folder = Path(directory) if directory is not None else log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    close_logging()
    root = logging.getLogger()
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    ]
    if console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        setattr(handler, _MARK, True)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(IdentifierFilter())
        handler.setLevel(number)
        root.addHandler(handler)
    root.setLevel(number)
    pydicom_log = logging.getLogger("pydicom")
    pydicom_log.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in pydicom_log.handlers):
        pydicom_log.addHandler(logging.NullHandler())
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    return path


def close_logging() -> None:
    """Remove and close the handlers :func:`setup_logging` added (others are left alone)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()


def error_id() -> str:
    """Return a fresh short id for one error, e.g. ``"E-3F9A1C2B"`` (shown and logged)."""
    return "E-" + secrets.token_hex(4).upper()


def _expected() -> tuple[type[BaseException], ...]:
    return (ScanReadError, AccessDenied)


def report_exception(
    exc: BaseException,
    *,
    what: str,
    logger: logging.Logger | None = None,
    identifying: Iterable[str | None] = (),
    expected: tuple[type[BaseException], ...] = (),
) -> str:
    """Log an exception under a new error id and return the sentence to show the user.

    A refusal written for users (:class:`core.scan.ScanReadError`,
    :class:`core.auth.AccessDenied`, or a type in ``expected``) is logged at WARNING
    without a stack trace and shown as it is; anything else is logged at ERROR with its
    stack trace and shown as a short sentence. Both end with the error id.

    Args:
        exc: The exception caught.
        what: What was being done, as a phrase after "while" (e.g. "storing the scan").
        logger: Where to log; default the ``bonescan`` logger.
        identifying: Patient-identifying values to mask in the log and the sentence.
        expected: More exception types whose message is written for users.

    Returns:
        One or two sentences with the error id and no stack trace.
    """
    eid = error_id()
    log = logger or logging.getLogger("bonescan")
    values = tuple(identifying)
    if isinstance(exc, (*_expected(), *expected)):
        message = scrub(str(exc), values)
        log.warning("[%s] refused while %s: %s", eid, what, message)
        return f"{message} (error id {eid})"
    trace = logging.Formatter().formatException((type(exc), exc, exc.__traceback__))
    log.error("[%s] failed while %s: %s: %s\n%s", eid, what, type(exc).__name__,
              scrub(str(exc), values), scrub(trace, values))  # fmt: skip
    return (
        f"Something went wrong while {what}. The details are in the log under error id "
        f"{eid}; please give this id to your administrator."
    )
