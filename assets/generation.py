"""Generation: N synthetic snapshots per city x peak hour, as a NetCDF cube plus GeoTIFFs."""


from pathlib import Path

import xarray as xr
from dagster import (AssetExecutionContext, AssetIn, AssetsDefinition, MetadataValue,
                     MultiToSingleDimensionPartitionMapping, PartitionsDefinition, asset)

from appshot_model.core.export import write_sample_geotiffs
from appshot_model.core.plots import map_grid_png, sample_rows, shown_services
from appshot_model.core.seeds import derive_seed
from appshot_model.model.artefact import ModelArtefact
from assets.metadata import png_metadata
from assets.resources import AppshotSettings, DaskSettings


def build_generation_assets(city_hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``generated_snapshots`` partitioned by city x peak hour."""

    @asset(partitions_def=city_hour_partitions, group_name="generation", io_manager_key="cube_io_manager",
           kinds={"xarray", "geotiff"},
           ins={"trained_model": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("hour")),
                "context_cube": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("city"))})
    def generated_snapshots(context: AssetExecutionContext, settings: AppshotSettings, dask: DaskSettings,
                            trained_model: ModelArtefact, context_cube: xr.DataArray,
                            peak_traffic: xr.DataArray) -> xr.DataArray:
        """Synthetic snapshots [sample, service, y, x] in traffic units from the city's context alone
        (label: synthetic), each also written as a GeoTIFF with one band per service."""
        keys = context.partition_key.keys_by_dimension
        city, hour = keys["city"], keys["hour"]
        seed = derive_seed(settings.seed, "generate", city, hour)
        generated = dask.generate(trained_model, context_cube, settings.n_samples, seed, settings.progress_bars)
        generated.attrs.update(city=city, source_context=context_cube.attrs.get("label", ""))
        tiff_dir = Path(settings.data_dir) / "generated" / city / hour
        tags = {"label": "synthetic", "seed": str(seed), "model_hash": trained_model.model_hash, "city": city,
                "peak_hour": hour, "units": generated.attrs["units"]}
        tiffs = write_sample_geotiffs(generated, tiff_dir, tags)
        shown = shown_services(generated)
        real_mean = peak_traffic.mean(dim="time")
        png = map_grid_png({"real (mean weekday)": [real_mean.sel(service=s).values for s in shown],
                            **sample_rows(generated, shown, label="generated")},
                           shown, title=f"{city}, {hour} peak ({generated.attrs['units']})")
        totals = generated.sum(dim=("service", "y", "x")).values
        context.add_output_metadata({
            "label": "synthetic", "seed": seed, "model_hash": trained_model.model_hash,
            "samples": int(generated.sizes["sample"]), "geotiff_dir": MetadataValue.path(str(tiff_dir)),
            "geotiffs": len(tiffs),
            "city_total_mean": float(totals.mean()), "city_total_real_mean":
                float(peak_traffic.sum(dim=("service", "y", "x")).mean()),
            **png_metadata(png, settings.figures_dir() / "generated" / f"{city}_{hour}.png", "real_vs_generated"),
        })
        return generated

    return [generated_snapshots]
