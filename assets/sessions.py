"""Session level (seed 004): generated snapshots -> Parquet session tables, and the slicing and vRAN use cases."""

from pathlib import Path

import xarray as xr
from dagster import (AllPartitionMapping, AssetExecutionContext, AssetIn, AssetsDefinition, Config, MetadataValue,
                     PartitionsDefinition, asset)
from pydantic import Field

from appshot_model.sessions.run import (DEFAULT_DATE, SLICING_COLUMNS, VRAN_COLUMNS, expand_cube, slicing_for_cube,
                                        vran_day, write_rows)
from appshot_model.sessions.slicing import PLAN_REPLICATES, SLICING_CELLS, slicing_png, slicing_table
from assets.metadata import png_metadata
from assets.resources import AppshotSettings


class SessionConfig(Config):
    """Which generated sample becomes sessions, on which day, and where the seed-004 coefficients are."""

    sample: int = Field(default=0, description="Index of the generated snapshot expanded into sessions.")
    date: str = Field(default=DEFAULT_DATE, description="Local date (YYYY-MM-DD) given to the generated peak hour.")
    timezone: str = Field(default="", description="IANA time zone of the city; empty: from the grid centre.")
    coefficients_dir: str = Field(default="", description="Folder of the seed-004 CSVs; empty: the default "
                                                          "($APPSHOT_SESSION_COEFFICIENTS or shared/data).")
    plan_replicates: int = Field(default=PLAN_REPLICATES, description="Planning expansions for slice capacity.")
    max_cells: int | None = Field(default=SLICING_CELLS, description="Cells sized for slice capacity, spread over "
                                                                    "the load ranks (None: all).")
    vran_day: int = Field(default=0, description="Day of the hourly traffic cube used for the vRAN use case.")


def _dir(config: SessionConfig) -> str | None:
    return config.coefficients_dir or None


