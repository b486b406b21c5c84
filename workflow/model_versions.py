"""Model versions meet model folders: register, find the one in use, re-analyse with it.

The store keeps the versions and which one is in use (:mod:`db.model_registry`); this
module joins that to the folders on disk. A version string is always what
:func:`core.analysis.model_identity` gives for its folder (the cards' ``version`` entry,
else the short weight hashes), so every stored analysis names its registered version.

* :func:`ensure_shipped` registers the shipped folder (:func:`core.config.model_dir`)
  the first time a process meets it; no role is needed.
* :func:`active_model_dir` says which folder to load: the active version's, or the
  shipped one while nothing was promoted.
* :func:`register_candidate` names a fine-tuned folder (the version is written into
  both cards first) and registers it with its card summary.
* :func:`promote_version` checks a version's folder on disk, then promotes it.
* :class:`ActiveModels` keeps the active model loaded in a long-running process and
  reloads it when the store's active version changes.
* :func:`reanalyse_cohort` analyses every stored study that has no analysis by the
  active version (older analyses are kept).

See docs/model_versions.md for which process uses which model and when it switches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from core.analysis import model_identity
from core.config import model_dir
from core.lesions.scorer import SCORER
from core.networks.lesion_net import LESION
from core.networks.models import (
    CLASSIFIER,
    SEGMENTER,
    LoadedModels,
    ModelFileError,
    file_sha256,
    load_models,
    read_card,
    update_card,
)
from db.access import require_role
from db.connection import open_db
from db.model_registry import (
    SYSTEM_ACCOUNT,
    get_model,
    last_activation,
    promote,
    register_model,
)
from workflow.ingest import analyze_stored

#: The model names of a folder, in the order :func:`core.networks.models.load_models` keeps.
NAMES: tuple[str, str] = (CLASSIFIER, SEGMENTER)
#: The held-out figures a card summary keeps (from the card's ``metrics.overall``).
FIGURE_KEYS: tuple[str, ...] = (
    "sensitivity",
    "specificity",
    "accuracy",
    "auc_metastasis",
    "auc_bladder",
    "dice_metastasis",
    "dice_bladder",
)
#: A version name a person chooses: letters, digits, then also . _ - (at most 64).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _names(directory: Path | str) -> tuple[str, ...]:
    """The networks of a folder: the two, and the lesion network or scorer it holds."""
    extra = tuple(n for n in (LESION, SCORER) if (Path(directory) / f"{n}.json").is_file())
    return (*NAMES, *extra)


def folder_identity(directory: Path | str) -> tuple[str, str]:
    """Return ``(version, weights_sha256)`` of a model folder from its cards alone.

    The same values as :func:`core.analysis.model_identity` of the loaded folder
    (``tests/test_model_registry.py`` holds them equal), without loading the networks:
    the cards record their weights' hashes, which every load checks.

    Raises:
        ModelFileError: If a card is missing or invalid.
    """
    cards = {name: read_card(directory, name) for name in _names(directory)}
    hashes = {name: str(card["weights"]["sha256"]) for name, card in cards.items()}
    names = sorted(hashes)
    version = next((str(card["version"]) for card in cards.values() if card.get("version")), "")
    if not version:
        version = " ".join(f"{n}:{hashes[n][:12]}" for n in names)
    combined = ";".join(f"{n}={hashes[n]}" for n in names)
    return version, hashlib.sha256(combined.encode()).hexdigest()


def check_weights(directory: Path | str) -> None:
    """Check that each weights file of a folder still has the sha256 its card records.

    Raises:
        ModelFileError: If a card or a weights file is missing, or a hash differs
            (the message names the file).
    """
    folder = Path(directory)
    for name in _names(folder):
        card = read_card(folder, name)
        weights = folder / str(card["weights"].get("file", f"{name}.safetensors"))
        if not weights.is_file():
            raise ModelFileError(f"{weights}: weights file not found")
        expected = str(card["weights"].get("sha256", ""))
        if file_sha256(weights) != expected:
            raise ModelFileError(
                f"{weights}: sha256 does not match {expected or '(none)'} recorded in "
                f"{folder / (name + '.json')}; the weights file was changed or replaced"
            )


def card_summary(
    directory: Path | str, *, parent: str | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Summarise a folder's cards for the registry (what ``models list`` and pages show).

    Args:
        directory: The model folder.
        parent: The version it was fine-tuned from, or None.
        extra: More JSON-ready entries; they replace the summary's own of the same name
            (e.g. ``figures`` measured by the fine-tune job).

    Returns:
        ``parent``, ``training_data`` (the classifier card's), ``steps`` per model,
        ``figures`` (:data:`FIGURE_KEYS` of the classifier card's ``metrics.overall``,
        empty when none was recorded), ``figures_dataset`` (where they were measured),
        ``weights`` (sha256 per model file), then ``extra``.

    Raises:
        ModelFileError: If a card is missing or invalid.
    """
    cards = {name: read_card(directory, name) for name in NAMES}
    metrics = cards[CLASSIFIER].get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    overall = metrics.get("overall")
    overall = overall if isinstance(overall, dict) else {}
    steps = {}
    for name, card in cards.items():
        training = card.get("training")
        steps[name] = training.get("steps") if isinstance(training, dict) else None
    summary: dict[str, Any] = {
        "parent": parent,
        "training_data": cards[CLASSIFIER].get("training_data"),
        "steps": steps,
        "figures": {k: overall[k] for k in FIGURE_KEYS if k in overall},
        "figures_dataset": metrics.get("dataset"),
        "weights": {name: str(card["weights"]["sha256"]) for name, card in cards.items()},
    }
    summary.update(extra or {})
    return summary


