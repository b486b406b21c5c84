"""How a view is cut into classifier crops, and how crops gate the segmentation.

**Crops.** The classifier sees 256 x 256 crops (:data:`CROP_SIZE`). A 1024 x 256
view is covered by crops whose top-left corners step by :data:`CROP_STRIDE` = 128
rows: rows 0, 128, ..., 768, i.e. 7 crops per view, each overlapping its
neighbours by half, so any finding up to 128 rows tall lies wholly inside at least
one crop. Along an axis the last crop is put flush with the far edge when the
stride does not land there, so every pixel is in at least one crop for any size.

**Scan probability.** A label's probability for a scan is the maximum of that
label's crop probabilities over the crops of all its views (both ANT and POST);
the scan is positive for the label when that maximum is >= the label's threshold
(the paper's 0.5, unless the classifier card holds a calibrated one:
:attr:`core.networks.models.ClassifierConfig.label_thresholds`).

**Gating.** The segmenter's mask counts only where the classifier found the label,
crop by crop: a pixel the segmenter calls metastasis is kept only if it lies in at
least one crop *of the same view* whose metastasis probability is >= the metastasis
threshold (the union of those crops); bladder pixels likewise with the bladder probability.
Pixels that fail the gate become background (0), not the other label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.config import COLS, LABEL_BACKGROUND, LABEL_BLADDER, LABEL_METASTASIS, ROWS

#: Side of a classifier crop, pixels.
CROP_SIZE = 256
#: Step between crop origins along the rows, pixels (half a crop: 7 crops per view).
CROP_STRIDE = 128
#: Probability at or above which a label is called present.
THRESHOLD = 0.5
#: Classifier outputs, in column order: (metastasis, bladder).
CLASSIFIER_LABELS: tuple[str, str] = ("metastasis", "bladder")
#: The mask value of each classifier output, same order.
CLASSIFIER_MASK_VALUES: tuple[int, int] = (LABEL_METASTASIS, LABEL_BLADDER)


def _axis_starts(length: int, size: int, stride: int) -> list[int]:
    if size >= length:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def crop_origins(
    shape: tuple[int, int] = (ROWS, COLS), size: int = CROP_SIZE, stride: int = CROP_STRIDE
) -> list[tuple[int, int]]:
    """Return the top-left corners of the crops that cover a view.

    Args:
        shape: (rows, columns) of the view; each at least ``size``.
        size: Side of the square crops, pixels (> 0).
        stride: Step between origins along each axis, pixels (1 <= stride <= size, so
            that crops leave no gap).

    Returns:
        ``[(row, col), ...]`` in row-major order. For the default 1024 x 256 view:
        ``[(0, 0), (128, 0), ..., (768, 0)]`` (7 crops).

    Raises:
        ValueError: If ``size`` or ``stride`` is out of range or the view is smaller
            than a crop.
    """
    rows, cols = shape
    if size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    if not 1 <= stride <= size:
        raise ValueError(f"stride must be in [1, size={size}], got {stride}")
    if rows < size or cols < size:
        raise ValueError(f"shape {shape} is smaller than a {size} x {size} crop")
    return [
        (r, c) for r in _axis_starts(rows, size, stride) for c in _axis_starts(cols, size, stride)
    ]


def extract_crops(
    view: np.ndarray, origins: Sequence[tuple[int, int]], size: int = CROP_SIZE
) -> np.ndarray:
    """Cut crops out of one view.

    Args:
        view: 2-D array (rows, columns), any dtype.
        origins: Top-left corners, e.g. from :func:`crop_origins`; each crop must lie
            inside the view.
        size: Side of the square crops.

    Returns:
        Array (len(origins), size, size) of ``view``'s dtype (a copy).

    Raises:
        ValueError: If ``view`` is not 2-D or a crop leaves the view.
    """
    a = np.asarray(view)
    if a.ndim != 2:
        raise ValueError(f"view must be 2-D, got shape {a.shape}")
    out = np.empty((len(origins), size, size), dtype=a.dtype)
    for i, (r, c) in enumerate(origins):
        if r < 0 or c < 0 or r + size > a.shape[0] or c + size > a.shape[1]:
            raise ValueError(f"origins[{i}]={(r, c)} puts a {size} crop outside {a.shape}")
        out[i] = a[r : r + size, c : c + size]
    return out


def scan_probabilities(crop_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Combine crop probabilities into the scan's probability of each label (the max).

    Args:
        crop_probs: One array per view, each (n_crops, n_labels) with values in
            [0, 1]; the views of one scan.

    Returns:
        float array (n_labels,): for each label the maximum over every crop of every
        view.

    Raises:
        ValueError: If ``crop_probs`` is empty, an array is not 2-D, holds no crop,
            or the label counts differ.
    """
    if not crop_probs:
        raise ValueError("crop_probs must hold at least one view")
    arrays = [np.asarray(p, dtype=np.float64) for p in crop_probs]
    if any(p.ndim != 2 or p.shape[0] == 0 for p in arrays):
        raise ValueError("each crop_probs entry must be (n_crops >= 1, n_labels)")
    if len({p.shape[1] for p in arrays}) != 1:
        raise ValueError("crop_probs entries must have the same number of labels")
    return np.concatenate(arrays, axis=0).max(axis=0)