def build_session_assets(city_hour_partitions: PartitionsDefinition,
                         city_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``session_tables`` and ``slicing_capacity`` (city x hour), ``slicing_capacity_table`` (all of them)
    and ``vran_energy`` (city, on the demo world's simulated hourly cube)."""

    return [*city_hour_session_assets(city_hour_partitions), slicing_capacity_table_asset(),
            vran_energy_asset(city_partitions)]


def city_hour_session_assets(city_hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``session_tables`` and ``slicing_capacity``, one city x peak hour each."""

    @asset(partitions_def=city_hour_partitions, group_name="sessions", kinds={"parquet"})
    def session_tables(context: AssetExecutionContext, config: SessionConfig, settings: AppshotSettings,
                       generated_snapshots: xr.DataArray) -> dict:
        """One generated snapshot (``config.sample``) expanded into transport sessions (seed 004): Parquet
        tables under ``<data_dir>/sessions`` partitioned ``city=/hour=``, with the cell GeoParquet and
        the reconciliation table; checks of shares, volume KS and the volume-duration law."""
        keys = context.partition_key.keys_by_dimension
        city, hour = keys["city"], keys["hour"]
        summary, figures = expand_cube(generated_snapshots, city, Path(settings.data_dir) / "sessions", settings.seed,
                                       index=config.sample, hour=hour, date=config.date,
                                       timezone=config.timezone or None, coefficients_dir=_dir(config),
                                       progress=True, log=context.log.warning)
        checks = summary["checks"]
        metadata = {
            "label": summary["label"], "sessions": summary["sessions"], "rows_per_s": summary["rows_per_s"],
            "sessions_table": MetadataValue.path(summary["paths"]["sessions"]),
            "cells_table": MetadataValue.path(summary["paths"]["cells"]),
            "max_cell_volume_error": summary["max_cell_volume_error"],
            "implied_over_given_volume": summary["implied_over_given_drawn"],
            "max_session_share_error_pp": checks["max_session_share_error_pp"],
            "max_traffic_share_error_pp": checks["max_traffic_share_error_pp"],
            "max_ks_drawn": checks["max_ks_drawn"], "max_ks_written": checks["max_ks_written"],
            "stand_ins": summary["stand_ins"],
        }
        for name, png in figures.items():
            metadata.update(png_metadata(png, settings.figures_dir() / "sessions" / f"{city}_{hour}_{name}.png", name))
        context.add_output_metadata(metadata)
        return summary

    @asset(partitions_def=city_hour_partitions, group_name="sessions", kinds={"pandas"})
    def slicing_capacity(context: AssetExecutionContext, config: SessionConfig, settings: AppshotSettings,
                         generated_snapshots: xr.DataArray, session_tables: dict) -> dict:
        """Seed 004 §6.1 on one city x hour: per cell and service, the 95th percentile of per-minute demand
        planned from session-level models vs the two category-level benchmarks, checked on the
        expanded sessions."""
        result = slicing_for_cube(generated_snapshots, session_tables, settings.seed, index=config.sample,
                                  date=config.date, coefficients_dir=_dir(config),
                                  plan_replicates=config.plan_replicates, max_cells=config.max_cells)
        rows = slicing_table([result])
        key = f"{result['city']}_{result['hour']}"
        context.add_output_metadata({
            **{f"{r['method']}_sla_met": r["sla_met"] for r in rows}, **{f"{r['method']}_std": r["std"] for r in rows},
            **png_metadata(slicing_png(rows, f"{key}:"), settings.figures_dir() / "sessions" / f"{key}_slicing.png",
                           "slicing")})
        return result

    return [session_tables, slicing_capacity]


def slicing_capacity_table_asset() -> AssetsDefinition:
    """``slicing_capacity_table``: every ``slicing_capacity`` partition."""

    @asset(group_name="sessions", kinds={"pandas"},
           ins={"slicing_capacity": AssetIn(partition_mapping=AllPartitionMapping(), metadata={"as_dict": True})})
    def slicing_capacity_table(context: AssetExecutionContext, settings: AppshotSettings,
                               slicing_capacity: dict) -> list:
        """Table 2 of seed 004 pooled over every city x hour (``<data_dir>/sessions/slicing_capacity.csv``)."""
        rows = slicing_table([slicing_capacity[k] for k in sorted(slicing_capacity, key=str)])
        path = write_rows(rows, SLICING_COLUMNS, Path(settings.data_dir) / "sessions" / "slicing_capacity.csv")
        context.add_output_metadata({
            "csv": MetadataValue.path(str(path)),
            "table": MetadataValue.md("\n".join(["| method | sla_met | std |", "|---|---|---|"] + [
                f"| {r['method']} | {r['sla_met']:.4f} | {r['std']:.4f} |" for r in rows])),
            **png_metadata(slicing_png(rows, "all cities and hours:"),
                           settings.figures_dir() / "sessions" / "slicing.png", "slicing")})
        return rows

    return slicing_capacity_table


def vran_energy_asset(city_partitions: PartitionsDefinition) -> AssetsDefinition:
    """``vran_energy``: one city."""

    @asset(partitions_def=city_partitions, group_name="sessions", kinds={"pandas"})
    def vran_energy(context: AssetExecutionContext, config: SessionConfig, settings: AppshotSettings,
                    traffic_cube: xr.DataArray) -> list:
        """Seed 004 §6.2 on one day of the city's hourly traffic: server energy and overload with
        session-level vs smooth hourly demand (first-fit decreasing each minute)."""
        city = context.partition_key
        rows, png = vran_day(traffic_cube, city, config.vran_day, settings.seed, config.timezone or None,
                             _dir(config))
        path = write_rows(rows, VRAN_COLUMNS, Path(settings.data_dir) / "sessions" / f"vran_energy_{city}.csv")
        context.add_output_metadata({
            "csv": MetadataValue.path(str(path)),
            **{f"{r['demand']}_energy_kwh": r["energy_kwh"] for r in rows},
            **{f"{r['demand']}_overload_minutes_share": r["overload_minutes_share"] for r in rows},
            **png_metadata(png, settings.figures_dir() / "sessions" / f"{city}_vran.png", "vran")})
        return [{k: r[k] for k in VRAN_COLUMNS} for r in rows]

    return vran_energy
