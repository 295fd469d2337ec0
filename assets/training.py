"""Training: one AppShot model per peak hour, from the training cities' weekday snapshots."""


import time

import xarray as xr
from dagster import (AllPartitionMapping, AssetExecutionContext, AssetIn, AssetsDefinition, MetadataValue,
                     MultiToSingleDimensionPartitionMapping, PartitionsDefinition, RetryPolicy, asset)

from appshot_model.core.plots import curves_png
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.fit import load_run_config, train_peak_hour_model
from assets.common import ALL_AS_DICT, by_city, training_cities, training_days
from assets.metadata import png_metadata
from assets.resources import AppshotSettings


def build_training_assets(hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``trained_model`` partitioned by peak hour."""

    @asset(partitions_def=hour_partitions, group_name="training", io_manager_key="model_io_manager",
           kinds={"pytorch"}, retry_policy=RetryPolicy(max_retries=2, delay=5),
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("hour"),
                                        metadata=ALL_AS_DICT)})
    def trained_model(context: AssetExecutionContext, settings: AppshotSettings, attribute_selection: dict,
                      normalisation: dict, context_cube: dict[str, xr.DataArray],
                      peak_traffic: dict[str, xr.DataArray]) -> ModelArtefact:
        """The AppShot generator (plus its config, attributes, services, normalisation and the hash of
        its training inputs) for this peak hour, trained on the member dates of each training city (the
        other dates are held out for the privacy gate); loadable without Dagster. Checkpointed every
        ``checkpoint_every`` steps under ``<data>/checkpoints/trained_model``: a retried or re-run
        materialisation of the same inputs resumes from the last checkpoint."""
        hour = context.partition_key
        contexts = by_city(context_cube)
        traffic = {c: training_days(t, c, settings.seed, settings.privacy_holdout_fraction)
                   for c, t in by_city(peak_traffic).items()}
        cities = training_cities(traffic, settings.held_out_cities)
        model_cfg, train_cfg = load_run_config(settings.config_file, seed=settings.seed)
        started = time.perf_counter()
        artefact = train_peak_hour_model(
            {c: contexts[c] for c in cities}, {c: traffic[c] for c in cities}, attribute_selection["attributes"],
            normalisation, model_cfg, train_cfg, hour=hour, progress=settings.progress_bars, log=context.log.info,
            checkpoint_dir=settings.checkpoints_dir() / "trained_model", checkpoint_every=settings.checkpoint_every)
        seconds = time.perf_counter() - started
        history = artefact.history
        context.add_output_metadata({
            "model_hash": artefact.model_hash, "training_inputs_hash": artefact.training_inputs_hash,
            "training_cities": MetadataValue.json(cities), "steps": train_cfg.steps,
            "batch_size": train_cfg.batch_size, "training_seconds": round(seconds, 1),
            "tiles_per_second": round(train_cfg.steps * train_cfg.batch_size / seconds, 1),
            "final_losses": MetadataValue.json({k: float(v[-1]) for k, v in history.items() if len(v)}),
            "model_config": MetadataValue.json(model_cfg.model_dump()),
            "train_config": MetadataValue.json(train_cfg.model_dump()),
            **png_metadata(curves_png(history, f"AppShot training losses ({hour})"),
                           settings.figures_dir() / "training" / f"{hour}.png", "loss_curves"),
        })
        return artefact

    return [trained_model]
