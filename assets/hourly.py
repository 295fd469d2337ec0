"""Hourly AppShot: one hour-conditioned model for all 24 hours, each city's stitched hourly series, and the
slicing efficiency E(p) of the series against the city's real (simulated) traffic."""


import time

import numpy as np
import xarray as xr
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, PartitionsDefinition, asset

from appshot_model.core.plots import curves_png
from appshot_model.evaluation.temporal import DEFAULT_MAX_LAG, ac_l1, acf_png, nemd_histogram_png, per_hour_nemds
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.fit import load_run_config
from appshot_model.model.hours import context_attributes, train_hour_conditioned_model
from appshot_model.series.stitched import DEFAULT_RHO, generate_hourly_series
from appshot_model.usecases.slicing import PERIODS_H, efficiency_png, efficiency_table
from assets.common import by_city, every_city_cube, training_cities, training_days
from assets.metadata import png_metadata
from assets.resources import AppshotSettings


def _per_level_bin(artefact: ModelArtefact, key: str) -> MetadataValue:
    """A series calibration entry ``[bins, S]`` as its mean over services per level bin (None: no calibration)."""
    calibration = artefact.series_calibration
    return MetadataValue.json(None if calibration is None else np.mean(calibration[key], axis=1).round(3).tolist())


def build_hourly_assets(city_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``hourly_model`` (one, all hours), ``hourly_series`` and ``series_slicing`` (one per city)."""

    @asset(group_name="hourly", io_manager_key="model_io_manager", kinds={"pytorch"},
           ins=every_city_cube())
    def hourly_model(context: AssetExecutionContext, settings: AppshotSettings, attribute_selection: dict,
                     context_cube: dict[str, xr.DataArray], traffic_cube: dict[str, xr.DataArray]) -> ModelArtefact:
        """One AppShot model for every hour of day, weekday and weekend, conditioned on the hour through
        context channels (sin/cos of the hour, weekend flag), trained on the member dates of each training city's
        hourly cube (the run config's budget). Chosen over 24 per-hour models by measurement (docs/hourly.md)."""
        contexts, traffic = by_city(context_cube), by_city(traffic_cube)
        cities = training_cities(traffic, settings.held_out_cities)
        model_cfg, train_cfg = load_run_config(settings.config_file, seed=settings.seed)
        started = time.perf_counter()
        artefact = train_hour_conditioned_model(
            {c: contexts[c] for c in cities},
            {c: training_days(traffic[c], c, settings.seed, settings.privacy_holdout_fraction) for c in cities},
            attribute_selection["attributes"], model_cfg, train_cfg, log=context.log.info)
        seconds = time.perf_counter() - started
        context.add_output_metadata({
            "model_hash": artefact.model_hash, "training_cities": MetadataValue.json(cities),
            "training_entries": len(artefact.training_cities), "steps": train_cfg.steps,
            "training_seconds": round(seconds, 1),
            "hour_level_shift_logits": MetadataValue.json(
                None if artefact.hour_level_shift is None else
                [round(float(np.min(artefact.hour_level_shift)), 3), round(float(np.max(artefact.hour_level_shift)), 3)]),
            **{f"{key}_per_level_bin": _per_level_bin(artefact, key)
               for key in ("residual_cv", "day_share", "day_persistence")},
            "series_profiles": "none" if artefact.series_calibration is None else
            "hour of week" if artefact.series_calibration["weekly"] else "hour of day x day type",
            "series_context_neighbours": int((artefact.series_calibration or {}).get("neighbours", 0)),
            "series_reference_cells": len((artefact.series_reference or {}).get("context", [])),
            **png_metadata(curves_png(artefact.history, "Hour-conditioned AppShot training losses"),
                           settings.figures_dir() / "hourly" / "training.png", "loss_curves"),
        })
        return artefact

    @asset(partitions_def=city_partitions, group_name="hourly", io_manager_key="cube_io_manager", kinds={"xarray"})
    def hourly_series(context: AssetExecutionContext, settings: AppshotSettings, hourly_model: ModelArtefact,
                      context_cube: xr.DataArray, traffic_cube: xr.DataArray) -> xr.DataArray:
        """Synthetic hourly per-service traffic [time, service, y, x] of the city over the first ``series_days``
        days of its real cube, noise correlated from hour to hour (rho ``series_rho``); AC-L1, the mean
        autocorrelation and the per-hour NEMD histogram (``series_nemd_hours``; Data = the real halves) against the
        real series attached."""
        city = context.partition_key
        real = traffic_cube.isel(time=slice(0, 24 * settings.series_days))
        rho = DEFAULT_RHO if settings.series_rho is None else settings.series_rho
        series = generate_hourly_series(hourly_model, context_cube.sel(attribute=context_attributes(hourly_model)),
                                        real.time.values, settings.seed, rho)
        series.attrs["city"] = city
        totals = {"real": real.sum("service").values, "synthetic": series.sum("service").values}
        lags = min(DEFAULT_MAX_LAG, real.sizes["time"] - 1)
        profile = {k: v.sum(axis=(1, 2)).reshape(-1, 24).mean(axis=0).tolist() for k, v in totals.items()}
        nemd_figure = {}
        if settings.series_nemd_hours > 0 and real.sizes["time"] >= 48:
            nemds = per_hour_nemds({"real": totals["real"], "AppShot": totals["synthetic"]},
                                   settings.series_nemd_hours, method="coarse")
            nemd_figure = {
                "nemd_per_hour_median": MetadataValue.json({k: round(float(np.nanmedian(v)), 4)
                                                            for k, v in nemds.items()}),
                **png_metadata(nemd_histogram_png(nemds, f"{city}: per-hour NEMD of total traffic (coarse, "
                                                         f"{len(nemds['AppShot'])} hours)"),
                               settings.figures_dir() / "hourly" / f"{city}_nemd_per_hour.png", "nemd_per_hour")}
        series.attrs["acl1_model"] = round(ac_l1(totals["real"], totals["synthetic"], lags), 3)
        context.add_output_metadata({
            "hours": int(series.sizes["time"]), "noise_rho": rho, "label": series.attrs["label"],
            "series_calibration": series.attrs["series_calibration"], "acl1_total": series.attrs["acl1_model"],
            **png_metadata(acf_png(totals, f"{city}: mean autocorrelation of total traffic", lags),
                           settings.figures_dir() / "hourly" / f"{city}_acf.png", "autocorrelation"),
            **png_metadata(curves_png(profile, f"{city}: mean total traffic by hour (bit/s)", xlabel="hour of day"),
                           settings.figures_dir() / "hourly" / f"{city}_profile.png", "daily_profile"),
            **nemd_figure,
        })
        return series

    @asset(partitions_def=city_partitions, group_name="hourly", kinds={"pandas"})
    def series_slicing(context: AssetExecutionContext, settings: AppshotSettings, hourly_series: xr.DataArray,
                       traffic_cube: xr.DataArray) -> list[dict]:
        """Radio-slicing multiplexing efficiency E(p) (seed 000 §VIII) of the city's synthetic hourly series and
        of its real traffic over the same hours, per coverage p and reconfiguration period, with the relative
        error; the E(p) curves attached."""
        city = context.partition_key
        real = traffic_cube.sel(time=hourly_series.time).transpose("time", "service", "y", "x").values
        table = efficiency_table(real, hourly_series.transpose("time", "service", "y", "x").values,
                                 periods_h=[p for p in PERIODS_H if p <= real.shape[0]])
        rows = [{k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in row.items()}
                for row in table.to_dict("records")]
        context.add_output_metadata({
            "max_rel_error": float(table.rel_error.max()), "mean_rel_error": float(table.rel_error.mean()),
            "table": MetadataValue.json(rows),
            **png_metadata(efficiency_png(table, f"{city}: E(p), real vs synthetic hourly series"),
                           settings.figures_dir() / "hourly" / f"{city}_slicing.png", "efficiency"),
        })
        return rows

    return [hourly_model, hourly_series, series_slicing]
