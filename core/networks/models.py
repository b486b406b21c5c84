"""The two diagnosis networks: configs, building (MONAI), saving and loading.

* **Classifier**: ResNet34 (He et al. 2016 topology: 7 x 7 stride-2 stem and 3 x 3
  stride-2 max-pool, then 3-4-6-3 basic blocks), one input channel, two logits
  whose sigmoids are P(metastasis) and P(bladder) of a 256 x 256 crop. MONAI's
  ``resnet34`` defaults to a stride-1 stem (4x the compute), so the stem is set
  explicitly.
* **Segmenter**: MONAI ``FlexibleUNet`` with a ResNet34 encoder, three output
  channels (background, metastasis, bladder) whose argmax is the label mask; it is
  fully convolutional and runs on the whole 1024 x 256 view. Its input sides must
  be multiples of 32 (five stride-2 stages).

Both read the input of :mod:`core.imaging.normalise`: float32 (N, 1, H, W) in [0, 2].

A model folder holds, per model ``<name>`` (``classifier``, ``segmenter``)::

    <dir>/<name>.safetensors   weights, float16 (integer buffers unchanged)
    <dir>/<name>.json          config, sha256 of the weights file, training data,
                               seed, metrics (filled by evaluation) and more

The sha256 is checked on every load; a mismatch is refused naming the file.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import FlexibleUNet, resnet34
from torch import nn

from core.anatomy.network import SKELETON, load_skeleton_network
from core.config import COLS, REPO_ROOT, ROWS, model_dir
from core.imaging.crops import CLASSIFIER_LABELS, CROP_SIZE, CROP_STRIDE, THRESHOLD
from core.imaging.normalise import NORMALISATION_NAME
from core.lesions.scorer import SCORER, load_scorer
from core.networks.device import resolve_precision, select_device
from core.networks.files import (
    CARD_FORMAT,
    RESERVED_CARD_KEYS,
    ModelFileError,
    file_sha256,
    half_state_dict,
    load_half_state_dict,
    load_network_card,
    save_network_files,
)
from core.networks.lesion_net import LESION, load_lesion_network

# Re-exported: callers have always found the file helpers here.
__all__ = [
    "CARD_FORMAT",
    "ModelFileError",
    "file_sha256",
    "half_state_dict",
    "load_half_state_dict",
]

#: Where the shipped models live.
DEFAULT_MODEL_DIR = REPO_ROOT / "models"
#: Model names, which are also the file stems in a model folder.
CLASSIFIER, SEGMENTER = "classifier", "segmenter"
#: Segmenter input sides must be multiples of this (five stride-2 stages).
SEGMENTER_SIZE_MULTIPLE = 32


@dataclass(frozen=True)
class ClassifierConfig:
    """How the crop classifier is built and used.

    Attributes:
        architecture: Only ``"resnet34"``.
        in_channels: Input channels (1: normalised counts).
        labels: Names of the sigmoid outputs, in order.
        crop_size: Side of the square input crops, pixels.
        crop_stride: Step between crop origins along a view's rows, pixels.
        threshold: Probability at or above which a label is present (the paper's 0.5).
        normalisation: Name of the input normalisation (:mod:`core.imaging.normalise`).
        stem_kernel: Kernel of the first convolution (7 in He et al.).
        stem_stride: Stride of the first convolution (2 in He et al.).
        max_pool: Whether the stem has its 3 x 3 stride-2 max-pool.
        label_thresholds: None: ``threshold`` for every label. Else one threshold per
            label (same order as ``labels``), chosen on a calibration set that neither
            training nor testing uses (``python -m core calibrate``; the card's
            ``calibration`` says where and why). It decides both a scan's label (the
            maximum over its crops) and which crops open the segmentation gate, so
            that a scan called negative never keeps a segmented lesion.
    """

    architecture: str = "resnet34"
    in_channels: int = 1
    labels: tuple[str, ...] = CLASSIFIER_LABELS
    crop_size: int = CROP_SIZE
    crop_stride: int = CROP_STRIDE
    threshold: float = THRESHOLD
    normalisation: str = NORMALISATION_NAME
    stem_kernel: int = 7
    stem_stride: int = 2
    max_pool: bool = True
    label_thresholds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.label_thresholds is not None and (
            len(self.label_thresholds) != len(self.labels)
            or not all(0.0 <= t <= 1.0 for t in self.label_thresholds)
        ):
            raise ValueError(
                f"label_thresholds must hold one value in [0, 1] per label {self.labels}, "
                f"got {self.label_thresholds}"
            )
        if self.architecture != "resnet34":
            raise ValueError(f"architecture must be 'resnet34', got {self.architecture!r}")
        if self.in_channels < 1 or not self.labels:
            raise ValueError("in_channels must be >= 1 and labels non-empty")
        if not 1 <= self.crop_stride <= self.crop_size:
            raise ValueError(f"crop_stride must be in [1, crop_size], got {self.crop_stride}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")

    def thresholds(self) -> dict[str, float]:
        """Return each label's threshold: ``label_thresholds`` or else ``threshold``."""
        values = self.label_thresholds or (self.threshold,) * len(self.labels)
        return dict(zip(self.labels, values, strict=True))


