"""Model files shared by every network of a model folder: hashes and float16 weights.

A model folder holds, per network ``<name>``, ``<name>.safetensors`` (float16 weights)
and ``<name>.json`` (its card, with the sha256 of the weights). The lesion networks
(:mod:`core.networks.models`) and the skeleton network (:mod:`core.anatomy.network`)
both store and check their files with these helpers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

#: Format tag of every model card.
CARD_FORMAT = "bonescan-model/1"


#: Card keys that only :func:`save_network_files` writes.
RESERVED_CARD_KEYS = frozenset({"format", "name", "config", "weights"})


class ModelFileError(ValueError):
    """A model folder is missing a file, or a file does not match its JSON."""


class CardConfig:
    """Mixin of a frozen config dataclass stored in its network's card as JSON.

    Tuples become JSON lists and lists become tuples again, so that a config read back
    equals the one written (and stays hashable).
    """

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict (tuples become lists)."""
        assert dataclasses.is_dataclass(self)
        out: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(self)))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a config from :meth:`to_dict`'s output.

        Raises:
            ValueError: If a key is unknown or a value invalid.
        """
        assert dataclasses.is_dataclass(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__} has unknown keys {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A model's weights as shipped: floating tensors in float16, all on the CPU.

    Args:
        model: Any torch module.

    Returns:
        Its state dict, each tensor contiguous and copied (safe to save while the model
        goes on training).
    """
    return {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
        .contiguous()
        .clone()
        for k, v in model.state_dict().items()
    }


def load_half_state_dict(model: nn.Module, weights: Path, what: str) -> None:
    """Load shipped (float16) weights into a model built in its own dtypes.

    Args:
        model: The freshly built network.
        weights: Its safetensors file (sha256 already checked by the caller).
        what: What the model was built from, for the message (e.g. "the segmenter
            config").

    Raises:
        ModelFileError: If the weights do not fit the model.
    """
    reference = model.state_dict()
    state = load_file(str(weights))
    try:
        model.load_state_dict({k: v.to(reference[k].dtype) for k, v in state.items()}, strict=True)
    except (KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{weights}: weights do not fit {what} ({exc})") from exc


def save_network_files(
    directory: Path | str,
    name: str,
    model: nn.Module,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a network's fp16 weights and its JSON card into a model folder.

    Both files are written to a temporary name and renamed, so that a crash mid-write
    never leaves a half file beside a whole one.

    Args:
        directory: The folder (created if missing).
        name: The network's file stem (``skeleton``, ``lesion``).
        model: The network; floating tensors are stored as float16.
        config: Its config as a JSON-ready dict.
        extra: More JSON-ready card entries (``training``, ``metrics`` ...); must not
            use :data:`RESERVED_CARD_KEYS`.

    Returns:
        The card as written to ``<directory>/<name>.json``.

    Raises:
        ValueError: If ``extra`` uses a reserved key or is not JSON-serialisable.
    """
    extra = dict(extra or {})
    clash = RESERVED_CARD_KEYS & set(extra)
    if clash:
        raise ValueError(f"extra must not set the reserved keys {sorted(clash)}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    tmp = weights.with_suffix(".safetensors.tmp")
    # one metadata key: the same weights must always give the same file and sha256
    save_file(half_state_dict(model), str(tmp), metadata={"format": f"{CARD_FORMAT} {name}"})
    tmp.replace(weights)
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "name": name,
        "config": dict(config),
        "weights": {
            "file": weights.name,
            "sha256": file_sha256(weights),
            "dtype": "float16",
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "bytes": weights.stat().st_size,
        },
        "metrics": {},
    }
    card.update(extra)
    try:
        text = json.dumps(card, indent=2)
    except TypeError as exc:
        raise ValueError(f"extra must be JSON-serialisable: {exc}") from exc
    card_path = folder / f"{name}.json"
    card_tmp = card_path.with_suffix(".json.tmp")
    card_tmp.write_text(text + "\n", encoding="utf-8")
    card_tmp.replace(card_path)
    return card


def load_network_card(directory: Path | str, name: str) -> tuple[dict[str, Any], Path]:
    """Read a network's card and find its weights, checking their sha256.

    Args:
        directory: The model folder.
        name: The network's file stem.

    Returns:
        (the card, the weights file).

    Raises:
        ModelFileError: If the card or the weights are missing, the card is not JSON
            with a ``config`` and ``weights``, or the sha256 differs from the card's.
    """
    folder = Path(directory)
    card_path = folder / f"{name}.json"
    if not card_path.is_file():
        raise ModelFileError(f"{card_path}: model card not found")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["config"], card["weights"]["sha256"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{card_path}: not a valid {name} card ({exc})") from exc
    weights = folder / str(card["weights"].get("file", f"{name}.safetensors"))
    if not weights.is_file():
        raise ModelFileError(f"{weights}: weights file not found")
    actual, expected = file_sha256(weights), str(card["weights"].get("sha256", ""))
    if actual != expected:
        raise ModelFileError(
            f"{weights}: sha256 {actual} does not match {expected or '(none)'} in {card_path}"
        )
    return card, weights


def update_network_card(
    directory: Path | str, name: str, config: Mapping[str, Any], **entries: Any
) -> dict[str, Any]:
    """Replace a network card's config (and set more entries); the weights are untouched.

    The caller validates ``config`` (by building its config class) before calling. The
    card is written to a temporary file and renamed.

    Args:
        directory: The model folder.
        name: The network's file stem.
        config: The new config as a JSON-ready dict.
        **entries: More JSON-ready card entries to set (e.g. ``calibration``).

    Returns:
        The card as written.

    Raises:
        ModelFileError: If the card or weights are missing or do not match.
        ValueError: If an entry is reserved.
    """
    clash = (RESERVED_CARD_KEYS - {"config"}) & set(entries)
    if clash:
        raise ValueError(f"entries must not set the reserved keys {sorted(clash)}")
    card, _ = load_network_card(directory, name)
    card["config"] = dict(config)
    card.update(entries)
    path = Path(directory) / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return card


_C = TypeVar("_C", bound=CardConfig)


def read_network_config(directory: Path | str, name: str, config_type: type[_C]) -> tuple[_C, Path]:
    """Read a network's config from its card and find its weights (sha256 checked).

    Args:
        directory: The model folder.
        name: The network's file stem.
        config_type: Its :class:`CardConfig` dataclass.

    Returns:
        (the config, the weights file).

    Raises:
        ModelFileError: As :func:`load_network_card`, or if the config is invalid.
    """
    card, weights = load_network_card(directory, name)
    try:
        return config_type.from_dict(card["config"]), weights
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{directory}/{name}.json: not a valid card ({exc})") from exc


def ready_network(
    model: nn.Module, weights: Path, what: str, device: torch.device | str
) -> nn.Module:
    """Load shipped weights into a freshly built network, move it and set eval mode.

    Raises:
        ModelFileError: If the weights do not fit the model built from ``what``.
    """
    load_half_state_dict(model, weights, what)
    model.to(torch.device(device))
    model.eval()
    return model
