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


def test_generate_hours_with_the_dg_series_model(tmp_path, monkeypatch):
    from appshot_model.series.trained import save_series_models, train_series_models
    from tests.appshot_model.series.test_series import small, toy_cells

    folder = save_series_models(train_series_models(toy_cells(), small(), seed=1, info={"units": "bit/s"}),
                                tmp_path / "dg_model")
    region_file = tmp_path / "vaduz.yaml"
    region_file.write_text("name: Vaduz\n")
    monkeypatch.setattr(region, "load_region", lambda path: type("Region", (), {"name": "Vaduz"})())
    monkeypatch.setattr(build, "build_context_cube",
                        lambda r, progress=False: (make_context(attributes=["a", "b", "c", "d"]), {}))
    args = ["generate", "--model", str(folder), "--region", str(region_file), "--out", str(tmp_path / "out"),
            "--hours", "8,12", "--days", "3", "--start", "2026-03-06", "--seed", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "doppelganger" in result.output
    series = read_cube(tmp_path / "out" / "vaduz-hourly.nc")
    assert series.shape == (6, 2, 14, 17) and series.attrs["label"] == "synthetic"
    assert list(pd.DatetimeIndex(series.time.values).hour) == [8, 12] * 3 and series.attrs["method"] == "doppelganger"
    monkeypatch.setattr(build, "build_context_cube", lambda r, progress=False: (make_context(attributes=["a"]), {}))
    missing = CliRunner().invoke(app, [*args[:-2], "--seed", "4"])
    assert missing.exit_code == 2 and "'b'" in missing.output and "Traceback" not in missing.output
