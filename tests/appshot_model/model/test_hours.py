"""Hour names, hour-of-day context channels, and training per hour or conditioned on the hour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.hours import (CONDITIONED, HOUR_ATTRIBUTES, HOURS, calibrate_hour_levels, context_attributes,
                                       hour_channels, hour_of_day, hour_partition_snapshots, parse_hours,
                                       train_hour_conditioned_model, train_hour_model, with_hour_context)
from appshot_model.model.networks import Generator
from appshot_model.model.normalise import Normalisation
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from appshot_model.traffic.peaks import peak_snapshots
from tests.appshot_model.model.test_generate import ATTRIBUTES, SERVICES, make_context

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY_MODEL = ModelConfig(features=4, noise_channels=2)
TINY_TRAINING = TrainConfig(steps=2, batch_size=2, tile=10, noise_draws=1, bn_batches=0)


def conditioned_artefact(seed: int = 3) -> ModelArtefact:
    """An untrained hour-conditioned artefact on the attributes of ``make_context`` (random weights)."""
    torch.manual_seed(seed)
    names = [*ATTRIBUTES, *HOUR_ATTRIBUTES]
    gen = Generator(len(names), len(SERVICES), TINY_MODEL).eval()
    hours = len(HOUR_ATTRIBUTES)
    norm = Normalisation(SERVICES, names, [1000.0, 50.0], [5.0, 1.0, 2.0, *[1.0] * hours],
                         context_log1p=[True, False, True, *[False] * hours])
    return ModelArtefact(gen, TINY_MODEL, TINY_TRAINING, names, SERVICES, norm, CONDITIONED, "bit/s", "0" * 64)


def test_hour_names_and_specs():
    assert HOURS[0] == "00" and HOURS[23] == "23" and len(HOURS) == 24
    assert hour_of_day("07") == 7 and hour_of_day("morning") == 8 and hour_of_day("evening") == 17
    with pytest.raises(AppshotInputError, match="'7'"):
        hour_of_day("7")
    assert parse_hours("0-23") == list(range(24))
    assert parse_hours("8,12, 17") == [8, 12, 17]
    assert parse_hours("22-23,0-1,1") == [0, 1, 22, 23]
    for bad in ("5-3", "24", "a", "", "1-2-3"):
        with pytest.raises(AppshotInputError, match="hours"):
            parse_hours(bad)


def test_hour_partition_snapshots_read_peaks_and_hours():
    city = small_demo_city("tiny", 12, 12)
    traffic = simulate_traffic(city, simulate_context(city, 0), 0, days=7)
    np.testing.assert_array_equal(hour_partition_snapshots(traffic, "morning").values,
                                  peak_snapshots(traffic, "morning").values)
    seven = hour_partition_snapshots(traffic, "07")
    assert (pd.DatetimeIndex(seven.time.values).hour == 7).all() and seven.sizes["time"] == 5


def test_hour_channels_encode_the_hour_on_a_circle():
    channels = hour_channels(6, True, 2, 3)
    assert HOUR_ATTRIBUTES[:2] == ("hour_sin1", "hour_cos1") and HOUR_ATTRIBUTES[-1] == "weekend"
    assert channels.shape == (len(HOUR_ATTRIBUTES), 2, 3) and channels.dtype == np.float32
    np.testing.assert_allclose(channels[[0, 1, 2, 3, -1], 0, 0], [1.0, 0.0, 0.0, -1.0, 1.0], atol=1e-6)  # k = 1, 2
    np.testing.assert_allclose(hour_channels(23, False, 1, 1), hour_channels(-1, False, 1, 1), atol=1e-6)
    assert len({hour_channels(h, False, 1, 1).tobytes() for h in range(24)}) == 24
    context = make_context()
    extended = with_hour_context(context, 18, False)
    assert [str(a) for a in extended.attribute.values] == [*ATTRIBUTES, *HOUR_ATTRIBUTES]
    np.testing.assert_array_equal(extended.sel(attribute=ATTRIBUTES).values, context.values)
    assert extended.rio.crs == context.rio.crs and extended.rio.transform() == context.rio.transform()


def test_conditioning_on_the_hour_changes_the_output():
    artefact = conditioned_artefact()
    assert context_attributes(artefact) == ATTRIBUTES
    context = make_context()
    night = generate_snapshots(artefact, with_hour_context(context, 3, False), 1, seed=5).values
    again = generate_snapshots(artefact, with_hour_context(context, 3, False), 1, seed=5).values
    evening = generate_snapshots(artefact, with_hour_context(context, 18, False), 1, seed=5).values
    weekend = generate_snapshots(artefact, with_hour_context(context, 3, True), 1, seed=5).values
    np.testing.assert_array_equal(night, again)
    assert np.abs(night - evening).max() > 1e-3 and np.abs(night - weekend).max() > 1e-3


def tiny_cities(days: int) -> tuple[dict, dict, list[str]]:
    """Two small demo cities: contexts, ``days`` of hourly traffic from a Monday, attribute names."""
    cities = [small_demo_city("alpha", 12, 12), small_demo_city("beta", 12, 14, 1)]
    contexts = {c.name: simulate_context(c, 0) for c in cities}
    traffic = {c.name: simulate_traffic(c, contexts[c.name], 0, days=days) for c in cities}
    return contexts, traffic, [str(a) for a in contexts["alpha"].attribute.values]


@pytest.fixture(scope="module")
def tiny_world():
    return tiny_cities(8)


def test_one_hour_conditioned_model_trains_on_every_city_hour_and_day_type(tiny_world):
    contexts, traffic, attributes = tiny_world
    model = train_hour_conditioned_model(contexts, traffic, attributes, TINY_MODEL, TINY_TRAINING, hours=[3, 12])
    assert model.peak_hour == CONDITIONED and model.attributes == [*attributes, *HOUR_ATTRIBUTES]
    assert sorted(model.training_cities) == sorted(f"{c}@{h}-{d}" for c in ("alpha", "beta") for h in ("03", "12")
                                                   for d in ("weekday", "weekend"))
    assert model.training_dates["alpha@12-weekend"] == ["2026-03-07", "2026-03-08"]
    assert model.normalisation.context_scale[-len(HOUR_ATTRIBUTES):] == [1.0] * len(HOUR_ATTRIBUTES)
    with pytest.raises(AppshotInputError, match="day types"):
        train_hour_conditioned_model(contexts, traffic, attributes, TINY_MODEL, TINY_TRAINING, daytypes=["holiday"])


def test_per_hour_model_trains_on_that_hour(tiny_world):
    contexts, traffic, attributes = tiny_world
    model = train_hour_model(contexts, {"alpha": traffic["alpha"]}, attributes, 21, TINY_MODEL, TINY_TRAINING)
    assert model.peak_hour == "21" and model.training_cities == ["alpha"] and model.attributes == attributes
    assert len(model.training_dates["alpha"]) == 6  # six weekdays in eight days from a Monday


def test_hour_levels_match_the_real_mean_level_per_hour(tiny_world, tmp_path):
    """After calibrate_hour_levels, the series generator's mean level per hour and service over the training
    cities is the real one (within the noise of a few draws); without it a barely trained model is far off."""
    from appshot_model.series.stitched import generate_hourly_series

    contexts, traffic, attributes = tiny_world
    hours = [3, 12]
    model = train_hour_conditioned_model(contexts, traffic, attributes, TINY_MODEL, TINY_TRAINING, hours=hours,
                                         daytypes=["weekday"], hour_levels=False,
                                         series_calibration=False)
    assert model.hour_level_shift is None
    times = pd.DatetimeIndex([t for t in traffic["alpha"].time.values if pd.Timestamp(t).hour in hours
                              and pd.Timestamp(t).dayofweek < 5])

    def level_error(artefact) -> float:
        generated, real = 0.0, 0.0
        for city in traffic:
            series = generate_hourly_series(artefact, contexts[city], times, seed=1, rho=0.0)
            generated = generated + np.stack([series.sel(time=times.hour == h).sum(dim=("time", "y", "x")).values
                                              for h in hours])
            observed = traffic[city].sel(time=times)
            real = real + np.stack([observed.sel(time=times.hour == h).sum(dim=("time", "y", "x")).values
                                    for h in hours])
        return float(np.abs(np.log(generated / real)).max())

    before = level_error(model)
    shifts = calibrate_hour_levels(model, contexts, traffic, seed=0, samples=32)
    assert shifts.shape == (2, 24, len(model.services))
    model.hour_level_shift = shifts.tolist()
    after = level_error(model)
    assert before > 0.3 and after < 0.1
    model.save(tmp_path / "m")
    loaded = ModelArtefact.load(tmp_path / "m")
    assert loaded.hour_level_shift == model.hour_level_shift and loaded.model_hash == model.model_hash
