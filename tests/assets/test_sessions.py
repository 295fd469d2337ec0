"""Session assets in-process on a tiny simulated city: a generated-like cube placed where the pipeline keeps
generated snapshots is expanded into Parquet sessions with figures, its slices are sized, the pooled
table is written, and the vRAN day runs on the city's simulated hourly traffic."""

import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import xarray as xr
from dagster import DagsterInstance

from appshot_model.core.cube import write_cube
from appshot_model.sessions.coefficients import read_coefficients
from appshot_model.sessions.models import StandInWarning
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from assets.resources import AppshotSettings
from pipelines.definitions import build_definitions

CITY = small_demo_city("alpha", 6, 7)


def _generated(traffic: xr.DataArray) -> xr.DataArray:
    """Two generated-like samples [sample, service, y, x]: the simulated 17:00 of the first day, rescaled."""
    evening = traffic.isel(time=17).drop_vars("time")
    cube = xr.concat([evening, evening * 1.1], dim="sample").assign_coords(sample=[0, 1])
    cube.attrs.update(units="bit/s", label="synthetic", peak_hour="evening")
    return cube.transpose("sample", "service", "y", "x")


def test_session_assets_materialise(tmp_path):
    try:
        read_coefficients()
    except Exception as exc:  # the shared seed-004 files are absent
        pytest.skip(str(exc))
    settings = AppshotSettings(seed=2, days=1, data_dir=str(tmp_path))
    defs = build_definitions(cities=[CITY], hours=["evening"], settings=settings)
    traffic = simulate_traffic(CITY, simulate_context(CITY, seed=2), seed=2, days=1)
    write_cube(traffic, tmp_path / "assets" / "traffic_cube" / "alpha.nc")
    write_cube(_generated(traffic), tmp_path / "assets" / "generated_snapshots" / "alpha" / "evening.nc")
    config = {"ops": {"slicing_capacity": {"config": {"plan_replicates": 3}}}}
    with DagsterInstance.ephemeral() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInWarning)
        result = defs.resolve_job_def("sessions_job").execute_in_process(
            instance=instance, partition_key="alpha|evening", run_config=config)
        assert result.success
        summary = result.output_for_node("session_tables")
        sliced = result.output_for_node("slicing_capacity")
        rows = defs.resolve_job_def("slicing_table_job").execute_in_process(instance=instance).output_for_node(
            "slicing_capacity_table")
        vran = defs.resolve_job_def("vran_job").execute_in_process(
            instance=instance, partition_key="alpha").output_for_node("vran_energy")
    table = pq.read_table(summary["paths"]["sessions"])
    assert table.num_rows == summary["sessions"] > 1000 and summary["label"] == "synthetic"
    assert summary["max_cell_volume_error"] < 1e-9 and summary["checks"]["max_ks_drawn"] < 0.2
    assert summary["start_utc"] == "2026-03-02T16:00:00+00:00"  # 17:00 in Europe/Rome (the grid is near Milan)
    for name in ("shares", "volume_ks", "volume_duration", "reconciliation"):
        assert (tmp_path / "figures" / "sessions" / f"alpha_evening_{name}.png").stat().st_size > 0
    assert sliced["cells"] == 42 and sliced["plan_replicates"] == 3
    assert [r["method"] for r in rows] == ["sessions", "bm_a", "bm_b"]
    assert all(0.0 <= r["sla_met"] <= 1.0 for r in rows)
    assert (tmp_path / "sessions" / "slicing_capacity.csv").read_text().startswith("method,sla_met,std\n")
    assert [r["demand"] for r in vran] == ["sessions", "smooth", "smooth_placement"]
    assert np.isfinite([r["energy_kwh"] for r in vran]).all() and vran[1]["overload_minutes_share"] == 0.0
    assert (tmp_path / "figures" / "sessions" / "alpha_vran.png").stat().st_size > 0
