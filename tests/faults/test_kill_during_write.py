"""kill -9 while a partition is being materialised, then run it again: the killed run leaves no partial
file under the asset's name (at worst a hidden ``.tmp-`` file), and the rerun removes that leftover and
writes the complete output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from appshot_model.core.cube import read_cube
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city

REPO = Path(__file__).resolve().parents[2]
#: Materialise the demo-world assets of one tiny city (Dagster, in process). With STALL set, the NetCDF
#: writer stops halfway through writing the traffic cube (the temporary file holds half the bytes)
#: and waits to be killed.
RUNNER = """
import os, sys, time
from pathlib import Path
import xarray as xr
from dagster import materialize
from appshot_model.traffic.demo import small_demo_city
from assets.demo_world import build_demo_world_assets
from assets.partitions import city_partitions
from assets.resources import AppshotSettings
from pipelines.io_managers import io_managers

data = Path(sys.argv[1])
if os.environ.get("STALL"):
    original = xr.DataArray.to_netcdf
    def stalling(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        if self.name == "traffic":
            Path(path).write_bytes(Path(path).read_bytes()[: Path(path).stat().st_size // 2])
            (data / "stalled").write_text(str(path))
            time.sleep(600)
    xr.DataArray.to_netcdf = stalling
city = small_demo_city("alpha", 12, 12)
result = materialize(build_demo_world_assets({"alpha": city}, city_partitions(["alpha"])), partition_key="alpha",
                     resources={"settings": AppshotSettings(days=7, data_dir=str(data)),
                                **io_managers(str(data / "assets"))})
sys.exit(0 if result.success else 1)
"""


def _runner(data: Path, stall: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STALL": "1" if stall else ""}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(data)], env=env, cwd=data,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_kill_9_during_materialisation_then_rerun(tmp_path):
    target = tmp_path / "assets" / "traffic_cube" / "alpha.nc"
    killed = _runner(tmp_path, stall=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "stalled").exists():
        assert killed.poll() is None, killed.communicate()[0]
        assert time.monotonic() < deadline, "the runner never reached the traffic cube write"
        time.sleep(0.1)
    partial = Path((tmp_path / "stalled").read_text())
    assert partial.exists() and partial.name.startswith(".tmp-alpha.nc-")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    folder = target.parent
    assert not target.exists(), "a partial traffic cube is visible under its name"
    assert [p.name for p in folder.iterdir()] == [partial.name]  # hidden leftover only
    assert read_cube(tmp_path / "assets" / "context_cube" / "alpha.nc").shape[0] > 0  # finished before the kill

    rerun = _runner(tmp_path, stall=False)
    output = rerun.communicate(timeout=180)[0]
    assert rerun.returncode == 0, output
    assert [p.name for p in folder.iterdir()] == ["alpha.nc"]  # the dead writer's temporary is gone
    cube = read_cube(target)
    city = small_demo_city("alpha", 12, 12)
    expected = simulate_traffic(city, simulate_context(city, seed=0), seed=0, days=7)
    np.testing.assert_array_equal(cube.values, expected.values)
