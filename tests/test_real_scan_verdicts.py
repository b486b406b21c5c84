"""The quality gate's verdicts on the 17 real exports beside the project, when present.

The real scans may never enter the repository (``../shared/real-scans`` on the team's
machine, or ``$BONESCAN_REAL_SCANS``); without them this test is skipped. With them, the
gate must keep its verdicts: 137 and 317 noise only, 345 not a whole-body scan, every
other one passes (586, a wrapped-around bladder, with a caution), and each view is read
as one whole-body view with no burned-in text found.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.imaging.quality import assess
from core.reading.layout import find_layout, to_heat
from core.reading.readers import read_scan

REAL = Path(
    os.environ.get("BONESCAN_REAL_SCANS", Path(__file__).resolve().parents[2] / "shared/real-scans")
)
EXPECTED = {"137": "noise_only", "317": "noise_only", "345": "not_whole_body"}

pytestmark = pytest.mark.skipif(
    not (REAL / "ant").is_dir(), reason="the real scans are not beside the project"
)


def _names() -> list[str]:
    if not (REAL / "ant").is_dir():
        return []
    return sorted(p.stem for p in (REAL / "ant").glob("*.jpg"))


@pytest.mark.parametrize("name", _names())
def test_gate_verdict_is_unchanged(name: str) -> None:
    scan = read_scan(REAL / "ant" / f"{name}.jpg", REAL / "post" / f"{name}.jpg")
    verdict = assess(scan)
    assert verdict.code == EXPECTED.get(name, "ok"), (name, verdict.reason)
    if name == "586":
        assert verdict.cautions and "bladder" in verdict.cautions[0]


@pytest.mark.parametrize("name", _names())
def test_each_view_is_one_body_without_text(name: str) -> None:
    if name in EXPECTED:
        pytest.skip("not a diagnostic whole-body scan")
    for view in ("ant", "post"):
        pixels = np.asarray(Image.open(REAL / view / f"{name}.jpg").convert("L"))
        layout = find_layout(to_heat(pixels, False, 8), lossy=True)
        assert layout.kind == "single", (name, view)
        assert not layout.text.any(), (name, view)
