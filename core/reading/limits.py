"""What every reader refuses alike: the error it raises, and images too small or too large."""

from __future__ import annotations

from pathlib import Path

from core.scan import ScanReadError

#: Smallest accepted image side, pixels (a whole-body view is 1024 x 256).
MIN_SIDE = 64
#: Largest accepted image, pixels in all frames; checked before decoding.
MAX_PIXELS = 40_000_000


def refusal(path: str | Path, reason: str) -> ScanReadError:
    """Return the error that refuses ``path`` for ``reason``.

    Args:
        path: The file refused; its name is what the message shows.
        reason: One sentence a physician understands, e.g. "the file is empty".

    Returns:
        A :class:`ScanReadError` with ``source`` the file name.
    """
    return ScanReadError(Path(path).name, reason)


def check_dimensions(path: str | Path, rows: int, cols: int, frames: int = 1) -> None:
    """Refuse an image too small to be a scan or too large to decode safely.

    Args:
        path: The file, for the message.
        rows: Image height, pixels.
        cols: Image width, pixels.
        frames: Number of frames (DICOM), >= 1.

    Raises:
        ScanReadError: If a side is under :data:`MIN_SIDE` or the image holds more than
            :data:`MAX_PIXELS` pixels in all.
    """
    if min(rows, cols) < MIN_SIDE:
        raise refusal(
            path,
            f"the image is only {cols} x {rows} pixels (width x height); a whole-body "
            f"view needs at least {MIN_SIDE} pixels on each side.",
        )
    total = rows * cols * max(frames, 1)
    if total > MAX_PIXELS:
        raise refusal(
            path,
            f"the image is too large to read safely ({cols} x {rows} pixels"
            + (f" x {frames} frames" if frames > 1 else "")
            + f", {total / 1e6:.0f} million pixels; the limit is {MAX_PIXELS // 1_000_000}"
            " million).",
        )
