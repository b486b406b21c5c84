"""Centre profiles: the camera, protocol, population and export a phantom case comes from.

Every phantom case is drawn at a *centre*. The training data come from one centre,
:data:`TRAINING` (the settings the phantom always had); :data:`SECOND` is an external
centre whose settings lie outside the training ranges, to test how a model trained on
the first generalises (issue 24: "a second centre, simulated by the phantom; use
settings not used in training: other blur, counts, benign rates and export layouts").

What :data:`SECOND` changes, and why each is a plausible other centre:

* **Counts** 0.12-0.35 million per anterior view (training 0.3-1.5 M). A faster
  whole-body sweep (e.g. 20-30 cm/min to keep a busy camera's list short), a lower
  injected activity (weight-based or paediatric-style dosing, or 370 MBq after a long
  delay), or an older camera with a thin crystal and a degraded sensitivity all give
  a few hundred thousand counts a view: noisier images.
  The renderer's limits on either view's total follow (0.10-0.47 M, training
  0.25-2.0 M).
* **Blur** scale 1.7-2.3 (training 1.0-1.7) on every collimator FWHM: a
  general-purpose (LEGP) rather than high-resolution collimator, a large
  body-to-detector distance (no body contouring, a wide patient table or padding),
  or a fast sweep that widens the effective resolution along the scan direction.
* **Benign findings** x2.5 as often (capped at certain): an older, sicker or
  oncology-referral population with more degenerative disease, healed fractures,
  prostheses and catheters, and a department that injects through a cannula in the
  antecubital fossa with more extravasation and urine contamination. Growth plates
  are set by age, not by a rate, and are unchanged.
* **Export**: the view images are 8-bit JPEG (quality 85) of the same displays
  (:func:`core.phantom.export.export_style`) instead of lossless PNG, as a PACS or
  a workstation's "export to JPEG" writes them: compression artefacts on top of the
  display's 8-bit quantisation. They stay one whole-body view per file, 1024 x 256,
  so :func:`core.reading.readers.read_scan` reads them as single views and the
  LabelMe polygons still fit. The DICOM file still holds the counts.
* **Patients**: the same seed draws *other* patients at another centre (its own
  random streams, :attr:`CentreProfile.seed_stream`), and its case and patient ids
  carry the centre's name, so an external set never repeats a training patient even
  when it is made with the training seed, and the two datasets can be merged.

Cases of :data:`TRAINING` are exactly those the phantom made before centres existed
(the same draws, ids, files and truth, byte for byte); a case of any other centre
records its profile in its truth record under ``"centre"`` (:meth:`CentreProfile.as_dict`).
A training case's truth has no ``"centre"`` key, so old datasets stay unchanged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

#: How the view images of a dataset can be written (:mod:`core.phantom.export`).
EXPORTS: tuple[str, ...] = ("png", "jpeg")

_NAME = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True)
class CentreProfile:
    """The acquisition, population and export settings of one (simulated) centre.

    Attributes:
        name: Short lower-case name (letters and digits), e.g. ``"second"``; put in the
            case and patient ids of every centre but ``"training"``.
        counts_range: (low, high) total counts of the anterior view, drawn
            log-uniformly (the posterior view follows from the attenuation).
        count_limits: (smallest, largest) total counts of either view: the renderer
            rescales a scan whose posterior (or anterior) view falls outside
            (:func:`core.phantom.render.render`).
        blur_range: (low, high) scale of every collimator FWHM, drawn uniformly.
        benign_rate: Multiplies the probability of every benign kind but growth
            plates (:data:`core.phantom.findings.BENIGN_KINDS`), capped at 1.
        export: How the dataset's view images are written: ``"png"`` (lossless 8-bit
            display) or ``"jpeg"`` (the same display, JPEG at ``jpeg_quality``).
        jpeg_quality: JPEG quality (1-95) when ``export`` is ``"jpeg"``.
        seed_stream: Which random streams the centre draws from: 0 those of the
            training centre (the same seed gives the same patients), any other number
            streams of its own (other patients).
    """

    name: str
    counts_range: tuple[float, float]
    count_limits: tuple[float, float]
    blur_range: tuple[float, float]
    benign_rate: float = 1.0
    export: Literal["png", "jpeg"] = "png"
    jpeg_quality: int = 85
    seed_stream: int = 0

    def __post_init__(self) -> None:
        """Check every setting, naming the bad one.

        Raises:
            ValueError: If a setting is out of range.
        """
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name must be lower-case letters and digits, starting with a letter, "
                f"got {self.name!r}"
            )
        lo, hi = self.counts_range
        if not (math.isfinite(lo) and math.isfinite(hi) and 1e3 <= lo <= hi):
            raise ValueError(
                f"counts_range must be finite (low, high) with 1000 <= low <= high, "
                f"got {self.counts_range!r}"
            )
        lo, hi = self.count_limits
        c_lo, c_hi = self.counts_range
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= c_lo and c_hi <= hi):
            raise ValueError(
                f"count_limits must be finite (smallest, largest) around counts_range "
                f"{self.counts_range!r}, got {self.count_limits!r}"
            )
        lo, hi = self.blur_range
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.5 <= lo <= hi <= 4.0):
            raise ValueError(
                f"blur_range must be (low, high) with 0.5 <= low <= high <= 4, "
                f"got {self.blur_range!r}"
            )
        if not (math.isfinite(self.benign_rate) and 0.0 <= self.benign_rate <= 10.0):
            raise ValueError(f"benign_rate must be within 0-10, got {self.benign_rate!r}")
        if self.export not in EXPORTS:
            raise ValueError(f"export must be one of {EXPORTS}, got {self.export!r}")
        if not (isinstance(self.jpeg_quality, int) and 1 <= self.jpeg_quality <= 95):
            raise ValueError(f"jpeg_quality must be an integer 1-95, got {self.jpeg_quality!r}")
        if not (isinstance(self.seed_stream, int) and 0 <= self.seed_stream < 1000):
            raise ValueError(f"seed_stream must be an integer 0-999, got {self.seed_stream!r}")

    @property
    def is_training(self) -> bool:
        """True for the training centre (ids and truth exactly as before centres)."""
        return self.name == TRAINING_NAME

    def as_dict(self) -> dict[str, Any]:
        """Return the profile as JSON-able data (what a case's truth records)."""
        out: dict[str, Any] = {
            "name": self.name,
            "counts_range": list(self.counts_range),
            "count_limits": list(self.count_limits),
            "blur_range": list(self.blur_range),
            "benign_rate": self.benign_rate,
            "export": self.export,
        }
        if self.export == "jpeg":
            out["jpeg_quality"] = self.jpeg_quality
        return out


#: Name of the training centre.
TRAINING_NAME = "training"

#: The centre every case came from before centres existed (the default).
TRAINING = CentreProfile(
    name=TRAINING_NAME,
    # 0.3-1.5 million counts a view (GE Discovery 670 files hold 0.36-0.68 M)
    counts_range=(0.3e6, 1.5e6),
    count_limits=(0.25e6, 2.0e6),
    blur_range=(1.0, 1.7),
)

#: An external centre with settings outside the training ranges (module docstring).
SECOND = CentreProfile(
    name="second",
    counts_range=(0.12e6, 0.35e6),
    # the training limits scaled alike (x 0.83 and x 1.33 of the range), so that the
    # training floor of 0.25 M does not lift the low-count scans back into training
    count_limits=(0.1e6, 0.47e6),
    blur_range=(1.7, 2.3),
    benign_rate=2.5,
    export="jpeg",
    jpeg_quality=85,
    seed_stream=1,
)

#: Centres by name.
CENTRES: dict[str, CentreProfile] = {c.name: c for c in (TRAINING, SECOND)}


def as_profile(centre: CentreProfile | None) -> CentreProfile:
    """Return ``centre``, or :data:`TRAINING` for None (the default of every phantom call).

    Args:
        centre: A profile or None.

    Returns:
        The profile.

    Raises:
        ValueError: If ``centre`` is neither (e.g. a name: use :func:`centre_named`).
    """
    if centre is None:
        return TRAINING
    if not isinstance(centre, CentreProfile):
        raise ValueError(f"centre must be a CentreProfile or None, got {centre!r}")
    return centre


def centre_named(name: str) -> CentreProfile:
    """Return the profile of :data:`CENTRES` called ``name`` (for the command line).

    Args:
        name: A key of :data:`CENTRES`.

    Returns:
        The profile.

    Raises:
        ValueError: If ``name`` is not a known centre.
    """
    if name not in CENTRES:
        raise ValueError(f"centre must be one of {tuple(CENTRES)}, got {name!r}")
    return CENTRES[name]
