"""Small generated inputs for the reader tests (images and DICOM files built in tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

NM_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


def phantom_counts(
    rows: int = 1024, cols: int = 256, *, top: int = 200, seed: int = 0
) -> np.ndarray:
    """A black background with a body stripe (about top/4), a spine and two hot spots (top).

    Returns an integer array (rows, cols) in [0, top]; background 0 covers most pixels.
    """
    rng = np.random.default_rng(seed)
    a = np.zeros((rows, cols), dtype=np.int64)
    c0, c1 = cols * 3 // 8, cols * 5 // 8
    r0, r1 = rows // 16, rows * 15 // 16
    a[r0:r1, c0:c1] = top // 4
    a[r0:r1, cols // 2 - 2 : cols // 2 + 2] = top // 2
    a[rows // 4 : rows // 4 + 6, c0 + 4 : c0 + 10] = top
    a[rows // 2 : rows // 2 + 5, c1 - 10 : c1 - 4] = top
    noise = rng.integers(0, 3, size=a.shape)
    return np.clip(a + noise * (a > 0), 0, top)


def nm_dataset(
    pixels: np.ndarray,
    *,
    modality: str | None = "NM",
    sop_class: str = NM_STORAGE,
    **attributes: Any,
) -> Dataset:
    """A minimal uncompressed DICOM dataset of ``pixels``: (rows, cols) or (frames, rows, cols)."""
    frames = pixels[None] if pixels.ndim == 2 else pixels
    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = UID(sop_class)
    uid = generate_uid()
    file_meta.MediaStorageSOPInstanceUID = uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = file_meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    if modality is not None:
        ds.Modality = modality
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    if frames.shape[0] > 1:
        ds.NumberOfFrames = frames.shape[0]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = frames.astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def write_dataset(path: Path, ds: Dataset) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path