def gate_mask(
    mask: np.ndarray,
    crop_probs: np.ndarray,
    origins: Sequence[tuple[int, int]],
    size: int = CROP_SIZE,
    threshold: float | Sequence[float] = THRESHOLD,
    label_values: Sequence[int] = CLASSIFIER_MASK_VALUES,
) -> np.ndarray:
    """Keep a segmented label only inside the crops where the classifier found it.

    Args:
        mask: uint8 (rows, columns) label mask of one view (0 background, 1
            metastasis, 2 bladder), the segmenter's answer.
        crop_probs: (n_crops, n_labels) classifier probabilities of that view's
            crops; column j belongs to ``label_values[j]``.
        origins: Top-left corner of each crop, same order as ``crop_probs``' rows.
        size: Side of the square crops.
        threshold: A crop opens the gate of a label when its probability is
            ``>= threshold``: one value for every label, or one per label (same order
            as ``label_values``).
        label_values: Mask value of each classifier column; default
            (metastasis=1, bladder=2).

    Returns:
        uint8 mask of ``mask``'s shape: pixels of label ``label_values[j]`` outside
        the union of crops with ``crop_probs[:, j] >= threshold[j]`` are set to 0; all
        other pixels unchanged.

    Raises:
        ValueError: If shapes disagree (``crop_probs`` rows vs ``origins``, columns vs
            ``label_values``), ``mask`` is not 2-D, or a threshold is not in [0, 1] or
            their number is not that of ``label_values``.
    """
    m = np.asarray(mask)
    p = np.asarray(crop_probs, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    if p.ndim != 2 or p.shape[0] != len(origins) or p.shape[1] != len(label_values):
        raise ValueError(f"crop_probs must be ({len(origins)}, {len(label_values)}), got {p.shape}")
    given = np.asarray(threshold, dtype=np.float64)
    if given.ndim > 1 or (given.ndim == 1 and len(given) != len(label_values)):
        raise ValueError(f"threshold must be one value or one per label, got {threshold!r}")
    if not ((given >= 0.0) & (given <= 1.0)).all():
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    t = np.broadcast_to(given, (len(label_values),))
    out = m.astype(np.uint8, copy=True)
    for j, value in enumerate(label_values):
        allowed = np.zeros(m.shape, dtype=bool)
        for (r, c), prob in zip(origins, p[:, j], strict=True):
            if prob >= t[j]:
                allowed[r : r + size, c : c + size] = True
        out[(m == value) & ~allowed] = LABEL_BACKGROUND
    return out
