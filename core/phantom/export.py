"""Write phantom cases as a labelled dataset in the project's format.

Layout of ``write_dataset(out, cases)`` (see :mod:`core.reading.dataset`)::

    out/
      cases.csv                          core.reading.dataset.write_cases_csv
      images/<case_id>_ANT.png  (+ .json, the LabelMe polygons of the ANT mask;
                                 .jpg for a centre that exports JPEG)
      images/<case_id>_POST.png (+ .json)
      dicom/<case_id>.dcm                two-frame DICOM NM (core.reading.dicom.write_nm_dicom)
      truth/<case_id>.json               the truth record, plus how the images were exported
      layouts/<case_id>-<layout>.png|jpg  only with ``layouts=True``: the views as real
                                         workstations export them (core.phantom.layouts),
                                         each with its layout truth (.json beside it);
                                         a single-view layout as two files,
                                         <case_id>-<layout>_ANT.png|jpg and ..._POST

View images are 8-bit PNG in one of two exports, chosen per case from its id
(deterministic, about :data:`BLACK_FRACTION` of the cases black):

* ``"grey-level-1"`` — the paper's display: :func:`core.imaging.display.grey_level_1`
  (white background, hot = dark). The project's reader takes it as counts
  ``255 - pixel`` and flags it as grey level 1.
* ``"hot-bright"`` — the common export: black background, hot = bright, counts
  scaled linearly so that the view's maximum becomes 40 to 120 (also from the id),
  ``pixel = round(counts * that / max)``.

A case's centre (:mod:`core.phantom.centres`) says how the views are written:
``"png"`` (lossless; the training centre, as always) or ``"jpeg"`` (the same 8-bit
display, JPEG at the centre's quality, one view per 1024 x 256 file as before, so
the LabelMe polygons still fit). The truth file's ``export`` then also holds
``format`` and ``jpeg_quality``.

The ``metastasis`` column of ``cases.csv`` is True when the scan *shows* a
metastasis (a metastasis pixel in a mask), which is what the labels teach.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from core.config import COLS, ROWS, VIEWS
from core.imaging.display import grey_level_1
from core.phantom.centres import CentreProfile, as_profile
from core.phantom.generate import PhantomCase, generate_case, generate_series, to_scan
from core.phantom.layouts import LAYOUTS, SINGLE_VIEW_LAYOUTS, render_layout, save_layout
from core.phantom.truth import jsonable, true_bstbi
from core.reading.dataset import Case, write_cases_csv
from core.reading.dicom import write_nm_dicom
from core.reading.labelme import write_labelme

#: Share of cases exported in the black-background (hot = bright) polarity.
BLACK_FRACTION = 0.2
#: Range of the maximum pixel value of a black-background export.
BLACK_MAX_RANGE = (40, 120)
#: Every third layout picture (by its seed) is a JPEG, at quality 60-95.
LAYOUT_JPEG_EVERY = 3

#: Radiopharmaceutical written into the DICOM files.
RADIOPHARMACEUTICAL = "Tc-99m Medronate (MDP)"


def export_style(case_id: str) -> tuple[str, int]:
    """Return how a case's images are exported: (``"grey-level-1"`` | ``"hot-bright"``, max).

    Deterministic from the case id (CRC-32), independent of the other cases.

    Args:
        case_id: The case id.

    Returns:
        The export and, for ``"hot-bright"``, the maximum pixel value (else 255).
    """
    h = zlib.crc32(case_id.encode("utf-8"))
    if (h % 1000) < BLACK_FRACTION * 1000:
        lo, hi = BLACK_MAX_RANGE
        return "hot-bright", lo + (h // 1000) % (hi - lo + 1)
    return "grey-level-1", 255


def view_image(counts: np.ndarray, style: str, top: int) -> np.ndarray:
    """Return the 8-bit image of one view in an export style.

    Args:
        counts: float (1024, 256) counts, hot = high.
        style: ``"grey-level-1"`` or ``"hot-bright"``.
        top: Maximum pixel value of a ``"hot-bright"`` export (1-255).

    Returns:
        uint8 (1024, 256) image.

    Raises:
        ValueError: If ``style`` is unknown.
    """
    if style == "grey-level-1":
        return grey_level_1(counts)
    if style != "hot-bright":
        raise ValueError(f"style must be 'grey-level-1' or 'hot-bright', got {style!r}")
    peak = float(np.max(counts))
    scaled = np.floor(np.asarray(counts, np.float64) * (top / peak if peak > 0 else 0.0) + 0.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def write_layouts(out: str | Path, case: PhantomCase) -> list[Path]:
    """Write a case's views in every layout of :data:`core.phantom.layouts.LAYOUTS`.

    Each picture's seed is the CRC-32 of ``"<case_id>/<layout>"``; a third of them
    (by seed) are JPEG at quality 60-95, the others PNG. Beside each picture its layout
    truth (panel boxes, view names, windows, labels) is written as JSON. A single-view
    layout (:data:`core.phantom.layouts.SINGLE_VIEW_LAYOUTS`) is written as two files
    of one export, the same seed for both, named ``<case_id>-<layout>_ANT`` and
    ``..._POST`` so that a reader knows the view from the name.

    Args:
        out: The dataset folder; pictures go to ``out/layouts``.
        case: The case.

    Returns:
        The pictures written.
    """
    folder = Path(out) / "layouts"
    written = []
    for layout in LAYOUTS:
        seed = zlib.crc32(f"{case.case_id}/{layout}".encode())
        quality = None if seed % LAYOUT_JPEG_EVERY else 60 + (seed // 7) % 36
        suffix = ".png" if quality is None else ".jpg"
        if layout in SINGLE_VIEW_LAYOUTS:
            for view in VIEWS:
                exported = render_layout(case.views, layout, seed, view=view)
                name = f"{case.case_id}-{layout}_{view}{suffix}"
                written.append(save_layout(folder / name, exported, quality))
            continue
        exported = render_layout(case.views, layout, seed)
        written.append(save_layout(folder / f"{case.case_id}-{layout}{suffix}", exported, quality))
    return written


def write_case(out: str | Path, case: PhantomCase, *, layouts: bool = False) -> Case:
    """Write one case's files (images, LabelMe, DICOM, truth) under ``out``.

    Args:
        out: The dataset folder (created if missing).
        case: The case.
        layouts: Also write the case in every workstation layout (:func:`write_layouts`).

    Returns:
        The :class:`core.reading.dataset.Case` row of ``cases.csv`` for it.
    """
    root = Path(out)
    for sub in ("images", "dicom", "truth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    style, top = export_style(case.case_id)
    jpeg = case.centre.export == "jpeg"
    paths: dict[str, Path] = {}
    for view in VIEWS:
        img_path = root / "images" / f"{case.case_id}_{view}{'.jpg' if jpeg else '.png'}"
        img = Image.fromarray(view_image(case.views[view], style, top), mode="L")
        if jpeg:
            img.save(img_path, format="JPEG", quality=case.centre.jpeg_quality)
        else:
            img.save(img_path)
        write_labelme(img_path.with_suffix(".json"), case.masks[view], img_path.name, (ROWS, COLS))
        paths[view] = img_path
    dcm = root / "dicom" / f"{case.case_id}.dcm"
    write_nm_dicom(
        dcm,
        to_scan(case),
        radiopharmaceutical=RADIOPHARMACEUTICAL,
        injected_mbq=case.truth.get("injected_mbq"),
        uid_seed=case.case_id,
    )
    truth = dict(case.truth)
    if truth.get("bstbi") is None:
        truth["bstbi"] = true_bstbi(case.views, case.masks)
    truth["export"] = {"images": style, "max_pixel": top, "dicom": f"dicom/{dcm.name}"}
    if jpeg:
        # only for JPEG, so that the training centre's truth files stay as they were
        truth["export"].update(format="jpeg", jpeg_quality=case.centre.jpeg_quality)
    (root / "truth" / f"{case.case_id}.json").write_text(
        json.dumps(jsonable(truth), indent=1), encoding="utf-8"
    )
    if layouts:
        write_layouts(root, case)
    p = case.patient
    return Case(
        case_id=case.case_id,
        patient_id=p.patient_id,
        age=float(p.age),
        sex=p.sex,
        scan_date=case.scan_date,
        primary=p.primary,
        metastasis=case.has_metastasis,
        anterior=paths["ANT"],
        posterior=paths["POST"],
        dicom=dcm,
    )


def write_dataset(out: str | Path, cases: Iterable[PhantomCase]) -> Path:
    """Write cases as a labelled dataset folder (layout in the module docstring).

    Args:
        out: The dataset folder (created if missing; existing files of the same
            cases are overwritten).
        cases: The phantom cases (ids must be unique).

    Returns:
        The path of ``cases.csv``.

    Raises:
        ValueError: If case ids repeat.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    rows = [write_case(root, c) for c in cases]
    return Path(write_cases_csv(root, rows))


