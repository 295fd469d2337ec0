"""Releases as Dagster assets: one verified release per city x peak hour and a gathered one.

Thin: the work is done by :mod:`appshot_model.release`; these assets locate the run's files,
publish, verify and attach the release path, sizes, checksums and a preview PNG.

Where things go (``settings.data_dir`` = ``$APPSHOT_DATA_DIR`` or ``./data``):
- per city x hour: ``<data>/releases/parts/<city>/<hour>/<release_id>/``;
- gathered (every generated city x hour of the run): ``<data>/releases/<release_id>/``.
"""


from pathlib import Path

import xarray as xr
from dagster import (AssetDep, AssetExecutionContext, AssetIn, AssetsDefinition, MetadataValue,
                     MultiToSingleDimensionPartitionMapping, PartitionsDefinition, asset)

from appshot_model.core.plots import map_grid_png, sample_rows, shown_services
from appshot_model.release import PublishResult, ReleasePart
from appshot_model.release import build as release_build
from appshot_model.release import publish_release, verify_release
from appshot_model.release.build import parts_from_run_dir, series_from_run_dir, training_label
from assets.common import OPTIONAL_INPUT
from assets.metadata import png_metadata
from assets.privacy import audit_of_part
from assets.resources import AppshotSettings


def release_metadata(result: PublishResult, verified: bool) -> dict[str, MetadataValue]:
    """Path, id, sizes and per-file checksums of a publication."""
    files = result.manifest["files"]
    lines = ["| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {name} | {entry['bytes']} | `{entry['sha256']}` |" for name, entry in sorted(files.items())]
    return {
        "release_path": MetadataValue.path(str(result.path)),
        "release_id": MetadataValue.text(result.release_id),
        "status": MetadataValue.text(result.status),
        "verified": MetadataValue.bool(verified),
        "files": MetadataValue.int(len(files)),
        "total_bytes": MetadataValue.int(sum(e["bytes"] for e in files.values())),
        "content_sha256": MetadataValue.text(result.manifest["content_sha256"]),
        "checksums": MetadataValue.md("\n".join(lines)),
        "created": MetadataValue.text(str(result.manifest.get("created", ""))),
    }


def preview_png(snapshots: xr.DataArray, title: str) -> bytes:
    """Sample 0 (and 1 when present) of up to four services."""
    services = shown_services(snapshots)
    return map_grid_png(sample_rows(snapshots, services), services, title=title)


def _verify(result: PublishResult) -> bool:
    """Manifest/format check plus regeneration when the model code is importable."""
    try:
        import appshot_model.model.generate  # noqa: F401
        regenerate = True
    except ImportError:
        regenerate = False
    report = verify_release(result.path, regenerate=regenerate)
    if not report.ok:
        raise RuntimeError(f"release {result.path} failed verification: {report.problems}")
    return True


def run_folder(settings: AppshotSettings, assets_dir: str | None) -> Path:
    """The IO managers' base path: ``assets_dir``, default ``<data_dir>/assets``."""
    return Path(assets_dir) if assets_dir else Path(settings.data_dir) / "assets"


def model_label(model_dir: Path) -> str:
    """What the model in ``model_dir`` was trained on ("" without a model or the model code)."""
    if not model_dir.is_dir():
        return ""
    try:
        return training_label(release_build.load_model(model_dir))
    except ImportError:
        return ""


def build_release_assets(city_hour_partitions: PartitionsDefinition,
                         assets_dir: str | None = None) -> list[AssetsDefinition]:
    """``city_hour_release`` (partitioned like generation) and the gathered ``release``.

    ``assets_dir`` is the IO managers' base path (default ``<data_dir>/assets``); model folders
    are read from ``<assets_dir>/trained_model/<hour>``."""
    return [city_hour_release_asset(city_hour_partitions, assets_dir), release_asset(assets_dir)]


