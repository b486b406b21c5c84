"""Training-only normal uptake on the mid-line of the face and the sternum.

``add_paired_spots`` with ``midline_share`` draws, instead of a left-right pair, a single
spot centred on the mid-line of the face (the lower half of the skull's rows) or of the
sternum. With the share at 0 it must draw exactly what the pairs-only version drew, so
that the shipped scorer's training data reproduce.
"""

from __future__ import annotations

import numpy as np

from core.anatomy.regions import index_of
from core.networks.lesion_training import (
    MIDLINE_JITTER,
    LesionAugment,
    _midline_site,
    add_paired_spots,
)

SKULL = index_of("skull")
STERNUM = index_of("sternum")
SPINE = index_of("thoracic_spine")


def _body() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A skull (rows 20-119), a sternum (150-229) and a spine, centred on column 128."""
    skeleton = np.zeros((1024, 256), dtype=np.uint8)
    skeleton[20:120, 98:159] = SKULL
    skeleton[150:230, 122:135] = STERNUM
    skeleton[140:500, 110:147][skeleton[140:500, 110:147] == 0] = SPINE
    view = np.where(skeleton > 0, 50.0, 5.0).astype(np.float32)
    return view, skeleton, np.zeros_like(skeleton)


def test_midline_sites_lie_on_the_face_or_the_sternum_near_the_midline() -> None:
    _, skeleton, _ = _body()
    rng = np.random.default_rng(0)
    for _ in range(200):
        site = _midline_site(skeleton, 128.0, rng)
        assert site is not None
        r, c = site
        assert abs(c - 128) <= MIDLINE_JITTER
        # the face: the skull's lower half (rows 69-119), never the vault; or the sternum
        assert 69 <= r <= 119 or 150 <= r <= 229


def test_no_face_or_sternum_gives_no_site() -> None:
    skeleton = np.zeros((1024, 256), dtype=np.uint8)
    skeleton[140:500, 110:147] = SPINE
    assert _midline_site(skeleton, 128.0, np.random.default_rng(0)) is None


def test_midline_spots_add_uptake_symmetric_about_the_midline() -> None:
    view, skeleton, mask = _body()
    aug = LesionAugment(pair_prob=1.0, midline_share=1.0, pairs_mean=3.0)
    out = add_paired_spots(view, skeleton, mask, aug, np.random.default_rng(3))
    added = out - view
    assert added.sum() > 0
    rows, cols = np.nonzero(added > 0.5 * added.max())
    # the hottest added pixels straddle the mid-line, on the face or the sternum
    assert abs(cols.mean() - 128) <= MIDLINE_JITTER + 1
    assert set(np.unique(skeleton[rows, cols])) <= {SKULL, STERNUM, SPINE, 0}


def test_a_zero_share_draws_what_the_pairs_only_version_drew() -> None:
    view, skeleton, mask = _body()
    skeleton[250:400, 40:60] = index_of("humerus_right")
    skeleton[250:400, 196:216] = index_of("humerus_left")
    view = np.where(skeleton > 0, 50.0, 5.0).astype(np.float32)
    out = add_paired_spots(
        view, skeleton, mask, LesionAugment(pair_prob=1.0), np.random.default_rng(5)
    )
    added = out - view
    # pinned with the pairs-only version (commit e943948): the same counts, the same place
    assert float(added.sum()) == 82323.0
    np.testing.assert_array_equal(np.flatnonzero(added.sum(axis=0) > 0)[[0, -1]], [82, 174])
