"""The four display images with their label masks drawn over them, for every page.

Pages (upload, review, patient) show a study the same way: ANT and POST at grey levels
1 and 2, in four columns, metastasis red and bladder green (:mod:`core.imaging.overlay`), at
an opacity the user picks with :func:`opacity_slider`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import streamlit as st

from core.config import VIEWS
from core.imaging.display import GREY_LEVELS
from core.imaging.overlay import overlay_rgb

#: The legend under the images, in the overlay colours (Streamlit's colour names).
LEGEND = (
    ":red-background[metastasis] in red, :green-background[bladder] in green: filled at "
    "the chosen opacity, outlines always drawn"
)
#: The opacity the slider starts at.
DEFAULT_OPACITY = 0.4


def overlay_images(
    display: Mapping[tuple[str, int], np.ndarray],
    masks: Mapping[str, np.ndarray],
    opacity: float,
    highlight: Mapping[str, np.ndarray] | None = None,
) -> dict[tuple[str, int], np.ndarray]:
    """Draw each view's mask over its display images.

    Args:
        display: ``{(view, grey level): uint8 display image}``
            (:func:`core.imaging.display.display_images`).
        masks: ``{view: uint8 label mask}``; a view without one is shown without overlay.
        opacity: Fill opacity in [0, 1] (outlines are always drawn).
        highlight: ``{view: bool array}`` regions outlined in yellow (e.g. new lesions).

    Returns:
        ``{(view, level): uint8 (rows, cols, 3) RGB}`` in ``VIEWS`` x ``GREY_LEVELS``
        order, for the images present in ``display``.

    Raises:
        ValueError: If ``opacity`` is outside [0, 1], or a mask or highlight names a view
            without display images or does not match their shape.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    views = {v for v, _ in display}
    for name, per_view in (("masks", masks), ("highlight", highlight or {})):
        extra = set(per_view) - views
        if extra:
            raise ValueError(f"{name} names views without display images: {sorted(extra)}")
    return {
        (v, g): overlay_rgb(
            display[(v, g)],
            masks.get(v),
            opacity,
            highlight=None if highlight is None else highlight.get(v),
        )
        for v in VIEWS
        for g in GREY_LEVELS
        if (v, g) in display
    }


def show_overlays(
    display: Mapping[tuple[str, int], np.ndarray],
    masks: Mapping[str, np.ndarray],
    opacity: float,
    highlight: Mapping[str, np.ndarray] | None = None,
    caption_extra: Mapping[tuple[str, int], str] | None = None,
) -> None:
    """Show the display images with their overlays in four columns, and the legend.

    Args:
        display: ``{(view, grey level): uint8 display image}``.
        masks: ``{view: uint8 label mask}`` (0 background, 1 metastasis, 2 bladder).
        opacity: Fill opacity in [0, 1].
        highlight: ``{view: bool array}`` regions outlined in yellow.
        caption_extra: Text added to an image's caption, e.g. ``{("ANT", 1): "BSTBI 0.012"}``.

    Raises:
        ValueError: As :func:`overlay_images`.
    """
    pictures = overlay_images(display, masks, opacity, highlight)
    extra = caption_extra or {}
    # Always four columns, so a view keeps its proportions whether one or two are shown.
    for column, ((view, level), rgb) in zip(st.columns(4), pictures.items(), strict=False):
        caption = f"{view}, grey level {level}"
        if (view, level) in extra:
            caption += f" · {extra[(view, level)]}"
        column.image(rgb, caption=caption)
    st.caption(LEGEND + (" · new lesions outlined in yellow" if highlight else ""))


def opacity_slider(key: str, *, label: str = "Overlay opacity") -> float:
    """A slider for the overlays' fill opacity (0 = outlines only, 1 = solid colour).

    Args:
        key: The page's session-state key for it (a ``ui.common.Keys`` constant).
        label: The slider's label.

    Returns:
        The opacity in [0, 1].
    """
    return float(
        st.slider(
            label, 0.0, 1.0, DEFAULT_OPACITY, step=0.05, key=key, help="0 shows outlines only"
        )
    )
