"""Which compute device inference runs on, and in which arithmetic.

The GPU when present, else the CPU. The classifier screens crops in a reduced precision
where the hardware does that fast (half precision on a GPU; bfloat16 on a CPU with
bfloat16 instructions) and decides in float32 (:mod:`core.networks.inference`).
"""

from __future__ import annotations

import os
import platform

import torch

#: The arithmetics the classifier can screen in (:func:`resolve_precision` picks one).
ARITHMETICS: tuple[str, ...] = ("float32", "bfloat16", "float16")
#: Classifier arithmetic as asked for: ``auto`` (:func:`resolve_precision`), or one named.
PRECISIONS: tuple[str, ...] = ("auto", *ARITHMETICS)
#: Environment variable that sets the precision for the whole process (e.g. ``float32``
#: to screen in float32 too); ``auto`` when unset.
PRECISION_ENV = "BONESCAN_PRECISION"


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


def native_bfloat16() -> bool:
    """Return True when this CPU has bfloat16 instructions oneDNN uses (AVX512-BF16 or AMX).

    Without them bfloat16 arithmetic is emulated and slower than float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """Return the arithmetic the classifier screens in on ``device``.

    Args:
        precision: One of :data:`PRECISIONS`, or None for ``$BONESCAN_PRECISION``
            (``auto`` when unset). ``auto`` is ``float16`` on a GPU, ``bfloat16`` on a
            CPU with :func:`native_bfloat16`, else ``float32``.
        device: Where the classifier runs.

    Returns:
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.

    Raises:
        ValueError: If ``precision`` is unknown, or ``float16`` is asked of a CPU.
    """
    if precision is None:
        precision = os.environ.get(PRECISION_ENV, "").strip() or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return "float16"
        return "bfloat16" if native_bfloat16() else "float32"
    if precision == "float16" and device.type != "cuda":
        raise ValueError("precision 'float16' needs a GPU; use 'bfloat16' or 'float32' on a CPU")
    return precision


def cpu_model() -> str:
    """Return the CPU's model name (``/proc/cpuinfo``), or the platform's word for it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
