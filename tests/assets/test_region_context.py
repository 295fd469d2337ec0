"""Region assets: grid, real context cube (with layer PNGs) and synthetic traffic for a real region."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from dagster import AssetSpec, DagsterInstance, MultiPartitionKey, materialize

from appshot_model.core.cube import grid_of, read_cube
from appshot_model.core.names import ATTRIBUTES
from assets.partitions import REGION_PARTITIONS_NAME, hour_partitions, region_partitions
from assets.region_context import build_region_context_assets, region_file
from assets.resources import AppshotSettings, DaskSettings
from pipelines.io_managers import io_managers


def test_region_assets_materialise(shared_data, tmp_path):
    from tests.appshot_model.model.test_generate import make_artefact

    regions = tmp_path / "regions"
    regions.mkdir()
    (regions / "vaduz.yaml").write_text(yaml.safe_dump({
        "name": "vaduz", "boundary": {"bbox": [9.50, 47.12, 9.54, 47.15]},
        "sources": {"osm": {"path": str(shared_data / "osm" / "liechtenstein-latest.osm.pbf")},
                    "population": {"osm_buildings": {"total": 5500}}}}))
    data = tmp_path / "data"
    assets_dir = data / "assets"
    artefact = make_artefact()
    artefact.training_label = "the simulated demo world"
    artefact.save(assets_dir / "trained_model" / "morning")
    hours = hour_partitions(["morning"])
    grid_asset, cube_asset, traffic_asset = build_region_context_assets(region_partitions, regions, hours)
    model_spec = AssetSpec("trained_model", partitions_def=hours).with_io_manager_key("model_io_manager")
    resources = {"settings": AppshotSettings(data_dir=str(data), n_samples=2), "dask": DaskSettings(),
                 **io_managers(str(assets_dir))}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(REGION_PARTITIONS_NAME, ["vaduz"])
        result = materialize([grid_asset, cube_asset], resources=resources, partition_key="vaduz",
                             instance=instance)
        assert result.success
        meta = result.asset_materializations_for_node("region_context_cube")[0].metadata
        assert meta["label"].value == "real context" and meta["estimated_layers"].value == ["population"]
        assert "| poi_shop | measured |" in meta["layers"].value
        pngs = sorted(Path(meta["layer_pngs"].value).glob("*.png"))
        assert len(pngs) == len(ATTRIBUTES) + 1  # one per layer + the overview
        cube = read_cube(assets_dir / "region_context_cube" / "vaduz.nc")
        assert list(cube.attribute.values) == list(ATTRIBUTES) and "coverage" in cube.coords
        assert grid_of(cube).shape == (14, 13)

        key = MultiPartitionKey({"city": "vaduz", "hour": "morning"})
        cube_spec = AssetSpec("region_context_cube", partitions_def=region_partitions) \
            .with_io_manager_key("cube_io_manager")
        assert str(key) == "vaduz|morning"
        traffic = materialize([model_spec, cube_spec, traffic_asset], resources=resources, partition_key=key,
                              instance=instance, selection=["region_traffic"])
        assert traffic.success
        tmeta = traffic.asset_materializations_for_node("region_traffic")[0].metadata
        statement = "synthetic: model trained on the simulated demo world applied to real context of vaduz"
        assert tmeta["statement"].value == statement and tmeta["label"].value == "synthetic"
        generated = read_cube(assets_dir / "region_traffic" / "vaduz" / "morning.nc")
        assert generated.dims == ("sample", "service", "y", "x") and generated.shape[0] == 2
        assert generated.attrs["statement"] == statement and np.isfinite(generated.values).all()
        assert len(list((data / "generated_regions" / "vaduz" / "morning").glob("*.tif"))) == 2


def test_region_file_lookup(tmp_path):
    (tmp_path / "a.yml").write_text("name: a\n")
    assert region_file(tmp_path, "a") == tmp_path / "a.yml"
    from appshot_model.core.errors import AppshotInputError

    with pytest.raises(AppshotInputError, match=r"no region file b.yaml .*\['a'\]"):
        region_file(tmp_path, "b")
