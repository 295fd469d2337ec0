"""Leave-one-city-out evaluation (AppShot §VI-§VII): scores per held-out city x hour, and a report.

Thin: the fold's attribute selection and normalisation, training and generation of each method and
the metrics all come from :mod:`appshot_model` (``features``, ``normalise``, ``baselines``,
``metrics``, ``evaluation``).
"""

from pathlib import Path

import pandas as pd
import xarray as xr
from dagster import (AllPartitionMapping, AssetExecutionContext, AssetIn, AssetsDefinition, DimensionPartitionMapping,
                     IdentityPartitionMapping, MetadataValue, MultiPartitionMapping, PartitionsDefinition, asset)

from appshot_model.core.io import atomic_path
from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.baselines import Budget, generate_method, method_spec, train_method
from appshot_model.evaluation.folds import fold_inputs
from appshot_model.evaluation.reference import evaluate_city
from appshot_model.evaluation.report import (maps_figure, metrics_figure, results_markdown, results_table,
                                             share_error_figure, stochasticity_figure, write_results)
from assets.common import ALL_AS_DICT, by_city, training_cities
from assets.metadata import png_metadata
from assets.resources import AppshotSettings, EvaluationSettings

#: A held-out city x hour reads the peak traffic of every city at the same hour.
SAME_HOUR_ALL_CITIES = MultiPartitionMapping({
    "city": DimensionPartitionMapping("city", AllPartitionMapping()),
    "hour": DimensionPartitionMapping("hour", IdentityPartitionMapping())})


def build_evaluation_assets(city_hour_partitions: PartitionsDefinition) -> list[AssetsDefinition]:
    """``loco_scores`` (partitioned by held-out city x hour) and the gathered ``evaluation_report``."""
    return [loco_scores_asset(city_hour_partitions), evaluation_report_asset()]


def loco_scores_asset(city_hour_partitions: PartitionsDefinition) -> AssetsDefinition:
    """``loco_scores``: one held-out city x peak hour."""

    @asset(partitions_def=city_hour_partitions, group_name="evaluation", kinds={"pandas"},
           ins={"context_cube": AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT),
                "peak_traffic": AssetIn(partition_mapping=SAME_HOUR_ALL_CITIES, metadata=ALL_AS_DICT)})
    def loco_scores(context: AssetExecutionContext, settings: AppshotSettings, evaluation: EvaluationSettings,
                    context_cube: dict[str, xr.DataArray], peak_traffic: dict[str, xr.DataArray]) -> dict:
        """Hold the partition's city out: fit attribute selection, normalisation and every method on the
        other cities at this hour, generate the held-out city and score it against its real weekday
        snapshots, beside the "Data" reference (split halves of the real snapshots)."""
        keys = context.partition_key.keys_by_dimension
        held_out, hour = keys["city"], keys["hour"]
        contexts, traffic = by_city(context_cube), by_city(peak_traffic)
        train = training_cities(traffic, [held_out])
        attributes, normalisation = fold_inputs(contexts, traffic, train, settings.spearman_threshold)
        methods = [m for m in evaluation.methods if not (method_spec(m).same_as in evaluation.methods)]
        budget = Budget(steps=evaluation.steps)
        generated, seconds = {}, {}
        for method in methods:
            context.log.info(f"{held_out}/{hour}: training {method} on {train}")
            fitted = train_method(method, {c: contexts[c] for c in train}, {c: traffic[c] for c in train},
                                  attributes, normalisation, hour, seed=derive_seed(settings.seed, "loco", held_out, hour),
                                  budget=budget, progress=settings.progress_bars, log=context.log.info)
            generated[method] = generate_method(fitted, contexts[held_out], evaluation.samples,
                                                seed=derive_seed(settings.seed, "loco-generate", held_out, hour))
            seconds[method] = fitted.training_seconds
        real = traffic[held_out].transpose("time", "service", "y", "x").values
        records = evaluate_city(real, generated, held_out, hour, nemd_max_pairs=evaluation.nemd_max_pairs)
        for record in records:
            record["training_seconds"] = seconds.get(record["method"], 0.0)
        services = [str(s) for s in traffic[held_out].service.values]
        title = f"{held_out} held out, {hour} peak"
        figures = Path(settings.figures_dir()) / "evaluation" / f"{held_out}_{hour}"
        table = pd.DataFrame(records).set_index("method")
        context.add_output_metadata({
            "held_out": held_out, "training_cities": MetadataValue.json(train),
            "attributes": len(attributes), "methods": MetadataValue.json(methods),
            "budget_steps": str(evaluation.steps), "samples": evaluation.samples,
            "scores": MetadataValue.md(table.drop(columns=["city", "hour"]).round(4).to_markdown()),
            **png_metadata(maps_figure(real[0], {m: s[0] for m, s in generated.items()}, services,
                                       title=f"{title}: real vs one sample"), figures / "maps.png", "maps"),
            **png_metadata(stochasticity_figure(real, generated, title=title), figures / "stochasticity.png",
                           "stochasticity"),
            **png_metadata(share_error_figure(real, generated, services, title=title), figures / "share_errors.png",
                           "share_errors"),
        })
        return {"held_out": held_out, "hour": hour, "training_cities": train, "attributes": attributes,
                "methods": methods, "steps": evaluation.steps, "samples": evaluation.samples,
                "nemd_max_pairs": evaluation.nemd_max_pairs, "records": records}

    return loco_scores


def evaluation_report_asset() -> AssetsDefinition:
    """``evaluation_report``: every ``loco_scores`` partition materialised so far."""

    @asset(group_name="evaluation", kinds={"pandas"},
           ins={"loco_scores": AssetIn(partition_mapping=AllPartitionMapping(),
                                       metadata={**ALL_AS_DICT, "allow_missing_partitions": True})})
    def evaluation_report(context: AssetExecutionContext, settings: AppshotSettings,
                          loco_scores: dict[str, dict]) -> dict:
        """Table II-like report: methods x metrics per peak hour, mean over the held-out cities scored so
        far, with the Data row; CSV + Markdown under ``<data>/evaluation`` and metric bar charts."""
        if not loco_scores:
            raise ValueError("no loco_scores partition is materialised yet; run the evaluation job first")
        records = [r for part in loco_scores.values() for r in part["records"]]
        table = results_table(records)
        out = Path(settings.data_dir) / "evaluation"
        csv_path, md_path = write_results(table, out / "results.csv", out / "results.md",
                                          title="Leave-one-city-out fidelity on the simulated demo world")
        with atomic_path(out / "per_city.csv") as tmp:
            pd.DataFrame(records).to_csv(tmp, index=False, float_format="%.17g")
        figures = {}
        for hour in dict.fromkeys(table.index.get_level_values("hour")):
            figures.update(png_metadata(metrics_figure(table, hour, title=f"{hour} peak (mean over held-out cities)"),
                                        Path(settings.figures_dir()) / "evaluation" / f"metrics_{hour}.png",
                                        f"metrics_{hour}"))
        context.add_output_metadata({
            "table": MetadataValue.md(results_markdown(table)), "csv": MetadataValue.path(str(csv_path)),
            "markdown": MetadataValue.path(str(md_path)), "partitions": len(loco_scores),
            "held_out_cities": MetadataValue.json(sorted({r["city"] for r in records})), **figures})
        return {"csv": str(csv_path), "markdown": str(md_path),
                "table": table.reset_index().to_dict(orient="records")}

    return evaluation_report
