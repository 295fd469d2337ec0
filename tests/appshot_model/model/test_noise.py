"""The spatial noise field: unit variance, Gaussian correlation of the chosen length, seeded."""

import math

import numpy as np
import pytest
import torch

from appshot_model.model.config import ModelConfig
from appshot_model.model.noise import draw_noise, keyed_noise_field, noise_field, snapshot_z


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


@pytest.mark.parametrize("sigma", [0.0, 1.5])
def test_keyed_field_depends_on_position_only(sigma):
    """An area's field is the same whether computed alone or as part of a larger area (any lattice block)."""
    big = keyed_noise_field(4, 0, 3, sigma, -10, 50, 150, 100)
    part = keyed_noise_field(4, 0, 3, sigma, 60, 70, 64, 64)
    np.testing.assert_allclose(part.numpy(), big[:, 70:134, 20:84].numpy(), rtol=0, atol=1e-6)
    assert torch.equal(part, keyed_noise_field(4, 0, 3, sigma, 60, 70, 64, 64))
    assert big.std().item() == pytest.approx(1.0, abs=0.05)
    assert not torch.equal(part, keyed_noise_field(4, 1, 3, sigma, 60, 70, 64, 64))  # another sample
    assert not torch.equal(part, keyed_noise_field(5, 0, 3, sigma, 60, 70, 64, 64))  # another seed


def test_snapshot_z_is_keyed_by_seed_and_sample():
    cfg = ModelConfig(features=4, noise_dim=8)
    assert torch.equal(snapshot_z(1, 2, cfg), snapshot_z(1, 2, cfg)) and snapshot_z(1, 2, cfg).shape == (8,)
    assert not torch.equal(snapshot_z(1, 2, cfg), snapshot_z(1, 3, cfg))
