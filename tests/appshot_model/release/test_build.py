"""Generating a release for a region, and gathering one from a pipeline run folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.release import publish_release, verify_release
from appshot_model.release.build import generate_for_region, parts_from_run_dir, read_fidelity, series_from_run_dir
from appshot_model.release.layout import SeriesPart


@pytest.fixture
def region_file(tmp_path):
    path = tmp_path / "vaduz.yaml"
    path.write_text("name: Vaduz\n")
    return path


def test_generate_for_region_writes_verifiable_release(fakes, tmp_path, region_file):
    model = fakes.make_model_dir(tmp_path / "model")
    result = generate_for_region(model, region_file, "morning", 2, 5, tmp_path / "out", **fakes.generate_kwargs())
    assert result.status == "published" and result.path == (tmp_path / "out").absolute()
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    part = card["parts"][0]
    assert part["statement"] == "synthetic: model trained on unrecorded training data applied to real context of Vaduz"
    assert part["seed"] == 5 and part["samples"] == 2
    assert any(s.get("licence") == "ODbL-1.0" for s in card["context_sources"])
    assert (tmp_path / "out" / "Vaduz" / "morning" / "cog" / "sample_001.tif").is_file()
    assert verify_release(tmp_path / "out", load_model=fakes.FakeArtefact, generate=fakes.fake_generate).ok
    again = generate_for_region(model, region_file, "morning", 2, 5, tmp_path / "out", **fakes.generate_kwargs())
    assert again.already_published


def test_out_dir_holding_a_different_release(fakes, tmp_path, region_file):
    model = fakes.make_model_dir(tmp_path / "model")
    generate_for_region(model, region_file, "morning", 2, 5, tmp_path / "out", **fakes.generate_kwargs())
    with pytest.raises(AppshotInputError, match="already holds a different release"):
        generate_for_region(model, region_file, "morning", 2, 6, tmp_path / "out", **fakes.generate_kwargs())
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    with pytest.raises(AppshotInputError, match="not an appshot release"):
        generate_for_region(model, region_file, "morning", 2, 5, tmp_path / "busy", **fakes.generate_kwargs())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")]


def test_model_from_another_attribute_set(fakes, tmp_path, region_file):
    model = fakes.make_model_dir(tmp_path / "model")
    config = json.loads((model / "model.json").read_text())
    config["attributes"] = ["population", "poi_cafe", "landuse_sea"]
    (model / "model.json").write_text(json.dumps(config))
    with pytest.raises(AppshotInputError, match=r"\['poi_cafe', 'landuse_sea'\]") as err:
        generate_for_region(model, region_file, "morning", 2, 5, tmp_path / "out", **fakes.generate_kwargs())
    assert str(region_file) in str(err.value) and str(model) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_invalid_region_file_and_arguments(fakes, tmp_path):
    model = fakes.make_model_dir(tmp_path / "model")
    bad = tmp_path / "bad.yaml"
    bad.write_text("boundary: nowhere\n")
    with pytest.raises(AppshotInputError, match="field 'name'"):
        generate_for_region(model, bad, "morning", 2, 5, tmp_path / "out", **fakes.generate_kwargs())
    with pytest.raises(AppshotInputError, match="does not exist"):
        generate_for_region(model, tmp_path / "none.yaml", "morning", 2, 5, tmp_path / "out", **fakes.generate_kwargs())
    with pytest.raises(AppshotInputError, match="peak hour"):
        generate_for_region(model, bad, "night", 2, 5, tmp_path / "out", **fakes.generate_kwargs())


def test_parts_from_run_dir(fakes, tmp_path):
    assets = tmp_path / "assets"
    for city, hour, seed in [("aurora", "morning", 1), ("aurora", "evening", 2), ("borealis", "morning", 3)]:
        part = fakes.make_part(tmp_path, city, hour, seed=seed)
        write_cube(part.snapshots, assets / "generated_snapshots" / city / f"{hour}.nc")
        write_cube(part.context, assets / "context_cube" / f"{city}.nc")
        fakes.make_model_dir(assets / "trained_model" / hour)
    parts = parts_from_run_dir(assets, hours=["morning"], model_loader=fakes.FakeArtefact)
    assert [(p.city, p.hour) for p in parts] == [("aurora", "morning"), ("borealis", "morning")]
    assert parts[0].model_dir == assets / "trained_model" / "morning" and parts[0].context is not None
    with pytest.raises(AppshotInputError, match="hour \\['midday'\\]"):
        parts_from_run_dir(assets, hours=["midday"], model_loader=fakes.FakeArtefact)
    with pytest.raises(AppshotInputError, match="no generated snapshots"):
        parts_from_run_dir(tmp_path / "empty")
    fidelity = tmp_path / "fid.json"
    fidelity.write_text(json.dumps([{"metric": "WErr", "appshot": 0.18, "data": 0.15}]))
    result = publish_release(parts, tmp_path / "releases", fidelity=read_fidelity(fidelity))
    assert "| metric | appshot | data |" in (result.path / "card.md").read_text()
    assert verify_release(result.path, load_model=fakes.FakeArtefact, generate=fakes.fake_generate).ok


def hourly_cube(label: str = "synthetic", **attrs):
    from appshot_model.core.cube import make_traffic_cube
    from tests.appshot_model.release.conftest import GRID

    values = np.random.default_rng(4).gamma(2.0, 50.0, (48, 2, GRID.height, GRID.width)).astype("float32")
    return make_traffic_cube(values, pd.date_range("2026-03-02", periods=48, freq="h"), ["video", "social"], GRID,
                             label=label, seed=5, **attrs)


def test_release_takes_the_cities_hourly_series(fakes, tmp_path):
    assets = tmp_path / "assets"
    part = fakes.make_part(tmp_path, "aurora", "morning", seed=1)
    write_cube(part.snapshots, assets / "generated_snapshots" / "aurora" / "morning.nc")
    write_cube(part.context, assets / "context_cube" / "aurora.nc")
    fakes.make_model_dir(assets / "trained_model" / "morning")
    write_cube(hourly_cube(acl1_model=3.5, acl1_naive=4.25, acl1_data=2.0), assets / "dg_series" / "aurora.nc")
    write_cube(hourly_cube(acl1_model=3.0), assets / "hourly_series" / "aurora.nc")
    write_cube(hourly_cube(), assets / "hourly_series" / "borealis.nc")  # a city without snapshots: left out
    parts = parts_from_run_dir(assets, model_loader=fakes.FakeArtefact)
    series = series_from_run_dir(assets, ["aurora"])
    assert [(s.city, s.method) for s in series] == [("aurora", "appshot"), ("aurora", "dg")]
    result = publish_release(parts, tmp_path / "releases", series=series)
    written = read_cube(result.path / "series" / "aurora" / "dg-hourly.nc")
    assert written.shape == (48, 2, 6, 8) and written.attrs["label"] == "synthetic"
    assert "SYNTHETIC" in written.attrs["comment"] and written.rio.crs.to_epsg() == 32632
    assert "series/aurora/dg-hourly.nc" in json.loads((result.path / "manifest.json").read_text())["files"]
    card = json.loads((result.path / "card.json").read_text())
    record = next(r for r in card["series"] if r["method"] == "dg")
    assert record["acl1"] == {"model": 3.5, "naive": 4.25, "data": 2.0} and record["hours"] == 48
    assert record["first_hour"] == "2026-03-02 00:00" and "DoppelGANger" in card["notice"]
    markdown = (result.path / "card.md").read_text()
    assert "## Hourly series" in markdown and "`series/aurora/appshot-hourly.nc`" in markdown
    assert verify_release(result.path, load_model=fakes.FakeArtefact, generate=fakes.fake_generate).ok
    (result.path / "series" / "aurora" / "dg-hourly.nc").write_bytes(b"tampered")
    assert any("dg-hourly.nc" in p for p in verify_release(result.path, regenerate=False).problems)
    with pytest.raises(AppshotInputError, match="label='simulated'"):
        SeriesPart("aurora", "dg", hourly_cube(label="simulated"))
    with pytest.raises(AppshotInputError, match="appear twice"):
        publish_release(parts, tmp_path / "again", series=[series[1], series[1]])
    assert series_from_run_dir(tmp_path / "empty") == []
