"""The series package: cell plumbing, the naive weekly-profile baseline and the DG-style model."""

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import make_context_cube, make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.series.data import CellSeries, cell_series, to_traffic_cube
from appshot_model.series.doppelganger import (SeriesScaling, generate_doppelganger, load_doppelganger,
                                               periodic_residual_share, save_doppelganger, train_doppelganger)
from appshot_model.series.naive import fit_weekly_profile, generate_weekly_profile, hour_of_week
from appshot_model.series.networks import N_CLOCK, clock_features
from appshot_model.series.options import DGOptions

TIMES = pd.date_range("2026-03-02 00:00", periods=48, freq="h")  # a Monday


def toy_cells(n=24, n_steps=48, seed=0) -> CellSeries:
    """Cells whose level follows their first attribute, with a daily cycle and noise."""
    rng = np.random.default_rng(seed)
    context = rng.uniform(0, 5, size=(n, 3))
    daily = 1.5 + np.sin(2 * np.pi * np.arange(n_steps) / 24)
    values = context[:, :1, None] * daily[None, :, None] * np.array([1.0, 0.5]) + rng.uniform(0, 0.3, (n, n_steps, 2))
    return CellSeries(context, values, ["a", "b", "c"], ["s1", "s2"], np.arange(n) // 6, np.arange(n) % 6,
                      pd.DatetimeIndex(TIMES[:n_steps]))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cube_round_trip():
    grid = Grid("EPSG:32632", 500_000.0, 5_000_000.0, 2, 3)
    ctx = make_context_cube(np.arange(12.0).reshape(2, 2, 3), ["a", "b"], grid)
    traffic = make_traffic_cube(np.random.default_rng(0).uniform(size=(4, 2, 2, 3)), TIMES[:4], ["s1", "s2"], grid)
    cells = cell_series(ctx, traffic)
    assert cells.values.shape == (6, 4, 2) and cells.context[4].tolist() == [4.0, 10.0]
    back = to_traffic_cube(cells.values, ctx, TIMES[:4], ["s1", "s2"], "bit/s")
    np.testing.assert_allclose(back.values, traffic.values)
    with pytest.raises(AppshotInputError, match="not in the traffic cube"):
        cell_series(ctx, traffic, services=["netflix"])


def test_naive_copies_the_nearest_training_cell():
    train = toy_cells()
    model = fit_weekly_profile(train)
    assert hour_of_week(TIMES[[0, 25]]).tolist() == [0, 25]
    out = generate_weekly_profile(model, train.context[[3, 7]], TIMES, seed=1)
    assert out.shape == (2, 48, 2) and (out >= 0).all()
    # profile = mean over the (single) week seen; noise std fitted on the training residuals
    np.testing.assert_allclose(model.profiles[3, :48], train.values[3])
    assert np.allclose(model.noise_std, 0.0)
    np.testing.assert_allclose(out[0], train.values[3])
    with pytest.raises(AppshotInputError, match="never seen"):
        generate_weekly_profile(model, train.context[:1], pd.date_range("2026-03-05", periods=3, freq="h"), 0)


def small(**kw) -> DGOptions:
    return DGOptions(**{"steps": 4, "batch_size": 8, "mlp_units": 16, "lstm_units": 16, "critic_units": 16,
                        "noise_dim": 4, "batch_steps": None, "checkpoint_every": 2, **kw})


def test_dg_shapes_reproducibility_and_conditioning(tmp_path):
    train = toy_cells()
    model = train_doppelganger(train, small(), seed=3)
    assert model.network.batch_steps == 1  # DG rule: 48 / 50 hours per pass -> 1
    assert len(model.history["validation"]) == 2  # checkpoints at steps 2 and 4 on 5 held-out cells
    ctx, series = generate_doppelganger(model, train.context[:5], seed=4)
    assert series.shape == (5, 48, 2) and (series >= 0).all() and np.isfinite(series).all()
    again = train_doppelganger(train, small(), seed=3)
    np.testing.assert_array_equal(generate_doppelganger(again, train.context[:5], seed=4)[1], series)
    assert not np.array_equal(generate_doppelganger(model, train.context[:5], seed=5)[1], series)
    other = train.context[:5].copy()
    other[:, 0] += 3.0
    assert np.abs(generate_doppelganger(model, other, seed=4)[1] - series).max() > 1e-4  # context matters
    loaded = load_doppelganger(save_doppelganger(model, tmp_path / "dg.pt"))
    assert loaded.options == model.options
    np.testing.assert_array_equal(generate_doppelganger(loaded, train.context[:5], seed=4)[1], series)