def figures_line(card: Mapping[str, Any]) -> str:
    """One line of a version's held-out figures, from its card summary.

    Returns:
        E.g. ``"sensitivity 0.712, specificity 0.950, AUC 0.849"`` (the figures the card
        holds of these three), or ``"no figures recorded"``.
    """
    figures = card.get("figures")
    figures = figures if isinstance(figures, Mapping) else {}
    parts = [
        f"{label} {float(figures[key]):.3f}"
        for key, label in (
            ("sensitivity", "sensitivity"),
            ("specificity", "specificity"),
            ("auc_metastasis", "AUC"),
        )
        if isinstance(figures.get(key), int | float)
    ]
    return ", ".join(parts) if parts else "no figures recorded"


def ensure_shipped(db: Database, directory: Path | str | None = None) -> str:
    """Register the shipped model folder unless its version is registered; return it.

    Every process that may analyse calls this (through :func:`active_model_dir`), so a
    new shipped folder (a release) is registered by whichever process meets it first,
    as :data:`db.model_registry.SYSTEM_ACCOUNT`, without any role.

    Args:
        db: An open store.
        directory: The shipped folder; :func:`core.config.model_dir` when None.

    Returns:
        The folder's version (:func:`folder_identity`).

    Raises:
        ModelFileError: If the folder or a card is missing, or its version is
            registered with other weights.
    """
    folder = Path(directory) if directory is not None else model_dir()
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: model folder not found")
    version, weights = folder_identity(folder)
    found = get_model(db, version)
    if found is None:
        register_model(
            db, version=version, path=str(folder.resolve()), kind="shipped", parent=None,
            weights_sha256=weights, card=card_summary(folder), account=SYSTEM_ACCOUNT,
        )  # fmt: skip
    elif found["weights_sha256"] != weights:
        raise ModelFileError(
            f"{folder}: version {version!r} is registered with other weights (from "
            f"{found['path']}); give this folder's cards another version"
        )
    return version


def active_model_dir(db: Database, *, register_shipped: bool = True) -> tuple[str, Path]:
    """Return the version in use and the folder to load it from.

    Args:
        db: An open store.
        register_shipped: While nothing was promoted, register the shipped folder
            (:func:`ensure_shipped`); False only reads (for a command that stores
            nothing).

    Returns:
        ``(version, folder)``: the newest activation's version and its registered
        folder; while nothing was promoted, the shipped folder
        (:func:`core.config.model_dir`) and its version.

    Raises:
        ModelFileError: If the shipped folder is unusable, or the active version's
            folder is missing.
    """
    version = last_activation(db)
    if version is None:
        folder = model_dir()
        if register_shipped:
            return ensure_shipped(db, folder), folder
        return folder_identity(folder)[0], folder
    row = get_model(db, version)
    if row is None:  # the schema's foreign key makes this unreachable
        raise ModelFileError(f"the active version {version!r} is not registered")
    folder = Path(row["path"])
    moved = not folder.is_dir() and row["kind"] == "shipped" and model_dir().is_dir()
    # the repository moved: the shipped folder is where model_dir() says now
    if moved and folder_identity(model_dir()) == (version, row["weights_sha256"]):
        return version, model_dir()
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: the folder of the active version {version!r} is missing")
    return version, folder


