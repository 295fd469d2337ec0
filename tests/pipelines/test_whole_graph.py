"""In-process materialisation of the whole graph: two small simulated cities x one peak hour,
tiny training budget; outputs exist, are georeferenced, finite, non-negative and identical
across two runs with the same seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from dagster import DagsterInstance

from appshot_model.core.cube import read_cube
from appshot_model.traffic.demo import small_demo_city
from assets.resources import AppshotSettings
from pipelines.definitions import build_definitions
from pipelines.demo_run import run_demo

FIDELITY_ROWS = [{"hour": "morning", "method": "data", "werr": 0.1, "nemd": 0.2},
                 {"hour": "morning", "method": "appshot", "werr": 0.2, "nemd": 0.3}]
TINY_CONFIG = """\
model:
  features: 4
train:
  steps: 6
  batch_size: 8
"""


def _run(tmp_path: Path, name: str) -> Path:
    data_dir = tmp_path / name
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    cities = [small_demo_city("alpha", 20, 22), small_demo_city("beta", 24, 20, seed_offset=1)]
    settings = AppshotSettings(seed=7, days=7, n_samples=2, config_file=str(config), data_dir=str(data_dir),
                               held_out_cities=["beta"])
    report = data_dir / "assets" / "evaluation_report.json"  # as the IO manager stores evaluation_report
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"table": FIDELITY_ROWS}))
    defs = build_definitions(cities=cities, hours=["morning"], settings=settings)
    with DagsterInstance.ephemeral() as instance:
        log_file = data_dir / "run.log"
        run_ids = run_demo(defs, instance, quiet=True, log_file=log_file)
        assert len(run_ids) == 2 + 2 + 1 + 1 + 2 + 1  # demo world, peak traffic, selection, training, generation, release
        lines = log_file.read_text().splitlines()
        for run_id in run_ids:
            assert instance.get_run_by_id(run_id).is_success
            assert any(f" {run_id[:8]} " in line and "RUN_SUCCESS" in line or
                       f" {run_id[:8]} " in line and "Finished execution" in line for line in lines)
        assert any(" DEBUG " in line for line in lines)  # every level is kept, not only what the console showed
    return data_dir


@pytest.mark.slow
def test_whole_graph_two_cities_one_hour(tmp_path):
    first = _run(tmp_path, "first")
    second = _run(tmp_path, "second")
    for city, shape in (("alpha", (20, 22)), ("beta", (24, 20))):
        path = first / "assets" / "generated_snapshots" / city / "morning.nc"
        generated = read_cube(path)
        assert generated.attrs["label"] == "synthetic"
        assert generated.sizes["sample"] == 2 and generated.shape[-2:] == shape
        assert generated.rio.crs is not None and generated.rio.transform().e < 0
        values = generated.values
        assert np.isfinite(values).all() and (values >= 0).all() and values.max() > 0
        again = read_cube(second / "assets" / "generated_snapshots" / city / "morning.nc")
        assert np.array_equal(values, again.values)
        tiff = first / "generated" / city / "morning" / "sample_000.tif"
        with rasterio.open(tiff) as src:
            assert src.count == generated.sizes["service"]
            assert list(src.descriptions) == [str(s) for s in generated.service.values]
            assert src.crs is not None and src.transform.e < 0
            assert src.tags()["label"] == "synthetic"
            np.testing.assert_array_equal(src.read(), values[0])
    releases = [p for p in (first / "releases").iterdir() if (p / "manifest.json").exists()]
    assert len(releases) == 1
    again = [p for p in (second / "releases").iterdir() if (p / "manifest.json").exists()]
    assert [p.name for p in again] == [p.name for p in releases]  # same content hash (and day)
    card = json.loads((releases[0] / "card.json").read_text())
    assert card["fidelity"]["leave_one_city_out"] == FIDELITY_ROWS
    model_dir = first / "assets" / "trained_model" / "morning"
    assert (model_dir / "model.json").exists()
    selection = (first / "assets" / "attribute_selection.json").read_text()
    assert "beta" not in selection.split('"training_cities"')[1].split("]")[0]
