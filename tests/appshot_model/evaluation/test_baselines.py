import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import make_context_cube, make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.evaluation.baselines import (ABLATIONS, BASELINES, METHODS, Budget, generate_method, load_method,
                                                method_spec, save_method, train_method)
from appshot_model.evaluation.baselines.common import training_data
from appshot_model.evaluation.baselines.fdas import fit_fdas, sample_fdas
from appshot_model.model.normalise import fit_normalisation

K, S = 27, 10
ATTRIBUTES = [f"poi_{i}" for i in range(K)]
SERVICES = [f"service_{i}" for i in range(S)]
TINY = Budget(steps=3, batch_size=8, features=4)


def _city(seed: int, height: int, width: int):
    rng = np.random.default_rng(seed)
    grid = Grid("EPSG:32632", 500_000.0, 5_605_000.0, height, width)
    context = make_context_cube(rng.gamma(1.0, 5.0, (K, height, width)), ATTRIBUTES, grid)
    times = pd.date_range("2026-03-02 08:00", periods=3, freq="D")
    traffic = make_traffic_cube(rng.gamma(2.0, 1e4, (3, S, height, width)), times, SERVICES, grid, label="simulated")
    return context, traffic


@pytest.fixture(scope="module")
def world():
    (ca, ta), (cb, tb) = _city(0, 16, 16), _city(1, 16, 18)
    norm = fit_normalisation([ta.values, tb.values], [ca.values, cb.values], SERVICES, ATTRIBUTES).to_dict()
    target, _ = _city(2, 17, 21)
    return {"a": ca, "b": cb}, {"a": ta, "b": tb}, norm, target


def _train(world, method, seed=3):
    contexts, traffic, norm, _ = world
    return train_method(method, contexts, traffic, ATTRIBUTES, norm, "morning", seed=seed, budget=TINY)


def test_registry_covers_baselines_and_ablations():
    assert set(BASELINES) | set(ABLATIONS) | {"appshot"} == set(METHODS)
    assert {"appshot_features_64", "appshot_l1_max_units", "appshot_no_overlap", "appshot_l1_only", "appshot_l1_d1",
            "appshot_l1_d1_d2", "appshot_concat_noise", "appshot_patch_noise", "appshot_sample_l1",
            "appshot_uncalibrated_noise", "appshot_no_noise_field",
            "appshot_kernel_1", "appshot_kernel_2", "appshot_kernel_3", "appshot_kernel_6",
            "appshot_kernel_11"} == set(ABLATIONS)
    assert method_spec("appshot_l1_d1_d2").same_as == "appshot" and not method_spec("cnn").stochastic
    with pytest.raises(AppshotInputError, match="unknown method 'gan'.*valid methods"):
        method_spec("gan")


@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].same_as is None])
def test_each_method_trains_and_generates_reproducibly(world, method):
    _, _, _, target = world
    fitted = _train(world, method)
    out = generate_method(fitted, target, 2, seed=5)
    assert out.shape == (2, S, 17, 21) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all() and out.max() > 0
    assert fitted.services == SERVICES and fitted.units == "bit/s" and fitted.training_cities == ["a", "b"]
    again = generate_method(_train(world, method), target, 2, seed=5)
    assert again.tobytes() == out.tobytes()  # retrained with the same seed: byte-identical
    other = generate_method(fitted, target, 2, seed=6)
    if METHODS[method].stochastic:
        assert not np.array_equal(other, out) and not np.array_equal(out[0], out[1])
    else:
        assert np.array_equal(other, out) and np.array_equal(out[0], out[1])


def test_aliases_are_the_same_model(world):
    _, _, _, target = world
    reference = generate_method(_train(world, "appshot"), target, 1, seed=0)
    assert np.array_equal(generate_method(_train(world, "appshot_l1_d1_d2"), target, 1, seed=0), reference)