@dataclass(frozen=True)
class SegmenterConfig:
    """How the segmenter is built and used.

    Attributes:
        architecture: Only ``"flexible-unet"`` (MONAI ``FlexibleUNet``).
        backbone: Encoder, only ``"resnet34"``.
        in_channels: Input channels (1: normalised counts).
        classes: Output channels in order; the index is the mask value.
        input_shape: (rows, columns) of the view it is applied to at inference.
        train_crop: (rows, columns) of the random crops it is trained on; 256 x 256
            by default (512 x 256 gives more context per crop at a dearer step; it
            suits a GPU).
        size_multiple: Input sides must be multiples of this.
        normalisation: Name of the input normalisation (:mod:`core.imaging.normalise`).
        metastasis_pixel_threshold: None: a pixel's label is the argmax of the softmax.
            A number in (0, 1): a pixel is metastasis when its softmax metastasis
            probability reaches it and the argmax is not bladder (an under-confident
            network calibrated on data that neither training nor testing uses; the
            card says where it was chosen).
    """

    architecture: str = "flexible-unet"
    backbone: str = "resnet34"
    in_channels: int = 1
    classes: tuple[str, ...] = ("background", "metastasis", "bladder")
    input_shape: tuple[int, int] = (ROWS, COLS)
    train_crop: tuple[int, int] = (256, 256)
    size_multiple: int = SEGMENTER_SIZE_MULTIPLE
    normalisation: str = NORMALISATION_NAME
    metastasis_pixel_threshold: float | None = None

    def __post_init__(self) -> None:
        t = self.metastasis_pixel_threshold
        if t is not None and not 0.0 < t < 1.0:
            raise ValueError(f"metastasis_pixel_threshold must be in (0, 1) or None, got {t}")
        if self.architecture != "flexible-unet" or self.backbone != "resnet34":
            raise ValueError(
                "architecture/backbone must be 'flexible-unet'/'resnet34', "
                f"got {self.architecture!r}/{self.backbone!r}"
            )
        for name in ("input_shape", "train_crop"):
            shape = getattr(self, name)
            if len(shape) != 2 or any(s <= 0 or s % self.size_multiple for s in shape):
                raise ValueError(
                    f"{name} sides must be positive multiples of {self.size_multiple}, got {shape}"
                )


ModelConfig = ClassifierConfig | SegmenterConfig
_CONFIG_TYPES: dict[str, type[ClassifierConfig] | type[SegmenterConfig]] = {
    CLASSIFIER: ClassifierConfig,
    SEGMENTER: SegmenterConfig,
}


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """Return a config as a JSON-ready dict (tuples become lists)."""
    out: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(config)))
    return out


