import numpy as np
import pandas as pd
import pytest

from appshot_model.evaluation.metrics import HEADLINE_METRICS, score
from appshot_model.evaluation.reference import DATA, data_reference, evaluate_city, split_snapshots
from appshot_model.evaluation.report import (maps_figure, metrics_figure, read_results, results_markdown, results_table,
                                             share_error_figure, stochasticity_figure, write_results)

PNG = b"\x89PNG"


def _days(seed: int, n: int = 6, services: int = 3, height: int = 12, width: int = 14) -> np.ndarray:
    """Snapshots that share a spatial pattern and differ by day-to-day noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.exp(-((yy - height / 2) ** 2 + (xx - width / 3) ** 2) / 18.0) + 0.05
    shares = np.array([5.0, 2.0, 1.0])[:services]
    return shares[None, :, None, None] * base[None, None] * rng.lognormal(0, 0.2, (n, services, height, width))


def test_split_snapshots():
    real = np.arange(7)[:, None, None, None] * np.ones((7, 1, 2, 2))
    first, second = split_snapshots(real)
    assert first[:, 0, 0, 0].tolist() == [0, 1, 2] and second[:, 0, 0, 0].tolist() == [3, 4, 5]
    first, second = split_snapshots(real, "alternate")
    assert first[:, 0, 0, 0].tolist() == [0, 2, 4] and second[:, 0, 0, 0].tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match=">= 2 snapshots"):
        split_snapshots(real[:1])
    with pytest.raises(ValueError, match="split"):
        split_snapshots(real, "random")


def test_data_reference_is_score_of_the_two_halves():
    real = _days(0)
    ref = data_reference(real)
    assert ref == score(real[:3], real[3:])
    assert 0 < ref["nemd"] < 0.5 and 0.0 <= ref["werr"] < 0.2 and ref["ssim"] > 0.5
    same = np.concatenate([real[:3], real[:3]])
    ideal = data_reference(same)
    assert ideal["werr"] == 0.0 and ideal["nemd"] == pytest.approx(0.0, abs=1e-12) and ideal["hemd"] == 0.0


def _records():
    records = []
    for hour in ("morning", "evening"):
        for k, city in enumerate(("a", "b")):
            real = _days(10 + k)
            generated = {"appshot": _days(20 + k), "fdas": np.random.default_rng(k).lognormal(0, 1, (4, 3, 12, 14)),
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
    real = _days(1)
    generated = {"appshot": _days(2), "fdas": np.random.default_rng(0).lognormal(0, 1, (4, 3, 12, 14))}
    services = ["youtube", "netflix", "facebook"]
    assert maps_figure(real[0], {k: v[0] for k, v in generated.items()}, services).startswith(PNG)
    assert maps_figure(real[0], {"appshot": generated["appshot"][0]}, services, shown=["netflix"]).startswith(PNG)
    assert stochasticity_figure(real, generated, bins=8, title="t").startswith(PNG)
    assert share_error_figure(real, generated, services).startswith(PNG)
    assert metrics_figure(results_table(_records()), "morning").startswith(PNG)
