"""Which compute device inference runs on: the GPU when present, else the CPU."""

from __future__ import annotations

import torch


def select_device() -> torch.device:
    """Return ``cuda`` when a CUDA GPU is usable, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device: torch.device | None = None) -> str:
    """Return a short human-readable name of ``device`` (the selected one by default).

    Example: ``"GPU: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 threads)"``.
    """
    device = device or select_device()
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"