def _one(args: tuple[str, int, int, bool, bool, CentreProfile]) -> list[Case]:
    out, seed, index, longitudinal, layouts, centre = args
    cases = (
        generate_series(seed, index, centre=centre)
        if longitudinal
        else [generate_case(seed, index, centre=centre)]
    )
    return [write_case(out, c, layouts=layouts) for c in cases]


def generate_dataset(
    out: str | Path,
    n: int,
    seed: int,
    *,
    longitudinal: bool = False,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    layouts: bool = False,
    centre: CentreProfile | None = None,
) -> Path:
    """Generate and write a phantom dataset: ``n`` cases (or ``n`` patients' series).

    Case ``i`` is :func:`~core.phantom.generate.generate_case` ``(seed, i)``; with
    ``longitudinal`` patient ``i`` is :func:`~core.phantom.generate.generate_series`
    ``(seed, i)`` (2 to 6 scans), both at ``centre``. The result does not depend on
    ``jobs``.

    Args:
        out: The dataset folder (created if missing).
        n: Number of cases, or of patients with ``longitudinal`` (>= 1).
        seed: Seed (integer >= 0).
        longitudinal: Write series instead of single scans.
        jobs: Worker processes (>= 1); 1 works in this process.
        progress: Called as ``progress(done, n)`` after each case or patient.
        layouts: Also write each case in every workstation layout (:func:`write_layouts`).
        centre: The centre every case is drawn at and exported as
            (:mod:`core.phantom.centres`); None is the training centre.

    Returns:
        The path of ``cases.csv``.

    Raises:
        ValueError: If ``n``, ``seed`` or ``jobs`` is out of range, or ``centre`` is
            not a profile.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs!r}")
    prof = as_profile(centre)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    tasks = [(str(root), seed, i, longitudinal, layouts, prof) for i in range(n)]
    rows: list[Case] = []
    if jobs == 1:
        for done, task in enumerate(tasks, 1):
            rows += _one(task)
            if progress:
                progress(done, n)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for done, part in enumerate(pool.map(_one, tasks, chunksize=4), 1):
                rows += part
                if progress:
                    progress(done, n)
    return Path(write_cases_csv(root, rows))
