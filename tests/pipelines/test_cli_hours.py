"""``appshot generate --hours``: the hourly series of a region from an hour-conditioned model folder."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from appshot_model.context import build, region
from appshot_model.core.cube import read_cube
from pipelines.cli import app
from tests.appshot_model.model.test_generate import make_context
from tests.appshot_model.model.test_hours import conditioned_artefact

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_generate_hours_writes_an_hourly_netcdf(tmp_path, monkeypatch):
    model = conditioned_artefact().save(tmp_path / "model")
    region_file = tmp_path / "vaduz.yaml"
    region_file.write_text("name: Vaduz\n")
    monkeypatch.setattr(region, "load_region", lambda path: type("Region", (), {"name": "Vaduz"})())
    monkeypatch.setattr(build, "build_context_cube", lambda r, progress=False: (make_context(), {}))
    runner = CliRunner()
    args = ["generate", "--model", str(model), "--region", str(region_file), "--out", str(tmp_path / "out"),
            "--hours", "22-23,0-1", "--days", "2", "--start", "2026-03-06", "--seed", "3", "--rho", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    series = read_cube(tmp_path / "out" / "vaduz-hourly.nc")
    assert series.shape == (8, 2, 14, 17) and series.attrs["label"] == "synthetic" and series.attrs["noise_rho"] == 0.5
    assert list(pd.DatetimeIndex(series.time.values).hour) == [0, 1, 22, 23] * 2
    bad = runner.invoke(app, [*args[:-8], "--hours", "25", "--days", "2"])
    assert bad.exit_code == 2 and "hours '25'" in bad.output and "Traceback" not in bad.output
