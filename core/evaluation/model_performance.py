"""What the "Model performance" page shows, without Streamlit.

* **The paper's figures** (Liu et al. 2021, 123 test patients): Table 2's counts by age
  group, its Dice per group, ROC AUC and bladder Dice, in the same layout as
  :meth:`core.evaluation.evaluate.Evaluation.to_json` (:func:`paper_figures`), so one formatter
  (:func:`table2_frame`, :func:`headline_frame`) writes the paper, the networks and the
  classical baseline alike.
* **The model folder's state** from its JSON cards alone (:func:`model_status`): the page
  opens and says what is wrong when the weights are missing or broken.
* **ROC curve points** (:func:`roc_curve`) of per-case scores.
* **An evaluation run from the page** (:func:`evaluate_with_progress`): the cases in
  chunks through :func:`core.evaluation.evaluate.evaluate_cases`, reporting progress after each
  chunk; the result, with per-case scores for the ROC curves, is cached as JSON under
  :func:`core.config.data_dir` (:func:`save_report`, :func:`load_report`).
* **The demo labelled set** (:func:`ensure_demo_labelled`): a small phantom dataset
  generated on demand with a seed that no training run uses.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # no pandas-stubs in the venv

from core.config import AGE_GROUPS, data_dir
from core.evaluation.evaluate import CaseOutcome, Evaluation, describe_dataset, evaluate_cases
from core.evaluation.metrics import ALL_GROUP, TABLE2_COLUMNS, Confusion, format_dice
from core.lesions.scorer import SCORER
from core.networks.lesion_net import LESION
from core.networks.models import CLASSIFIER, SEGMENTER, LoadedModels, ModelFileError, read_card
from core.phantom.export import generate_dataset
from core.reading.dataset import read_dataset

#: Number of test patients of the paper.
PAPER_N = 123
#: The paper's Table 2 counts by age group (read off the table; they add up to "all").
PAPER_COUNTS: dict[str, Confusion] = {
    "<50": Confusion(tp=2, fp=1, tn=12, fn=0),
    "50-70": Confusion(tp=28, fp=5, tn=39, fn=3),
    ">=70": Confusion(tp=20, fp=4, tn=8, fn=1),
}
#: The paper's metastasis Dice by age group and over all (Table 2's last column).
PAPER_DICE_METASTASIS: dict[str, float] = {
    "<50": 0.717,
    "50-70": 0.742,
    ">=70": 0.740,
    ALL_GROUP: 0.739,
}
#: The paper's ROC AUC of metastasis and of bladder, and its bladder Dice (all cases).
PAPER_AUC_METASTASIS = 0.926
PAPER_AUC_BLADDER = 0.997
PAPER_DICE_BLADDER = 0.925
#: The project's targets on a held-out phantom set (figure key -> lowest acceptable value).
TARGETS: dict[str, float] = {
    "sensitivity": 0.95,
    "specificity": 0.95,
    "auc_metastasis": 0.98,
    "dice_metastasis": 0.80,
    "dice_bladder": 0.95,
}
#: The figures of :func:`headline_frame`, in order, with their labels.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("accuracy", "Accuracy"),
    ("ppv", "PPV"),
    ("npv", "NPV"),
    ("auc_metastasis", "ROC AUC (metastasis)"),
    ("auc_bladder", "ROC AUC (bladder)"),
    ("dice_metastasis", "Dice (metastasis)"),
    ("dice_bladder", "Dice (bladder)"),
)
#: Columns of :func:`table2_frame`: Table 2's, then AUCs and bladder Dice.
TABLE_COLUMNS: tuple[str, ...] = (
    *TABLE2_COLUMNS,
    "AUC (metastasis)",
    "AUC (bladder)",
    "Dice (bladder)",
)
_RATES = ("sensitivity", "specificity", "accuracy", "ppv", "npv")
_COUNTS = ("tp", "fp", "tn", "fn")

#: The demo labelled set: folder name under the data folder, cases and seed. Seeds 0-3,
#: 5, 999, 1001+ (training shards, held-out sets) and 2021 (demo cohort) are taken.
DEMO_LABELLED_NAME = "demo-labelled"
DEMO_LABELLED_CASES = 24
DEMO_LABELLED_SEED = 4242
#: Folder of cached evaluation reports, under the data folder.
EVALUATIONS_NAME = "evaluations"
#: Cache key of an evaluation without the networks (baseline only).
NO_MODEL = "baseline-only"


def _with_rates(counts: Confusion) -> dict[str, Any]:
    return {
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
        **{r: getattr(counts, r) for r in _RATES},
    }


def paper_figures() -> dict[str, Any]:
    """Return the paper's figures in the layout of ``Evaluation.to_json``.

    Returns:
        ``{"n_cases": 123, "overall": figures, "by_age": {group: figures}}``; the
        figures hold counts, rates, metastasis Dice, and (overall only, as the paper
        reports them) the two AUCs and the bladder Dice; the others are None.
    """
    total = Confusion(0, 0, 0, 0)
    for counts in PAPER_COUNTS.values():
        total = total + counts
    by_age = {
        g: {
            **_with_rates(PAPER_COUNTS[g]),
            "auc_metastasis": None,
            "auc_bladder": None,
            "dice_metastasis": PAPER_DICE_METASTASIS[g],
            "dice_bladder": None,
        }
        for g in AGE_GROUPS
    }
    overall = {
        **_with_rates(total),
        "auc_metastasis": PAPER_AUC_METASTASIS,
        "auc_bladder": PAPER_AUC_BLADDER,
        "dice_metastasis": PAPER_DICE_METASTASIS[ALL_GROUP],
        "dice_bladder": PAPER_DICE_BLADDER,
    }
    return {"n_cases": PAPER_N, "overall": overall, "by_age": by_age}


def _group(figures: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(figures, Mapping):
        raise ValueError(f"{where} must be a mapping of figures, got {type(figures).__name__}")
    for key in _COUNTS:
        value = figures.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}[{key!r}] must be an integer >= 0, got {value!r}")
    return figures


def _check_grouped(report: Mapping[str, Any], name: str) -> None:
    _group(report.get("overall"), f"{name}['overall']")
    by_age = report.get("by_age")
    if not isinstance(by_age, Mapping):
        raise ValueError(f"{name}['by_age'] must be a mapping of the age groups")
    for g in AGE_GROUPS:
        _group(by_age.get(g), f"{name}['by_age'][{g!r}]")


def has_figures(report: Mapping[str, Any] | None) -> bool:
    """Tell whether a report holds the networks' figures in the evaluation layout.

    Args:
        report: A card's ``metrics``, a cached report, or None.

    Returns:
        True when ``overall`` and ``by_age`` hold valid counts.
    """
    if not report:
        return False
    try:
        _check_grouped(report, "report")
    except ValueError:
        return False
    return True


def _format_float(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def _confusion(figures: Mapping[str, Any]) -> Confusion:
    return Confusion(*(int(figures[k]) for k in _COUNTS))


def table2_frame(report: Mapping[str, Any]) -> pd.DataFrame:
    """Write grouped figures as the paper's Table 2, with AUCs and bladder Dice added.

    Args:
        report: ``{"overall": figures, "by_age": {"<50": ..., "50-70": ..., ">=70": ...}}``
            as written by ``Evaluation.to_json`` (or its ``baseline`` entry, or
            :func:`paper_figures`).

    Returns:
        One row per group (``"<50"``, ``"50-70"``, ``">=70"``, ``"all"``), columns
        :data:`TABLE_COLUMNS`, every cell a string: rates as Table 2 writes them
        (``"92.59 % (50/54)"``, ``"12/13"``), Dice and AUC with three decimals,
        ``"n/a"`` where undefined.

    Raises:
        ValueError: If ``report`` lacks a group or a group's counts.
    """
    _check_grouped(report, "report")
    rows = []
    groups = [(g, report["by_age"][g]) for g in AGE_GROUPS] + [(ALL_GROUP, report["overall"])]
    for name, figures in groups:
        counts = _confusion(figures)
        rows.append(
            [
                name,
                str(counts.n),
                *(counts.formatted(r) for r in _RATES),
                format_dice(figures.get("dice_metastasis")),
                _format_float(figures.get("auc_metastasis")),
                _format_float(figures.get("auc_bladder")),
                format_dice(figures.get("dice_bladder")),
            ]
        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _headline_cell(key: str, figures: Mapping[str, Any] | None) -> str:
    if figures is None:
        return "not run"
    if key in _RATES:
        return _confusion(figures).formatted(key)
    return _format_float(figures.get(key))


def headline_frame(
    model: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    paper: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Compare the overall figures of the networks, the baseline and the paper.

    Args:
        model: The networks' overall figures (``report["overall"]``), or None when
            they were not run.
        baseline: The baseline's overall figures, or None.
        paper: The paper's overall figures; :func:`paper_figures` when None.

    Returns:
        One row per figure of :data:`HEADLINE`, columns ``"figure"``, ``"networks"``,
        ``"classical baseline"``, ``"paper"`` and ``"target"`` (the project's lowest
        acceptable value on the held-out phantom set, or "").
    """
    paper = paper if paper is not None else paper_figures()["overall"]
    for name, figures in (("model", model), ("baseline", baseline), ("paper", paper)):
        if figures is not None:
            _group(figures, name)
    rows = [
        [
            label,
            _headline_cell(key, model),
            _headline_cell(key, baseline),
            _headline_cell(key, paper),
            (f">= {TARGETS[key]:.0%}" if key in _RATES else f">= {TARGETS[key]:.2f}")
            if key in TARGETS
            else "",
        ]
        for key, label in HEADLINE
    ]
    return pd.DataFrame(
        rows, columns=["figure", "networks", "classical baseline", "paper", "target"]
    )


