from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from core.reading.dicom import read_dicom_views, write_nm_dicom
from core.reading.readers import read_scan
from core.scan import Scan, ScanReadError
from tests.readers_helpers import (
    CT_STORAGE,
    MR_STORAGE,
    SC_STORAGE,
    nm_dataset,
    phantom_counts,
    write_dataset,
)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(path: Path, *reason_words: str, posterior: Path | None = None) -> str:
    """Assert ``read_scan`` refuses, names the file and the reason, and writes nothing."""
    folder = path.parent if path.parent.exists() else path
    before = _snapshot(folder)
    with pytest.raises(ScanReadError) as info:
        read_scan(path, posterior=posterior)
    assert _snapshot(folder) == before, "a refused read changed files on disk"
    message = str(info.value)
    assert info.value.source in message
    for word in reason_words:
        assert word in message, message
    return message


def _png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height but holds almost no pixel data (cheap to make)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to decode pixels fail the test."""

    def boom(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)


# --- any file -------------------------------------------------------------------------


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "report.png"
    path.write_text("Whole-body bone scan: no abnormal uptake.\n" * 10)
    _refused(path, "report.png", "not an image or DICOM file")


def test_zero_byte_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    _refused(path, "empty.jpg", "empty (0 bytes)")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nowhere.png", "nowhere.png", "does not exist")


def test_same_file_twice_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png", phantom_counts().astype(np.uint8))
    _refused(path, "a.png", "same file", posterior=path)


def test_mixed_dicom_and_image_pair_is_refused(tmp_path: Path) -> None:
    png = _png(tmp_path / "a.png", phantom_counts().astype(np.uint8))
    dcm = write_dataset(tmp_path / "p.dcm", nm_dataset(phantom_counts()))
    _refused(png, "p.dcm", "both be DICOM files or both exported images", posterior=dcm)


# --- exported images ------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "fmt"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_truncated_image_is_refused(tmp_path: Path, suffix: str, fmt: str) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, size=(1024, 256), dtype=np.uint8)  # incompressible
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(noisy).save(whole, format=fmt)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _refused(cut, f"cut{suffix}", "truncated")


def test_too_small_image_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "thumb.png", phantom_counts(200, 50).astype(np.uint8))
    _refused(path, "thumb.png", "50 x 200 pixels", "at least 64 pixels")


def test_huge_png_is_refused_before_decoding(tmp_path: Path, no_decoding: None) -> None:
    path = _png_header_only(tmp_path / "huge.png", 20000, 20000)
    assert path.stat().st_size < 1000
    _refused(path, "huge.png", "too large", "40 million")


def test_large_png_under_pil_limit_is_refused_before_decoding(
    tmp_path: Path, no_decoding: None
) -> None:
    path = _png_header_only(tmp_path / "big.png", 6000, 8000)  # 48 Mpx
    _refused(path, "big.png", "too large", "6000 x 8000", "48 million")


def test_all_zero_image_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "black.png", np.zeros((1024, 256), dtype=np.uint8))
    _refused(path, "black.png", "blank", "value 0")


def test_all_white_image_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "white.png", np.full((1024, 256), 255, dtype=np.uint8))
    _refused(path, "white.png", "blank", "value 255")


def test_landscape_image_is_refused(tmp_path: Path) -> None:
    path = _png(tmp_path / "wide.png", phantom_counts(200, 600).astype(np.uint8))
    _refused(path, "wide.png", "600 x 200", "neither one whole-body view")


def test_composite_in_a_pair_is_refused(tmp_path: Path) -> None:
    single = _png(tmp_path / "a.png", phantom_counts().astype(np.uint8))
    composite = _png(tmp_path / "four.png", phantom_counts(1024, 1024).astype(np.uint8))
    _refused(single, "four.png", "four views side by side", posterior=composite)


# --- DICOM ----------------------------------------------------------------------------


@pytest.mark.parametrize(("modality", "sop"), [("CT", CT_STORAGE), ("MR", MR_STORAGE)])
def test_other_modalities_are_refused(tmp_path: Path, modality: str, sop: str) -> None:
    ds = nm_dataset(phantom_counts(512, 512), modality=modality, sop_class=sop)
    path = write_dataset(tmp_path / f"{modality.lower()}.dcm", ds)
    _refused(path, f"{modality.lower()}.dcm", f"Modality {modality}", "not a nuclear-medicine")


def test_secondary_capture_without_modality_is_refused(tmp_path: Path) -> None:
    ds = nm_dataset(phantom_counts(), modality=None, sop_class=SC_STORAGE)
    path = write_dataset(tmp_path / "sc.dcm", ds)
    _refused(path, "sc.dcm", "does not say that it is a nuclear-medicine")


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.999])
def test_truncated_dicom_is_refused(tmp_path: Path, keep: float) -> None:
    whole = tmp_path / "whole.dcm"
    counts = phantom_counts().astype(np.float32)
    write_nm_dicom(whole, Scan(views={"ANT": counts, "POST": counts}))
    data = whole.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: max(200, int(len(data) * keep))])
    _refused(cut, "cut.dcm", "truncated")


def test_text_renamed_dcm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scan.dcm"
    path.write_text("patient: anonymous\n" * 20)
    _refused(path, "scan.dcm", "not an image or DICOM file")
    with pytest.raises(ScanReadError, match=r"scan\.dcm: the file is not a DICOM file"):
        read_dicom_views(path)


def test_zero_byte_dcm_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nothing.dcm"
    path.touch()
    _refused(path, "nothing.dcm", "empty")
    with pytest.raises(ScanReadError, match="empty"):
        read_dicom_views(path)


def test_too_many_frames_are_refused(tmp_path: Path) -> None:
    frames = np.stack([phantom_counts(256, 64)] * 3)
    path = write_dataset(tmp_path / "dyn.dcm", nm_dataset(frames))
    _refused(path, "dyn.dcm", "3 frames")


def test_too_large_dicom_is_refused_from_its_header(tmp_path: Path) -> None:
    ds = nm_dataset(phantom_counts(128, 64))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 8192, 4096, 2  # 33.5 Mpx a frame, no data
    path = write_dataset(tmp_path / "big.dcm", ds)
    _refused(path, "big.dcm", "too large", "2 frames")


def test_landscape_dicom_is_refused(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "spot.dcm", nm_dataset(phantom_counts(256, 256)))
    _refused(path, "spot.dcm", "taller than wide")


def test_small_dicom_is_refused(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "tiny.dcm", nm_dataset(phantom_counts(128, 32)))
    _refused(path, "tiny.dcm", "at least 64 pixels")


def test_all_zero_dicom_is_refused(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "zero.dcm", nm_dataset(np.zeros((1024, 256))))
    _refused(path, "zero.dcm", "blank", "no counts")


def test_two_anterior_views_are_refused(tmp_path: Path) -> None:
    counts = phantom_counts().astype(np.float32)
    a = tmp_path / "a.dcm"
    b = tmp_path / "b.dcm"
    write_nm_dicom(a, Scan(views={"ANT": counts}))
    write_nm_dicom(b, Scan(views={"ANT": counts}))
    _refused(a, "b.dcm", "both labelled as the ANT view", posterior=b)


def test_pair_from_two_patients_is_refused(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "a.dcm", nm_dataset(phantom_counts(), PatientID="1"))
    b = write_dataset(tmp_path / "b.dcm", nm_dataset(phantom_counts(), PatientID="2"))
    _refused(a, "b.dcm", "different patient", posterior=b)


def test_two_frame_file_as_one_of_a_pair_is_refused(tmp_path: Path) -> None:
    counts = phantom_counts().astype(np.float32)
    both = tmp_path / "both.dcm"
    write_nm_dicom(both, Scan(views={"ANT": counts, "POST": counts}))
    single = write_dataset(tmp_path / "one.dcm", nm_dataset(phantom_counts()))
    _refused(single, "both.dcm", "already holds two views", posterior=both)
