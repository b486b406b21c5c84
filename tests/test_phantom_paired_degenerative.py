"""Degenerative uptake of the phantom comes in left-right pairs (core.phantom.findings)."""

from __future__ import annotations

import numpy as np
import pytest

from core.phantom import findings
from core.phantom.anatomy import Body, build_body
from core.phantom.findings import PAIRED_DEGENERATIVE, Benign, _degenerative
from core.phantom.generate import generate_case

SEEDS = range(300)
#: Site-name prefix of each degenerative site kind (``where`` in ``_degenerative``).
PREFIXES: dict[str, str] = {
    "knee_": "knee",
    "acromioclavicular_": "shoulder",
    "sternoclavicular_": "sternoclavicular",
    "hip_": "hip",
    "si_": "si_joint",
    "trochanter_": "trochanter",
    "foot_": "foot",
    "facet_": "lumbar_facet",
    "costochondral": "rib_costochondral",
    "spine_osteophyte_": "spine_osteophyte",
    "vertebral_endplate_": "vertebral_endplate",
}
SPINE_SITES = ("spine_osteophyte", "vertebral_endplate")
#: A partner's uptake ratio is the first side's times exp(N(0, 0.15)), unbounded:
#: a factor 2 is 4.6 sigma (never reached over SEEDS; 1.6, 3.1 sigma, is: seed 275).
RATIO_FACTOR = 2.0
RATIO_SIGMA = 0.15


def _where(site: str) -> str:
    return next(w for prefix, w in PREFIXES.items() if site.startswith(prefix))


def _mirror(site: str) -> str | None:
    for side, other in (("_left", "_right"), ("_right", "_left")):
        if site.endswith(side):
            return site[: -len(side)] + other
    return None


@pytest.fixture(scope="module")
def body() -> Body:
    # the draws of _degenerative do not depend on the body, only the positions do
    return build_body(np.random.default_rng(0), "M", 70)


def _draws(
    monkeypatch: pytest.MonkeyPatch, body: Body, seed: int, table: dict[str, float]
) -> list[Benign]:
    with monkeypatch.context() as m:
        m.setattr(findings, "PAIRED_DEGENERATIVE", table)
        return _degenerative(np.random.default_rng(seed), body)


def _split(
    monkeypatch: pytest.MonkeyPatch, body: Body, seed: int
) -> tuple[list[Benign], list[Benign]]:
    """(first-side findings, partners) of one draw with the shipped table."""
    unpaired = _draws(monkeypatch, body, seed, {})
    out = _degenerative(np.random.default_rng(seed), body)
    return out[: len(unpaired)], out[len(unpaired) :]


def test_the_table_pairs_only_sided_joints() -> None:
    """Every paired site is a known degenerative site with a side; the spine is unpaired."""
    assert set(PAIRED_DEGENERATIVE) <= set(PREFIXES.values()) - set(SPINE_SITES)
    assert all(0.0 < p <= 1.0 for p in PAIRED_DEGENERATIVE.values())


def test_partners_are_added_after_the_unpaired_draw(
    monkeypatch: pytest.MonkeyPatch, body: Body
) -> None:
    """The first-side findings are those of the generator without pairing."""
    for seed in SEEDS:
        unpaired = _draws(monkeypatch, body, seed, {})
        out = _degenerative(np.random.default_rng(seed), body)
        assert len(out) >= len(unpaired)
        assert out[: len(unpaired)] == unpaired


def test_a_partner_mirrors_a_listed_first_side_site_and_is_about_as_hot(
    monkeypatch: pytest.MonkeyPatch, body: Body
) -> None:
    """Each partner is the other side of a drawn site listed in PAIRED_DEGENERATIVE, its
    ratio close to that site's (log spread about 0.15) and its size within about 15 %."""
    n_partners = 0
    kinds = set()
    log_ratios = []
    for seed in SEEDS:
        first, partners = _split(monkeypatch, body, seed)
        for p in partners:
            n_partners += 1
            assert p.kind == "degenerative"
            assert _where(p.site) in PAIRED_DEGENERATIVE
            kinds.add(_where(p.site))
            sources = [f for f in first if f.site == _mirror(p.site)]
            assert sources, f"seed {seed}: partner {p.site} has no first side"
            assert p.ratio is not None and 1.4 <= p.ratio <= 5.0
            ratios = [f.ratio for f in sources if f.ratio is not None]
            assert any(1 / RATIO_FACTOR <= p.ratio / r <= RATIO_FACTOR for r in ratios), (
                f"seed {seed}: {p.site} ratio {p.ratio} vs {ratios}"
            )
            assert any(0.84 <= p.size_mm / f.size_mm <= 1.16 for f in sources)
            if len(ratios) == 1 and 1.4 < p.ratio < 5.0:  # unclipped, one first side
                log_ratios.append(np.log(p.ratio / ratios[0]))
    assert n_partners > 50
    assert kinds == set(PAIRED_DEGENERATIVE)  # every listed site got a partner somewhere
    assert abs(float(np.mean(log_ratios))) < 0.05
    assert float(np.std(log_ratios)) == pytest.approx(RATIO_SIGMA, rel=0.2)
    within = np.mean(np.abs(log_ratios) <= np.log(1.6))
    assert within > 0.99  # a factor 1.6 covers all but the far tail


def test_a_partner_never_repeats_a_site(monkeypatch: pytest.MonkeyPatch, body: Body) -> None:
    """Partners are new sites: not among the first-side sites, nor among each other."""
    for seed in SEEDS:
        first, partners = _split(monkeypatch, body, seed)
        sites = [p.site for p in partners]
        assert len(set(sites)) == len(sites)
        assert not set(sites) & {f.site for f in first}


def test_with_certain_pairing_every_listed_site_has_both_sides(
    monkeypatch: pytest.MonkeyPatch, body: Body
) -> None:
    """With every probability 1, each sided site gets its mirror; the spine sites, even
    when listed, add nothing (their partner would be the same site)."""
    everything = dict.fromkeys(PREFIXES.values(), 1.0)
    for seed in range(100):
        unpaired = _draws(monkeypatch, body, seed, {})
        out = _draws(monkeypatch, body, seed, everything)
        sites = {f.site for f in out}
        for f in unpaired:
            mirror = _mirror(f.site)
            if _where(f.site) in SPINE_SITES:
                assert mirror is None
            else:
                assert mirror in sites
        assert not any(_where(f.site) in SPINE_SITES for f in out[len(unpaired) :])


def test_generated_cases_record_paired_degenerative_findings() -> None:
    """Whole cases record their degenerative findings in truth["benign"] (dicts with
    kind, site and ratio), both sides of a site among them in some case."""
    pairs = 0
    for i in range(6):
        case = generate_case(0, i, metastasis=False, benign=("degenerative",), age=70)
        degen = [b for b in case.truth["benign"] if b["kind"] == "degenerative"]
        assert degen
        for b in degen:
            assert {"kind", "site", "ratio"} <= set(b)
            assert isinstance(b["ratio"], float) and 1.4 <= b["ratio"] <= 5.0
        sites = {b["site"] for b in degen}
        pairs += sum(1 for s in sites if s.endswith("_left") and _mirror(s) in sites)
    assert pairs >= 1
