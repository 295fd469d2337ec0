"""``appshot sessions expand|slicing|vran``: help, a small generated cube end to end, clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from appshot_model.core.cube import write_cube
from appshot_model.core.grid import Grid
from appshot_model.sessions.coefficients import read_coefficients
from pipelines.cli import app

runner = CliRunner()
GRID = Grid("EPSG:32632", 500_000.0, 5_040_000.0, 3, 4)


@pytest.mark.parametrize("command", [["sessions"], ["sessions", "expand"], ["sessions", "slicing"],
                                     ["sessions", "vran"]], ids=" ".join)
def test_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.fixture
def run_dir(tmp_path):
    try:
        read_coefficients()
    except Exception as exc:  # the shared seed-004 files are absent
        pytest.skip(str(exc))
    services = ["youtube", "instagram", "facebook", "netflix"]
    values = np.random.default_rng(0).lognormal(13, 1, (2, 4, *GRID.shape)).astype(np.float32)
    cube = xr.DataArray(values, dims=("sample", "service", "y", "x"),
                        coords={"sample": [0, 1], "service": services, "y": GRID.y_centres(), "x": GRID.x_centres()},
                        name="traffic", attrs={"units": "bit/s", "label": "synthetic", "peak_hour": "midday"})
    write_cube(cube.rio.write_crs(GRID.crs).rio.write_transform(GRID.transform),
               tmp_path / "assets" / "generated_snapshots" / "tiny" / "midday.nc")
    return tmp_path / "assets"


def test_expand_and_slicing_on_a_generated_cube(run_dir, tmp_path):
    cube = run_dir / "generated_snapshots" / "tiny" / "midday.nc"
    result = runner.invoke(app, ["sessions", "expand", "--cube", str(cube), "--city", "tiny", "--out",
                                 str(tmp_path / "out"), "--index", "1", "--timezone", "Europe/Madrid"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summaries" / "tiny_midday.json").read_text())
    assert summary["start_utc"] == "2026-03-02T11:00:00+00:00" and summary["sessions"] > 0
    assert (tmp_path / "out" / "sessions" / "city=tiny" / "hour=midday" / "sessions.parquet").is_file()
    assert (tmp_path / "out" / "figures" / "tiny_midday_volume_ks.png").stat().st_size > 0
    csv_path = tmp_path / "table.csv"
    result = runner.invoke(app, ["sessions", "slicing", "--run-dir", str(run_dir), "--out", str(csv_path),
                                 "--replicates", "2"])
    assert result.exit_code == 0, result.output
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "method,sla_met,std"
    assert [line.split(",")[0] for line in lines[1:]] == ["sessions", "bm_a", "bm_b"]


def test_clean_errors(tmp_path):
    result = runner.invoke(app, ["sessions", "slicing", "--run-dir", str(tmp_path), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "generated_snapshots" in result.output
    result = runner.invoke(app, ["sessions", "vran", "--city", "atlantis", "--out", str(tmp_path / "v.csv")])
    assert result.exit_code == 2 and "unknown demo city 'atlantis'" in result.output
