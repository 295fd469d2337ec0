"""Peak-hour traffic: the weekday snapshots of one city at one hour (a peak or an hour of day 00-23)."""


import xarray as xr
from dagster import (AssetExecutionContext, AssetIn, AssetsDefinition, MultiToSingleDimensionPartitionMapping,
                     PartitionsDefinition, asset)

from appshot_model.model.hours import hour_partition_snapshots


def build_traffic_assets(city_hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``peak_traffic`` partitioned by city x hour, read from the city's hourly traffic cube."""

    @asset(partitions_def=city_hour_partitions, group_name="traffic", io_manager_key="cube_io_manager",
           ins={"traffic_cube": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("city"))},
           kinds={"xarray"})
    def peak_traffic(context: AssetExecutionContext, traffic_cube: xr.DataArray) -> xr.DataArray:
        """Weekday snapshots [time, service, y, x] in the one-hour window of the partition's hour."""
        hour = context.partition_key.keys_by_dimension["hour"]
        snapshots = hour_partition_snapshots(traffic_cube, hour)
        totals = snapshots.sum(dim=("time", "y", "x"))
        shares = (totals / totals.sum()).values
        context.add_output_metadata({
            "snapshots": int(snapshots.sizes["time"]), "label": snapshots.attrs.get("label", ""),
            "service_shares_percent": {str(s): round(100 * float(v), 3)
                                       for s, v in zip(snapshots.service.values, shares, strict=True)},
        })
        return snapshots

    return [peak_traffic]