def check_identity(models: LoadedModels, version: str, weights_sha256: str | None = None) -> None:
    """Refuse loaded models that are not the version the store names.

    Raises:
        ModelFileError: If :func:`core.analysis.model_identity` of ``models`` differs
            from ``version`` (or ``weights_sha256``, when given): the folder's files
            were changed after it was registered.
    """
    got_version, got_weights = model_identity(models)
    if got_version != version or (weights_sha256 is not None and got_weights != weights_sha256):
        raise ModelFileError(
            f"{models.directory}: holds {got_version!r} (weights {got_weights[:12]}), but "
            f"the store registered it as {version!r}"
            + (f" (weights {weights_sha256[:12]})" if weights_sha256 else "")
            + "; its files were changed after registration"
        )


def load_active(
    db: Database, *, device: str | None = None, register_shipped: bool = True
) -> tuple[str, LoadedModels]:
    """Load the version in use (:func:`active_model_dir`), checked against the registry.

    Returns:
        ``(version, models)``.

    Raises:
        ModelFileError: If the folder is unusable or holds another version.
    """
    version, folder = active_model_dir(db, register_shipped=register_shipped)
    models = load_models(folder, device=device)
    row = get_model(db, version)
    check_identity(models, version, None if row is None else str(row["weights_sha256"]))
    return version, models


def default_name(db: Database, now: dt.datetime | None = None) -> str:
    """A readable, unused version name: ``centre-YYYYMMDD-HHMM`` (``-2``... when taken)."""
    stamp = f"centre-{(now or dt.datetime.now()):%Y%m%d-%H%M}"
    name, n = stamp, 1
    while get_model(db, name) is not None:
        n += 1
        name = f"{stamp}-{n}"
    return name


