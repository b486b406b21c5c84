"""One view's overlay picture as a DICOM Secondary Capture image with a burned-in caption.

Every PACS viewer shows an RGB Secondary Capture, including those that cannot render
a structured report, so the figures a physician needs beside the picture are burned
into its pixels: a black band above the picture carries the caption of
:func:`caption` (the view, BSTBI, hotspot count, that it is a decision aid, the model).
The band is drawn with Pillow's default font at a size scaled to the picture's width
and wrapped to fit it.

The image joins the source's study (same Study Instance UID and patient module) in a
new series (Modality OT), and references the source instance in its Source Image
Sequence.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from core.config import VIEWS
from core.dicom_results.summary import RESULTS_MANUFACTURER, ResultSummary, SourceStudy

#: Secondary Capture Image Storage SOP class.
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
#: Series description of the overlay images.
OVERLAY_SERIES_DESCRIPTION = "Bone scan burden overlays"
#: The statement every caption carries.
DECISION_AID = "decision aid, not a diagnosis"
#: Added to the caption of a scan that passed the quality gate with cautions.
CAUTION_NOTE = "quality caution: see report"
#: Caption band colours: white text on black, unlike the display's white background.
BAND_RGB = (0, 0, 0)
TEXT_RGB = (255, 255, 255)
#: Purpose of reference of the source image (DICOM CID 7202).
_SOURCE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")
# Derivation Description is ST: at most 1024 characters.
_ST_MAX = 1024


def caption(summary: ResultSummary, view: str) -> str:
    """Return the caption burned into a view's overlay image.

    Args:
        summary: The analysis' figures.
        view: ``"ANT"`` or ``"POST"``.

    Returns:
        E.g. ``"ANT | BSTBI 0.123 | BSI 1.25 % | 7 hotspots | decision aid, not a
        diagnosis | model v1"`` (the BSI only when reported); BSTBI and hotspots read
        "not reported" when the scan failed the
        quality gate, and the verdict's reason is added then; a scan that passed with
        quality cautions gets :data:`CAUTION_NOTE` (the cautions themselves are in the
        report: the caption has little room).

    Raises:
        ValueError: If ``view`` is not one of :data:`core.config.VIEWS`.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    bstbi = "not reported" if summary.bstbi is None else f"{summary.bstbi:.3f}"
    if summary.hotspots is None:
        hotspots = "hotspots not reported"
    else:
        hotspots = f"{summary.hotspots} hotspot{'' if summary.hotspots == 1 else 's'}"
    parts = [view, f"BSTBI {bstbi}"]
    if summary.bsi is not None:
        # only when reported: without a skeleton there is no BSI, and the caption has
        # no room to say why (the report says what is left out)
        parts.append(f"BSI {summary.bsi:.2f} %")
    parts.append(hotspots)
    if not summary.quality_ok:
        parts.append(f"quality: {summary.quality}")
    elif summary.quality_cautions:
        parts.append(CAUTION_NOTE)
    parts += [DECISION_AID, f"model {summary.model_version}"]
    return " | ".join(parts)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled default font, at the given pixel size where FreeType is present
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> list[str]:
    """Greedy word wrap by rendered width; a word wider than a line is split."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:
            if line and font.getlength(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    if line:
        lines.append(line)
    return lines


def with_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """Return the picture with a caption band above it.

    Args:
        rgb: uint8 (rows, cols, 3) picture.
        text: The caption; wrapped to the picture's width.

    Returns:
        uint8 (band + rows, cols, 3): a black band with the caption in white, then
        the picture unchanged.

    Raises:
        ValueError: If ``rgb`` is not a uint8 (rows, cols, 3) array of at least
            64 columns, or ``text`` is empty.
    """
    picture = np.asarray(rgb)
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"rgb must be uint8 (rows, cols, 3), got {picture.dtype} {picture.shape}")
    cols = picture.shape[1]
    if cols < 64 or picture.shape[0] < 1:
        raise ValueError(f"rgb must have at least 64 columns and one row, got {picture.shape}")
    if not text.strip():
        raise ValueError("text must not be empty")
    size = max(12, round(cols / 18))
    margin = max(4, size // 2)
    line_height = round(size * 1.3)
    font = _font(size)
    lines = _wrap(text, font, cols - 2 * margin)
    band = Image.new("RGB", (cols, 2 * margin + line_height * len(lines)), BAND_RGB)
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, fill=TEXT_RGB, font=font)
    return np.concatenate([np.asarray(band, dtype=np.uint8), picture], axis=0)


def _now() -> tuple[str, str]:
    now = dt.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _copy_source(ds: Dataset, source: SourceStudy) -> None:
    """Write the source's patient and study attributes into a result dataset.

    Args:
        ds: The result (changed in place).
        source: The analysed instance's identity.
    """
    header = source.to_dataset()
    for keyword in (
        "SpecificCharacterSet",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        if keyword in header:
            setattr(ds, keyword, header[keyword].value)


def overlay_capture(
    source: SourceStudy,
    summary: ResultSummary,
    rgb: np.ndarray,
    *,
    view: str,
    series_uid: str,
    instance_number: int,
    series_number: int = 901,
    sop_instance_uid: str | None = None,
    source_frame: int | None = None,
    manufacturer: str = RESULTS_MANUFACTURER,
) -> Dataset:
    """Build the Secondary Capture image of one view's overlay picture.

    Args:
        source: The analysed instance (its study, patient and UIDs are copied).
        summary: The figures the caption shows.
        rgb: uint8 (rows, cols, 3) overlay picture of ``view``
            (:func:`core.imaging.overlay.overlay_rgb`: metastasis red, bladder green).
        view: ``"ANT"`` or ``"POST"``.
        series_uid: SeriesInstanceUID of the overlay series (shared by both views).
        instance_number: InstanceNumber within that series (>= 1).
        series_number: SeriesNumber of the overlay series.
        sop_instance_uid: SOPInstanceUID of the new image; generated when None.
        source_frame: The source's frame this view was read from (1-based), when known,
            for the Source Image Sequence.
        manufacturer: Manufacturer of the software that made the image.

    Returns:
        The image as a dataset with file meta (Explicit VR Little Endian), ready for
        ``pydicom.dcmwrite`` or a C-STORE.

    Raises:
        ValueError: If ``view``, ``rgb``, ``series_uid``, ``instance_number`` or
            ``source_frame`` is invalid.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if not UID(series_uid).is_valid:
        raise ValueError(f"series_uid is not a valid UID: {series_uid!r}")
    if series_uid == source.series_instance_uid:
        raise ValueError("series_uid must name a new series, not the source's")
    if isinstance(instance_number, bool) or instance_number < 1:
        raise ValueError(f"instance_number must be >= 1, got {instance_number!r}")
    if source_frame is not None and source_frame < 1:
        raise ValueError(f"source_frame must be >= 1 or None, got {source_frame!r}")
    pixels = with_caption(rgb, caption(summary, view))
    sop_uid = UID(sop_instance_uid) if sop_instance_uid else generate_uid()
    date, time = _now()

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE_STORAGE)
    file_meta.MediaStorageSOPInstanceUID = sop_uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = file_meta
    _copy_source(ds, source)
    ds.SOPClassUID = SECONDARY_CAPTURE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    # General Series, General Equipment, SC Equipment
    ds.Modality = "OT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = OVERLAY_SERIES_DESCRIPTION
    ds.SeriesDate = date
    ds.SeriesTime = time
    # an unpaired body part: without it validators ask for Laterality
    ds.BodyPartExamined = "WHOLEBODY"
    ds.Manufacturer = manufacturer
    ds.ConversionType = "WSD"
    ds.SecondaryCaptureDeviceManufacturer = manufacturer
    # General Image, SC Image
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ""
    ds.ContentDate = date
    ds.ContentTime = time
    ds.DateOfSecondaryCapture = date
    ds.TimeOfSecondaryCapture = time
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = (
        f"{view} view of the bone scan, display image with the lesion (metastasis) "
        "pixels in red and bladder in green as reviewed (the model's masks with the "
        "physician's changes, if any), caption burned in above. "
        f"Model {summary.model_version}, weights sha256 {summary.weights_sha256}. "
        "Decision aid, not a diagnosis."
    )[:_ST_MAX]
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.sop_class_uid
    reference.ReferencedSOPInstanceUID = source.sop_instance_uid
    if source_frame is not None:
        reference.ReferencedFrameNumber = source_frame
    purpose = Dataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = _SOURCE_PURPOSE
    reference.PurposeOfReferenceCodeSequence = DicomSequence([purpose])
    ds.SourceImageSequence = DicomSequence([reference])
    ds.BurnedInAnnotation = "YES"
    ds.ImageComments = caption(summary, view)
    ds.LossyImageCompression = "00"
    # Image Pixel
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds
