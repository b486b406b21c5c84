"""Training batches of the lesion network: augmented views, their inputs, crops.

The loop (a phantom cache, logging, evaluation, resuming) is ``scripts/train_lesion.py``;
what it is made of lives here so that tests call it.

A batch (:func:`make_batch`) is built from full views in the anterior orientation with
their exact skeleton maps and lesion masks:

0. *Paired hot spots* (:func:`add_paired_spots`): a pair of equally hot blobs at a
   bone pixel off the mid-line and at its mirror, labelled background. Real normal
   scans are hot on both sides at the sacroiliac joints, shoulders, knees and
   sternoclavicular joints, far more often than the phantom's degenerative findings
   are; the pairs teach that uptake matched by the other side is not a metastasis.
1. *Camera and export* (:func:`core.anatomy.training.camera_augment`): resolution blur,
   count thinning, 8-bit display export.
2. *Display gamma* on the counts relative to their reference level: another export's
   contrast curve, which changes every lesion's contrast to its bone.
3. *Left-right flip* of view, skeleton and mask together (the mirror channel is
   symmetric in the two sides, so nothing else changes).
4. *A coarse skeleton*: the exact map taken at half resolution and back (nearest), as
   the skeleton network sees it (512 x 128), so that training does not rely on a
   boundary the product never has.
5. The three inputs of :func:`core.networks.lesion_net.lesion_inputs`, on the whole
   view (the mirror and the region norm need all of it).
6. A crop: centred near a metastasis pixel (``lesion_share``), near a hot non-lesion
   pixel (``hot_share``: joints, benign findings, the bladder, which teach what is not
   a metastasis), else anywhere on the skeleton.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.anatomy.references import midline_column
from core.anatomy.regions import BACKGROUND, REGIONS
from core.anatomy.training import SkeletonAugment, camera_augment
from core.networks.lesion_net import bone_reference, lesion_inputs

#: Mask label of a metastasis pixel (as the phantom's masks and the product's).
METASTASIS = 1
#: A pixel this many times the normal-bone level is "hot" for the crop sampler.
HOT_RATIO = 1.8


def _camera() -> SkeletonAugment:
    # The skeleton's camera ranges, a little wider in counts (real exports reach
    # 0.3 M counts a view) and with exports half the time (most real scans arrive so).
    return SkeletonAugment(thin_keep=(0.1, 1.0), export_prob=0.4)


@dataclass(frozen=True)
class LesionAugment:
    """Ranges of the lesion network's training augmentation (module docstring).

    Attributes:
        camera: Blur, thinning and export ranges (:class:`SkeletonAugment`'s fields;
            its geometry fields are not used here).
        gamma_prob: Probability of a display gamma.
        gamma: (low, high) that gamma.
        flip_prob: Probability of a left-right flip.
        coarse_skeleton_prob: Probability that the skeleton map is coarsened.
        crop: (rows, cols) of the training crops; multiples of the network's stride.
        lesion_share: Share of crops centred near a metastasis pixel (when the view
            has one).
        hot_share: Share of crops centred near a hot pixel outside any metastasis.
        jitter: Largest offset (pixels) of a crop's centre from the chosen pixel.
        pair_prob: Probability that a view gets paired hot spots.
        pairs_mean: Mean number of pairs (Poisson, at least one) when it does.
        pair_ratio: (low, high) uptake of a spot over its bone, log-uniform.
        pair_sigma: (low, high) Gaussian sigma of a spot along its short axis, pixels;
            the long axis is up to 3 times it, at any angle (a crest, a joint line).
        pair_asymmetry: SD of the log ratio between the two sides' uptake: real pairs
            are seldom equal (one knee worse, the patient turned a little).
        pair_shift: Largest offset in rows (and half of it in columns) of the partner
            from the exact mirror.
        midline_share: Share of the drawn spots that are single spots on the mid-line
            of the face or the sternum (:data:`MIDLINE_SITES`) instead of a pair.
    """

    camera: SkeletonAugment = field(default_factory=_camera)
    gamma_prob: float = 0.3
    gamma: tuple[float, float] = (0.75, 1.33)
    flip_prob: float = 0.5
    coarse_skeleton_prob: float = 0.7
    crop: tuple[int, int] = (128, 128)
    lesion_share: float = 0.6
    hot_share: float = 0.3
    jitter: int = 48
    pair_prob: float = 0.6
    pairs_mean: float = 2.0
    pair_ratio: tuple[float, float] = (1.5, 6.0)
    pair_sigma: tuple[float, float] = (1.5, 5.0)
    pair_asymmetry: float = 0.3
    pair_shift: int = 6
    midline_share: float = 0.0


#: No augmentation, whole views (validation).
NO_AUGMENT = LesionAugment(
    camera=SkeletonAugment(blur_prob=0.0, thin_prob=0.0, export_prob=0.0),
    pair_prob=0.0,
    gamma_prob=0.0,
    flip_prob=0.0,
    coarse_skeleton_prob=0.0,
)


#: Spots of a pair sit at least this many columns off the mid-line (a spot on it is
#: its own mirror, as a vertebral metastasis is).
PAIR_MIN_OFFSET = 12


#: Where real normal scans are hot on both sides, and how often a pair is drawn there:
#: iliac crests and sacroiliac joints, shoulders (acromioclavicular joints, humeral
#: heads, scapulae), knees, costochondral junctions, hips, feet.
PAIR_SITES: dict[str, float] = {
    "pelvis": 0.3,
    "scapula": 0.1,
    "clavicle": 0.1,
    "humerus": 0.1,
    "knee": 0.1,
    "ribs": 0.15,
    "femur": 0.05,
    "foot": 0.05,
    "other": 0.05,
}
_BASE_OF = {r.index: r.base for r in REGIONS}

#: Where real normal scans are hot on the mid-line itself, and how often a mid-line spot
#: is drawn there: the face (nasal bones, maxilla, the mandible's symphysis: the lower
#: half of the skull's rows) and the sternum (manubrium, sternal angle). Such a spot is
#: its own mirror, as a vertebral metastasis is; its bone tells them apart. On the 17
#: real scans the shipped scorer kept two to six face marks on most adult scans.
MIDLINE_SITES: dict[str, float] = {"skull": 0.6, "sternum": 0.4}
#: How far (columns) a mid-line spot's centre may lie off the mid-line.
MIDLINE_JITTER = 3


def _pair_site(
    skeleton: np.ndarray, bone: tuple[np.ndarray, ...], rng: np.random.Generator
) -> tuple[int, int]:
    """A bone pixel for a paired spot, drawn by :data:`PAIR_SITES` (any bone for "other")."""
    names = list(PAIR_SITES)
    weights = np.array([PAIR_SITES[n] for n in names])
    base = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    if base != "other":
        labels = skeleton[bone]
        chosen = np.flatnonzero(np.isin(labels, [i for i, b in _BASE_OF.items() if b == base]))
        if chosen.size:
            k = int(chosen[int(rng.integers(0, chosen.size))])
            return int(bone[0][k]), int(bone[1][k])
    k = int(rng.integers(0, bone[0].size))
    return int(bone[0][k]), int(bone[1][k])


def _midline_site(
    skeleton: np.ndarray, mid: float, rng: np.random.Generator
) -> tuple[int, int] | None:
    """A (row, col) on the mid-line of the face or the sternum, or None without either."""
    names = list(MIDLINE_SITES)
    weights = np.array([MIDLINE_SITES[n] for n in names])
    base = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    labels = [i for i, b in _BASE_OF.items() if b == base]
    rows = np.flatnonzero(np.isin(skeleton, labels).any(axis=1))
    if rows.size == 0:
        return None
    if base == "skull":
        rows = rows[rows >= (rows[0] + rows[-1]) / 2]  # the face, not the vault
    r = int(rows[int(rng.integers(0, rows.size))])
    return r, round(mid + int(rng.integers(-MIDLINE_JITTER, MIDLINE_JITTER + 1)))


def _spot(
    rows: np.ndarray, cols: np.ndarray, at: tuple[int, int], long: float, short: float, angle: float
) -> np.ndarray:
    """An elongated Gaussian blob of peak 1 centred at ``at``."""
    u = (rows - at[0]) * np.cos(angle) + (cols - at[1]) * np.sin(angle)
    v = -(rows - at[0]) * np.sin(angle) + (cols - at[1]) * np.cos(angle)
    return np.exp(-0.5 * ((u / long) ** 2 + (v / short) ** 2))


def _spot_shape(aug: LesionAugment, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A spot's short and long Gaussian sigma, angle and uptake over its bone."""
    short = float(rng.uniform(*aug.pair_sigma))
    long = short * float(rng.uniform(1.0, 3.0))
    angle = float(rng.uniform(0.0, np.pi))
    lo, hi = np.log(aug.pair_ratio[0]), np.log(aug.pair_ratio[1])
    return short, long, angle, float(np.exp(rng.uniform(lo, hi)))