def register_candidate(
    db: Database,
    directory: Path | str,
    *,
    parent: str | None,
    card_extra: Mapping[str, Any] | None,
    account: str,
    name: str | None = None,
) -> str:
    """Name a fine-tuned model folder and register it as a candidate.

    The folder is checked first (both models load, their weights match their cards'
    hashes); then the version name is written into both cards, so that the folder's
    identity (:func:`core.analysis.model_identity`) is that name and every analysis it
    makes names it; then it is registered with its card summary (:func:`card_summary`).

    Args:
        db: An open store.
        directory: The model folder (kept where it is; its absolute path is stored).
        parent: The registered version it was fine-tuned from, or None.
        card_extra: More summary entries (e.g. ``figures``, ``job``), or None.
        account: Who registers it (the ``models`` action in a store with accounts).
        name: The version name (letters, digits, ``. _ -``); :func:`default_name` when None.

    Returns:
        The registered version.

    Raises:
        ValueError: If the folder is missing, ``name`` is malformed or registered,
            ``parent`` is not registered, or the folder is registered already;
            :class:`core.networks.models.ModelFileError` (a ValueError) if a card or
            a weights file is missing, a hash differs or the weights do not fit.
        core.auth.AccessDenied: If ``account`` may not manage models (cards untouched).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"directory {folder} does not exist or is not a folder")
    if not account.strip():
        raise ValueError("account must not be empty")
    require_role(db, account, "models")  # before the cards are written
    if parent is not None and get_model(db, parent) is None:
        raise ValueError(f"parent {parent!r} is not a registered version")
    if name is not None and not _NAME.match(name):
        raise ValueError(
            f"name must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), got {name!r}"
        )
    version = name if name is not None else default_name(db)
    if get_model(db, version) is not None:
        raise ValueError(f"name {version!r} is registered already; choose another")
    # a folder named by an earlier registration keeps that name
    named = [read_card(folder, m).get("version") for m in NAMES]
    previous = next((str(v) for v in named if v), None)
    if previous is not None and get_model(db, previous) is not None:
        raise ValueError(f"{folder} is registered already, as {previous!r}")
    load_models(folder, device="cpu", precision="float32")  # hashes, configs, weights fit
    for model in NAMES:
        update_card(folder, model, version=version)
    identity, weights = folder_identity(folder)
    if identity != version:  # another writer changed the cards meanwhile
        raise ModelFileError(f"{folder}: the cards name {identity!r}, not {version!r}")
    register_model(
        db, version=version, path=str(folder.resolve()), kind="candidate", parent=parent,
        weights_sha256=weights, card=card_summary(folder, parent=parent, extra=card_extra),
        account=account,
    )  # fmt: skip
    return version


def promote_version(db: Database, version: str, account: str) -> None:
    """Check a registered version's folder on disk, then put it in use.

    Args:
        db: An open store.
        version: A registered version.
        account: Who promotes (the ``models`` action in a store with accounts).

    Raises:
        ValueError: If ``version`` is not registered or in use already;
            :class:`core.networks.models.ModelFileError` if its folder is missing, its
            cards now name another version, or a weights file changed.
        core.auth.AccessDenied: If ``account`` may not manage models.
    """
    row = get_model(db, version)
    if row is None:
        promote(db, version, account)  # refuses it, naming the registered versions
        return
    folder = Path(row["path"])
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: the folder of version {version!r} is missing")
    if folder_identity(folder) != (version, row["weights_sha256"]):
        raise ModelFileError(
            f"{folder}: its cards no longer name version {version!r} with the registered "
            "weights; the folder was changed after registration"
        )
    check_weights(folder)
    promote(db, version, account)


class ActiveModels:
    """The store's active model for a long-running process, reloaded when it changes.

    :meth:`get` asks the store which version is in use; it loads that folder only when
    the version differs from the one held, so a promotion or rollback takes effect at
    the next call while an analysis already running keeps the models it was given.

    Attributes:
        device: Where the models are loaded (None: the GPU when there is one).
    """

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._version: str | None = None
        self._models: LoadedModels | None = None

    @property
    def version(self) -> str | None:
        """The version held, or None before the first :meth:`get`."""
        return self._version

    def get(self, db: Database) -> LoadedModels:
        """Return the active version's models, loading them when the version changed.

        Raises:
            ModelFileError: If the active version's folder is unusable (the models held
                before stay held).
        """
        version, folder = active_model_dir(db)
        if self._models is None or version != self._version:
            models = load_models(folder, device=self.device)
            row = get_model(db, version)
            check_identity(models, version, None if row is None else str(row["weights_sha256"]))
            self._models, self._version = models, version
        return self._models


def reanalyse_cohort(
    db_path: Path | str,
    *,
    progress: Callable[[int, int], None] | None = None,
    account: str = SYSTEM_ACCOUNT,
    models: LoadedModels | None = None,
    device: str | None = None,
    batch: int = 4,
    limit: int | None = None,
) -> int:
    """Re-analyse the cohort with the active model (a page button, or ``--reanalyse``).

    Every stored study without an analysis by the active version gets one; older
    analyses are kept, and the patient and cohort pages then prefer the active
    version's (:func:`db.queries.patient_time_series`, :func:`db.queries.cohort_summary`).

    Args:
        db_path: The store.
        progress: Called with (done, total) after each batch.
        account: Who re-analyses, for the audit log; in a store with accounts, one that
            may upload (a clinician or an admin).
        models: The active version's models already loaded (a page's cached ones);
            loaded here when None.
        device: Where to load them when ``models`` is None (None: the GPU when present).
        batch: Scans per network call (>= 1).
        limit: Analyse at most this many studies (all when None).

    Returns:
        How many analyses were stored.

    Raises:
        ValueError: If ``models`` is not the active version, ``account`` is empty or
            ``batch`` < 1; :class:`core.networks.models.ModelFileError` for an unusable
            active folder.
        core.auth.AccessDenied: If ``account`` may not upload in this store.
    """
    with open_db(db_path) as db:
        if models is None:
            _, models = load_active(db, device=device)
        else:
            wanted = active_model_dir(db)[0]
            if model_identity(models)[0] != wanted:
                raise ValueError(
                    f"models are {model_identity(models)[0]!r}, but the version in use is "
                    f"{wanted!r}"
                )
        return len(
            analyze_stored(
                db,
                models,
                account=account,
                batch=batch,
                limit=limit,
                progress=progress,
                reanalyse=True,
            )
        )
