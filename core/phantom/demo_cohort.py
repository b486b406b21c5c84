"""The demo cohort: synthetic patients the dashboard starts with when its store is empty.

Every patient here comes from the phantom (:mod:`core.phantom`); none is a real
person, and the store marks each one synthetic. Four in five patients have a
longitudinal series (2-6 scans under treatment); the others one diagnostic scan.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from core.phantom.generate import PhantomCase, generate_case, generate_series

#: Seed of the shipped demo cohort (the paper's year), so every install shows the same one.
DEMO_SEED = 2021
#: Patients in the demo cohort: about 120 scans in all.
DEMO_PATIENTS = 40
#: The account the demo cohort's writes are audited under (``scripts/run.sh`` also
#: analyses it under this name).
DEMO_SETUP_ACCOUNT = "demo-setup"


#: How the phantom's treatment codes are written for physicians.
AGENT_NAMES: dict[str, str] = {
    "androgen_deprivation": "androgen deprivation",
    "radium_223": "radium-223",
    "zoledronic_acid": "zoledronic acid",
    "chemotherapy": "chemotherapy",
}


@dataclass(frozen=True)
class DemoTreatment:
    """A treatment of a demo patient, as the store records it."""

    agent: str
    start: dt.date
    end: dt.date | None
    dose: str


@dataclass(frozen=True)
class DemoPatient:
    """One synthetic patient: the scans in date order and the treatments."""

    pseudonym: str
    cases: list[PhantomCase]
    treatments: list[DemoTreatment]


def case_sha256(case: PhantomCase) -> str:
    """A stable SHA-256 standing for the 'file' of a phantom scan (its id and counts)."""
    h = hashlib.sha256(case.case_id.encode())
    for view in sorted(case.views):
        h.update(case.views[view].tobytes())
    return h.hexdigest()


def demo_patient(index: int, seed: int = DEMO_SEED) -> DemoPatient:
    """Return demo patient ``index`` (deterministic for ``seed``).

    Raises:
        ValueError: If ``index`` is negative.
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    single = index % 5 == 4  # one in five patients has a single diagnostic scan
    cases = [generate_case(seed, index)] if single else generate_series(seed, index)
    series = cases[-1].truth.get("series") or {}
    treatments = [
        DemoTreatment(
            agent=AGENT_NAMES.get(t["agent"], t["agent"].replace("_", " ")),
            start=dt.date.fromisoformat(t["start"]),
            end=dt.date.fromisoformat(t["end"]) if t["end"] else None,
            dose=t["dose"],
        )
        for t in series.get("treatments", [])
    ]
    return DemoPatient(pseudonym=f"Demo {index + 1:03d}", cases=cases, treatments=treatments)


def demo_cohort(n_patients: int = DEMO_PATIENTS, seed: int = DEMO_SEED) -> Iterator[DemoPatient]:
    """Yield the demo cohort's patients one at a time (each is a few MB of pixels).

    Raises:
        ValueError: If ``n_patients`` is not positive.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be >= 1, got {n_patients}")
    for index in range(n_patients):
        yield demo_patient(index, seed)
