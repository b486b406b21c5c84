"""Patients drawn like the paper's cohort, and the course of a longitudinal series.

**Demographics** follow Liu et al. 2021 (Table 1 and the text): 621 patients, 280
with bone metastases (lung 112, breast 84, prostate 48, digestive 23, liver 9,
urinary 4) and 341 without (lung 153, breast 65, prostate 31, digestive 48, liver 11,
urinary 6, nasopharynx 14, bone 10, ovary 3); 389 men and 232 women; age 12 to 93,
median 66. A patient's group is drawn with P(metastasis) = 280/621, then the primary
from that group's row of Table 1, then sex (:data:`P_MALE`: breast 1 % male, prostate
all male, ovary all female, the rest tuned so that the expected sex ratio is 389/232),
then the age from a per-primary truncated normal (:data:`AGE_MODEL`, tuned so the
overall median is about 66; bone primaries include adolescents).

**Series.** A longitudinal patient has 2 to 6 scans 6 to 16 weeks apart, treatment
starting a few days after the baseline scan. Treatments by primary: prostate —
androgen deprivation (radium-223 added after progression); breast — zoledronic acid
with chemotherapy; others — chemotherapy, often with zoledronic acid. The course
(:data:`COURSES`) decides how lesions evolve at each interval: ``response`` (uptake
falls, lesions may resolve), ``stable``, ``progression`` (uptake and size rise, new
lesions appear), ``flare`` (on the first follow-up within 12 weeks of treatment
start, uptake rises and faint lesions newly show, then the lesions respond), and for
patients without metastases ``no_disease`` or ``new_metastases`` (lesions appear
at a later scan).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import numpy as np

from core.phantom.anatomy import Body
from core.phantom.findings import Benign, Lesion, sample_lesions

#: The paper's Table 1: primary tumour counts per group.
TABLE1: dict[str, dict[str, int]] = {
    "metastasis": {
        "lung": 112,
        "breast": 84,
        "prostate": 48,
        "digestive": 23,
        "liver": 9,
        "urinary": 4,
    },
    "no_metastasis": {
        "lung": 153,
        "breast": 65,
        "prostate": 31,
        "digestive": 48,
        "liver": 11,
        "urinary": 6,
        "nasopharynx": 14,
        "bone": 10,
        "ovary": 3,
    },
}
#: Primary tumours, in Table 1's column order.
PRIMARIES: tuple[str, ...] = (
    "lung",
    "breast",
    "prostate",
    "digestive",
    "liver",
    "urinary",
    "nasopharynx",
    "bone",
    "ovary",
)
#: Probability that a patient has bone metastases (280 / 621).
P_METASTASIS = 280 / 621
#: Probability of a male patient given the primary.
P_MALE: dict[str, float] = {
    "lung": 0.81,
    "breast": 0.01,
    "prostate": 1.0,
    "digestive": 0.75,
    "liver": 0.85,
    "urinary": 0.8,
    "nasopharynx": 0.75,
    "bone": 0.6,
    "ovary": 0.0,
}
#: Age model per primary: list of (weight, mean, sd) normal components, truncated to 12-93.
AGE_MODEL: dict[str, list[tuple[float, float, float]]] = {
    "lung": [(1.0, 68.0, 9.5)],
    "breast": [(1.0, 61.0, 11.0)],
    "prostate": [(1.0, 74.0, 7.5)],
    "digestive": [(1.0, 68.0, 10.5)],
    "liver": [(1.0, 61.0, 10.5)],
    "urinary": [(1.0, 68.0, 10.0)],
    "nasopharynx": [(1.0, 52.0, 11.0)],
    "bone": [(0.6, 17.0, 4.0), (0.4, 52.0, 15.0)],
    "ovary": [(1.0, 57.0, 10.0)],
}
AGE_MIN, AGE_MAX = 12, 93
#: Courses of a series, by group.
COURSES: dict[str, tuple[str, ...]] = {
    "metastasis": ("response", "stable", "progression", "flare"),
    "no_metastasis": ("no_disease", "new_metastases"),
}
COURSE_PROBS: dict[str, tuple[float, ...]] = {
    "metastasis": (0.38, 0.2, 0.27, 0.15),
    "no_metastasis": (0.88, 0.12),
}
#: Scan dates are drawn within these (the paper's collection period is around them).
FIRST_DATE, LAST_DATE = dt.date(2016, 1, 1), dt.date(2020, 6, 30)


@dataclass(frozen=True)
class PatientInfo:
    """Who a phantom patient is.

    Attributes:
        patient_id: Synthetic id, e.g. ``"PH7-00012"``.
        sex: ``"M"`` or ``"F"``.
        age: Age in whole years at the (first) scan.
        primary: Primary tumour, one of :data:`PRIMARIES`.
        birth_year: Year of birth.
        birth_date: Date of birth (drawn; consistent with ``age`` at the scan).
        metastasis: True for the paper's metastasis group (at the first scan).
    """

    patient_id: str
    sex: str
    age: int
    primary: str
    birth_year: int
    birth_date: dt.date
    metastasis: bool


@dataclass(frozen=True)
class Treatment:
    """One treatment of a series: agent, dates and dose (JSON-able via :meth:`as_dict`)."""

    agent: str
    start: dt.date
    end: dt.date | None
    dose: str

    def as_dict(self) -> dict[str, str | None]:
        """Return ``{"agent", "start", "end", "dose"}`` with ISO dates."""
        return {
            "agent": self.agent,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "dose": self.dose,
        }


def _age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def sample_age(rng: np.random.Generator, primary: str) -> int:
    """Draw an age in whole years (12-93) for a primary tumour from :data:`AGE_MODEL`."""
    comps = AGE_MODEL[primary]
    w = np.array([c[0] for c in comps])
    _, mean, sd = comps[int(rng.choice(len(comps), p=w / w.sum()))]
    for _ in range(100):
        a = rng.normal(mean, sd)
        if AGE_MIN <= a < AGE_MAX + 1:
            return int(a)
    return int(np.clip(mean, AGE_MIN, AGE_MAX))


def sample_patient(
    rng: np.random.Generator,
    patient_id: str,
    *,
    metastasis: bool | None = None,
    primary: str | None = None,
    sex: str | None = None,
    age: int | None = None,
    scan_date: dt.date | None = None,
) -> tuple[PatientInfo, dt.date]:
    """Draw a patient like the paper's cohort, and the date of their (first) scan.

    Every draw is made whatever is forced, so forcing one field leaves the others as
    they would have been (unless they depend on it: the primary on the group, sex and
    age on the primary).

    Args:
        rng: Random generator.
        patient_id: The id to give.
        metastasis: Force the group; None draws it (P = 280/621).
        primary: Force the primary tumour (one of :data:`PRIMARIES`).
        sex: Force ``"M"`` or ``"F"``.
        age: Force the age (12-100).
        scan_date: Force the scan date.

    Returns:
        ``(patient, scan_date)``.

    Raises:
        ValueError: If a forced value is not allowed.
    """
    if primary is not None and primary not in PRIMARIES:
        raise ValueError(f"primary must be one of {PRIMARIES}, got {primary!r}")
    if sex is not None and sex not in ("M", "F"):
        raise ValueError(f"sex must be 'M' or 'F', got {sex!r}")
    if age is not None and not (AGE_MIN <= age <= 100):
        raise ValueError(f"age must be within {AGE_MIN}-100, got {age!r}")
    u_group, u_primary, u_sex = rng.random(3)
    drawn_age_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    date_days = int(rng.integers(0, (LAST_DATE - FIRST_DATE).days + 1))
    birth_offset = int(rng.integers(0, 365))
    group_met = bool(u_group < P_METASTASIS) if metastasis is None else bool(metastasis)
    if primary is None:
        row = TABLE1["metastasis" if group_met else "no_metastasis"]
        names = list(row)
        cum = np.cumsum([row[n] for n in names]) / sum(row.values())
        primary = names[int(np.searchsorted(cum, u_primary, side="right"))]
    if sex is None:
        sex = "M" if u_sex < P_MALE[primary] else "F"
    if age is None:
        age = sample_age(drawn_age_rng, primary)
    date = FIRST_DATE + dt.timedelta(days=date_days) if scan_date is None else scan_date
    # birth date: the given age on the scan date, birthday spread over the year
    birth = date - dt.timedelta(days=int(age * 365.25) + birth_offset)
    while _age_on(birth, date) > age:
        birth += dt.timedelta(days=1)
    while _age_on(birth, date) < age:
        birth -= dt.timedelta(days=1)
    patient = PatientInfo(
        patient_id=patient_id,
        sex=sex,
        age=int(age),
        primary=primary,
        birth_year=birth.year,
        birth_date=birth,
        metastasis=group_met,
    )
    return patient, date


def age_at(patient: PatientInfo, on: dt.date) -> int:
    """Return the patient's age in whole years on a date."""
    return _age_on(patient.birth_date, on)


