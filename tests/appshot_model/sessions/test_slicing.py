"""Slice capacity (seed 004 §6.1) on hand-made demand with known answers."""

import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.sessions.slicing import (METHODS, category_capacity, sample_cells, session_capacity, sla_met,
                                            slicing_table)


def test_session_capacity_is_the_95th_percentile_of_each_service():
    plan = np.stack([np.arange(1.0, 21.0), np.full(20, 5.0)])[None]  # [1 cell, 2 services, 20 minutes]
    assert session_capacity(plan).tolist() == [[19.0, 5.0]]  # smallest value with 95 % of minutes at or below


def test_category_capacity_splits_the_total_by_share_then_uniformly():
    services = ["facebook", "netflix", "youtube", "instagram"]  # IW, MS, CS, CS
    plan = np.full((1, 4, 10), 25.0)  # total 100 every minute
    capacity = category_capacity(plan, services, {"IW": 50.0, "CS": 40.0, "MS": 10.0})
    assert capacity.tolist() == [[50.0, 10.0, 20.0, 20.0]]
    with pytest.raises(AppshotInputError, match=r"no slicing category for service\(s\) \['tiktok'\]"):
        category_capacity(plan, ["tiktok", "netflix", "youtube", "instagram"], {"IW": 50, "CS": 40, "MS": 10})


def test_sla_met_counts_minutes_with_nothing_dropped():
    demand = np.array([[[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 9.0]]])
    assert sla_met(demand, np.array([[3.0, 0.0]])).tolist() == [[0.75, 0.75]]


def test_table_averages_over_cells_and_services_with_std_over_services():
    # city-hour 1: one cell; city-hour 2: three cells; two services
    first = {"services": ["a", "b"], "cells": 1, "met_sum": {m: [1.0, 0.5] for m in METHODS},
             "allocated_bytes_per_minute": dict.fromkeys(METHODS, 10.0)}
    second = {"services": ["a", "b"], "cells": 3, "met_sum": {m: [2.6, 3.0] for m in METHODS},
              "allocated_bytes_per_minute": {"sessions": 30.0, "bm_a": 10.0, "bm_b": 30.0}}
    rows = {r["method"]: r for r in slicing_table([first, second])}
    assert rows["sessions"]["per_service"] == pytest.approx({"a": 0.9, "b": 0.875})
    assert rows["sessions"]["sla_met"] == pytest.approx(0.8875) and rows["sessions"]["std"] == pytest.approx(0.0125)
    assert rows["bm_a"]["capacity_vs_sessions"] == pytest.approx(0.5)


def test_sample_cells_spreads_over_load_ranks():
    volume = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    assert sample_cells(volume, 3).tolist() == [0, 1, 2]  # lowest (1), middle (2), highest (0)
    assert sample_cells(volume, None).tolist() == [0, 1, 2, 3, 4]


def test_planning_level_covers_a_new_draw_with_the_asked_probability():
    from appshot_model.sessions.slicing import planning_level

    assert planning_level(0.95, 100) == 0.96 and planning_level(0.95, 19) == 1.0 and planning_level(0.95, 39) == 38 / 39
    assert planning_level(0.95, 1000) == 0.951
    # the ceil((n+1)p)-th of n draws covers a new draw with probability ceil((n+1)p)/(n+1) >= p: 39/41 here,
    # the plain 95th percentile (38th of 40) only 38/41 = 0.927 (Monte Carlo std ~0.0007)
    rng = np.random.default_rng(0)
    draws = rng.exponential(size=(100_000, 41))
    plan, new = draws[:, :40], draws[:, 40]
    capacity = np.quantile(plan, planning_level(0.95, 40), axis=1, method="inverted_cdf")
    plain = np.quantile(plan, 0.95, axis=1, method="inverted_cdf")
    assert abs((new <= capacity).mean() - 39 / 41) < 0.003 and abs((new <= plain).mean() - 38 / 41) < 0.003
    with pytest.raises(AppshotInputError, match="replicates"):
        planning_level(0.95, 0)
