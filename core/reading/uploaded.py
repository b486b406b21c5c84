"""Turning uploaded files (name + bytes) into a scan, for pages and the command line."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from core.reading.readers import read_scan, view_from_name
from core.scan import Scan

#: At most this many files make one scan (a two-frame file, or an ANT/POST pair).
MAX_FILES_PER_SCAN = 2


def read_uploaded(files: Sequence[tuple[str, bytes]]) -> Scan:
    """Read one scan from uploaded files.

    Args:
        files: ``(file name, content)`` pairs: one file (DICOM, export, composite) or
            two (the anterior and posterior views, in either order when their names
            say which is which, else anterior first).

    Returns:
        The scan, exactly as :func:`core.reading.readers.read_scan` reads it.

    Raises:
        ScanReadError: If the files cannot be read as one scan (the message names
            the file and the reason).
        ValueError: If ``files`` is empty or holds more than two files.
    """
    if not 1 <= len(files) <= MAX_FILES_PER_SCAN:
        raise ValueError(f"files must hold 1 or 2 files, got {len(files)}")
    with tempfile.TemporaryDirectory(prefix="bonescan-upload-") as tmp:
        paths = []
        for i, (name, content) in enumerate(files):
            # Keep the user's file name: readers take the view from it and name it in
            # messages. A subfolder per file keeps two equal names apart.
            safe = Path(name).name or f"upload-{i}"
            folder = Path(tmp) / str(i)
            folder.mkdir()
            path = folder / safe
            path.write_bytes(content)
            paths.append(path)
        if len(paths) == 1:
            return read_scan(paths[0])
        if view_from_name(paths[0]) == "POST" or view_from_name(paths[1]) == "ANT":
            paths.reverse()
        return read_scan(paths[0], posterior=paths[1])


def sha256_of(files: Sequence[tuple[str, bytes]]) -> str:
    """Hex SHA-256 identifying the content of one or more files (order-independent)."""
    digests = sorted(hashlib.sha256(content).hexdigest() for _, content in files)
    return hashlib.sha256("".join(digests).encode()).hexdigest()
