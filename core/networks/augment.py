"""Training augmentation that suits planar whole-body bone scans.

Applied to a batch of raw count crops with their views' reference levels
(:func:`core.imaging.normalise.reference_level`) and label masks, on whatever device the
batch is on (so a GPU does it too), in this order:

1. **Count thinning** (with probability ``thin_prob``): every pixel's count is
   replaced by a binomial draw ``Binomial(round(counts), keep)``, ``keep`` uniform
   in ``thin_range``: exactly what a shorter acquisition or a smaller dose gives
   (a Poisson image thinned is Poisson with the lower mean), so noise grows as it
   would. The reference scales with ``keep``. Views whose reference is below
   :data:`MIN_THIN_REFERENCE` counts (already scaled exports) are not thinned.
2. **Intensity scaling**: the reference is divided by a log-uniform factor from
   ``intensity_range``; this mimics a view whose 99.9th percentile sits on the
   bladder or a hot lesion rather than on bone, which shifts every ratio.
3. **Normalisation** (:func:`core.imaging.normalise.normalise_tensor`).
4. **Geometry**: a small random scale (``scale_range``) and shift (``shift``, a
   fraction of each side), and a left-right flip (``flip_prob``). A mirrored
   whole-body view is still a plausible whole-body view (a posterior view is an
   anterior view mirrored), so left-right is the only flip. The image is resampled
   bilinearly, the mask by nearest neighbour with the *same* grid; outside the
   crop is 0 (no counts, background).

**Export and camera augmentation** (all off by default, so :class:`AugmentConfig`
and :data:`NO_AUGMENTATION` behave as before; :data:`TRANSFER_AUGMENTATION` turns
them on to help networks trained on the synthetic phantom transfer to real scans).
Each is applied per item with its own probability, at these places in the order
above:

* **Resolution blur** (``blur_prob``, before thinning): a Gaussian blur with sigma
  uniform in ``blur_sigma`` pixels on the counts, for collimator and resolution
  differences; before thinning because the camera blurs before Poisson noise.
* **Display export** (``export_prob``, after thinning, before intensity scaling):
  what a PNG/JPEG screenshot of a viewer does. ``counts / reference`` is windowed
  with a top ``w`` (log-uniform in ``export_window``), clipped to [0, 1], raised to a
  gamma (uniform in ``export_gamma``) and quantised to 8 bits (``round(v * 255)``).
  The 8-bit values become the new counts; the new reference is
  ``255 * min(1, 1 / w) ** gamma``, the image of the old reference under the same
  monotone map, which is exactly the 99.9th percentile the reader would find in the
  export (percentiles commute with monotone maps) up to the rounding. No JPEG.
* **Anisotropic stretch** (``stretch``, in the geometry): the aspect ratio changes by
  a factor log-uniform in ``[1 / (1 + stretch), 1 + stretch]`` (x and y zoom
  differently), for other pixel sizes and matrix resamplings; masks use the same grid.
* **Burned-in labels and borders** (``label_prob``, ``border_prob``, last, on the
  normalised input): a block of short bright bars like text in a random corner, at or
  above the crop's maximum (up to 2), and a 1-3 pixel bright or mid-grey line along
  one edge like a panel border. Their mask pixels are 0: they teach that labels are
  not lesions. Polarity is not augmented: the reader fixes it before the networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional

from core.imaging.normalise import normalise_tensor

#: Views with a reference below this many counts are never thinned (not Poisson counts).
MIN_THIN_REFERENCE = 20.0


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation (see the module docstring).

    Attributes:
        thin_prob: Probability that an item is thinned.
        thin_range: (low, high) fraction of counts kept when thinned, in (0, 1].
        intensity_range: (low, high) factor on counts/reference, log-uniform, > 0.
        scale_range: (low, high) zoom factor; > 1 enlarges the anatomy.
        shift: Largest shift as a fraction of each side, in [0, 0.5).
        flip_prob: Probability of a left-right flip.
        blur_prob: Probability of a resolution blur (0: never).
        blur_sigma: (low, high) Gaussian sigma in pixels, uniform, >= 0.
        export_prob: Probability of an 8-bit display export (0: never).
        export_window: (low, high) window top as a multiple of the reference,
            log-uniform, > 0.
        export_gamma: (low, high) display gamma, uniform, > 0.
        stretch: Largest relative aspect-ratio change, in [0, 0.5) (0: none).
        label_prob: Probability of a burned-in text label in a corner.
        border_prob: Probability of a burned-in border line along an edge.
    """

    thin_prob: float = 0.5
    thin_range: tuple[float, float] = (0.5, 1.0)
    intensity_range: tuple[float, float] = (0.75, 1.33)
    scale_range: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.05
    flip_prob: float = 0.5
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 1.5)
    export_prob: float = 0.0
    export_window: tuple[float, float] = (0.5, 1.5)
    export_gamma: tuple[float, float] = (0.6, 1.5)
    stretch: float = 0.0
    label_prob: float = 0.0
    border_prob: float = 0.0

    def __post_init__(self) -> None:
        probs = ("thin_prob", "flip_prob", "blur_prob", "export_prob", "label_prob", "border_prob")
        for name in probs:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.thin_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"thin_range must satisfy 0 < low <= high <= 1, got {self.thin_range}")
        for name in ("intensity_range", "scale_range"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if not 0.0 <= self.shift < 0.5:
            raise ValueError(f"shift must be in [0, 0.5), got {self.shift}")
        lo, hi = self.blur_sigma
        if not 0.0 <= lo <= hi:
            raise ValueError(f"blur_sigma must satisfy 0 <= low <= high, got {self.blur_sigma}")
        for name in ("export_window", "export_gamma"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if not 0.0 <= self.stretch < 0.5:
            raise ValueError(f"stretch must be in [0, 0.5), got {self.stretch}")


#: No augmentation at all (validation, tests).
NO_AUGMENTATION = AugmentConfig(
    thin_prob=0.0,
    thin_range=(1.0, 1.0),
    intensity_range=(1.0, 1.0),
    scale_range=(1.0, 1.0),
    shift=0.0,
    flip_prob=0.0,
)

#: The standard ranges plus the export and camera augmentation (phantom -> real scans).
TRANSFER_AUGMENTATION = AugmentConfig(
    blur_prob=0.5,
    export_prob=0.5,
    stretch=0.3,
    label_prob=0.3,
    border_prob=0.3,
)

#: Named presets, for the command line (``--augment``).
AUGMENTATION_PRESETS: dict[str, AugmentConfig] = {
    "standard": AugmentConfig(),
    "transfer": TRANSFER_AUGMENTATION,
}


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, dev: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)


def thin_counts(counts: torch.Tensor, keep: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Binomially thin counts: each count ``c`` becomes ``Binomial(round(c), keep)``.

    Args:
        counts: Counts >= 0, float, shape (N, ...).
        keep: Fraction kept per item, shape (N,), values in [0, 1].
        gen: Random generator on ``counts``' device.

    Returns:
        float32 tensor of ``counts``' shape holding whole numbers; its mean is
        ``keep * round(counts)``.
    """
    c = counts.float().clamp_min(0).round()
    p = keep.float().reshape((-1,) + (1,) * (c.ndim - 1)).expand_as(c).contiguous()
    return torch.binomial(c, p, generator=gen)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each item with its own Gaussian (separable, edges replicated).

    Args:
        x: Images (N, 1, H, W), float.
        sigma: Sigma in pixels per item, shape (N,), >= 0 (0 leaves the item as it is).

    Returns:
        float32 (N, 1, H, W); each item's sum is kept away from the edges.
    """
    n = x.shape[0]
    top = float(sigma.max()) if n else 0.0
    if top <= 0:
        return x.float()
    radius = max(1, math.ceil(3 * top))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    # a tiny sigma gives a one-hot kernel (exp underflows to 0 off centre), not NaN
    s = sigma.float().clamp_min(1e-6)[:, None]
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = k / k.sum(1, keepdim=True)
    y = x.float().reshape(1, n, x.shape[2], x.shape[3])
    y = functional.pad(y, (radius, radius, 0, 0), mode="replicate")
    y = functional.conv2d(y, k[:, None, None, :], groups=n)
    y = functional.pad(y, (0, 0, radius, radius), mode="replicate")
    y = functional.conv2d(y, k[:, None, :, None], groups=n)
    return y.reshape(x.shape)


def display_export(
    counts: torch.Tensor, reference: torch.Tensor, window: torch.Tensor, gamma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn counts into an 8-bit display export, as a viewer's screenshot would.

    Args:
        counts: Counts (N, 1, H, W), float, >= 0.
        reference: Each item's reference level, shape (N,), > 0.
        window: Window top per item as a multiple of the reference, shape (N,), > 0.
        gamma: Display gamma per item, shape (N,), > 0.

    Returns:
        (levels float32 (N, 1, H, W) holding whole numbers 0..255, the export's
        reference ``255 * min(1, 1 / window) ** gamma`` of shape (N,)): the reference
        mapped like every pixel, i.e. the percentile the reader finds in the export.
    """
    shape = (-1, 1, 1, 1)
    top = (window.float() * reference.float().clamp_min(1e-6)).reshape(shape)
    v = (counts.float() / top).clamp(0.0, 1.0) ** gamma.float().reshape(shape)
    levels = torch.round(v * 255.0)
    new_ref = 255.0 * (1.0 / window.float()).clamp(max=1.0) ** gamma.float()
    return levels, new_ref


def burn_in(
    x: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw burned-in text labels and border lines on normalised inputs.

    Args:
        x: Normalised inputs (N, 1, H, W) in [0, 2].
        masks: Label masks (N, H, W), integer.
        cfg: Its ``label_prob`` and ``border_prob`` say how often.
        gen: Random generator on ``x``'s device.

    Returns:
        (inputs, masks) with the drawn pixels set and their mask pixels 0.
    """
    n, _, h, w = x.shape
    dev = x.device
    x, masks = x.clone(), masks.clone()
    top = x.reshape(n, -1).amax(1) if n else x.new_zeros(0)
    if cfg.label_prob > 0:
        chosen = torch.rand(n, generator=gen, device=dev) < cfg.label_prob
        u = torch.rand(n, 4, generator=gen, device=dev).tolist()
        # text: lines of short bars (cells on with p 0.55); rows 1 and 3 stay gaps
        cells = torch.rand(n, 5, 12, generator=gen, device=dev) < 0.55
        cells[:, 1::2] = False
        for i in chosen.nonzero().flatten().tolist():
            bh = max(5, round(h * (0.04 + 0.08 * u[i][0])))
            bw = max(6, round(w * (0.15 + 0.25 * u[i][1])))
            bh, bw = min(bh, h), min(bw, w)
            corner = min(3, int(4 * u[i][2]))
            r0 = 0 if corner < 2 else h - bh
            c0 = 0 if corner % 2 == 0 else w - bw
            pattern = functional.interpolate(
                cells[i][None, None].float(), size=(bh, bw), mode="nearest"
            )[0, 0].bool()
            value = float(top[i]) + (2.0 - float(top[i])) * u[i][3]
            region = x[i, 0, r0 : r0 + bh, c0 : c0 + bw]
            region[pattern] = max(value, float(top[i]))
            masks[i, r0 : r0 + bh, c0 : c0 + bw][pattern] = 0
    if cfg.border_prob > 0:
        chosen = torch.rand(n, generator=gen, device=dev) < cfg.border_prob
        u = torch.rand(n, 4, generator=gen, device=dev).tolist()
        for i in chosen.nonzero().flatten().tolist():
            thick = 1 + min(2, int(3 * u[i][0]))
            edge = min(3, int(4 * u[i][1]))
            bright = u[i][2] < 0.5
            t = float(top[i])
            value = t + (2.0 - t) * u[i][3] if bright else 0.4 + 0.6 * u[i][3]
            rows, cols = slice(0, h), slice(0, w)
            if edge == 0:
                rows = slice(0, thick)
            elif edge == 1:
                rows = slice(h - thick, h)
            elif edge == 2:
                cols = slice(0, thick)
            else:
                cols = slice(w - thick, w)
            x[i, 0, rows, cols] = value
            masks[i, rows, cols] = 0
    return x, masks


def geometric_grid(
    n: int, shape: tuple[int, int], cfg: AugmentConfig, gen: torch.Generator, dev: torch.device
) -> torch.Tensor:
    """Draw random scale/stretch/shift/flip transforms as a sampling grid.

    Args:
        n: Batch size.
        shape: (H, W) of the crops.
        cfg: Ranges.
        gen: Random generator on ``dev``.
        dev: Device of the grid.

    Returns:
        float32 grid (n, H, W, 2) for :func:`torch.nn.functional.grid_sample`
        (``align_corners=False``); the identity grid samples pixels exactly.
    """
    lo, hi = cfg.scale_range
    zoom = torch.exp(_uniform(n, math.log(lo), math.log(hi), gen, dev))
    flip = torch.rand(n, generator=gen, device=dev) < cfg.flip_prob
    sign = torch.where(flip, -1.0, 1.0)
    tx = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, gen, dev)
    ty = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, gen, dev)
    # drawn last and only when asked, so that configs without it give the same grids
    aspect = torch.ones(n, device=dev)
    if cfg.stretch > 0:
        half = math.log(1.0 + cfg.stretch) / 2
        aspect = torch.exp(_uniform(n, -half, half, gen, dev))
    theta = torch.zeros(n, 2, 3, device=dev)
    # the grid maps output to input coordinates, so a zoom of z samples 1/z of the input;
    # x zooms by zoom * aspect and y by zoom / aspect, so the aspect ratio changes by
    # aspect ** 2, within [1 / (1 + stretch), 1 + stretch]
    theta[:, 0, 0] = sign / (zoom * aspect)
    theta[:, 1, 1] = aspect / zoom
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    return functional.affine_grid(theta, [n, 1, shape[0], shape[1]], align_corners=False)


def augment_batch(
    counts: torch.Tensor,
    reference: torch.Tensor,
    masks: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment and normalise a batch of count crops and move their masks with them.

    Args:
        counts: Raw counts (N, 1, H, W), float, >= 0.
        reference: Reference level of each item's whole view, shape (N,), > 0 for
            real views.
        masks: Label masks (N, H, W), integer (0 background, 1 metastasis,
            2 bladder).
        cfg: Augmentation ranges; :data:`NO_AUGMENTATION` only normalises.
        gen: Random generator on ``counts``' device.

    Returns:
        (inputs float32 (N, 1, H, W) in [0, 2], masks int64 (N, H, W)).

    Raises:
        ValueError: If the shapes disagree.
    """
    if counts.ndim != 4 or counts.shape[1] != 1:
        raise ValueError(f"counts must be (N, 1, H, W), got {tuple(counts.shape)}")
    n, _, h, w = counts.shape
    if tuple(masks.shape) != (n, h, w) or tuple(reference.shape) != (n,):
        raise ValueError(
            f"masks must be {(n, h, w)} and reference ({n},), "
            f"got {tuple(masks.shape)} and {tuple(reference.shape)}"
        )
    dev = counts.device
    ref = reference.float().clone()
    x = counts.float()
    if cfg.blur_prob > 0:
        sigma = _uniform(n, cfg.blur_sigma[0], cfg.blur_sigma[1], gen, dev)
        chosen = torch.rand(n, generator=gen, device=dev) < cfg.blur_prob
        x = gaussian_blur(x, torch.where(chosen, sigma, torch.zeros_like(sigma)))
    if cfg.thin_prob > 0:
        keep = _uniform(n, cfg.thin_range[0], cfg.thin_range[1], gen, dev)
        chosen = (torch.rand(n, generator=gen, device=dev) < cfg.thin_prob) & (
            ref >= MIN_THIN_REFERENCE
        )
        keep = torch.where(chosen, keep, torch.ones_like(keep))
        if bool(chosen.any()):
            thinned = thin_counts(x[chosen], keep[chosen], gen)
            x = x.clone()
            x[chosen] = thinned
            ref = ref * keep
    if cfg.export_prob > 0:
        lo, hi = cfg.export_window
        window = torch.exp(_uniform(n, math.log(lo), math.log(hi), gen, dev))
        gamma = _uniform(n, cfg.export_gamma[0], cfg.export_gamma[1], gen, dev)
        chosen = torch.rand(n, generator=gen, device=dev) < cfg.export_prob
        levels, new_ref = display_export(x, ref, window, gamma)
        x = torch.where(chosen.reshape(n, 1, 1, 1), levels, x)
        ref = torch.where(chosen, new_ref, ref)
    lo, hi = cfg.intensity_range
    if lo != 1.0 or hi != 1.0:
        ref = ref / torch.exp(_uniform(n, math.log(lo), math.log(hi), gen, dev))
    x = normalise_tensor(x, ref.reshape(n, 1, 1, 1))
    m = masks.long()
    if not (
        cfg == NO_AUGMENTATION
        or (
            cfg.scale_range == (1.0, 1.0)
            and cfg.shift == 0
            and cfg.flip_prob == 0
            and cfg.stretch == 0
        )
    ):
        grid = geometric_grid(n, (h, w), cfg, gen, dev)
        x = functional.grid_sample(
            x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        m = functional.grid_sample(
            m[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
        m = m[:, 0].round().long()
    if cfg.label_prob > 0 or cfg.border_prob > 0:
        x, m = burn_in(x, m, cfg, gen)
    return x, m
