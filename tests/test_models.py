from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.networks.models import (
    CLASSIFIER,
    SEGMENTER,
    ClassifierConfig,
    LoadedModels,
    ModelFileError,
    SegmenterConfig,
    build_classifier,
    build_segmenter,
    config_from_dict,
    config_to_dict,
    file_sha256,
    load_model,
    load_models,
    read_card,
    save_model,
    update_card,
)


@pytest.fixture(scope="module")
def built() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    return build_classifier().eval(), build_segmenter().eval()


@pytest.fixture(scope="module")
def folder(
    tmp_path_factory: pytest.TempPathFactory, built: tuple[torch.nn.Module, torch.nn.Module]
) -> Path:
    out = tmp_path_factory.mktemp("models")
    save_model(out, CLASSIFIER, built[0], ClassifierConfig(), {"seed": 7, "training_data": "t"})
    save_model(out, SEGMENTER, built[1], SegmenterConfig(), {"seed": 7})
    return out


def test_classifier_stem_is_stride_2_with_max_pool(built: tuple[torch.nn.Module, ...]) -> None:
    net: Any = built[0]  # a MONAI ResNet: its layers are attributes mypy cannot see
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2)
    x = torch.zeros(2, 1, 256, 256)
    with torch.inference_mode():
        stem = net.maxpool(net.act(net.bn1(net.conv1(x))))
        assert stem.shape == (2, 64, 64, 64)
        assert net(x).shape == (2, 2)
    # ResNet34 with one input channel and two outputs: 21.28 M parameters
    assert sum(p.numel() for p in net.parameters()) == 21_280_322


def test_classifier_costs_what_resnet34_costs(built: tuple[torch.nn.Module, ...]) -> None:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        built[0](torch.zeros(1, 1, 256, 256))
    # 4.68 GMAC per 256 x 256 crop (3.6 GMAC at 224 x 224, scaled); a stride-1 stem is 4x
    assert 9.2e9 < counter.get_total_flops() < 9.5e9


def test_segmenter_keeps_the_full_view_shape(built: tuple[torch.nn.Module, ...]) -> None:
    with torch.inference_mode():
        assert built[1](torch.zeros(1, 1, 1024, 256)).shape == (1, 3, 1024, 256)


def test_segmenter_config_refuses_sides_not_multiple_of_32() -> None:
    with pytest.raises(ValueError, match="train_crop"):
        SegmenterConfig(train_crop=(500, 256))
    with pytest.raises(ValueError, match="crop_stride"):
        ClassifierConfig(crop_stride=300)


@pytest.mark.parametrize("cfg", [ClassifierConfig(), SegmenterConfig(train_crop=(512, 256))])
def test_config_json_round_trip(cfg: ClassifierConfig | SegmenterConfig) -> None:
    name = CLASSIFIER if isinstance(cfg, ClassifierConfig) else SEGMENTER
    text = json.dumps(config_to_dict(cfg))
    assert config_from_dict(name, json.loads(text)) == cfg


def test_config_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        config_from_dict(CLASSIFIER, {"depth": 50})


def test_save_load_round_trip_within_fp16(
    folder: Path, built: tuple[torch.nn.Module, torch.nn.Module]
) -> None:
    models = load_models(folder, "cpu")
    assert isinstance(models, LoadedModels)
    for original, loaded in ((built[0], models.classifier), (built[1], models.segmenter)):
        assert not loaded.training
        ref = original.state_dict()
        for key, value in loaded.state_dict().items():
            assert value.dtype == ref[key].dtype  # float32 again after fp16 storage
            expected = (
                ref[key].half().to(ref[key].dtype) if ref[key].is_floating_point() else ref[key]
            )
            assert torch.equal(value, expected), key
    x = torch.rand(1, 1, 256, 256) * 2
    with torch.inference_mode():
        torch.testing.assert_close(models.classifier(x), built[0](x), atol=2e-2, rtol=2e-2)
    assert models.weights_sha256[CLASSIFIER] == file_sha256(folder / "classifier.safetensors")
    assert models.cards[CLASSIFIER]["seed"] == 7
    assert models.cards[CLASSIFIER]["metrics"] == {}
    assert models.cards[CLASSIFIER]["weights"]["dtype"] == "float16"


def test_saving_the_same_weights_gives_the_same_file(
    tmp_path: Path, built: tuple[torch.nn.Module, ...]
) -> None:
    hashes = {
        save_model(tmp_path / str(i), CLASSIFIER, built[0], ClassifierConfig())["weights"]["sha256"]
        for i in range(3)
    }
    assert len(hashes) == 1


def test_weights_on_disk_are_fp16_and_small(folder: Path) -> None:
    total = sum((folder / f"{n}.safetensors").stat().st_size for n in (CLASSIFIER, SEGMENTER))
    assert total < 100e6  # both models together under 100 MB


def test_tampered_weights_are_refused_naming_the_file(folder: Path, tmp_path: Path) -> None:
    for name in ("classifier.json", "classifier.safetensors"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    weights = tmp_path / "classifier.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=re.escape(f"{weights}: sha256")):
        load_model(tmp_path, CLASSIFIER, "cpu")


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=re.escape(str(tmp_path / "segmenter.json"))):
        load_model(tmp_path, SEGMENTER, "cpu")


def test_other_normalisation_is_refused(folder: Path, tmp_path: Path) -> None:
    for name in ("classifier.json", "classifier.safetensors"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    card = json.loads((tmp_path / "classifier.json").read_text())
    card["config"]["normalisation"] = "log"
    (tmp_path / "classifier.json").write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="normalisation"):
        load_model(tmp_path, CLASSIFIER, "cpu")


def test_update_card_keeps_the_hash(folder: Path, tmp_path: Path) -> None:
    for name in ("classifier.json", "classifier.safetensors"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    update_card(tmp_path, CLASSIFIER, metrics={"auc_metastasis": 0.9})
    assert read_card(tmp_path, CLASSIFIER)["metrics"] == {"auc_metastasis": 0.9}
    load_model(tmp_path, CLASSIFIER, "cpu")  # still loads: the hash is unchanged
    with pytest.raises(ValueError, match="reserved"):
        update_card(tmp_path, CLASSIFIER, weights={})


def test_save_model_refuses_a_config_of_the_other_model(
    tmp_path: Path, built: tuple[torch.nn.Module, ...]
) -> None:
    with pytest.raises(ValueError, match="ClassifierConfig"):
        save_model(tmp_path, CLASSIFIER, built[0], SegmenterConfig())
    with pytest.raises(ValueError, match="reserved"):
        save_model(tmp_path, CLASSIFIER, built[0], ClassifierConfig(), {"config": 1})