# --- series ------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPlan:
    """Dates, treatments and course of a longitudinal series."""

    dates: tuple[dt.date, ...]
    treatments: tuple[Treatment, ...]
    course: str


def plan_series(
    rng: np.random.Generator, patient: PatientInfo, first_date: dt.date, n_scans: int | None
) -> SeriesPlan:
    """Draw the dates, the treatments and the course of a series.

    Args:
        rng: Random generator.
        patient: The patient (primary and group decide treatments and course).
        first_date: Date of the baseline scan.
        n_scans: Number of scans (2-6); drawn when None (2: 30 %, 3: 30 %, 4: 20 %,
            5: 12 %, 6: 8 %).

    Returns:
        The :class:`SeriesPlan`.

    Raises:
        ValueError: If ``n_scans`` is outside 2-6.
    """
    if n_scans is None:
        n_scans = int(rng.choice([2, 3, 4, 5, 6], p=[0.3, 0.3, 0.2, 0.12, 0.08]))
    if not 2 <= n_scans <= 6:
        raise ValueError(f"n_scans must be within 2-6, got {n_scans!r}")
    group = "metastasis" if patient.metastasis else "no_metastasis"
    course = str(rng.choice(COURSES[group], p=COURSE_PROBS[group]))
    start = first_date + dt.timedelta(days=int(rng.integers(3, 15)))
    dates = [first_date]
    for k in range(1, n_scans):
        if k == 1 and course == "flare":
            # the flare shows on an early scan: 6 to 12 weeks into treatment
            gap_days = (start - first_date).days + int(rng.integers(42, 80))
        else:
            gap_days = int(rng.integers(42, 113))
        dates.append(dates[-1] + dt.timedelta(days=gap_days))
    end_all = dates[-1] + dt.timedelta(days=28)
    tr: list[Treatment] = []
    if patient.primary == "prostate":
        tr.append(
            Treatment("androgen_deprivation", start, None, "goserelin 10.8 mg SC every 12 weeks")
        )
        if course == "progression" and n_scans >= 3:
            ra_start = dates[1] + dt.timedelta(days=int(rng.integers(7, 21)))
            tr.append(
                Treatment(
                    "radium_223",
                    ra_start,
                    ra_start + dt.timedelta(weeks=20),
                    "55 kBq/kg IV every 4 weeks, 6 injections",
                )
            )
        if rng.random() < 0.5:
            tr.append(Treatment("zoledronic_acid", start, end_all, "4 mg IV every 4 weeks"))
    elif patient.primary == "breast":
        tr.append(Treatment("zoledronic_acid", start, end_all, "4 mg IV every 4 weeks"))
        tr.append(
            Treatment(
                "chemotherapy",
                start,
                start + dt.timedelta(weeks=18),
                "docetaxel 75 mg/m2 IV every 3 weeks, 6 cycles",
            )
        )
    else:
        cycles = int(rng.integers(4, 7))
        tr.append(
            Treatment(
                "chemotherapy",
                start,
                start + dt.timedelta(weeks=3 * cycles),
                f"platinum doublet IV every 3 weeks, {cycles} cycles",
            )
        )
        if patient.metastasis and rng.random() < 0.7:
            tr.append(Treatment("zoledronic_acid", start, end_all, "4 mg IV every 4 weeks"))
    return SeriesPlan(dates=tuple(dates), treatments=tuple(tr), course=course)


