"""The spatial noise field: unit variance, Gaussian correlation of the chosen length, seeded."""

import math

import numpy as np
import pytest
import torch

from appshot_model.model.config import ModelConfig
from appshot_model.model.noise import draw_noise, noise_field


@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.0])
def test_field_has_unit_variance_and_gaussian_correlation(sigma):
    field = noise_field(torch.Generator().manual_seed(0), 4, 2, 200, 200, sigma).numpy()
    assert field.shape == (4, 2, 200, 200)
    assert field.std() == pytest.approx(1.0, abs=0.03) and abs(field.mean()) < 0.03
    lag1 = np.mean(field[..., :, 1:] * field[..., :, :-1])
    expected = math.exp(-1 / (4 * sigma ** 2)) if sigma > 0 else 0.0  # smoothed white noise: std sigma * sqrt(2)
    assert lag1 == pytest.approx(expected, abs=0.03)


def test_draws_are_seeded_and_the_field_follows_the_config():
    cfg = ModelConfig(features=4, noise_dim=3, noise_channels=5)
    z, field = draw_noise(torch.Generator().manual_seed(1), cfg, 2, 6, 7)
    again = draw_noise(torch.Generator().manual_seed(1), cfg, 2, 6, 7)
    assert z.shape == (2, 3) and field.shape == (2, 5, 6, 7)
    assert torch.equal(z, again[0]) and torch.equal(field, again[1])
    assert draw_noise(torch.Generator().manual_seed(1), ModelConfig(noise_channels=0), 2, 6, 7)[1] is None
