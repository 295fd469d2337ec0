"""Per-minute demand of sessions on hand-made cases."""

import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.sessions.demand import minute_demand


def test_session_spread_over_the_minutes_it_overlaps():
    # 120 bytes over 30 s .. 150 s: 30 in minute 0, 60 in minute 1, 30 in minute 2
    assert minute_demand([0], [30.0], [120.0], [120.0], 1, 3).tolist() == [[30.0, 60.0, 30.0]]
    # one session inside a minute, one ending exactly on a minute boundary
    assert minute_demand([0, 1], [10.0, 60.0], [5.0, 60.0], [7.0, 60.0], 2, 3).tolist() == [[7, 0, 0], [0, 60, 0]]


def test_wrap_folds_the_overflow_back_to_the_window_start():
    assert minute_demand([0], [150.0], [60.0], [60.0], 1, 3).tolist() == [[30.0, 0.0, 30.0]]
    assert minute_demand([0], [150.0], [60.0], [60.0], 1, 3, wrap=False).tolist() == [[0.0, 0.0, 30.0]]
    # longer than the window: 400 bytes over 400 s in a 3-minute window, all kept
    wrapped = minute_demand([0], [0.0], [400.0], [400.0], 1, 3)
    assert wrapped.tolist() == [[160.0, 120.0, 120.0]] and wrapped.sum() == pytest.approx(400)


def test_keys_are_separate_and_volume_is_conserved():
    rng = np.random.default_rng(0)
    keys, starts = rng.integers(0, 5, 1000), rng.uniform(0, 3600, 1000)
    durations, volumes = rng.uniform(1, 3600, 1000), rng.uniform(1, 1e6, 1000)
    demand = minute_demand(keys, starts, durations, volumes, 5, 60)
    assert demand.sum(axis=1) == pytest.approx(np.bincount(keys, volumes, 5))
    with pytest.raises(AppshotInputError, match="session starts"):
        minute_demand([0], [3600.0], [1.0], [1.0], 1, 60)