@dataclass(frozen=True)
class LesionState:
    """A lesion at one scan of a series: the lesion and its status there."""

    lesion: Lesion
    status: str  # baseline, new, stable, responding, progressing, flare, resolved


#: A lesion whose uptake ratio falls below this counts as resolved (not drawn).
RESOLVED_RATIO = 1.15


def evolve(
    rng: np.random.Generator,
    body: Body,
    benign: list[Benign],
    states: list[LesionState],
    course: str,
    scan_index: int,
    weeks: float,
    days_on_treatment: int,
    next_id: int,
) -> tuple[list[LesionState], int]:
    """Move the lesions of a series on by one interval.

    Args:
        rng: Random generator.
        body: The patient's body (new lesions are placed on it).
        benign: Benign findings new lesions keep clear of.
        states: The lesions at the previous scan (resolved ones included).
        course: The series course (:data:`COURSES`).
        scan_index: Index of the new scan (1 = first follow-up).
        weeks: Weeks since the previous scan.
        days_on_treatment: Days from treatment start to the new scan.
        next_id: Number for the next new lesion id.

    Returns:
        ``(states, next_id)`` at the new scan; ids persist, resolved lesions stay in
        the list with status ``"resolved"``.
    """
    f = weeks / 8.0
    out: list[LesionState] = []
    flare_now = course == "flare" and scan_index == 1 and days_on_treatment <= 84
    for st in states:
        les = st.lesion
        if st.status == "resolved":
            out.append(st)
            continue
        excess = les.uptake_ratio - 1.0
        size = les.size_mm
        if flare_now:
            excess *= rng.uniform(1.2, 1.6)
            status = "flare"
        elif course in ("response", "flare"):
            excess *= rng.uniform(0.55, 0.85) ** f
            size *= rng.uniform(0.9, 1.0)
            status = "responding"
        elif course == "progression":
            excess *= rng.uniform(1.05, 1.35) ** f
            size = min(40.0, size * rng.uniform(1.0, 1.2))
            status = "progressing"
        else:  # stable, and lesions of a patient converting to metastatic disease
            excess *= rng.uniform(0.9, 1.1)
            status = "stable"
        ratio = float(np.clip(1.0 + excess, 1.0, 8.0))
        if ratio < RESOLVED_RATIO:
            status = "resolved"
        new = replace(
            les,
            uptake_ratio=round(ratio, 3),
            size_mm=round(float(size), 2),
            width_mm=round(min(les.width_mm, float(size)), 2),
        )
        out.append(LesionState(new, status))
    n_new = 0
    if flare_now:
        n_new = int(rng.integers(1, 4))  # faint lesions newly visible while healing
    elif course == "progression":
        n_new = int(rng.integers(1, 5))
    elif (
        course == "new_metastases"
        and scan_index >= 1
        and (
            (not any(s.status != "resolved" for s in states) and rng.random() < 0.6)
            or (any(s.status != "resolved" for s in states) and rng.random() < 0.3)
        )
    ):
        n_new = int(rng.integers(1, 4))
    for _ in range(n_new):
        for les in sample_lesions(rng, body, "solitary", benign, first_id=next_id, count=1):
            if flare_now:
                # faint lesions newly visible while healing: small and moderate
                les = replace(
                    les,
                    size_mm=round(float(rng.uniform(8, 16)), 2),
                    uptake_ratio=round(float(rng.uniform(1.6, 2.4)), 3),
                )
                les = replace(les, width_mm=min(les.width_mm, les.size_mm))
            out.append(LesionState(les, "new"))
            next_id += 1
    return out, next_id


def weeks_between(a: dt.date, b: dt.date) -> float:
    """Return the weeks from ``a`` to ``b``."""
    return (b - a).days / 7.0


def decay_factor(hours: float) -> float:
    """Return the Tc-99m decay factor over ``hours`` (half-life 6.01 h)."""
    return math.exp(-math.log(2.0) * hours / 6.01)
