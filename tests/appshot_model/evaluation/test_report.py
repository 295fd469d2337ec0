"""Results tables (CSV round trip, Markdown) and figures."""

import numpy as np
import pandas as pd
import pytest

from appshot_model.evaluation.metrics import HEADLINE_METRICS
from appshot_model.evaluation.reference import DATA, evaluate_city
from appshot_model.evaluation.report import (maps_figure, metrics_figure, read_results, results_markdown, results_table,
                                             share_error_figure, stochasticity_figure, write_results)
from tests.appshot_model.evaluation.maps import days

PNG = b"\x89PNG"


def _records():
    records = []
    for hour in ("morning", "evening"):
        for k, city in enumerate(("a", "b")):
            real = days(10 + k)
            generated = {"appshot": days(20 + k), "fdas": np.random.default_rng(k).lognormal(0, 1, (4, 3, 12, 14)),
                         "cnn": np.repeat(real.mean(axis=0)[None], 2, axis=0)}
            records += evaluate_city(real, generated, city=city, hour=hour)
    return records


def test_results_table_means_over_cities_orders_methods_and_round_trips(tmp_path):
    records = _records()
    table = results_table(records)
    assert list(table.index.get_level_values("hour").unique()) == ["morning", "evening"]
    assert list(table.loc["morning"].index) == [DATA, "appshot", "fdas", "cnn"]
    assert set(HEADLINE_METRICS) <= set(table.columns) and (table["n_cities"] == 2).all()
    frame = pd.DataFrame(records)
    rows = frame[(frame.hour == "morning") & (frame.method == "fdas")]
    assert table.loc[("morning", "fdas"), "nemd"] == pytest.approx(rows["nemd"].mean())
    assert table.loc[("morning", "fdas"), "nemd"] > table.loc[("morning", "appshot"), "nemd"]
    csv, md = write_results(table, tmp_path / "out" / "fidelity.csv", tmp_path / "out" / "fidelity.md")
    back = read_results(csv)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    text = md.read_text()
    assert "## morning" in text and "## evening" in text and "WErr ↓" in text and " %" in text
    assert not list((tmp_path / "out").glob(".tmp-*"))  # atomic writes leave no temp files
    assert results_markdown(table).startswith("# Fidelity")


def test_results_table_needs_keys():
    with pytest.raises(ValueError, match="method, city and hour"):
        results_table([{"method": "x", "nemd": 1.0}])


def test_figures_are_png():
    real = days(1)
    generated = {"appshot": days(2), "fdas": np.random.default_rng(0).lognormal(0, 1, (4, 3, 12, 14))}
    services = ["youtube", "netflix", "facebook"]
    assert maps_figure(real[0], {k: v[0] for k, v in generated.items()}, services).startswith(PNG)
    assert maps_figure(real[0], {"appshot": generated["appshot"][0]}, services, shown=["netflix"]).startswith(PNG)
    assert stochasticity_figure(real, generated, bins=8, title="t").startswith(PNG)
    assert share_error_figure(real, generated, services).startswith(PNG)
    assert metrics_figure(results_table(_records()), "morning").startswith(PNG)
