"""The DoppelGANger-style per-cell series model as assets: ``dg_model`` (trained once on cells of the training
cities, with the naive weekly-profile baseline fitted on the same cells) and ``dg_series`` (one city's synthetic
hourly series, AC-L1 of DG, naive and the Data halves against its real series attached)."""


import xarray as xr
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, PartitionsDefinition, asset

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.plots import curves_png
from appshot_model.evaluation.temporal import DEFAULT_MAX_LAG, ac_l1, acf_png, data_ac_l1
from appshot_model.series.data import cell_series
from appshot_model.series.options import DGOptions
from appshot_model.series.trained import SeriesModels, generate_series_cube, pool_cells, train_series_models
from assets.common import by_city, every_city_cube, training_cities
from assets.metadata import png_metadata
from assets.resources import AppshotSettings


def build_dg_assets(city_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``dg_model`` (one) and ``dg_series`` (one per city)."""

    @asset(group_name="hourly", io_manager_key="series_model_io_manager", kinds={"pytorch"},
           ins=every_city_cube())
    def dg_model(context: AssetExecutionContext, settings: AppshotSettings, attribute_selection: dict,
                 context_cube: dict[str, xr.DataArray], traffic_cube: dict[str, xr.DataArray]) -> SeriesModels:
        """DG-style generator of per-cell hourly per-service series conditioned on the cell's context (the
        attribute selection), trained on ``dg_train_cells`` cells drawn from the training cities over the first
        ``dg_days`` days of their hourly cubes (``dg_steps`` updates, DGOptions otherwise); the naive baseline
        (nearest training cell's weekly profile + i.i.d. noise) is fitted on the same cells."""
        contexts, traffic = by_city(context_cube), by_city(traffic_cube)
        cities = training_cities(traffic, settings.held_out_cities)
        hours = 24 * settings.dg_days
        short = {c: traffic[c].sizes["time"] for c in cities if traffic[c].sizes["time"] < hours}
        if short:
            raise AppshotInputError(f"dg_days = {settings.dg_days} needs {hours} hours per training city; "
                                    f"{short} hold fewer")
        attributes = list(attribute_selection["attributes"])
        cells = pool_cells({c: cell_series(contexts[c], traffic[c].isel(time=slice(0, hours)), attributes=attributes)
                            for c in cities}, settings.dg_train_cells, settings.seed)
        options = DGOptions() if settings.dg_steps is None else DGOptions(steps=settings.dg_steps)
        context.log.info(f"training DG on {cells.n_cells} cells of {cities} x {hours} h x {len(cells.services)} "
                         f"services, {options.steps} steps")
        models = train_series_models(cells, options, settings.seed, info={
            "training_cities": cities, "cells": cells.n_cells, "hours": hours, "first_hour": str(cells.times[0]),
            "units": str(traffic[cities[0]].attrs.get("units", "bit/s")), "seed": settings.seed,
            "label": "synthetic-data generator trained on simulated (demo world) traffic"})
        losses = {k: models.dg.history[k] for k in ("critic", "generator")}
        validation = models.dg.history["validation"]
        context.add_output_metadata({
            "training_cities": MetadataValue.json(cities), "cells": cells.n_cells, "hours": hours,
            "steps": options.steps, "training_seconds": round(models.dg.seconds, 1),
            "validation_acl1": MetadataValue.json([round(float(v), 3) for v in validation]),
            **png_metadata(curves_png(losses, "DG training losses (every 10 steps)"),
                           settings.figures_dir() / "hourly" / "dg_training.png", "loss_curves"),
        })
        return models

    @asset(partitions_def=city_partitions, group_name="hourly", io_manager_key="cube_io_manager", kinds={"xarray"})
    def dg_series(context: AssetExecutionContext, settings: AppshotSettings, dg_model: SeriesModels,
                  context_cube: xr.DataArray, traffic_cube: xr.DataArray) -> xr.DataArray:
        """DG's synthetic hourly per-service series [time, service, y, x] of every cell of the city over the first
        ``series_days`` days of its real cube; AC-L1 of the total traffic for DG, the naive baseline and the Data
        halves (two halves of the real days) attached, over lags 1 .. min(168 h, half the series - 1), with the mean
        autocorrelation curves."""
        city = context.partition_key
        real = traffic_cube.isel(time=slice(0, 24 * settings.series_days)).sel(service=dg_model.services)
        series = generate_series_cube(dg_model, context_cube, real.time.values, settings.seed)
        naive = generate_series_cube(dg_model, context_cube, real.time.values, settings.seed, method="naive")
        series.attrs["city"] = city
        totals = {"real": real.sum("service").values, "DG": series.sum("service").values,
                  "naive": naive.sum("service").values}
        half = real.sizes["time"] // 2 // 24 * 24  # the Data halves' length: every score uses lags < half
        lags = min(DEFAULT_MAX_LAG, (half if half else real.sizes["time"]) - 1)
        scores = {name: round(ac_l1(totals["real"], totals[name], lags), 3) for name in ("DG", "naive")}
        if half:
            scores["data"] = round(data_ac_l1(totals["real"], lags), 3)
        series.attrs.update({f"acl1_{'model' if k == 'DG' else k}": v for k, v in scores.items()})
        trained_on = city in dg_model.info.get("training_cities", [])
        context.log.info(f"{city}: AC-L1 of total traffic {scores} ({'a training' if trained_on else 'a held-out'} "
                         f"city)")
        context.add_output_metadata({
            "hours": int(series.sizes["time"]), "max_lag_h": lags, "label": series.attrs["label"],
            "training_city": trained_on,
            "acl1_total": MetadataValue.json(scores),
            **png_metadata(acf_png(totals, f"{city}: mean autocorrelation of total traffic", lags),
                           settings.figures_dir() / "hourly" / f"{city}_dg_acf.png", "autocorrelation"),
        })
        return series

    return [dg_model, dg_series]
