"""GE Discovery NM/CT 670 whole-body files: two frames named only by their position.

Real files from the paper's camera family carry no View Code Sequence; their
``ImageID`` is "WholeBody", each frame is 256 x 1024 at 2.4 mm, and a view holds
0.36-0.68 million counts with maxima of 38-252. A generated file of the same shape and
tags must be read as anterior then posterior, say so in the notes, and pass the gate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.imaging.quality import assess
from core.phantom.generate import generate_case
from core.reading.readers import read_scan
from tests.readers_helpers import nm_dataset, write_dataset

#: Counts per view of the real files (anterior, posterior), within 0.36-0.68 million.
VIEW_COUNTS = (0.42e6, 0.55e6)


@pytest.fixture(scope="module")
def ge_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    case = generate_case(8, 2)
    frames = []
    for view, total in zip(("ANT", "POST"), VIEW_COUNTS, strict=True):
        a = case.views[view].astype(np.float64)
        frames.append(np.round(a * total / a.sum()))
    pixels = np.stack(frames).astype(np.uint16)
    ds = nm_dataset(
        pixels,
        ImageID="WholeBody",
        Manufacturer="GE MEDICAL SYSTEMS",
        ManufacturerModelName="Discovery NM/CT 670",
        PixelSpacing=[2.4, 2.4],
        PatientID="GE-TEST-1",
    )
    path = write_dataset(tmp_path_factory.mktemp("ge") / "wb.dcm", ds)
    return path, {"ANT": pixels[0], "POST": pixels[1]}


def test_the_generated_file_has_the_real_files_figures(
    ge_file: tuple[Path, dict[str, np.ndarray]],
) -> None:
    _, frames = ge_file
    for frame in frames.values():
        assert frame.shape == (1024, 256)
        assert 0.36e6 <= frame.sum() <= 0.68e6
        assert 38 <= frame.max() <= 252


def test_frames_are_anterior_then_posterior_by_position(
    ge_file: tuple[Path, dict[str, np.ndarray]],
) -> None:
    path, frames = ge_file
    scan = read_scan(path)
    assert list(scan.views) == ["ANT", "POST"]
    for view in ("ANT", "POST"):
        assert np.array_equal(scan.views[view], frames[view].astype(np.float32))
    assert sum("by its position" in n for n in scan.meta.notes) == 2
    assert scan.meta.pixel_spacing_mm == pytest.approx((2.4, 2.4))
    assert scan.meta.manufacturer == "GE MEDICAL SYSTEMS"


def test_the_gate_passes_it(ge_file: tuple[Path, dict[str, np.ndarray]]) -> None:
    verdict = assess(read_scan(ge_file[0]))
    assert verdict.ok, verdict.reason
