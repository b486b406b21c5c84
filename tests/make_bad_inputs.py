"""Write the corpus of bad inputs under tests/bad_inputs/ (run from the repository root).

``python -m tests.make_bad_inputs`` rewrites every file and ``manifest.json``, which
says for each case the files (one, or an anterior/posterior pair) and the words its
refusal must hold. Files are kept small (the corpus is under 200 KB): views are 256 x 64
pixels (the smallest accepted are 64 per side) and the readers scale them up. Every
DICOM file carries a made-up PatientName and PatientID (:data:`SECRET_NAME`,
:data:`SECRET_ID`) that no message may repeat. The output is deterministic.
"""

from __future__ import annotations

import io
import itertools
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.uid import UID

from tests.readers_helpers import CT_STORAGE, MR_STORAGE, nm_dataset, phantom_counts

OUT = Path(__file__).resolve().parent / "bad_inputs"
#: Made-up identifying values written into every DICOM case; never in a message.
SECRET_NAME = "SECRETSURNAME^GIVENNAME"
SECRET_ID = "PID-7741-SECRET"
_WHO = {"PatientName": SECRET_NAME, "PatientID": SECRET_ID}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _png_zero_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG of zeros: a few KB that decode to width x height pixels."""
    row = b"\0" + b"\0" * ((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", raw)
            + _chunk(b"IEND", b""))  # fmt: skip


def _png_with_text_bomb() -> bytes:
    """A small valid image with a zTXt chunk that inflates to 8 MB of text."""
    good = _image(_view(), "PNG")
    ztxt = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 8_000_000, 9))
    return good[:33] + ztxt + good[33:]  # after the 8-byte signature and 25-byte IHDR


def _view(seed: int = 0) -> np.ndarray:
    return phantom_counts(256, 64, top=250, seed=seed).astype(np.uint8)


def _image(pixels: np.ndarray, fmt: str, mode: str | None = None, **kw: object) -> bytes:
    im = Image.fromarray(pixels)
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _jpeg_with_size(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 header declares another size."""
    data = bytearray(_image(_view(), "JPEG", quality=50))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _dicom(pixels: np.ndarray, **attrs: object) -> bytes:
    ds = nm_dataset(pixels, **{**_WHO, **attrs})  # type: ignore[arg-type]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def cases() -> list[tuple[str, dict[str, bytes], list[str]]]:
    """Return (case name, {file name: bytes}, words the refusal must hold)."""
    small_nm = _dicom(phantom_counts(96, 64))
    two_views = _dicom(
        np.stack([phantom_counts(96, 64, seed=3)] * 2), DetectorVector=[1, 2], NumberOfDetectors=2
    )
    good_png = _image(_view(), "PNG")
    good_jpeg = _image(_view(), "JPEG", quality=60)
    ct_pixels = (np.arange(64 * 64).reshape(64, 64) % 300).astype(np.uint16)
    short_pixels = small_nm[: len(small_nm) - 2000]  # pixel data shorter than declared
    return [
        # --- any file
        ("zero-byte dcm", {"empty.dcm": b""}, ["empty (0 bytes)"]),
        ("zero-byte png", {"empty.png": b""}, ["empty (0 bytes)"]),
        ("text renamed .dcm", {"report.dcm": b"Bone scan report: no abnormality.\n" * 8},
         ["not an image or DICOM file"]),
        ("text renamed .png", {"notes.png": b"patient notes\n" * 8}, ["not an image or DICOM"]),
        ("random bytes", {"noise.dcm": np.random.default_rng(1).bytes(3000)},
         ["not an image or DICOM"]),
        # --- DICOM
        ("DICOM truncated in the header", {"cut-header.dcm": small_nm[:300]}, ["truncated"]),
        ("DICOM truncated in the pixels", {"cut-pixels.dcm": small_nm[: len(small_nm) // 2]},
         ["truncated"]),
        ("two-view DICOM truncated", {"cut-two.dcm": two_views[: len(two_views) * 3 // 4]},
         ["truncated"]),
        ("DICOM preamble then garbage", {"garbage.dcm": b"\0" * 128 + b"DICM"
                                         + np.random.default_rng(2).bytes(2000)},
         ["DICOM file"]),
        ("DICOM pixel data shorter than declared", {"short.dcm": short_pixels},
         ["truncated"]),
        ("CT image", {"ct.dcm": _dicom(ct_pixels, modality="CT", sop_class=CT_STORAGE)},
         ["Modality CT", "not a nuclear-medicine"]),
        ("MR image", {"mr.dcm": _dicom(ct_pixels, modality="MR", sop_class=MR_STORAGE)},
         ["Modality MR", "not a nuclear-medicine"]),
        ("DICOM three frames", {"dynamic.dcm": _dicom(phantom_counts(64, 64),
                                                                NumberOfFrames=3)},
         ["3 frames"]),
        ("DICOM landscape", {"spot.dcm": _dicom(phantom_counts(64, 72))}, ["taller than wide"]),
        ("DICOM too small", {"tiny.dcm": _dicom(phantom_counts(40, 20))}, ["at least 64 pixels"]),
        ("DICOM huge declared size", {"huge.dcm": _dicom(phantom_counts(64, 64),
                                                         Rows=60000, Columns=30000)},
         ["too large", "million"]),
        ("DICOM all zero", {"zero.dcm": _dicom(np.zeros((72, 64)))}, ["blank"]),
        ("DICOM colour", {"colour.dcm": _dicom(phantom_counts(64, 64), SamplesPerPixel=3)},
         ["colour"]),
        ("DICOM without pixel data", {"nopixels.dcm": _dicom_without_pixels()},
         ["holds no image data"]),
        ("DICOM pair of two patients",
         {"a_ant.dcm": small_nm, "b_post.dcm": _dicom(phantom_counts(96, 64, seed=4),
                                                      PatientID="OTHER-SECRET-ID")},
         ["different patient"]),
        ("DICOM and PNG as a pair", {"a_ant.png": good_png, "b_post.dcm": _dicom_without_pixels()},
         ["both be DICOM files or both exported images"]),
        # --- exported images: sizes and damage
        ("PNG declaring 20000 x 20000", {"huge.png": _png_header_only(20000, 20000)},
         ["too large", "million"]),
        ("PNG declaring 65535 x 65535 16-bit", {"huge16.png": _png_header_only(65535, 65535, 16)},
         ["too large", "million"]),
        ("PNG 1-bit zero bomb 6000 x 6600", {"bomb.png": _png_zero_bomb(6000, 6600)},
         ["blank"]),
        ("PNG 1-bit bomb over the limit", {"bomb-big.png": _png_zero_bomb(9000, 9000)},
         ["too large"]),
        ("PNG text-chunk bomb", {"textbomb.png": _png_with_text_bomb()}, ["damaged"]),
        ("JPEG declaring 60000 x 60000", {"huge.jpg": _jpeg_with_size(60000, 60000)},
         ["too large"]),
        ("JPEG declaring 7000 x 7000", {"big.jpg": _jpeg_with_size(7000, 7000)},
         ["too large", "49 million"]),
        ("PNG truncated", {"cut.png": _image(np.random.default_rng(3).integers(
            0, 255, (256, 64), dtype=np.uint8), "PNG")[:3000]}, ["truncated"]),
        ("JPEG truncated", {"cut.jpg": good_jpeg[: len(good_jpeg) // 3]}, ["truncated"]),
        ("PNG bad checksum", {"crc.png": good_png[:29] + b"\0\0\0\0" + good_png[33:]},
         ["damaged"]),
        ("PNG wrong dimensions (landscape)", {"wide.png": _image(phantom_counts(64, 200)
                                                                 .astype(np.uint8), "PNG")},
         ["neither one whole-body view"]),
        ("PNG too small", {"thumb.png": _image(phantom_counts(100, 30).astype(np.uint8), "PNG")},
         ["at least 64 pixels"]),
        # --- exported images: odd modes
        ("PNG palette (P), blank", {"palette.png": _image(np.full((256, 64), 9, np.uint8), "PNG",
                                                          mode="P")}, ["blank"]),
        ("PNG grey+alpha (LA), blank", {"la.png": _image(np.full((256, 64), 200, np.uint8),
                                                         "PNG", mode="LA")}, ["blank"]),
        ("PNG 16-bit (I;16) landscape", {"wide16.png": _image(
            (phantom_counts(64, 300) * 100).astype(np.uint16), "PNG")},
         ["neither one whole-body view"]),
        ("PNG 16-bit (I;16) blank", {"flat16.png": _image(np.full((256, 64), 4000, np.uint16),
                                                          "PNG")}, ["blank"]),
        ("JPEG CMYK, blank", {"cmyk.jpg": _image(np.full((256, 64), 128, np.uint8), "JPEG",
                                                 mode="CMYK")}, ["blank"]),
        ("JPEG CMYK landscape", {"cmyk-wide.jpg": _image(phantom_counts(64, 200)
                                                         .astype(np.uint8), "JPEG", mode="CMYK")},
         ["neither one whole-body view"]),
        ("PNG pair with a blank posterior",
         {"same_ant.png": good_png, "same_post.png": _image(np.full((256, 64), 0, np.uint8),
                                                            "PNG")}, ["blank"]),
    ]  # fmt: skip


def _dicom_without_pixels() -> bytes:
    ds = nm_dataset(phantom_counts(128, 64), **_WHO)
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def write_corpus(out: Path = OUT) -> int:
    """Rewrite the corpus in ``out`` (its files and ``manifest.json``); return the cases."""
    import tests.readers_helpers as helpers

    uids = (f"1.2.826.0.1.3680043.10.1234.{i}" for i in itertools.count(1))
    saved = helpers.generate_uid

    def next_uid(*_: object, **__: object) -> UID:
        return UID(next(uids))

    helpers.generate_uid = next_uid  # reproducible UIDs
    try:
        made = cases()
    finally:
        helpers.generate_uid = saved
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    manifest = []
    for index, (name, files, words) in enumerate(made):
        stored = []
        for file_name, data in files.items():
            target = f"{index:02d}-{file_name}"
            (out / target).write_bytes(data)
            stored.append([file_name, target])
        manifest.append({"case": name, "files": stored, "refusal_words": words})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return len(manifest)


def main() -> None:
    """Rewrite tests/bad_inputs/ and say how many cases and bytes it holds."""
    n = write_corpus()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{n} cases, {total / 1000:.0f} KB in {OUT}")


if __name__ == "__main__":
    main()
