"""What the "From PACS" page shows: the settings' state, the studies found, the outcomes.

The page itself stays a list of widgets and calls; the sentences and table rows it
shows are built here, from :mod:`workflow.pacs`'s results, so that they can be read
and tested without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from workflow.pacs.dicomweb import RemoteStudy
from workflow.pacs.pull import PullOutcome
from workflow.pacs.settings import CONFIG_ENV, ENV_NAMES, PacsSettings, load_settings

if TYPE_CHECKING:
    from workflow.pacs.push import SentResults

#: What the page says when no DICOMweb root is configured: which settings to give.
NOT_CONFIGURED = (
    "No PACS is configured. Set `{url}` to the PACS's DICOMweb root (for example "
    "`http://pacs.example:8042/dicom-web`) and optionally `{ae}` to its AE title, or give "
    "`dicomweb_url` and `pacs_ae` in the `[pacs]` table of a TOML file named by `{config}`; "
    "then restart the dashboard."
).format(url=ENV_NAMES["dicomweb_url"], ae=ENV_NAMES["pacs_ae"], config=CONFIG_ENV)
#: The words for each pull status, as the outcome table shows them.
STATUS_WORDS: Mapping[str, str] = {
    "stored": "stored and analysed",
    "analysed": "stored before, analysed now",
    "already stored": "stored before (not analysed again)",
    "failed": "not stored",
}


def pacs_settings() -> tuple[PacsSettings | None, str]:
    """Read the DICOM node's settings for the page.

    Returns:
        The settings and "" when they can be read, else None and why not (a malformed
        variable or TOML file), in words for the page.
    """
    try:
        return load_settings(), ""
    except ValueError as exc:
        return None, f"The PACS settings cannot be read: {exc}"


def study_label(study: RemoteStudy, hide_names: bool) -> str:
    """One line naming a study found on the PACS (the pick list's option).

    Args:
        study: The study.
        hide_names: True to leave the patient's name and ID out (names hidden).
    """
    parts = [study.study_date.isoformat() if study.study_date else "no date"]
    parts.append(study.description or "no description")
    parts.append(f"accession {study.accession_number}" if study.accession_number else "")
    if study.n_instances is not None:
        parts.append(f"{study.n_instances} instance{'s' if study.n_instances != 1 else ''}")
    if not hide_names:
        parts.append(f"{study.patient_name or 'no name'} ({study.patient_id or 'no ID'})")
    return " · ".join(p for p in parts if p)


def found_rows(studies: Sequence[RemoteStudy], hide_names: bool) -> list[dict[str, object]]:
    """The table of studies found: date, description, accession, instances.

    Args:
        studies: As :meth:`workflow.pacs.dicomweb.PacsClient.find_studies` lists them.
        hide_names: True to leave the patient columns out; the PACS's patient ID is a
            hospital identifier, hidden with the name.
    """
    rows: list[dict[str, object]] = []
    for s in studies:
        row: dict[str, object] = {
            "Date": s.study_date.isoformat() if s.study_date else None,
            "Description": s.description or None,
            "Accession": s.accession_number or None,
            "Instances": s.n_instances,
        }
        if not hide_names:
            row["Patient"] = s.patient_name or None
            row["Patient ID"] = s.patient_id or None
        rows.append(row)
    return rows


def outcome_line(outcome: PullOutcome, studies: Mapping[str, RemoteStudy]) -> str:
    """One sentence saying what importing a study (or one scan of it) did.

    Args:
        outcome: The outcome.
        studies: The studies found, by Study Instance UID, to name the study by its date
            and description rather than its UID.
    """
    found = studies.get(outcome.study_instance_uid)
    if found is not None:
        name = study_label(found, hide_names=True)
    else:
        name = f"study {outcome.study_instance_uid}"
    words = STATUS_WORDS.get(outcome.status, outcome.status)
    if outcome.study_id is None:
        return f"{name}: {words}" + (f": {outcome.reason}" if outcome.reason else ".")
    return f"{name}: {words} as study {outcome.study_id}."


def sendable(outcomes: Sequence[PullOutcome]) -> list[int]:
    """The stored studies with an analysis, once each, in order: those whose results may be sent."""
    ids: list[int] = []
    for o in outcomes:
        if o.study_id is not None and o.analysis_id is not None and o.study_id not in ids:
            ids.append(o.study_id)
    return ids


def sent_line(sent: SentResults, url: str) -> str:
    """Say what :func:`workflow.pacs.push.send_results` sent, and where."""
    n = len(sent.sop_instance_uids)
    return (
        f"Sent {n} instance{'s' if n != 1 else ''} to {url} into study "
        f"{sent.study_instance_uid}: a Secondary Capture overlay per view and a structured "
        "report of the burden."
    )