def roc_curve(
    truth: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the points of the ROC curve of scores against a binary truth.

    Each distinct score is a threshold ("positive when score >= threshold"), from the
    highest down; tied scores move the curve diagonally, as the AUC counts ties one half.

    Args:
        truth: 1-D booleans (or 0/1), True = the class is present.
        scores: 1-D finite floats, same length, higher = more likely present.

    Returns:
        (false-positive rates, true-positive rates), both starting at 0 and ending
        at 1, non-decreasing; the trapezoid area under them is the ROC AUC.

    Raises:
        ValueError: If the lengths differ, a score is not finite, or ``truth`` holds
            only one class (the curve is undefined).
    """
    t = np.asarray(truth)
    s = np.asarray(scores, dtype=np.float64)
    if t.ndim != 1 or s.shape != t.shape:
        raise ValueError(f"truth and scores must be 1-D of one length, got {t.shape}, {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if t.dtype != np.bool_ and not np.isin(t, (0, 1)).all():
        raise ValueError("truth must hold only booleans or 0/1")
    t = t.astype(bool)
    positives, negatives = int(t.sum()), int((~t).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("truth must hold both classes for a ROC curve")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    # the last index of each run of equal scores: one point per distinct threshold
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(t)[last]
    fp = np.cumsum(~t)[last]
    return np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]


@dataclass(frozen=True)
class ModelStatus:
    """What a model folder holds, read from its cards without loading the weights.

    Attributes:
        directory: The folder.
        cards: ``{name: card}`` of the cards that could be read.
        problems: Why the models cannot be used, one sentence each (empty when the
            cards and weight files are in place; the weights' SHA-256 is checked only
            when they load).
    """

    directory: Path
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Both cards read and both weight files in place, of the recorded size."""
        return not self.problems and CLASSIFIER in self.cards and SEGMENTER in self.cards

    @property
    def key(self) -> str:
        """A cache key of the weights: their recorded SHA-256s, or :data:`NO_MODEL`."""
        if not self.usable:
            return NO_MODEL
        return "+".join(str(self.cards[n]["weights"].get("sha256", ""))[:16] for n in self.cards)

    @property
    def metrics(self) -> dict[str, Any]:
        """The evaluation recorded in the cards, or ``{}``.

        The lesion network's or the scorer's first when the folder has one (it makes
        the calls), then the classifier's, then the segmenter's.
        """
        for name in (LESION, SCORER, CLASSIFIER, SEGMENTER):
            found = self.cards.get(name, {}).get("metrics")
            if isinstance(found, dict) and found:
                return found
        return {}


def model_status(directory: str | Path) -> ModelStatus:
    """Read a model folder's cards and check that the weight files are there.

    Args:
        directory: The model folder, e.g. :func:`core.config.model_dir`.

    Returns:
        The :class:`ModelStatus`; never raises for a missing or broken folder.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return ModelStatus(folder, problems=(f"the model folder {folder} does not exist",))
    cards: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    # the lesion network is optional; when its card is there, it is checked like the others
    optional = [n for n in (LESION, SCORER) if (folder / f"{n}.json").is_file()]
    names = [CLASSIFIER, SEGMENTER, *optional]
    for name in names:
        try:
            card = read_card(folder, name)
        except ModelFileError as exc:
            problems.append(str(exc))
            continue
        cards[name] = card
        weights = card.get("weights")
        file = folder / str(weights.get("file", f"{name}.safetensors") if weights else "")
        if not isinstance(weights, dict) or not file.is_file():
            problems.append(f"{file}: weights file not found")
        elif "bytes" in weights and file.stat().st_size != weights["bytes"]:
            problems.append(
                f"{file}: {file.stat().st_size} bytes, the card records {weights['bytes']}; "
                "the weights file was changed or is incomplete"
            )
    return ModelStatus(folder, cards, tuple(problems))


def demo_labelled_dir() -> Path:
    """Return the folder of the demo labelled set (it may not exist yet)."""
    return data_dir() / DEMO_LABELLED_NAME


def ensure_demo_labelled(
    folder: str | Path | None = None,
    cases: int = DEMO_LABELLED_CASES,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate the demo labelled set unless it is already there.

    The same as ``python -m core generate FOLDER --cases 24 --seed 4242``.

    Args:
        folder: Where; :func:`demo_labelled_dir` when None.
        cases: Number of cases (>= 1).
        progress: Called as ``progress(done, cases)`` while generating.

    Returns:
        The dataset folder.

    Raises:
        ValueError: If ``cases`` < 1.
    """
    if cases < 1:
        raise ValueError(f"cases must be >= 1, got {cases!r}")
    root = Path(folder) if folder is not None else demo_labelled_dir()
    if not (root / "cases.csv").is_file():
        generate_dataset(root, cases, DEMO_LABELLED_SEED, progress=progress)
    return root


def evaluate_with_progress(
    folder: str | Path,
    models: LoadedModels | None,
    *,
    limit: int | None = None,
    batch: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Evaluate like :func:`core.evaluation.evaluate.evaluate_dataset`, reporting progress.

    The cases go through :func:`core.evaluation.evaluate.evaluate_cases` in chunks of ``batch``;
    the outcomes and timings are the same as one call over all cases.

    Args:
        folder: A labelled dataset folder.
        models: :class:`core.networks.models.LoadedModels`, or None for the baseline only.
        limit: Evaluate only the first ``limit`` cases (>= 1), or all.
        batch: Scans per chunk (>= 1).
        progress: Called as ``progress(done, total)`` after each chunk.

    Returns:
        The :class:`core.evaluation.evaluate.Evaluation`.

    Raises:
        ValueError: If the dataset is invalid or empty, or ``limit`` / ``batch`` < 1.
        core.scan.ScanReadError: If a view image cannot be read.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch!r}")
    cases = read_dataset(folder)[:limit]
    if not cases:
        raise ValueError(f"{Path(folder) / 'cases.csv'}: the dataset holds no case")
    model_out: list[CaseOutcome] = []
    base_out: list[CaseOutcome] = []
    seconds = 0.0
    device = ""
    for start in range(0, len(cases), batch):
        chunk = cases[start : start + batch]
        part = evaluate_cases(chunk, models, batch=batch, progress=False)
        if part.model is not None:
            model_out.extend(part.model)
        base_out.extend(part.baseline)
        seconds += (part.seconds_per_case or 0.0) * len(chunk)
        device = part.device
        if progress is not None:
            progress(start + len(chunk), len(cases))
    return Evaluation(
        model=tuple(model_out) if models is not None else None,
        baseline=tuple(base_out),
        seconds_per_case=seconds / len(cases) if models is not None else None,
        device=device,
    )


def _case_scores(outcomes: Sequence[CaseOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "case_id": o.case_id,
            "age": o.age,
            "metastasis": o.metastasis,
            "bladder": o.bladder,
            "call": o.call,
            "score_metastasis": o.score_metastasis,
            "score_bladder": o.score_bladder,
        }
        for o in outcomes
    ]


def evaluation_report(
    evaluation: Evaluation, folder: str | Path, status: ModelStatus
) -> dict[str, Any]:
    """Return the JSON report of a page evaluation: the CLI's layout plus per-case scores.

    Args:
        evaluation: From :func:`evaluate_with_progress`.
        folder: The dataset folder.
        status: The model folder it ran with.

    Returns:
        ``Evaluation.to_json()`` plus ``dataset``
        (:func:`core.evaluation.evaluate.describe_dataset`), ``device``, ``model``
        (``{"directory", "key"}``; key :data:`NO_MODEL` for the baseline only) and
        ``cases`` (``{"model": [...] or None, "baseline": [...]}``, per case:
        ``case_id, age, metastasis, bladder, call, score_metastasis, score_bladder``).
    """
    model_cases = _case_scores(evaluation.model) if evaluation.model is not None else None
    return {
        **evaluation.to_json(),
        "dataset": describe_dataset(folder, evaluation),
        "device": evaluation.device,
        "model": {
            "directory": str(status.directory),
            "key": status.key if model_cases is not None else NO_MODEL,
        },
        "cases": {
            "model": model_cases,
            "baseline": _case_scores(evaluation.baseline),
        },
    }


def report_path(folder: str | Path, model_key: str) -> Path:
    """Return where the report of a dataset evaluated with a model is cached.

    Args:
        folder: The dataset folder (resolved, so two spellings of it share a file).
        model_key: :attr:`ModelStatus.key` (or :data:`NO_MODEL`).

    Returns:
        ``<data>/evaluations/<hash>.json``.
    """
    digest = hashlib.sha256(f"{Path(folder).resolve()}|{model_key}".encode()).hexdigest()
    return data_dir() / EVALUATIONS_NAME / f"{digest[:20]}.json"


def save_report(report: Mapping[str, Any], folder: str | Path, model_key: str) -> Path:
    """Cache a report for :func:`load_report`.

    Args:
        report: From :func:`evaluation_report`.
        folder: The dataset folder.
        model_key: The model's key.

    Returns:
        The file written.
    """
    path = report_path(folder, model_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file
    return path


def load_report(folder: str | Path, model_key: str) -> dict[str, Any] | None:
    """Return the cached report of a dataset and model, or None when there is none.

    A file that is not a valid report (e.g. from an older version) counts as none.

    Args:
        folder: The dataset folder.
        model_key: The model's key.

    Returns:
        The report dict, or None.
    """
    path = report_path(folder, model_key)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(report, dict) or not isinstance(report.get("baseline"), dict):
        return None
    try:
        _check_grouped(report["baseline"], "baseline")
    except ValueError:
        return None
    return report