def config_from_dict(name: str, data: Mapping[str, Any]) -> ModelConfig:
    """Rebuild the config of model ``name`` from :func:`config_to_dict`'s output.

    Args:
        name: ``"classifier"`` or ``"segmenter"``.
        data: The dict; lists become tuples.

    Returns:
        The frozen config.

    Raises:
        ValueError: If ``name`` is unknown, a key is unknown, or a value is invalid.
    """
    if name not in _CONFIG_TYPES:
        raise ValueError(f"name must be one of {sorted(_CONFIG_TYPES)}, got {name!r}")
    cls = _CONFIG_TYPES[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{name} config has unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kwargs)


def build_classifier(cfg: ClassifierConfig | None = None) -> nn.Module:
    """Build the crop classifier (untrained).

    Args:
        cfg: Its config; the defaults when None.

    Returns:
        A MONAI ``ResNet`` taking float32 (N, in_channels, S, S) normalised crops
        and returning logits (N, len(labels)); apply a sigmoid for probabilities.
    """
    cfg = cfg or ClassifierConfig()
    return resnet34(
        spatial_dims=2,
        n_input_channels=cfg.in_channels,
        num_classes=len(cfg.labels),
        conv1_t_size=cfg.stem_kernel,
        conv1_t_stride=cfg.stem_stride,
        no_max_pool=not cfg.max_pool,
    )


def build_segmenter(cfg: SegmenterConfig | None = None) -> nn.Module:
    """Build the segmenter (untrained, no pretrained weights).

    Args:
        cfg: Its config; the defaults when None.

    Returns:
        A MONAI ``FlexibleUNet`` taking float32 (N, in_channels, H, W) with H and W
        multiples of 32 and returning logits (N, len(classes), H, W).
    """
    cfg = cfg or SegmenterConfig()
    return FlexibleUNet(
        in_channels=cfg.in_channels,
        out_channels=len(cfg.classes),
        backbone=cfg.backbone,
        pretrained=False,
        spatial_dims=2,
    )


def _build(config: ModelConfig) -> nn.Module:
    if isinstance(config, ClassifierConfig):
        return build_classifier(config)
    return build_segmenter(config)


def _check_name(name: str) -> None:
    if name not in _CONFIG_TYPES:
        raise ValueError(f"name must be one of {sorted(_CONFIG_TYPES)}, got {name!r}")


