"""Session expansion: load deciles, reconciliation on constructed cells, Parquet output and reproducibility."""

import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.sessions.coefficients import read_coefficients
from appshot_model.sessions.expansion import HourSpec, expand_hour, load_deciles
from appshot_model.sessions.models import StandInWarning, session_model

SPEC = HourSpec("testcity", "evening", pd.Timestamp("2026-03-02 17:00"), "Europe/Rome")
LINE = Grid("EPSG:32632", 500_000.0, 5_040_000.0, 1, 2)
#: Adds an app with almost no sessions, so that its service gets no arrival in an hour.
RARE = {"sessions_share": ("Beta,30,70\n", "Beta,30,69.9\nRare,0.000001,0.1\n"),
        "pdf_coefs": ("Beta,6.0,0.8,-,-,-,-,-,-\n", "Beta,6.0,0.8,-,-,-,-,-,-\nRare,4.0,0.3,-,-,-,-,-,-\n"),
        "duration_coefs": ("Beta,10000,0.5\n", "Beta,10000,0.5\nRare,100,1.0\n")}


@pytest.fixture
def rare_model(tmp_path, write_release, tiny_mapping):
    coefficients = read_coefficients(write_release(tmp_path / "rare", RARE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInWarning)
        return session_model(coefficients, ["alpha", "gamma", "rare"], {**tiny_mapping, "rare": ("Rare",)})


def test_load_deciles_from_ranks():
    assert load_deciles(np.arange(20.0)[::-1]).tolist() == [9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0]
    assert load_deciles(np.array([5.0, 5.0, 5.0, 1.0])).tolist() == [6, 6, 6, 1]  # ties share the average rank
    with pytest.raises(AppshotInputError):
        load_deciles(np.array([]))


def test_constructed_cells_carry_their_volume_exactly(tmp_path, rare_model):
    given = np.array([[[1e9, 2e9]], [[0.0, 3e9]], [[5e6, 0.0]]])  # [service, y, x] bytes: alpha, gamma, rare
    summary = expand_hour(rare_model, given, "bytes", LINE, SPEC, tmp_path, seed=3, label="synthetic")
    table = pq.read_table(summary["paths"]["sessions"]).to_pandas()
    carried = table.groupby(["cell_id", "service"], observed=True)["bytes"].sum()
    assert carried[(0, "alpha")] == pytest.approx(1e9, rel=1e-12)
    assert carried[(1, "alpha")] == pytest.approx(2e9, rel=1e-12)
    assert carried[(1, "gamma")] == pytest.approx(3e9, rel=1e-12)
    assert (0, "gamma") not in carried.index and summary["dropped_arrivals"] > 0  # no volume, no sessions
    rare = table[table.service == "rare"]
    assert len(rare) == 1 and rare.bytes.iloc[0] == pytest.approx(5e6) and rare.cell_id.iloc[0] == 0  # forced
    assert summary["forced_sessions"] == 1 and summary["max_cell_volume_error"] < 1e-12
    # session shares within cell 1 follow seed 004's 60 : 30 split of alpha and gamma
    cell1 = table[table.cell_id == 1].service.value_counts()
    assert cell1["alpha"] / (cell1["alpha"] + cell1["gamma"]) == pytest.approx(2 / 3, abs=0.05)
    recon = pq.read_table(summary["paths"]["reconciliation"]).to_pandas().set_index(["cell_id", "service"])
    assert bool(recon.loc[(0, "rare"), "forced"]) and recon.loc[(0, "rare"), "sessions"] == 1
    assert recon.loc[(1, "gamma"), "sessions"] == cell1["gamma"] and recon.loc[(0, "gamma"), "drawn_bytes"] == 0
    assert recon.loc[(1, "gamma"), "drawn_bytes"] > 0 and recon.loc[(1, "gamma"), "load_decile"] == pytest.approx(0.8)
    # times: within the hour in UTC, sorted by cell then start; durations within [1 s, 1 h]
    start = table.start
    assert str(start.dt.tz) == "UTC" and start.min() >= pd.Timestamp("2026-03-02 16:00", tz="UTC")
    assert start.max() < pd.Timestamp("2026-03-02 17:00", tz="UTC")
    assert (table.sort_values(["cell_id", "start"], kind="stable").index == table.index).all()
    assert table.duration_s.between(1.0, 3600.0).all()


def test_outputs_are_labelled_and_joinable(tmp_path, rare_model):
    given = np.full((3, 1, 2), 1e7)
    summary = expand_hour(rare_model, given, "bit/s", LINE, SPEC, tmp_path, seed=1, label="synthetic")
    meta = json.loads(pq.read_schema(summary["paths"]["sessions"]).metadata[b"appshot"])
    assert meta["label"] == "synthetic" and meta["start_utc"] == "2026-03-02T16:00:00+00:00" and meta["peak"]
    cells = gpd.read_parquet(summary["paths"]["cells"])
    assert list(cells.cell_id) == [0, 1] and cells.crs.to_epsg() == 32632
    assert set(cells.columns) >= {"cell_id", "row", "col", "load_decile", "given_bytes", "geometry"}
    assert cells.given_bytes.tolist() == pytest.approx([3 * 1e7 * 3600 / 8] * 2)  # bit/s over one hour
    assert "city=testcity/hour=evening" in summary["paths"]["sessions"]


def test_same_seed_same_parquet_bytes(tmp_path, rare_model):
    given = np.random.default_rng(0).lognormal(20, 1, (3, 1, 2))
    paths = [expand_hour(rare_model, given, "bytes", LINE, SPEC, tmp_path / name, seed=seed, label="synthetic")["paths"]
             for name, seed in (("a", 5), ("b", 5), ("c", 6))]
    for kind in ("sessions", "cells", "reconciliation"):
        with open(paths[0][kind], "rb") as first, open(paths[1][kind], "rb") as second:
            assert first.read() == second.read(), kind
    with open(paths[0]["sessions"], "rb") as first, open(paths[2]["sessions"], "rb") as other:
        assert first.read() != other.read()


def test_bad_snapshots_are_refused(tmp_path, rare_model):
    good = np.ones((3, 1, 2))
    with pytest.raises(AppshotInputError, match="units 'normalised' cannot be expanded"):
        expand_hour(rare_model, good, "normalised", LINE, SPEC, tmp_path, seed=0, label="x")
    with pytest.raises(AppshotInputError, match="finite and >= 0"):
        expand_hour(rare_model, -good, "bytes", LINE, SPEC, tmp_path, seed=0, label="x")
    with pytest.raises(AppshotInputError, match="differs from the grid"):
        expand_hour(rare_model, np.ones((3, 2, 2)), "bytes", LINE, SPEC, tmp_path, seed=0, label="x")
    with pytest.raises(AppshotInputError, match="volumes have 2 services"):
        expand_hour(rare_model, np.ones((2, 1, 2)), "bytes", LINE, SPEC, tmp_path, seed=0, label="x")
    with pytest.raises(AppshotInputError, match="time zone 'Mars/Olympus'"):
        HourSpec("x", "evening", pd.Timestamp("2026-03-02 17:00"), "Mars/Olympus").start_utc
