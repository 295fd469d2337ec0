"""Attribute selection (Spearman) and normalisation constants, from training cities only."""


import pandas as pd
import xarray as xr
from dagster import (AllPartitionMapping, AssetExecutionContext, AssetIn, AssetsDefinition, MetadataValue,
                     MultiToSingleDimensionPartitionMapping, PartitionsDefinition, asset)

from appshot_model.context.selection import select_attributes, spearman_table
from appshot_model.core.names import ATTRIBUTES, SERVICES, check_names
from appshot_model.model.normalise import fit_normalisation
from appshot_model.core.plots import bar_png
from assets.common import by_city, training_cities, training_days
from assets.metadata import png_metadata
from assets.resources import AppshotSettings

_ALL_AS_DICT = {"as_dict": True}


def build_feature_assets(hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``attribute_selection`` (one for the deployment) and ``normalisation`` (per peak hour)."""

    @asset(group_name="features", kinds={"pandas"},
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=_ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=AllPartitionMapping(), metadata=_ALL_AS_DICT)})
    def attribute_selection(context: AssetExecutionContext, settings: AppshotSettings,
                            context_cube: dict[str, xr.DataArray], peak_traffic: dict[str, xr.DataArray]) -> dict:
        """Attributes whose |Spearman| with the weekday peak-hour traffic maps (member dates), averaged over
        training cities, services and peak hours, reaches the threshold (AppShot Table I)."""
        contexts = by_city(context_cube)
        cities = training_cities(contexts, settings.held_out_cities)
        attributes = check_names([str(a) for a in next(iter(contexts.values())).attribute.values], ATTRIBUTES,
                                 "attribute", "context_cube")
        services = check_names([str(s) for s in next(iter(peak_traffic.values())).service.values], SERVICES,
                               "service", "peak_traffic")
        table_parts = []
        for key, snapshots in peak_traffic.items():
            city = key.keys_by_dimension["city"]
            if city not in cities:
                continue
            members = training_days(snapshots, city, settings.seed, settings.privacy_holdout_fraction)
            mean_map = members.mean(dim="time").transpose("service", "y", "x").values
            part = spearman_table({city: contexts[city].sel(attribute=attributes).values}, {city: mean_map},
                                  attributes, services)
            table_parts.append(part.assign(hour=key.keys_by_dimension["hour"]).set_index("hour", append=True))
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
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=_ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("hour"),
                                        metadata=_ALL_AS_DICT)})
    def normalisation(context: AssetExecutionContext, settings: AppshotSettings, attribute_selection: dict,
                      context_cube: dict[str, xr.DataArray], peak_traffic: dict[str, xr.DataArray]) -> dict:
        """Per-service global per-pixel maximum (+ epsilon) and per-attribute context scaling,
        fitted on the training cities' weekday snapshots of this peak hour (member dates only)."""
        contexts, traffic = by_city(context_cube), by_city(peak_traffic)
        cities = training_cities(traffic, settings.held_out_cities)
        attributes = attribute_selection["attributes"]
        services = [str(s) for s in traffic[cities[0]].service.values]
        fitted = fit_normalisation(
            [training_days(traffic[c], c, settings.seed, settings.privacy_holdout_fraction)
             .transpose("time", "service", "y", "x").values for c in cities],
            [contexts[c].sel(attribute=attributes).values for c in cities], services, attributes)
        constants = fitted.to_dict()
        context.add_output_metadata({"training_cities": MetadataValue.json(cities),
                                     "constants": MetadataValue.json(constants)})
        return {**constants, "hour": context.partition_key, "training_cities": cities}

    return [attribute_selection, normalisation]
