"""Demo world assets: grid, context cube and hourly traffic cube of each simulated city."""


from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import xarray as xr
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, PartitionsDefinition, asset

from appshot_model.core.cube import check_context, check_traffic
from appshot_model.core.plots import curves_png, map_grid_png
from appshot_model.traffic.demo import DemoCity, simulate_context, simulate_traffic
from appshot_model.traffic.peaks import weekday_mask
from assets.metadata import png_metadata
from assets.resources import AppshotSettings


def build_demo_world_assets(cities: Mapping[str, DemoCity],
                            city_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """Assets of the simulated demo world, one partition per city."""

    @asset(partitions_def=city_partitions, group_name="demo_world", io_manager_key="geoparquet_io_manager",
           kinds={"geopandas"})
    def grid(context: AssetExecutionContext) -> gpd.GeoDataFrame:
        """The city's north-up 250 m grid, one row per cell (GeoParquet)."""
        city = cities[context.partition_key]
        cells = city.grid.to_geodataframe()
        context.add_output_metadata({
            "rows": city.grid.height, "cols": city.grid.width, "crs": city.grid.crs,
            "transform": str(tuple(city.grid.transform)[:6]), "cell_size_m": city.grid.cell_size_m,
        })
        return cells

    @asset(partitions_def=city_partitions, group_name="demo_world", io_manager_key="cube_io_manager",
           deps=[grid], kinds={"xarray"})
    def context_cube(context: AssetExecutionContext, settings: AppshotSettings) -> xr.DataArray:
        """Simulated context: 27 attribute layers [attribute, y, x] (label: simulated)."""
        city = cities[context.partition_key]
        cube = simulate_context(city, seed=settings.seed)
        check_context(cube, f"demo context of {city.name}")
        shown = ["population", "landuse_continuous_urban", "poi_shop", "poi_primary_roads"]
        png = map_grid_png({"context": [cube.sel(attribute=a).values for a in shown]}, shown,
                           title=f"{city.name}: simulated context", shared_scale_per_column=False)
        context.add_output_metadata({
            "label": cube.attrs.get("label", ""), "attributes": len(cube.attribute),
            "shape": str(cube.shape), "layers": describe_layers(cube), "population_total": float(cube.sel(attribute="population").sum()),
            **png_metadata(png, settings.figures_dir() / "context" / f"{city.name}.png", "context_maps"),
        })
        return cube

    @asset(partitions_def=city_partitions, group_name="demo_world", io_manager_key="cube_io_manager",
           kinds={"xarray"})
    def traffic_cube(context: AssetExecutionContext, settings: AppshotSettings,
                     context_cube: xr.DataArray) -> xr.DataArray:
        """Simulated hourly per-service traffic [time, service, y, x] in bit/s (label: simulated)."""
        city = cities[context.partition_key]
        cube = simulate_traffic(city, context_cube, seed=settings.seed, days=settings.days)
        check_traffic(cube, f"demo traffic of {city.name}")
        total = cube.sum(dim=("service", "y", "x")).values
        weekdays = weekday_mask(cube.time.values)
        hours = cube.time.dt.hour.values
        profile = [float(total[weekdays & (hours == h)].mean()) for h in range(24)]
        context.add_output_metadata({
            "label": cube.attrs.get("label", ""), "units": cube.attrs.get("units", ""),
            "hours": int(cube.sizes["time"]), "shape": str(cube.shape),
            "weekday_weekend_ratio": float(total[weekdays].mean() / total[~weekdays].mean()),
            "mean_city_traffic_bit_s": float(np.mean(total)),
            **png_metadata(curves_png({"weekday mean": profile}, f"{city.name}: city traffic by hour (bit/s)",
                                      xlabel="hour of day"),
                           settings.figures_dir() / "traffic_profile" / f"{city.name}.png", "daily_profile"),
        })
        return cube

    return [grid, context_cube, traffic_cube]


def describe_layers(cube: xr.DataArray) -> MetadataValue:
    """Markdown table of per-attribute min / mean / max."""
    lines = ["| attribute | min | mean | max |", "|---|---|---|---|"]
    for name in cube.attribute.values:
        layer = cube.sel(attribute=name).values
        lines.append(f"| {name} | {layer.min():.3g} | {layer.mean():.3g} | {layer.max():.3g} |")
    return MetadataValue.md("\n".join(lines))