def add_paired_spots(
    view: np.ndarray,
    skeleton: np.ndarray,
    mask: np.ndarray,
    aug: LesionAugment,
    rng: np.random.Generator,
) -> np.ndarray:
    """Return the view with pairs of mirrored hot spots added on bone (step 0).

    Args:
        view: Counts, float (H, W), anterior orientation.
        skeleton: Its skeleton map, (H, W).
        mask: Its lesion mask; a spot that would touch a lesion or the bladder is not
            drawn, so the mask stays true.
        aug: ``pair_*`` ranges.
        rng: Random generator.

    Returns:
        float32 (H, W): the view plus Poisson counts of each spot.
    """
    if rng.random() >= aug.pair_prob:
        return view
    bone = np.nonzero(skeleton != BACKGROUND)
    if bone[0].size == 0:
        return view
    mid = midline_column(skeleton)
    ref = bone_reference(view, skeleton)
    h, w = view.shape
    rows, cols = np.mgrid[0:h, 0:w]
    expected = np.zeros((h, w), dtype=np.float64)
    for _ in range(max(1, int(rng.poisson(aug.pairs_mean)))):
        # (draws in the order of the pairs-only version, so that its data reproduce)
        if aug.midline_share > 0 and rng.random() < aug.midline_share:
            site = _midline_site(skeleton, mid, rng)
            if site is None:
                continue
            short, long, angle, ratio = _spot_shape(aug, rng)
            # symmetric about the mid-line: across it (a nasal bridge) or along it
            blob = _spot(rows, cols, site, long, short, float(rng.choice([0.0, np.pi / 2])))
            spot = (max(ratio, 1.2) - 1.0) * ref * blob
        else:
            r, c = _pair_site(skeleton, bone, rng)
            c2 = round(2 * mid - c)
            if abs(c - mid) < PAIR_MIN_OFFSET or not 0 <= c2 < w:
                continue
            short, long, angle, ratio = _spot_shape(aug, rng)
            other = ratio * float(np.exp(rng.normal(0.0, aug.pair_asymmetry)))
            # the partner mirrors the spot's shape (its angle flips) near the mirror point
            partner = (
                r + int(rng.integers(-aug.pair_shift, aug.pair_shift + 1)),
                c2 + int(rng.integers(-(aug.pair_shift // 2), aug.pair_shift // 2 + 1)),
            )
            spot = (max(ratio, 1.2) - 1.0) * ref * _spot(rows, cols, (r, c), long, short, angle)
            spot += (
                (max(other, 1.2) - 1.0)
                * ref
                * _spot(rows, cols, partner, long, short, np.pi - angle)
            )
        touched = spot > 0.05 * ref
        if (mask[touched] != 0).any():
            continue
        expected += spot
    if not expected.any():
        return view
    return (view + rng.poisson(expected)).astype(np.float32)


def coarse(skeleton: np.ndarray) -> np.ndarray:
    """Return a label map taken at half resolution and back (nearest neighbour)."""
    return np.repeat(np.repeat(skeleton[::2, ::2], 2, axis=0), 2, axis=1)[
        : skeleton.shape[0], : skeleton.shape[1]
    ]


def crop_origin(
    view: np.ndarray,
    skeleton: np.ndarray,
    mask: np.ndarray,
    aug: LesionAugment,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Choose the top-left (row, col) of a training crop of one view.

    Args:
        view: Counts, (H, W).
        skeleton: Its skeleton map, (H, W).
        mask: Its lesion mask, (H, W), metastasis = 1.
        aug: Crop size and shares.
        rng: Random generator.

    Returns:
        A crop origin inside the view.
    """
    h, w = view.shape
    ch, cw = aug.crop
    u = rng.random()
    candidates: tuple[np.ndarray, ...] = ()
    if u < aug.lesion_share:
        candidates = np.nonzero(mask == METASTASIS)
    elif u < aug.lesion_share + aug.hot_share:
        ref = bone_reference(view, skeleton)
        candidates = np.nonzero((view > HOT_RATIO * ref) & (mask != METASTASIS))
    if not candidates or candidates[0].size == 0:
        candidates = np.nonzero(skeleton != BACKGROUND)
    if candidates[0].size == 0:
        r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
    else:
        k = int(rng.integers(0, candidates[0].size))
        r, c = int(candidates[0][k]), int(candidates[1][k])
    r += int(rng.integers(-aug.jitter, aug.jitter + 1))
    c += int(rng.integers(-aug.jitter, aug.jitter + 1))
    top = int(np.clip(r - ch // 2, 0, h - ch))
    left = int(np.clip(c - cw // 2, 0, w - cw))
    return top, left


def make_batch(
    counts: np.ndarray,
    skeletons: np.ndarray,
    masks: np.ndarray,
    aug: LesionAugment,
    gen: torch.Generator,
    rng: np.random.Generator,
    *,
    whole: bool = False,
    crops_per_view: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build one training (or validation) batch.

    Several crops of each augmented view (``crops_per_view``) cost little more than one:
    the augmentation and the inputs of the whole view are most of a batch's time.

    Args:
        counts: float (B, 1024, 256) counts >= 0, anterior orientation.
        skeletons: uint8 (B, 1024, 256) exact skeleton maps of the same views.
        masks: uint8 (B, 1024, 256) lesion masks (0, 1 metastasis, 2 bladder).
        aug: Augmentation (:data:`NO_AUGMENT` for validation).
        gen: Torch generator (camera augmentation).
        rng: NumPy generator (gamma, flips, crops).
        whole: Return whole views instead of crops.
        crops_per_view: Crops cut from each view (>= 1; ignored when ``whole``).

    Returns:
        (inputs float32 (B * crops_per_view, 3, h, w), labels int64 (same, h, w)),
        a view's crops next to each other; ``(h, w)`` is ``aug.crop``, or the view's
        size (and one item per view) when ``whole``.
    """
    if crops_per_view < 1:
        raise ValueError(f"crops_per_view must be >= 1, got {crops_per_view}")
    if not (counts.shape == skeletons.shape == masks.shape) or counts.ndim != 3:
        raise ValueError(
            f"counts, skeletons and masks must share one (B, H, W) shape, got "
            f"{counts.shape}, {skeletons.shape}, {masks.shape}"
        )
    if aug.pair_prob > 0:
        counts = np.stack(
            [
                add_paired_spots(counts[i].astype(np.float32), skeletons[i], masks[i], aug, rng)
                for i in range(len(counts))
            ]
        )
    views, refs = camera_augment(
        torch.from_numpy(counts.astype(np.float32))[:, None], aug.camera, gen
    )
    x_all = views[:, 0].numpy()
    xs, ys = [], []
    for i in range(len(counts)):
        view, skel, mask = x_all[i], skeletons[i], masks[i]
        if rng.random() < aug.gamma_prob:
            ref = max(float(refs[i]), 1e-6)
            view = ref * (view / ref) ** float(rng.uniform(*aug.gamma))
        if rng.random() < aug.flip_prob:
            view, skel, mask = view[:, ::-1], skel[:, ::-1], mask[:, ::-1]
        if rng.random() < aug.coarse_skeleton_prob:
            skel = coarse(skel)
        view = np.ascontiguousarray(view, dtype=np.float32)
        skel = np.ascontiguousarray(skel)
        inputs = lesion_inputs(view, skel)
        if whole:
            xs.append(inputs)
            ys.append(np.ascontiguousarray(mask))
            continue
        for _ in range(crops_per_view):
            top, left = crop_origin(view, skel, mask, aug, rng)
            rows, cols = slice(top, top + aug.crop[0]), slice(left, left + aug.crop[1])
            xs.append(inputs[:, rows, cols])
            ys.append(np.ascontiguousarray(mask[rows, cols]))
    x = torch.from_numpy(np.stack(xs))
    y = torch.from_numpy(np.stack(ys).astype(np.int64))
    return x, y