def test_fdas_recovers_log_normal_parameters():
    rng = np.random.default_rng(0)
    grid = Grid("EPSG:32632", 500_000.0, 5_605_000.0, 40, 40)
    values = np.exp(rng.normal([[[[1.0]], [[3.0]]]], [[[[0.5]], [[1.0]]]], (20, 2, 40, 40)))
    values[:, 1][rng.random((20, 40, 40)) < 0.25] = 0.0
    traffic = make_traffic_cube(values, pd.date_range("2026-03-02", periods=20, freq="D"), ["x", "y"], grid)
    context = make_context_cube(np.ones((1, 40, 40)), ["population"], grid)
    norm = fit_normalisation([traffic.values], [context.values], ["x", "y"], ["population"])
    model = fit_fdas(training_data({"c": context}, {"c": traffic}, ["population"], norm))
    assert model.mu == pytest.approx([1.0, 3.0], abs=0.02) and model.sigma == pytest.approx([0.5, 1.0], abs=0.02)
    assert model.p_zero == pytest.approx([0.0, 0.25], abs=0.01)
    sample = sample_fdas(model, 50, 60, 3, seed=1)
    assert sample.shape == (3, 2, 50, 60) and (sample[:, 1] == 0).mean() == pytest.approx(0.25, abs=0.02)
    assert np.log(sample[:, 0]).mean() == pytest.approx(1.0, abs=0.02)


def test_fdas_counts_near_empty_land_as_empty():
    """Half the cells carry ~1e-5 of the mean (land without people): they join the zero point mass instead of
    stretching the log-normal, whose mean then stays near the data's (it was ~10x with them)."""
    rng = np.random.default_rng(0)
    grid = Grid("EPSG:32632", 500_000.0, 5_605_000.0, 40, 40)
    values = np.exp(rng.normal(3.0, 1.0, (20, 1, 40, 40)))
    empty = rng.random((20, 1, 40, 40)) < 0.5
    values[empty] = np.exp(rng.normal(-6.0, 1.0, int(empty.sum())))
    traffic = make_traffic_cube(values, pd.date_range("2026-03-02", periods=20, freq="D"), ["x"], grid)
    context = make_context_cube(np.ones((1, 40, 40)), ["population"], grid)
    norm = fit_normalisation([traffic.values], [context.values], ["x"], ["population"])
    model = fit_fdas(training_data({"c": context}, {"c": traffic}, ["population"], norm))
    assert model.p_zero == pytest.approx([0.5], abs=0.01) and model.mu == pytest.approx([3.0], abs=0.03)
    assert sample_fdas(model, 40, 40, 20, seed=1).mean() / values.mean() == pytest.approx(1.0, abs=0.1)


def test_save_load_round_trip(world, tmp_path):
    _, _, _, target = world
    fitted = _train(world, "pix2pix")
    back = load_method(save_method(fitted, tmp_path / "pix2pix.pt"))
    assert back.method == "pix2pix" and back.budget == {"steps": 3, "batch_size": 8, "features": 4}
    assert np.array_equal(generate_method(back, target, 2, seed=1), generate_method(fitted, target, 2, seed=1))
    with pytest.raises(AppshotInputError, match="does not exist"):
        load_method(tmp_path / "missing.pt")


def test_budget_forms_and_input_errors(world):
    assert Budget.of(None) == Budget() and Budget.of(7) == Budget(steps=7)
    assert Budget.of({"steps": 2, "features": 8}) == Budget(steps=2, features=8)
    with pytest.raises(AppshotInputError, match="unknown budget fields"):
        Budget.of({"epochs": 3})
    contexts, traffic, norm, target = world
    with pytest.raises(AppshotInputError, match="attributes"):
        train_method("cnn", contexts, traffic, ATTRIBUTES[:-1], norm, "morning", seed=0, budget=TINY)
    fitted = train_method("fdas", contexts, traffic, ATTRIBUTES, norm, "morning", seed=0)
    with pytest.raises(AppshotInputError, match="lacks attributes"):
        generate_method(fitted, target.isel(attribute=slice(0, 3)), 1, seed=0)
    with pytest.raises(AppshotInputError, match="n_samples"):
        generate_method(fitted, target, 0, seed=0)
