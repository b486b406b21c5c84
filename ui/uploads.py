"""The scan uploader that the upload and "Read a scan" pages share."""

from __future__ import annotations

import streamlit as st

from core.reading.uploaded import MAX_FILES_PER_SCAN, read_uploaded
from core.scan import Scan, ScanReadError

#: What the uploader asks for.
UPLOAD_LABEL = "A DICOM NM whole-body file, an exported PNG/JPEG, or an anterior + posterior pair"


def uploaded_scan(empty_message: str) -> tuple[list[tuple[str, bytes]], Scan]:
    """Show the uploader and read what was dropped; stop the page until it is a scan.

    Args:
        empty_message: The info shown while nothing is dropped.

    Returns:
        ``(files, scan)``: the dropped files as ``(name, content)`` and the scan read
        from them. Too many files or an unreadable file shows the reader's message and
        stops the page (nothing is stored).
    """
    uploads = st.file_uploader(UPLOAD_LABEL, type=None, accept_multiple_files=True)
    if not uploads:
        st.info(empty_message)
        st.stop()
    if len(uploads) > MAX_FILES_PER_SCAN:
        st.error(f"Give one file, or two (anterior and posterior); got {len(uploads)}.")
        st.stop()
    files = [(u.name, u.getvalue()) for u in uploads]
    try:
        scan = read_uploaded(files)
    except ScanReadError as exc:
        st.error(str(exc))
        st.stop()
    return files, scan