def city_hour_release_asset(city_hour_partitions: PartitionsDefinition, assets_dir: str | None) -> AssetsDefinition:
    """``city_hour_release``: one city x peak hour."""

    @asset(partitions_def=city_hour_partitions, group_name="release", kinds={"stac", "geotiff", "netcdf"},
           ins={"generated_snapshots": AssetIn(),
                "context_cube": AssetIn(partition_mapping=MultiToSingleDimensionPartitionMapping("city")),
                "privacy_audit": AssetIn()},
           deps=[AssetDep("trained_model", partition_mapping=MultiToSingleDimensionPartitionMapping("hour"))])
    def city_hour_release(context: AssetExecutionContext, settings: AppshotSettings,
                          generated_snapshots: xr.DataArray, context_cube: xr.DataArray, privacy_audit: list) -> dict:
        """A verified release of one city x peak hour: COGs, CF NetCDF, grid, STAC, card, manifest; refused
        unless the privacy audit judged these snapshots and did not block them."""
        keys = context.partition_key.keys_by_dimension
        city, hour = keys["city"], keys["hour"]
        privacy = audit_of_part(privacy_audit, city, hour, str(generated_snapshots.attrs["model_hash"]),
                                int(generated_snapshots.attrs["seed"]))
        model_dir = run_folder(settings, assets_dir) / "trained_model" / hour
        label = model_label(model_dir)
        part = ReleasePart(city=city, hour=hour, snapshots=generated_snapshots, context=context_cube,
                           model_dir=model_dir if model_dir.is_dir() else None, training_label=label, privacy=privacy,
                           context_sources=[{"name": f"context cube of {city}",
                                             "licence": str(context_cube.attrs.get("label", "not recorded"))}])
        result = publish_release([part], Path(settings.data_dir) / "releases" / "parts" / city / hour)
        verified = _verify(result)
        png = preview_png(generated_snapshots, f"{city}, {hour}: synthetic ({generated_snapshots.attrs['units']})")
        context.add_output_metadata({
            **release_metadata(result, verified),
            **png_metadata(png, settings.figures_dir() / "release" / f"{city}_{hour}.png", "preview")})
        return {"release_id": result.release_id, "path": str(result.path), "status": result.status}


    return city_hour_release


def release_asset(assets_dir: str | None) -> AssetsDefinition:
    """``release``: every generated city x peak hour of the run."""

    @asset(group_name="release", kinds={"stac"}, deps=["city_hour_release"],
           ins={"evaluation_report": AssetIn(metadata={OPTIONAL_INPUT: True}), "privacy_audit": AssetIn()})
    def release(context: AssetExecutionContext, settings: AppshotSettings, evaluation_report: dict | None,
                privacy_audit: list) -> dict:
        """Every generated city x peak hour of the run gathered into one versioned release, with the
        leave-one-city-out fidelity table of ``evaluation_report`` in its dataset card (the card says
        so when the evaluation has not been run) and the privacy figures; runs after the blocking privacy gate.
        The hourly series of those cities that the run folder holds (``hourly_series``, ``dg_series``, when
        materialised) go in too, with a card section."""
        parts = parts_from_run_dir(run_folder(settings, assets_dir))
        for part in parts:
            part.privacy = audit_of_part(privacy_audit, part.city, part.hour, str(part.snapshots.attrs["model_hash"]),
                                         part.seed)
        fidelity = {"leave_one_city_out": evaluation_report["table"]} if evaluation_report else None
        series = series_from_run_dir(run_folder(settings, assets_dir), sorted({p.city for p in parts}))
        result = publish_release(parts, Path(settings.data_dir) / "releases", fidelity=fidelity, series=series)
        verified = _verify(result)
        first = parts[0]
        png = preview_png(first.snapshots, f"{first.city}, {first.hour}: synthetic (release {result.release_id})")
        context.add_output_metadata({
            **release_metadata(result, verified), "parts": MetadataValue.text(
                ", ".join(f"{p.city}/{p.hour}" for p in parts)),
            "hourly_series": MetadataValue.text(", ".join(f"{p.city}/{p.method}" for p in series) or "none"),
            **png_metadata(png, settings.figures_dir() / "release" / f"{result.release_id}.png", "preview")})
        return {"release_id": result.release_id, "path": str(result.path), "status": result.status,
                "parts": [f"{p.city}/{p.hour}" for p in parts]}


    return release