def save_model(
    directory: Path | str,
    name: str,
    model: nn.Module,
    config: ModelConfig,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a model's fp16 weights and its JSON card into a model folder.

    Args:
        directory: The model folder (created if missing).
        name: ``"classifier"`` or ``"segmenter"``; the file stem.
        model: The network; floating tensors are stored as float16.
        config: Its config; must be the type that belongs to ``name``.
        extra: More JSON-ready entries for the card, e.g. ``training_data``,
            ``seed``, ``metrics``, ``training``; ``metrics`` defaults to ``{}``.
            Must not use the keys ``format``, ``name``, ``config``, ``weights``.

    Returns:
        The card as written to ``<directory>/<name>.json``
        (:func:`core.networks.files.save_network_files`).

    Raises:
        ValueError: If ``name`` is unknown, ``config`` does not belong to it, or
            ``extra`` uses a reserved key or is not JSON-serialisable.
    """
    _check_name(name)
    if not isinstance(config, _CONFIG_TYPES[name]):
        raise ValueError(f"config for {name!r} must be {_CONFIG_TYPES[name].__name__}")
    # the shared writer: fp16 weights and card, each written whole and renamed
    return save_network_files(
        directory,
        name,
        model,
        config_to_dict(config),
        {"training_data": None, "seed": None, **dict(extra or {})},
    )


def read_card(directory: Path | str, name: str) -> dict[str, Any]:
    """Read a model's JSON card without loading its weights.

    Args:
        directory: The model folder.
        name: ``"classifier"``, ``"segmenter"``, ``"lesion"`` or ``"scorer"``.

    Returns:
        The card dict.

    Raises:
        ModelFileError: If the JSON is missing or not a card of model ``name``.
    """
    if name not in (LESION, SCORER):
        _check_name(name)
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        raise ModelFileError(f"{path}: model card not found")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(card, dict) or card.get("name") != name or "weights" not in card:
        raise ModelFileError(f"{path}: not a model card of {name!r}")
    return card


def update_card(directory: Path | str, name: str, **entries: Any) -> dict[str, Any]:
    """Replace top-level entries of a model card (e.g. ``metrics=...`` after evaluation).

    The weights and their hash are left as they are.

    Args:
        directory: The model folder.
        name: ``"classifier"`` or ``"segmenter"``.
        **entries: JSON-ready values; reserved keys are refused.

    Returns:
        The card as written.

    Raises:
        ModelFileError: If the card is missing or invalid.
        ValueError: If an entry uses a reserved key.
    """
    clash = RESERVED_CARD_KEYS & set(entries)
    if clash:
        raise ValueError(f"entries must not set the reserved keys {sorted(clash)}")
    card = read_card(directory, name)
    card.update(entries)
    _write_card(Path(directory) / f"{name}.json", card)
    return card


def _write_card(path: Path, card: Mapping[str, Any]) -> None:
    # write then rename: a crash mid-write must not leave a half card beside the weights
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def set_config(directory: Path | str, config: ModelConfig, **entries: Any) -> dict[str, Any]:
    """Replace a model card's config (e.g. a calibrated threshold), keeping its weights.

    Only settings used at inference may change this way; the architecture must stay
    what the weights were trained as.

    Args:
        directory: The model folder.
        config: The new config; its type names the model.
        **entries: Other top-level entries to set with it (e.g. ``calibration=...``).

    Returns:
        The card as written.

    Raises:
        ModelFileError: If the card is missing or invalid.
        ValueError: If an entry uses a reserved key, or the new config would build
            another network than the card's (its state-dict shapes differ).
    """
    name = CLASSIFIER if isinstance(config, ClassifierConfig) else SEGMENTER
    clash = RESERVED_CARD_KEYS & set(entries)
    if clash:
        raise ValueError(f"entries must not set the reserved keys {sorted(clash)}")
    card = read_card(directory, name)
    old = config_from_dict(name, card["config"])
    shapes_old = {k: v.shape for k, v in _build(old).state_dict().items()}
    shapes_new = {k: v.shape for k, v in _build(config).state_dict().items()}
    if shapes_old != shapes_new:
        raise ValueError(f"config builds another {name} network than the card's")
    card["config"] = config_to_dict(config)
    card.update(entries)
    _write_card(Path(directory) / f"{name}.json", card)
    return card


def load_model(
    directory: Path | str, name: str, device: torch.device | str | None = None
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Load one model from a model folder, checking the weights' sha256.

    Args:
        directory: The model folder.
        name: ``"classifier"`` or ``"segmenter"``.
        device: Where to put it; the GPU when available, else the CPU, when None.

    Returns:
        (model in eval mode with float32 weights in channels-last memory format on
        ``device``, config, card).

    Raises:
        ModelFileError: If a file is missing, the weights' sha256 differs from the
            card's (the message names the weights file), the weights do not fit the
            config, or the model was trained with another normalisation.
    """
    card = read_card(directory, name)
    folder = Path(directory)
    weights = folder / str(card["weights"].get("file", f"{name}.safetensors"))
    if not weights.is_file():
        raise ModelFileError(f"{weights}: weights file not found")
    expected = str(card["weights"].get("sha256", ""))
    actual = file_sha256(weights)
    if actual != expected:
        raise ModelFileError(
            f"{weights}: sha256 {actual} does not match {expected or '(none)'} recorded in "
            f"{folder / (name + '.json')}; the weights file was changed or replaced"
        )
    try:
        config = config_from_dict(name, card["config"])
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{folder / (name + '.json')}: bad config ({exc})") from exc
    if config.normalisation != NORMALISATION_NAME:
        raise ModelFileError(
            f"{folder / (name + '.json')}: trained with normalisation "
            f"{config.normalisation!r}, this code uses {NORMALISATION_NAME!r}"
        )
    model = _build(config)
    load_half_state_dict(model, weights, f"the {name} config")
    # Channels-last lets oneDNN (CPU) and cuDNN (GPU, half precision) pick their fastest
    # convolutions; outputs equal NCHW's within float rounding (tests/test_channels_last.py).
    model.to(torch.device(device) if device is not None else select_device())
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
    model.eval()
    return model, config, card


@dataclass
class LoadedModels:
    """Both networks of a model folder, ready for inference.

    Attributes:
        classifier: ResNet34 crop classifier, eval mode, float32.
        segmenter: FlexibleUNet segmenter, eval mode, float32.
        classifier_config: Its config.
        segmenter_config: Its config.
        cards: ``{"classifier": card, "segmenter": card}`` as read from the JSONs.
        device: Where both models are.
        directory: The model folder.
        precision: The arithmetic the classifier screens crops in (``float32``,
            ``bfloat16`` or ``float16``; :func:`core.networks.device.resolve_precision`);
            decisions are float32's whatever it is (:mod:`core.networks.inference`).
        skeleton: ``(network, SkeletonNetConfig)`` of the skeleton segmentation
            (:mod:`core.anatomy.network`), or None when no folder holds one: lesion
            regions then come from body proportions and there is no BSI.
        skeleton_card: Its card as read from ``skeleton.json``, or None.
        lesion: ``(network, LesionNetConfig)`` of the lesion network
            (:mod:`core.networks.lesion_net`) when the folder holds ``lesion.json``, or
            None. When present it makes the masks and the scan's calls, and the two
            networks above are not run (:func:`core.networks.inference.predict_batch`).
        lesion_card: Its card, or None.
        scorer: ``(network, ScorerConfig)`` of the lesion scorer
            (:mod:`core.lesions.scorer`) when the folder holds ``scorer.json`` (and no
            lesion network), or None. When present the segmenter runs on whole views,
            each of its marks is scored, and the scores make the calls instead of the
            crop classifier (:func:`core.networks.inference.predict_scored`).
        scorer_card: Its card, or None.
    """

    classifier: nn.Module
    segmenter: nn.Module
    classifier_config: ClassifierConfig
    segmenter_config: SegmenterConfig
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    directory: Path | None = None
    precision: str = "float32"
    skeleton: tuple[nn.Module, Any] | None = None
    skeleton_card: dict[str, Any] | None = None
    lesion: tuple[nn.Module, Any] | None = None
    lesion_card: dict[str, Any] | None = None
    scorer: tuple[nn.Module, Any] | None = None
    scorer_card: dict[str, Any] | None = None

    @functools.cached_property
    def segmenter_bfloat16(self) -> nn.Module:
        """The segmenter with its weights cast to bfloat16, once, on first use.

        For whole views where :func:`core.networks.inference.whole_view_precision` is
        bfloat16 (a CPU with native bfloat16). Autocast would cast all 23 M weights
        again on every pass: two whole views took 0.20 s under autocast and 0.16 s with
        the weights cast once, on 2 threads of this Xeon (docs/benchmarks.md). Cached on
        the instance, so a ``dataclasses.replace`` copy casts its own; it is a copy of
        the weights at first use, so code that trains ``segmenter`` further must load the
        models again (training and fine-tuning here always do).
        """
        return copy.deepcopy(self.segmenter).to(torch.bfloat16).eval()

    @property
    def anatomy_sha256(self) -> str:
        """Return the sha256 of the skeleton network's weights, or "" without one."""
        return "" if self.skeleton_card is None else str(self.skeleton_card["weights"]["sha256"])

    @property
    def weights_sha256(self) -> dict[str, str]:
        """Return ``{name: sha256 of its weights file}``."""
        return {name: str(card["weights"]["sha256"]) for name, card in self.cards.items()}


def load_models(
    directory: Path | str | None = None,
    device: torch.device | str | None = None,
    precision: str | None = None,
    *,
    lesion: bool = True,
) -> LoadedModels:
    """Load the networks of a model folder (hashes checked).

    Args:
        directory: The model folder; :func:`core.config.model_dir` (the shipped
            ``models/`` unless ``$BONESCAN_MODELS`` names another) when None.
        device: Where to put them; the GPU when available, else the CPU, when None.
        precision: The classifier's screening arithmetic, one of
            :data:`core.networks.device.PRECISIONS`; None: ``$BONESCAN_PRECISION`` or ``auto``.
        lesion: Load the folder's lesion network or lesion scorer when it has one;
            False leaves them out, so that the paper's two networks make the calls
            alone (for comparisons).

    Returns:
        The loaded models with their configs and cards.

    Raises:
        ModelFileError: As :func:`load_model`, for either model.
        ValueError: If ``precision`` is unknown or does not suit the device.
    """
    directory = model_dir() if directory is None else directory
    dev = torch.device(device) if device is not None else select_device()
    arithmetic = resolve_precision(precision, dev)
    classifier, c_cfg, c_card = load_model(directory, CLASSIFIER, dev)
    segmenter, s_cfg, s_card = load_model(directory, SEGMENTER, dev)
    assert isinstance(c_cfg, ClassifierConfig) and isinstance(s_cfg, SegmenterConfig)
    skeleton, skeleton_card = load_anatomy(Path(directory), dev)
    lesion_net, lesion_card = None, None
    if lesion and (Path(directory) / f"{LESION}.json").is_file():
        lesion_net = load_lesion_network(directory, dev)
        lesion_card, _ = load_network_card(directory, LESION)
    scorer, scorer_card = None, None
    if lesion_net is None and lesion and (Path(directory) / f"{SCORER}.json").is_file():
        scorer = load_scorer(directory, dev)
        scorer_card, _ = load_network_card(directory, SCORER)
    return LoadedModels(
        classifier=classifier,
        segmenter=segmenter,
        classifier_config=c_cfg,
        segmenter_config=s_cfg,
        cards={CLASSIFIER: c_card, SEGMENTER: s_card},
        device=dev,
        directory=Path(directory),
        precision=arithmetic,
        skeleton=skeleton,
        skeleton_card=skeleton_card,
        lesion=lesion_net,
        lesion_card=lesion_card,
        scorer=scorer,
        scorer_card=scorer_card,
    )


def load_anatomy(
    directory: Path, device: torch.device
) -> tuple[tuple[nn.Module, Any] | None, dict[str, Any] | None]:
    """Load the skeleton network of a model folder, or the shipped one.

    A centre's fine-tuned folder holds only the lesion networks: the anatomy is the
    phantom's exact skeleton, which no centre's review changes, so such a folder uses
    the shipped skeleton network.

    Args:
        directory: The model folder.
        device: Where to put the network.

    Returns:
        ``((network, config), card)``, or ``(None, None)`` when neither ``directory``
        nor the shipped folder holds ``skeleton.json``.

    Raises:
        ModelFileError: As :func:`core.anatomy.network.load_skeleton_network`.
    """
    for folder in (directory, DEFAULT_MODEL_DIR):
        card_path = folder / f"{SKELETON}.json"
        if card_path.is_file():
            loaded = load_skeleton_network(folder, device)
            card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
            return loaded, card
    return None, None
