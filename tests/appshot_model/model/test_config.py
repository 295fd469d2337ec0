import pytest
import torch
from pydantic import ValidationError

from appshot_model.model.config import ModelConfig, TrainConfig


def test_defaults_follow_the_paper():
    cfg = ModelConfig()
    assert (cfg.features, cfg.nz, cfg.traffic_patch, cfg.first_kernel, cfg.context_patch) == (32, 512, 10, 3, 12)
    assert cfg.channel_dropout == 0.02 and cfg.l1_weight == 0.5 and cfg.noise == "film" and cfg.stride == 1
    assert ModelConfig(features=4).nz == 64
    assert ModelConfig(overlap=False, noise_scope="patch").stride == 10


def test_unknown_fields_and_bad_values_are_rejected():
    with pytest.raises(ValidationError):
        ModelConfig(featurs=8)
    with pytest.raises(ValidationError):
        ModelConfig(noise="add")
    with pytest.raises(ValidationError):
        TrainConfig(steps=0)


def test_device_auto_resolves_to_an_available_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert TrainConfig().resolved_device().type == expected
    assert TrainConfig(device="cpu").resolved_device().type == "cpu"