@pytest.mark.parametrize("options, expect", [
    ({"metadata": "generated"}, {"meta_gen": True, "minmax_gen": True, "aux": True}),
    ({"auto_normalise": False}, {"meta_gen": False, "minmax_gen": True, "aux": True, "fake": 2}),
    ({"auto_normalise": False, "periodicity_metadata": False}, {"meta_gen": False, "minmax_gen": False, "aux": False}),
    ({"auto_normalise": False, "periodicity_metadata": False, "metadata": "generated"},
     {"meta_gen": True, "minmax_gen": False, "aux": True}),
    ({"periodicity_metadata": False}, {"meta_gen": False, "minmax_gen": True, "aux": True, "fake": 4}),
    ({"aux_discriminator": False}, {"meta_gen": False, "minmax_gen": True, "aux": False}),
    ({"batch_steps": 12, "clock": False}, {"meta_gen": False, "minmax_gen": True, "aux": True, "passes": 4}),
    ({"batch_steps": 24, "validation_share": 0.0}, {"meta_gen": False, "minmax_gen": True, "aux": True, "passes": 2}),
])
def test_dg_switches(options, expect):
    train = toy_cells()
    model = train_doppelganger(train, small(**options), seed=0)
    net = model.network
    assert (net.meta_gen is not None, net.minmax_gen is not None, net.aux_critic is not None) == (
        expect["meta_gen"], expect["minmax_gen"], expect["aux"])
    assert net.passes == expect.get("passes", 48)
    assert net.n_fake == expect.get("fake", 6 if expect["minmax_gen"] else 0)  # 2 services x (range 2 + periodicity 1)
    assert net.series_gen.n_clock == (0 if options.get("clock") is False else N_CLOCK)
    if options.get("metadata") == "generated":
        ctx, series = generate_doppelganger(model, None, seed=1, n_cells=7)
        assert ctx.shape == (7, 3) and series.shape == (7, 48, 2)
    else:
        ctx, series = generate_doppelganger(model, train.context[:2], seed=1, n_steps=60)
        assert series.shape == (2, 60, 2)


def test_dg_options_and_inputs_are_checked():
    assert DGOptions().records_per_pass(504) == 24
    assert DGOptions(batch_steps=None).records_per_pass(504) == 12 and DGOptions(batch_steps=None).records_per_pass(336) == 6
    with pytest.raises(AppshotInputError, match="metadata mode"):
        DGOptions(metadata="both")
    with pytest.raises(AppshotInputError, match="batch_steps"):
        DGOptions(batch_steps=0)
    bad = toy_cells()
    bad.values[0, 0, 0] = -1.0
    with pytest.raises(AppshotInputError, match=">= 0"):
        train_doppelganger(bad, small(), seed=0)
    model = train_doppelganger(toy_cells(), small(), seed=0)
    with pytest.raises(AppshotInputError, match="context"):
        generate_doppelganger(model, None, seed=0)


def test_fake_metadata_and_clock():
    t = np.arange(48)
    periodic = np.tile(np.sin(2 * np.pi * t[:24] / 24), 2)
    values = np.stack([periodic + 2, np.r_[np.zeros(24), np.ones(24)]], axis=1)[None]  # [1, 48, 2]
    share = periodic_residual_share(values)
    np.testing.assert_allclose(share, [[0.0, 1.0]], atol=1e-12)  # exactly daily / all off the daily cycle
    scaling = SeriesScaling.fit(np.concatenate([values, values * 3]), auto=True, periodicity=True)
    records, fake = scaling.normalise(values)
    assert fake.shape == (1, 6) and records.min() == 0 and records.max() == 1
    np.testing.assert_allclose(scaling.denormalise(records, fake), values, rtol=1e-6, atol=1e-9)
    clock = clock_features(0, 8, 24)
    assert clock.shape == (8, N_CLOCK)
    np.testing.assert_allclose(clock[7], clock[0], atol=1e-6)  # a week later, the same clock
    assert not np.allclose(clock[1], clock[0])


def test_dg_learns_the_context_to_level_relation():
    """Context, metadata and series stay paired in training batches: after a short training the
    generated levels follow the level that the context sets (a mis-paired batch gives rho ~ 0)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    n, n_steps = 80, 48
    context = rng.uniform(0, 4, size=(n, 3))
    daily = 1.5 + np.sin(2 * np.pi * np.arange(n_steps) / 24)
    values = np.exp(context[:, :1, None]) * daily[None, :, None] * rng.uniform(0.9, 1.1, (n, n_steps, 1))
    cells = CellSeries(context, values, ["a", "b", "c"], ["s"], np.arange(n) // 10, np.arange(n) % 10,
                       pd.DatetimeIndex(TIMES))
    options = small(steps=150, batch_size=40, mlp_units=32, critic_units=32, validation_share=0.0, batch_steps=24)
    model = train_doppelganger(cells, options, seed=0)
    _, series = generate_doppelganger(model, context, seed=1)
    assert spearmanr(series.mean(axis=(1, 2)), values.mean(axis=(1, 2)))[0] > 0.6
