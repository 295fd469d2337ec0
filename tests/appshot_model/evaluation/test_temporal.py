import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.temporal import (ac_l1, ac_l1_per_pixel, acf_png, autocorrelation, data_ac_l1,
                                               nemd_histogram_png, per_hour_nemd, per_hour_nemds, split_halves)


def hourly(n_hours, period=24, shift=0, noise=0.2, pixels=3, seed=0):
    t = np.arange(n_hours)[:, None] + shift
    rng = np.random.default_rng(seed)
    return 2 + np.sin(2 * np.pi * t / period) + noise * rng.standard_normal((n_hours, pixels))


def test_hand_autocorrelation_and_ac_l1():
    alternating = np.array([1.0, -1.0, 1.0, -1.0])  # lag 1: -3/4, lag 2: 2/4
    pairs = np.array([1.0, 1.0, -1.0, -1.0])        # lag 1: 1/4, lag 2: -2/4
    np.testing.assert_allclose(autocorrelation(alternating, 2), [-0.75, 0.5])
    np.testing.assert_allclose(autocorrelation(pairs, 2), [0.25, -0.5])
    assert ac_l1(alternating, pairs, max_lag=2) == pytest.approx(1.0 + 1.0)
    np.testing.assert_array_equal(autocorrelation(np.full(10, 3.0), 3), 0.0)  # constant: no autocorrelation


def test_ac_l1_zero_for_identical_positive_for_shifted_and_other_period():
    real = hourly(504)
    assert ac_l1(real, real) == 0.0
    shifted = hourly(504, shift=6)
    assert 0 < ac_l1(real, shifted) < 5  # same process, other window: small but not zero
    assert ac_l1(real, hourly(504, period=12)) > 10 * ac_l1(real, shifted)
    per_pixel = ac_l1_per_pixel(real, np.concatenate([real[:, :2], hourly(504, period=12)[:, 2:]], axis=1))
    assert per_pixel[:2].max() == 0 and per_pixel[2] > 0
    with pytest.raises(AppshotInputError, match="max_lag"):
        autocorrelation(real[:100], 168)


def test_halves_data_row_and_per_hour_nemd():
    real = hourly(504)
    first, second = split_halves(real)
    assert first.shape[0] == second.shape[0] == 240
    assert 0 < data_ac_l1(real) < 20
    maps = np.abs(hourly(6 * 12, pixels=12)).reshape(6, 12, 12)
    assert np.allclose(per_hour_nemd(maps, maps), 0.0)
    values = per_hour_nemd(maps, maps[::-1])
    assert values.shape == (6,) and (values > 0).any()
    day_maps = np.abs(hourly(48 * 16, pixels=16)).reshape(48, 16, 16)   # two days of 16 x 16 maps
    nemds = per_hour_nemds({"real": day_maps, "same": day_maps, "reversed": day_maps[::-1]}, max_hours=10)
    assert sorted(nemds) == ["data", "reversed", "same"]
    assert nemds["data"].shape == (10,) and nemds["same"].shape == (10,) and np.allclose(nemds["same"], 0.0)
    np.testing.assert_allclose(nemds["data"][0], per_hour_nemd(day_maps[:1], day_maps[24:25])[0])  # hour 0 of each half
    assert (nemds["reversed"] > 0).any()
    assert nemd_histogram_png({"data": values, "dg": values * 2}, "test")[:4] == b"\x89PNG"
    assert acf_png({"real": real}, "acf", max_lag=48)[:4] == b"\x89PNG"
