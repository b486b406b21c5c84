"""The arithmetic of the lesion scorer's whole-view segmentation, and where it is said.

On a CPU with native bfloat16 the segmenter runs whole views about 3 x faster in
bfloat16; ``BONESCAN_PRECISION=float32`` (or a CPU without it) keeps float32. Every
analysis says which beside its device, and the prediction carries it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from core.analysis import analyze
from core.anatomy.network import predict_labels
from core.networks.inference import predict_scored, skeleton_labels, whole_view_precision
from core.networks.models import load_models
from core.phantom.generate import generate_case
from core.scan import Scan, ScanMeta
from tests.test_lesion_scorer import _folder, _scan


@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("cpu", "float32", "float32"),
        ("cpu", "bfloat16", "bfloat16"),
        ("cuda", "float16", "float16"),
        ("cuda", "float32", "float16"),
    ],
)
def test_the_precision_follows_the_device_and_the_models(
    tmp_path: Path, device: str, precision: str, expected: str
) -> None:
    models = load_models(_folder(tmp_path, 0.5), device="cpu", precision="float32")
    models = dataclasses.replace(models, device=torch.device(device), precision=precision)
    assert whole_view_precision(models) == expected


def test_bfloat16_is_close_to_float32_and_is_recorded(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 0.9)
    views, maps = _scan()
    (f32,) = predict_scored(load_models(folder, "cpu", precision="float32"), [views], [maps])
    (b16,) = predict_scored(load_models(folder, "cpu", precision="bfloat16"), [views], [maps])
    assert (f32.precision, b16.precision) == ("float32", "bfloat16")
    for v in views:
        # the bladder channel is unaffected by a few ulps; most labels agree
        assert f32.masks_ungated[v].shape == b16.masks_ungated[v].shape
        agree = np.mean(f32.masks_ungated[v] == b16.masks_ungated[v])
        assert agree > 0.99
    assert b16.probabilities["bladder"] == pytest.approx(f32.probabilities["bladder"], abs=0.05)


@pytest.mark.parametrize(
    ("precision", "suffix"), [("float32", ""), ("bfloat16", ", segmenter bfloat16")]
)
def test_the_analysis_names_the_segmenters_arithmetic(
    tmp_path: Path, precision: str, suffix: str
) -> None:
    models = load_models(_folder(tmp_path, 0.9), "cpu", precision=precision)
    views, _ = _scan()
    scan = Scan(views=views, meta=ScanMeta(source_format="phantom"))
    (result,) = analyze([scan], models)
    assert result.device.endswith(f"threads){suffix}")


def test_the_skeleton_runs_in_the_whole_view_arithmetic(tmp_path: Path) -> None:
    """The shipped skeleton network in bfloat16 labels a phantom scan as float32 does."""
    folder = _folder(tmp_path, 0.9)
    views = generate_case(3, 0).views
    f32 = load_models(folder, "cpu", precision="float32")
    b16 = load_models(folder, "cpu", precision="bfloat16")
    assert f32.skeleton is not None
    labels32, labels16 = skeleton_labels(f32, views), skeleton_labels(b16, views)
    plain = predict_labels(f32.skeleton, views)
    for v in views:
        np.testing.assert_array_equal(labels32[v], plain[v])
        bone = (labels32[v] > 0) | (labels16[v] > 0)
        # measured 0.24 % of bone pixels differing on 8 second-centre scans
        assert np.mean(labels32[v][bone] == labels16[v][bone]) > 0.99
    with pytest.raises(ValueError, match="skeleton"):
        skeleton_labels(dataclasses.replace(f32, skeleton=None), views)
    with pytest.raises(ValueError, match="precision"):
        predict_labels(f32.skeleton, views, precision="int8")


def test_the_bfloat16_segmenter_is_cast_once_and_leaves_float32_alone(tmp_path: Path) -> None:
    models = load_models(_folder(tmp_path, 0.9), "cpu", precision="bfloat16")
    cast = models.segmenter_bfloat16
    assert cast is models.segmenter_bfloat16  # cast once, then reused
    assert {p.dtype for p in cast.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in models.segmenter.parameters()} == {torch.float32}
    # a copy with another arithmetic casts its own (or none)
    assert dataclasses.replace(models).segmenter_bfloat16 is not cast
