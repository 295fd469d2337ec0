"""Leave-one-city-out evaluation (AppShot §VI-§VII): scores per held-out city x hour, and a report.

Thin: each ``loco_scores`` partition is one fold of :func:`appshot_model.evaluation.loco.run_loco` (every method x
seed of the fold, on the resource's worker processes) on the world of the asset inputs, so it gives the same rows
as ``appshot evaluate`` for the same world seed and settings.
"""

from pathlib import Path

import pandas as pd
import xarray as xr
from dagster import (AllPartitionMapping, AssetExecutionContext, AssetIn, AssetsDefinition, DimensionPartitionMapping,
                     IdentityPartitionMapping, MetadataValue, MultiPartitionMapping, PartitionsDefinition, asset)

from appshot_model.core.names import PEAK_HOURS
from appshot_model.evaluation.loco import Fold, LocoRun, fold_figures, run_loco, sort_rows, write_loco
from appshot_model.evaluation.report import results_markdown, seed_summary
from appshot_model.evaluation.worlds import ArrayWorld, demo_description
from assets.common import ALL_AS_DICT, by_city
from assets.metadata import png_metadata
from assets.resources import AppshotSettings, EvaluationSettings

#: A held-out city x hour reads the peak traffic of every city at the same hour.
SAME_HOUR_ALL_CITIES = MultiPartitionMapping({
    "city": DimensionPartitionMapping("city", AllPartitionMapping()),
    "hour": DimensionPartitionMapping("hour", IdentityPartitionMapping())})
#: Name of the Dagster deployment's world in the rows (the simulated demo world).
WORLD = "demo"


def build_evaluation_assets(city_hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``loco_scores`` (partitioned by held-out city x hour) and the gathered ``evaluation_report``."""
    return [loco_scores_asset(city_hour_partitions), evaluation_report_asset()]


def loco_scores_asset(city_hour_partitions: PartitionsDefinition) -> AssetsDefinition:
    """``loco_scores``: one held-out city x peak hour, every method x seed."""

    @asset(partitions_def=city_hour_partitions, group_name="evaluation", kinds={"pandas"},
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=SAME_HOUR_ALL_CITIES, metadata=ALL_AS_DICT)})
    def loco_scores(context: AssetExecutionContext, settings: AppshotSettings, evaluation: EvaluationSettings,
                    context_cube: dict[str, xr.DataArray], peak_traffic: dict[str, xr.DataArray]) -> dict:
        """Hold the partition's city out: fit attribute selection and normalisation on the other cities at this
        hour, train every method with every seed on them, generate the held-out city and score it against its
        real weekday snapshots, beside the "Data" reference (split halves of the real snapshots)."""
        keys = context.partition_key.keys_by_dimension
        fold = Fold(keys["city"], keys["hour"])
        contexts = by_city(context_cube)
        peaks = {(city, fold.hour): snapshots for city, snapshots in by_city(peak_traffic).items()}
        world = ArrayWorld(WORLD, contexts, peaks, demo_description(contexts, settings.seed, settings.days))
        run = run_loco(world, evaluation.loco_settings(settings.spearman_threshold), [fold], evaluation.workers,
                       on_progress=lambda p: context.log.info(f"{fold.key}: {p.what} done ({p.done}/{p.total})"))
        reference = run.references[fold]
        figures = Path(settings.figures_dir()) / "evaluation" / f"{fold.held_out}_{fold.hour}"
        shown = run.rows.drop(columns=["world", "held_out", "hour"]).round(4)
        context.add_output_metadata({
            "held_out": fold.held_out, "training_cities": MetadataValue.json(reference.training_cities),
            "attributes": len(reference.attributes), "methods": MetadataValue.json(list(run.record["settings"]["methods"])),
            "seeds": MetadataValue.json(list(run.record["settings"]["seeds"])),
            "settings": MetadataValue.json(run.record["settings"]), "code": MetadataValue.json(run.record["code"]),
            "workers": run.record["workers"], "wall_seconds": run.record["wall_seconds"],
            "scores": MetadataValue.md(shown.to_markdown(index=False)),
            **{k: v for name, png in fold_figures(world, fold, run.digests[fold]).items()
               for k, v in png_metadata(png, figures / f"{name}.png", name).items()},
        })
        return {"held_out": fold.held_out, "hour": fold.hour, "training_cities": reference.training_cities,
                "attributes": reference.attributes, "record": run.record, "rows": run.rows.to_dict("records")}

    return loco_scores


def evaluation_report_asset() -> AssetsDefinition:
    """``evaluation_report``: every ``loco_scores`` partition materialised so far."""

    @asset(group_name="evaluation", kinds={"pandas"},
           ins={"loco_scores": AssetIn(partition_mapping=AllPartitionMapping(),
                                       metadata={**ALL_AS_DICT, "allow_missing_partitions": True})})
    def evaluation_report(context: AssetExecutionContext, settings: AppshotSettings,
                          loco_scores: dict[str, dict]) -> dict:
        """Table II-like report: methods x metrics per peak hour, mean over the held-out cities scored so far and
        over seeds (± spread over seeds), with the Data row; the per-row scores, details, run record and summary
        under ``<data>/evaluation/demo_loco*`` and metric bar charts."""
        if not loco_scores:
            raise ValueError("no loco_scores partition is materialised yet; run the evaluation job first")
        parts = list(loco_scores.values())
        rows = pd.DataFrame([row for part in parts for row in part["rows"]])
        rows["seed"] = rows["seed"].astype("Int64")
        present = set(rows["hour"])
        rows = sort_rows(rows, [h for h in PEAK_HOURS if h in present] + sorted(present - set(PEAK_HOURS)))
        versions = sorted({part["record"]["code"]["appshot_model_sha256"] for part in parts})
        record = {**parts[0]["record"], "folds": [f"{p['held_out']}|{p['hour']}" for p in parts],
                  "wall_seconds": sum(p["record"]["wall_seconds"] for p in parts),
                  "task_cpu_seconds": sum(p["record"]["task_cpu_seconds"] for p in parts),
                  "code_versions": versions}
        if len(versions) > 1:
            context.log.warning(f"the loco_scores partitions come from {len(versions)} code versions: {versions}")
        paths = write_loco(LocoRun(WORLD, rows, {}, {}, record), Path(settings.data_dir) / "evaluation" / "demo_loco.csv")
        summary = seed_summary(rows)
        context.add_output_metadata({
            "table": MetadataValue.md(results_markdown(summary)), "csv": MetadataValue.path(str(paths["scores"])),
            "markdown": MetadataValue.path(str(paths["summary"])), "partitions": len(parts),
            "code_versions": MetadataValue.json(versions),
            "held_out_cities": MetadataValue.json(sorted(set(rows["held_out"]))),
            **{k: v for png in sorted(paths["figures"].glob("metrics_*.png"))
               for k, v in png_metadata(png.read_bytes(), png, png.stem).items()}})
        return {"csv": str(paths["scores"]), "markdown": str(paths["summary"]),
                "table": summary.reset_index().astype(object).where(summary.reset_index().notna(), None)
                .to_dict(orient="records")}  # NaN (e.g. the Data row's spread over seeds) as JSON null

    return evaluation_report
