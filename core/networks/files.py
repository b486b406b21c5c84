"""Model files shared by every network of a model folder: hashes and float16 weights.

A model folder holds, per network ``<name>``, ``<name>.safetensors`` (float16 weights)
and ``<name>.json`` (its card, with the sha256 of the weights). The lesion networks
(:mod:`core.networks.models`) and the skeleton network (:mod:`core.anatomy.network`)
both store and check their files with these helpers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

#: Format tag of every model card.
CARD_FORMAT = "bonescan-model/1"


class ModelFileError(ValueError):
    """A model folder is missing a file, or a file does not match its JSON."""


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
