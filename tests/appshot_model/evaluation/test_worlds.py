"""Worlds of the leave-one-city-out evaluation: the SpectraGAN world read from the real release."""

import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import ATTRIBUTES, PEAK_HOURS
from appshot_model.evaluation.worlds import spectragan_world


def test_spectragan_world_has_both_traffic_cities_at_every_peak(shared_data):
    root = shared_data / "spectragan"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    world = spectragan_world(root)
    assert world.name == "spectragan" and world.cities == ("aachen", "bonn") and world.hours == tuple(PEAK_HOURS)
    for city, shape in (("aachen", (11, 17)), ("bonn", (25, 28))):
        context = world.context(city)
        assert list(context.attribute.values) == list(ATTRIBUTES) and context.shape[1:] == shape
        for hour in PEAK_HOURS:
            snaps = world.snapshots(city, hour)
            assert snaps.shape == (15, 1, *shape) and list(snaps.service.values) == ["total"]  # 3 weeks x 5 weekdays
            assert np.isfinite(snaps.values).all() and snaps.values.mean() > 0
        np.testing.assert_array_equal(context.x.values, world.snapshots(city, "morning").x.values)


def test_spectragan_world_keeps_dresden_as_a_context_only_city(shared_data):
    root = shared_data / "spectragan"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    world = spectragan_world(root)
    dresden = world.unseen_context("dresden")
    assert "dresden" not in world.cities and list(dresden.attribute.values) == list(ATTRIBUTES)
    assert dresden.shape[1:] == (40, 63)  # the whole context grid: no traffic window to crop to
    with pytest.raises(AppshotInputError, match="no context-only city 'leipzig'"):
        world.unseen_context("leipzig")
