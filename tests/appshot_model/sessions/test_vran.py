"""vRAN server energy (seed 004 §6.2) on hand-made throughput with known answers."""

import numpy as np
import pytest

from appshot_model.sessions.vran import first_fit_decreasing, minute_energy, vran_comparison, vran_energy


def test_first_fit_decreasing_packs_largest_first():
    assert first_fit_decreasing(np.array([30.0, 60.0, 0.0, 40.0, 50.0])).tolist() == [1, 0, -1, 0, 1]
    assert first_fit_decreasing(np.array([150.0, 10.0])).tolist() == [0, 1]  # too big: a server of its own


def test_minute_energy_is_linear_from_idle_to_full_load():
    wh, overloaded, servers = minute_energy(np.array([60.0, 50.0, 40.0, 30.0]))  # servers at 100 and 80 Mbps
    assert (wh, overloaded, servers) == (pytest.approx((200.0 + 60.0 + 140.0 * 0.8) / 60.0), False, 2)
    wh, overloaded, _ = minute_energy(np.array([150.0, 10.0]))  # the overloaded server draws full power
    assert wh == pytest.approx((200.0 + 60.0 + 14.0) / 60.0) and overloaded
    wh, overloaded, servers = minute_energy(np.array([60.0, 50.0]), assignment=np.array([0, 0]))
    assert (wh, overloaded, servers) == (pytest.approx(200.0 / 60.0), True, 1)
    assert minute_energy(np.zeros(3)) == (0.0, False, 0)


def test_day_comparison_on_a_bursty_cell():
    minutes = 120
    bursty = np.tile([0.0, 120.0], minutes // 2)  # 60 Mbps on average, 120 every other minute
    sessions = np.stack([bursty, np.full(minutes, 30.0)])
    smooth = np.stack([np.full(minutes, 60.0), np.full(minutes, 30.0)])
    rows = {r["demand"]: r for r in vran_comparison(sessions, smooth)}
    hours = minutes / 60
    # sessions: 200 W (overloaded alone) + 102 W every other minute, 102 W otherwise
    assert rows["sessions"]["energy_kwh"] == pytest.approx((302 + 102) / 2 * hours / 1000)
    assert rows["sessions"]["overload_minutes_share"] == 0.5
    # smooth: one server at 90 Mbps all the time
    assert rows["smooth"]["energy_kwh"] == pytest.approx(186 * hours / 1000)
    assert rows["smooth"]["overload_minutes_share"] == 0.0
    # placed on the smooth demand (one server), loaded with the bursts: 200 W / 102 W, overloaded half the time
    assert rows["smooth_placement"]["energy_kwh"] == pytest.approx((200 + 102) / 2 * hours / 1000)
    assert rows["smooth_placement"]["overload_minutes_share"] == 0.5
    assert vran_energy(smooth)["servers"] == [1] * minutes
