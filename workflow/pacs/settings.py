"""Where the PACS is and who may send to us: environment variables, or a TOML file.

Every setting has an environment variable; ``BONESCAN_PACS_CONFIG`` may name a TOML file
whose ``[pacs]`` table gives the same settings by their field names (lower case, as in
:class:`PacsSettings`). An environment variable wins over the file.

=============================  ===================  ====================================
variable                       field                meaning
=============================  ===================  ====================================
``BONESCAN_AE_TITLE``          ``ae_title``         our AE title (default ``BONESCAN``)
``BONESCAN_LISTEN_PORT``       ``listen_port``      port of ``python -m core listen``
``BONESCAN_PACS_ALLOWED_AE``   ``allowed_ae``       calling AE titles we accept, comma-
                                                    separated; empty: accept none
``BONESCAN_PACS_HOST``         ``pacs_host``        the PACS's host (DIMSE)
``BONESCAN_PACS_PORT``         ``pacs_port``        the PACS's DIMSE port
``BONESCAN_PACS_AE``           ``pacs_ae``          the PACS's AE title
``BONESCAN_PACS_DICOMWEB``     ``dicomweb_url``     the PACS's DICOMweb root URL
``BONESCAN_QUARANTINE``        ``quarantine_dir``   where instances that fail are kept
``BONESCAN_TLS_CERT``          ``tls_cert``         our certificate (PEM), enables TLS
``BONESCAN_TLS_KEY``           ``tls_key``          its private key (PEM)
``BONESCAN_TLS_CA``            ``tls_ca``           CA bundle that peers must chain to
=============================  ===================  ====================================
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.config import data_dir

#: Environment variable naming the optional TOML settings file.
CONFIG_ENV = "BONESCAN_PACS_CONFIG"
#: Field -> environment variable.
ENV_NAMES: Mapping[str, str] = {
    "ae_title": "BONESCAN_AE_TITLE",
    "listen_port": "BONESCAN_LISTEN_PORT",
    "allowed_ae": "BONESCAN_PACS_ALLOWED_AE",
    "pacs_host": "BONESCAN_PACS_HOST",
    "pacs_port": "BONESCAN_PACS_PORT",
    "pacs_ae": "BONESCAN_PACS_AE",
    "dicomweb_url": "BONESCAN_PACS_DICOMWEB",
    "quarantine_dir": "BONESCAN_QUARANTINE",
    "tls_cert": "BONESCAN_TLS_CERT",
    "tls_key": "BONESCAN_TLS_KEY",
    "tls_ca": "BONESCAN_TLS_CA",
}


@dataclass(frozen=True)
class PacsSettings:
    """The DICOM node's settings (see the module docstring for their sources).

    Attributes:
        ae_title: Our AE title (1-16 characters).
        listen_port: Port the Storage SCP listens on.
        allowed_ae: Calling AE titles whose instances are accepted.
        pacs_host: The PACS's host, or None.
        pacs_port: The PACS's DIMSE port, or None.
        pacs_ae: The PACS's AE title, or None.
        dicomweb_url: The PACS's DICOMweb root (``http://host:port/dicom-web``), or None.
        quarantine_dir: Folder for instances that could not be analysed.
        tls_cert: Our certificate, PEM; TLS is used when it is set.
        tls_key: The certificate's private key, PEM.
        tls_ca: CA bundle that peers' certificates must chain to.
    """

    ae_title: str = "BONESCAN"
    listen_port: int = 11112
    allowed_ae: tuple[str, ...] = ()
    pacs_host: str | None = None
    pacs_port: int | None = None
    pacs_ae: str | None = None
    dicomweb_url: str | None = None
    quarantine_dir: Path = Path("quarantine")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    def __post_init__(self) -> None:
        for name in ("ae_title", "pacs_ae"):
            value = getattr(self, name)
            if value is not None and not 0 < len(value.strip()) <= 16:
                raise ValueError(f"{name} must be 1-16 characters, got {value!r}")
        for name in ("listen_port", "pacs_port"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 65536:
                raise ValueError(f"{name} must be a port number 1-65535, got {value!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")

    @property
    def uses_tls(self) -> bool:
        """True when a certificate is configured."""
        return self.tls_cert is not None

    def may_send(self, calling_ae: str) -> bool:
        """Say whether an association from ``calling_ae`` may store instances here."""
        return calling_ae.strip() in self.allowed_ae


def _convert(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if name in ("listen_port", "pacs_port"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if name == "allowed_ae":
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(v).strip() for v in items if str(v).strip())
    if name in ("quarantine_dir", "tls_cert", "tls_key", "tls_ca"):
        return Path(str(value)).expanduser()
    return str(value).strip()


def load_settings(environ: Mapping[str, str] | None = None) -> PacsSettings:
    """Read the settings: defaults, then the TOML file's ``[pacs]`` table, then variables.

    Args:
        environ: The environment to read (``os.environ`` when None).

    Returns:
        The :class:`PacsSettings`.

    Raises:
        ValueError: If the TOML file cannot be read, names an unknown setting, or a
            value is malformed.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {"quarantine_dir": data_dir() / "quarantine"}
    config = env.get(CONFIG_ENV, "").strip()
    if config:
        try:
            table = tomllib.loads(Path(config).read_text(encoding="utf-8")).get("pacs", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{CONFIG_ENV}: cannot read {config} ({exc})") from None
        known = {f.name for f in fields(PacsSettings)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{config}: unknown settings {unknown}; known: {sorted(known)}")
        values.update({k: _convert(k, v) for k, v in table.items()})
    for name, variable in ENV_NAMES.items():
        if env.get(variable, "").strip():
            values[name] = _convert(name, env[variable])
    return PacsSettings(**{k: v for k, v in values.items() if v is not None})
