"""Small generated cubes, a fake model folder and a fake seeded generator for release tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from appshot_model.core.cube import make_context_cube, make_traffic_cube
from appshot_model.core.grid import Grid
from appshot_model.release import ReleasePart

SERVICES = ("youtube", "instagram", "whatsapp")
ATTRS = ("population", "poi_shop")
GRID = Grid("EPSG:32632", 500_000.0, 5_200_000.0, 6, 8)


class FakeArtefact:
    """Stands in for ModelArtefact: a hash and a scale read from model.json."""

    def __init__(self, path: Path) -> None:
        config = json.loads((Path(path) / "model.json").read_text())
        self.model_hash = config["model_hash"]
        self.scale = float(config["scale"])
        self.services = tuple(config["services"])
        self.attributes = tuple(config["attributes"])


def make_model_dir(path: Path, scale: float = 100.0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    weights = np.arange(16, dtype="float32") * scale
    (path / "weights.bin").write_bytes(weights.tobytes())
    model_hash = hashlib.sha256(weights.tobytes()).hexdigest()
    (path / "model.json").write_text(json.dumps({"model_hash": model_hash, "scale": scale,
                                                 "services": SERVICES, "attributes": ATTRS}))
    return path


def fake_generate(artefact: FakeArtefact, context: xr.DataArray, n_samples: int, seed: int,
                  progress: bool = False) -> xr.DataArray:
    """Seeded stand-in for generate_snapshots: same seed -> same bytes."""
    from appshot_model.core.cube import grid_of

    rng = np.random.default_rng(seed)
    grid = grid_of(context)
    base = context.values[0].astype("float32")
    values = rng.gamma(2.0, 1.0, size=(n_samples, len(artefact.services), grid.height, grid.width)).astype("float32")
    values *= artefact.scale * (1 + base)[None, None]
    da = make_traffic_cube(values, np.arange(n_samples).astype("datetime64[D]"), artefact.services, grid)
    da = da.rename(time="sample").assign_coords(sample=np.arange(n_samples))
    da.name = "generated"
    da.attrs.update(label="synthetic", seed=seed, model_hash=artefact.model_hash, peak_hour="morning",
                    units="bit/s", source_context="simulated")
    return da


def make_context(seed: int = 1) -> xr.DataArray:
    values = np.random.default_rng(seed).random((len(ATTRS), GRID.height, GRID.width)).astype("float32")
    return make_context_cube(values, ATTRS, GRID, label="simulated")


def make_part(tmp: Path, city: str = "aurora", hour: str = "morning", seed: int = 7, samples: int = 3,
              model_scale: float = 100.0) -> ReleasePart:
    model = make_model_dir(tmp / f"model_{hour}_{model_scale:g}", scale=model_scale)
    artefact = FakeArtefact(model)
    context = make_context()
    snapshots = fake_generate(artefact, context, samples, seed)
    return ReleasePart(city=city, hour=hour, snapshots=snapshots, context=context, model_dir=model,
                       context_sources=[{"name": "demo world", "licence": "simulated, no licence needed"}],
                       training_label="the simulated demo world")


import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def fakes():
    """This module: fake model folder, fake generator, cube builders."""
    return sys.modules[__name__]


class FakeRegion:
    """Stands in for context.region.Region."""

    def __init__(self, name: str) -> None:
        self.name = name


def fake_load_region(path: Path) -> FakeRegion:
    """Reads ``name: <x>`` from a YAML-like file; anything else is an invalid region file."""
    from appshot_model.core.errors import AppshotInputError

    text = Path(path).read_text()
    if not text.startswith("name:"):
        raise AppshotInputError(f"region file {path}: field 'name' is missing")
    return FakeRegion(text.split(":", 1)[1].strip())


def fake_build_context(region: FakeRegion, progress: bool = False):
    return make_context(), {"sources": [{"name": "osm", "path": "liechtenstein-latest.osm.pbf"}]}


def generate_kwargs() -> dict:
    """Stand-ins for generate_for_region's model/region/context/generator hooks."""
    return {"loader": FakeArtefact, "region_loader": fake_load_region, "context_builder": fake_build_context,
            "generate": fake_generate}
