"""A full disk: writing a cube, saving a model and publishing a release each fail with an
AppshotStorageError naming what could not be written, leave no temporary or staging file, and keep
the earlier version. The disk is a 2 MiB tmpfs where mounting works (root), otherwise a 1 MiB
file-size limit (RLIMIT_FSIZE) on the writing process. (Under a file-size limit GDAL's GeoTIFF writer
fails on a seek before the file grows, so its cause cannot be told; the release's COGs are therefore
kept below the limit and its NetCDF above it.)"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Each scenario writes something bigger than the room left and prints what happened as JSON.
RUNNER = """
import json, sys
from pathlib import Path
import numpy as np
import torch
from appshot_model.core.cube import make_traffic_cube, read_cube, write_cube
from appshot_model.core.grid import Grid
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig
from appshot_model.model.networks import Generator
from appshot_model.release import ReleasePart, publish_release
from tests.appshot_model.model.test_generate import make_artefact

disk = Path(sys.argv[1])
grid = Grid("EPSG:32632", 500000.0, 5050000.0, 300, 300)

def cube(n, services=("youtube", "netflix", "instagram", "facebook")):
    values = np.random.default_rng(n).random((n, len(services), grid.height, grid.width)).astype("float32") * 1000
    return make_traffic_cube(values, np.arange(n).astype("datetime64[D]"), list(services), grid)

def attempt(name, write, check):
    try:
        write()
        outcome = {"error": None}
    except Exception as exc:
        outcome = {"error": type(exc).__name__, "message": str(exc)}
    outcome.update(check())
    outcome["files"] = sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))
    print(json.dumps({name: outcome}))

write_cube(cube(1).isel(time=slice(0, 1), y=slice(0, 10), x=slice(0, 10)), disk / "cubes" / "city.nc")
attempt("cube", lambda: write_cube(cube(2), disk / "cubes" / "city.nc"),
        lambda: {"kept_shape": list(read_cube(disk / "cubes" / "city.nc").shape)})

small = make_artefact()
small.save(disk / "model")
big = make_artefact()
big.model_cfg = ModelConfig(features=64)
big.generator = Generator(len(big.attributes), len(big.services), big.model_cfg)
attempt("model", lambda: big.save(disk / "model"),
        lambda: {"kept": ModelArtefact.load(disk / "model").model_hash == small.model_hash})

# two services: each COG 0.7 MB, the NetCDF 2.9 MB
snapshots = cube(4, ("youtube", "netflix")).rename(time="sample").assign_coords(sample=np.arange(4))
snapshots.attrs.update(label="synthetic", seed=3, model_hash="0" * 64)
part = ReleasePart(city="aurora", hour="morning", snapshots=snapshots)
attempt("release", lambda: publish_release([part], disk / "releases"), lambda: {})
"""
LIMIT_BYTES = 1 << 20


@pytest.fixture
def small_disk(tmp_path):
    """(folder, file-size limit or None): a 2 MiB tmpfs when it can be mounted, else a folder plus a limit."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                                                   capture_output=True).returncode == 0
    try:
        yield disk, None if mounted else LIMIT_BYTES
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


def test_full_disk_fails_cleanly(small_disk):
    disk, limit = small_disk

    def limit_file_size() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, "-c", RUNNER, str(disk)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            cwd=REPO, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300)
    assert result.returncode == 0, result.stderr
    outcomes = {}
    for line in result.stdout.splitlines():
        with contextlib.suppress(ValueError):
            outcomes.update(json.loads(line))
    assert set(outcomes) == {"cube", "model", "release"}, result.stdout
    why = "file system is full" if limit is None else "file-size limit"
    for name, target in (("cube", disk / "cubes" / "city.nc"), ("model", disk / "model"),
                         ("release", disk / "releases")):
        outcome = outcomes[name]
        assert outcome["error"] == "AppshotStorageError", outcome
        assert outcome["message"].startswith(f"could not write {target}: "), outcome["message"]
        assert why in outcome["message"] or "no space left" in outcome["message"] \
            or "file too large" in outcome["message"], outcome["message"]
        assert "nothing was written there" in outcome["message"]
    assert outcomes["cube"]["kept_shape"] == [1, 4, 10, 10]  # the earlier, small cube
    assert outcomes["model"]["kept"] is True
    files = outcomes["release"]["files"]
    assert not [f for f in files if Path(f).name.startswith(".")], files  # no temporaries or staging folders
    assert not [f for f in files if f.startswith("releases/") and f != "releases"], files  # no partial release
