"""Label masks drawn over display images: the pictures every page and report shows.

Display images are the paper's convention (uint8, 0 = hottest, white background);
metastasis is red and bladder green everywhere in the product, filled at an
adjustable opacity and outlined at full strength so that a faint fill stays visible
on a dark hot spot.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from core.config import LABEL_BLADDER, LABEL_METASTASIS

#: RGB of each label's overlay.
LABEL_COLOURS: dict[int, tuple[int, int, int]] = {
    LABEL_METASTASIS: (220, 30, 30),
    LABEL_BLADDER: (20, 160, 60),
}
#: Hex colours of the same, for plots and legends.
LABEL_HEX: dict[int, str] = {k: "#{:02x}{:02x}{:02x}".format(*c) for k, c in LABEL_COLOURS.items()}


def outline(mask: np.ndarray) -> np.ndarray:
    """Return the boundary pixels of a boolean region (the pixels with an outside 4-neighbour).

    Args:
        mask: Boolean 2-D array.

    Returns:
        Boolean array of the same shape, True on the region's inner boundary.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    return m & ~ndimage.binary_erosion(m, border_value=0)


def overlay_rgb(
    display: np.ndarray,
    mask: np.ndarray | None,
    opacity: float = 0.5,
    *,
    highlight: np.ndarray | None = None,
    colours: Mapping[int, tuple[int, int, int]] = LABEL_COLOURS,
) -> np.ndarray:
    """Draw a label mask over a display image.

    Args:
        display: uint8 (rows, cols) display image, 0 = hottest (the paper's grey levels).
        mask: uint8 (rows, cols) label mask (0 background, 1 metastasis, 2 bladder), or
            None for the image alone.
        opacity: Fill opacity in [0, 1]; outlines are always drawn at full colour
            (0 shows outlines only).
        highlight: Optional boolean (rows, cols) region drawn with a thick yellow
            outline (e.g. new lesions, the selected lesion).
        colours: RGB per label.

    Returns:
        uint8 (rows, cols, 3) RGB picture.

    Raises:
        ValueError: If the shapes differ, the image is not 2-D uint8-like, or
            ``opacity`` is outside [0, 1].
    """
    img = np.asarray(display)
    if img.ndim != 2:
        raise ValueError(f"display must be 2-D, got shape {img.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    grey = np.clip(img, 0, 255).astype(np.float32)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != img.shape:
            raise ValueError(f"mask shape {m.shape} differs from display shape {img.shape}")
        for label, colour in colours.items():
            region = m == label
            if not region.any():
                continue
            c = np.asarray(colour, dtype=np.float32)
            rgb[region] = (1.0 - opacity) * rgb[region] + opacity * c
            rgb[outline(region)] = c
    if highlight is not None:
        h = np.asarray(highlight, dtype=bool)
        if h.shape != img.shape:
            raise ValueError(f"highlight shape {h.shape} differs from display shape {img.shape}")
        ring = ndimage.binary_dilation(h, iterations=3) & ~ndimage.binary_dilation(h)
        rgb[ring] = (250, 200, 0)
    return np.rint(rgb).astype(np.uint8)
