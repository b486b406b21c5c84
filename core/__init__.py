"""Domain logic of the bone-scan tumour-burden dashboard (no Streamlit here)."""

from __future__ import annotations

__version__ = "0.1.0"
