"""Attribute selection (Spearman) and normalisation constants, from training cities only."""


import pandas as pd
import xarray as xr
from dagster import (AllPartitionMapping, AssetExecutionContext, AssetIn, AssetsDefinition, MetadataValue,
                     MultiToSingleDimensionPartitionMapping, PartitionsDefinition, asset)

from appshot_model.context.selection import cube_scc_table, select_attributes
from appshot_model.core.names import ATTRIBUTES, SERVICES, check_names
from appshot_model.core.plots import bar_png
from appshot_model.model.normalise import fit_normalisation_to_cubes
from assets.common import ALL_AS_DICT, by_city, training_cities, training_days
from assets.metadata import png_metadata
from assets.resources import AppshotSettings


def build_feature_assets(hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``attribute_selection`` (one for the deployment) and ``normalisation`` (per peak hour)."""

    @asset(group_name="features", kinds={"pandas"},
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT)})
    def attribute_selection(context: AssetExecutionContext, settings: AppshotSettings,
                            context_cube: dict[str, xr.DataArray], peak_traffic: dict[str, xr.DataArray]) -> dict:
        """Attributes whose |Spearman| with the weekday peak-hour traffic maps (member dates), averaged over
        training cities, services and peak hours, reaches the threshold (AppShot Table I)."""
        contexts = by_city(context_cube)
        cities = training_cities(contexts, settings.held_out_cities)
        attributes = check_names([str(a) for a in next(iter(contexts.values())).attribute.values], ATTRIBUTES,
                                 "attribute", "context_cube")
        check_names([str(s) for s in next(iter(peak_traffic.values())).service.values], SERVICES, "service",
                    "peak_traffic")
        by_hour: dict[str, dict[str, xr.DataArray]] = {}
        for key, snapshots in peak_traffic.items():
            city = key.keys_by_dimension["city"]
            if city in cities:
                by_hour.setdefault(key.keys_by_dimension["hour"], {})[city] = training_days(
                    snapshots, city, settings.seed, settings.privacy_holdout_fraction)
        table_parts = [cube_scc_table(contexts, snapshots, cities, attributes).assign(hour=hour)
                       .set_index("hour", append=True) for hour, snapshots in by_hour.items()]
        table = pd.concat(table_parts)
        selected, average = select_attributes(table, settings.spearman_threshold)
        summary = pd.DataFrame({"average_scc": average, "average_abs_scc": table.abs().mean(),
                                "selected": [a in selected for a in average.index]})
        context.add_output_metadata({
            "selected": len(selected), "dropped": MetadataValue.json([a for a in attributes if a not in selected]),
            "threshold": settings.spearman_threshold, "training_cities": MetadataValue.json(cities),
            "scc_table": MetadataValue.md(summary.round(3).to_markdown()),
            **png_metadata(bar_png(average.to_dict(), "average Spearman correlation with traffic", "SCC"),
                           settings.figures_dir() / "attribute_selection.png", "scc_bars"),
        })
        return {"attributes": selected, "threshold": settings.spearman_threshold, "training_cities": cities,
                "average_scc": {k: float(v) for k, v in average.items()},
                "scc_table": table.reset_index().to_dict(orient="records")}

    @asset(partitions_def=hour_partitions, group_name="features", kinds={"numpy"},
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("hour"),
                                        metadata=ALL_AS_DICT)})
    def normalisation(context: AssetExecutionContext, settings: AppshotSettings, attribute_selection: dict,
                      context_cube: dict[str, xr.DataArray], peak_traffic: dict[str, xr.DataArray]) -> dict:
        """Per-service global per-pixel maximum (+ epsilon) and per-attribute context scaling,
        fitted on the training cities' weekday snapshots of this peak hour (member dates only)."""
        contexts, traffic = by_city(context_cube), by_city(peak_traffic)
        cities = training_cities(traffic, settings.held_out_cities)
        members = {c: training_days(traffic[c], c, settings.seed, settings.privacy_holdout_fraction) for c in cities}
        constants = fit_normalisation_to_cubes(contexts, members, cities, attribute_selection["attributes"]).to_dict()
        context.add_output_metadata({"training_cities": MetadataValue.json(cities),
                                     "constants": MetadataValue.json(constants)})
        return {**constants, "hour": context.partition_key, "training_cities": cities}

    return [attribute_selection, normalisation]
