"""Properties issue 10 asks of models trained with appshot's settings, on small constructed demo cities with
mountains (remote empty land): samples vary like real days; empty land gets next to no traffic."""

import pytest

from appshot_model.core.names import PEAK_HOURS
from appshot_model.evaluation.metrics import city_totals, remote_empty_share
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.fit import train_peak_hour_model
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.normalise import fit_normalisation
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from appshot_model.traffic.peaks import peak_snapshots

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world():
    """Two training cities and one unseen region, each with mountains south/north/east of its towns."""
    cities = [small_demo_city("alpha", 40, 44, mountains="south", mountain_fraction=0.35),
              small_demo_city("beta", 36, 40, 1, mountains="north", mountain_fraction=0.35)]
    unseen = small_demo_city("gamma", 40, 44, 2, mountains="east", mountain_fraction=0.35)
    contexts = {c.name: simulate_context(c, 0) for c in [*cities, unseen]}
    traffic = {c.name: simulate_traffic(c, contexts[c.name], 0, days=21) for c in cities}
    return contexts, traffic


def _train(world, hour: str, model_cfg: ModelConfig, train_cfg: TrainConfig, cities=("alpha", "beta")):
    contexts, traffic = world
    peaks = {c: peak_snapshots(traffic[c], hour).load() for c in cities}
    attributes = [str(a) for a in contexts["alpha"].attribute.values]
    norm = fit_normalisation([p.values for p in peaks.values()], [contexts[c].values for c in peaks],
                             [str(s) for s in peaks["alpha"].service.values], attributes).to_dict()
    model = train_peak_hour_model({c: contexts[c] for c in peaks}, peaks, attributes, norm, model_cfg, train_cfg,
                                  hour=hour)
    return model, peaks


@pytest.mark.parametrize("hour", PEAK_HOURS)
def test_generated_city_totals_vary_like_real_weekdays(world, hour):
    """At each peak hour, the spread (std / mean) of a small city's generated city totals is within a factor 2
    of its real weekdays' (a small model, F = 8 and 300 steps, trained on that city). Without the noise
    calibration the demo models were 1.4-3.8x too spread (docs/model.md). With two training cities one z
    scale fits both on average only: their real spreads differ (0.081 and 0.036 at the morning peak over 15
    weekdays) while the generator's do not track them (0.062 and 0.076)."""
    model, peaks = _train(world, hour, ModelConfig(features=8), TrainConfig(steps=300, seed=1), cities=("alpha",))
    assert model.noise_calibration["z_scale"] > 0
    for city, real in peaks.items():
        real_totals = city_totals(real.transpose("time", "service", "y", "x").values)
        generated = city_totals(generate_snapshots(model, world[0][city], 20, seed=7).values)
        ratio = (generated.std(ddof=1) / generated.mean()) / (real_totals.std(ddof=1) / real_totals.mean())
        assert 0.5 <= ratio <= 2.0, (city, hour, ratio)


def test_remote_empty_land_gets_next_to_no_traffic(world):
    """The default model (default configs: F = 32, 600 steps) puts <= 5 % of the inhabited cells' mean traffic
    on the unseen region's remote empty land (covered by land use, > 2 km from population, no PoI, no road;
    329 cells); the training cities' real traffic puts ~0.1 % there."""
    model, peaks = _train(world, "morning", ModelConfig(), TrainConfig(seed=1))
    real_share, _ = remote_empty_share(world[0]["alpha"], peaks["alpha"].sum("service").mean("time").values)
    assert real_share < 0.01
    gamma = world[0]["gamma"]
    share, cells = remote_empty_share(gamma, generate_snapshots(model, gamma, 5, seed=0).values.sum(axis=1).mean(axis=0))
    assert cells > 100 and share <= 0.05, share
