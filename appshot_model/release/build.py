"""Gather release inputs: from a pipeline run folder, or by generating for a region file.

Model and region code (``appshot_model.model.artefact``, ``appshot_model.model.generate``,
``appshot_model.context``) is imported lazily, so the rest of the release package works
without it; tests inject stand-ins through the ``load_model``/``generate``/... parameters.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from appshot_model.core.cube import read_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import exclusive_folder
from appshot_model.core.names import PEAK_HOURS
from appshot_model.release.card import OSM_LICENCE
from appshot_model.release.layout import ReleasePart, SeriesPart
from appshot_model.release.publish import PublishResult, write_release_dir

GENERATED = "generated_snapshots"
TRAINED = "trained_model"
CONTEXT = "context_cube"


def load_model(path: Path) -> Any:
    """``ModelArtefact.load(path)`` (imported lazily)."""
    from appshot_model.model.artefact import ModelArtefact

    return ModelArtefact.load(path)


def training_label(artefact: Any) -> str:
    """What the artefact says it was trained on (falls back to a neutral phrase)."""
    for name in ("training_label", "training_data_label", "label"):
        value = getattr(artefact, name, None)
        if isinstance(value, str) and value:
            return value
    for name in ("metadata", "config", "info"):
        value = getattr(artefact, name, None)
        if isinstance(value, dict):
            for key in ("training_label", "training_data_label", "training_data", "label"):
                if isinstance(value.get(key), str) and value[key]:
                    return value[key]
    return "unrecorded training data"


def read_fidelity(path: str | os.PathLike | None) -> dict[str, list[dict]] | None:
    """A fidelity table from JSON (``{name: [rows]}`` or ``[rows]``) or CSV; ``None`` for no file."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise AppshotInputError(f"fidelity table {path} does not exist")
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            return {path.stem: list(csv.DictReader(handle))}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise AppshotInputError(f"fidelity table {path} is not JSON: {exc}") from exc
    if isinstance(data, list):
        return {path.stem: data}
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return data
    raise AppshotInputError(f"fidelity table {path}: expected a list of rows or a mapping name -> rows")


def parts_from_run_dir(assets_dir: str | os.PathLike, cities: Sequence[str] | None = None,
                       hours: Sequence[str] | None = None,
                       model_loader: Callable[[Path], Any] | None = None) -> list[ReleasePart]:
    """Release parts from a pipeline's asset folder: ``generated_snapshots/<city>/<hour>.nc``,
    ``trained_model/<hour>/`` and ``context_cube/<city>.nc`` (the last two when present).
    ``model_loader`` (default :func:`load_model`) reads the model to record its training label."""
    model_loader = model_loader or load_model
    root = Path(assets_dir)
    generated = root / GENERATED
    if not generated.is_dir():
        raise AppshotInputError(f"{generated} does not exist: no generated snapshots in run folder {root}")
    found = sorted(generated.glob("*/*.nc"))
    selected = [f for f in found if (not cities or f.parent.name in cities) and (not hours or f.stem in hours)]
    for name, wanted, have in (("city", cities, {f.parent.name for f in found}),
                               ("hour", hours, {f.stem for f in found})):
        unknown = sorted(set(wanted or ()) - have)
        if unknown:
            raise AppshotInputError(f"{name} {unknown} has no generated snapshots under {generated}; found {sorted(have)}")
    if not selected:
        raise AppshotInputError(f"no generated snapshots (<city>/<hour>.nc) under {generated}")
    parts: list[ReleasePart] = []
    labels: dict[str, str] = {}
    for cube_file in selected:
        city, hour = cube_file.parent.name, cube_file.stem
        snapshots = read_cube(cube_file)
        model_dir = root / TRAINED / hour
        context_file = root / CONTEXT / f"{city}.nc"
        if hour not in labels:
            labels[hour] = ""
            if model_dir.is_dir():
                try:
                    labels[hour] = training_label(model_loader(model_dir))
                except ImportError:
                    labels[hour] = ""
        source = str(snapshots.attrs.get("source_context", ""))
        parts.append(ReleasePart(
            city=city, hour=hour, snapshots=snapshots,
            context=read_cube(context_file) if context_file.is_file() else None,
            model_dir=model_dir if model_dir.is_dir() else None,
            context_sources=[{"name": f"context cube of {city}", "licence": source or "not recorded"}],
            training_label=labels[hour]))
    return parts


#: Run-folder assets holding hourly series (``<asset>/<city>.nc``) -> release series method.
SERIES_ASSETS = {"hourly_series": "appshot", "dg_series": "dg"}


def series_from_run_dir(assets_dir: str | os.PathLike, cities: Sequence[str] | None = None) -> list[SeriesPart]:
    """The hourly series a pipeline run folder holds (``hourly_series/<city>.nc``: AppShot, ``dg_series/<city>.nc``:
    DG), for ``cities`` (default all); none is not an error (series are optional in a release)."""
    root = Path(assets_dir)
    found = []
    for asset_name, method in SERIES_ASSETS.items():
        for path in sorted((root / asset_name).glob("*.nc")):
            if not cities or path.stem in cities:
                found.append(SeriesPart(city=path.stem, method=method, series=read_cube(path)))
    return found


def check_attributes(artefact: Any, context: xr.DataArray, model_dir: Path, region_file: Path) -> xr.DataArray:
    """The context restricted to the model's attributes, in the model's order; a clear error
    listing every attribute the model needs and the region's context lacks."""
    needed = [str(a) for a in artefact.attributes]
    have = [str(a) for a in context.attribute.values]
    missing = [a for a in needed if a not in have]
    if missing:
        raise AppshotInputError(
            f"model {model_dir} needs attributes {missing} that the context of {region_file} lacks "
            f"(it has {have}); rebuild the region's context with those layers or use a model trained "
            "on this attribute set")
    return context.sel(attribute=needed)


def generate_for_region(model_dir: str | os.PathLike, region_file: str | os.PathLike, hour: str, samples: int,
                        seed: int, out_dir: str | os.PathLike, *, progress: bool = False,
                        loader: Callable[[Path], Any] | None = None,
                        region_loader: Callable[[Path], Any] | None = None,
                        context_builder: Callable[..., tuple[xr.DataArray, dict]] | None = None,
                        generate: Callable[..., xr.DataArray] | None = None,
                        allow_missing_layers: bool = False, dask_address: str | None = None) -> PublishResult:
    """Load the model, build the region's context cube, check attribute names, generate
    ``samples`` snapshots with ``seed`` and write a release folder ``out_dir`` (COGs, NetCDF,
    grid, STAC, card, manifest) without Dagster; large regions (or any, given ``dask_address``) generate
    chunked on Dask (:func:`appshot_model.model.chunked.generate_region`). ``out_dir`` is locked for the whole run: a second
    process writing into it at the same time fails at once with a clear error."""
    model_dir, region_file = Path(model_dir), Path(region_file)
    if hour not in PEAK_HOURS:
        raise AppshotInputError(f"--hour {hour!r} is not a peak hour; expected one of {sorted(PEAK_HOURS)}")
    if samples < 1:
        raise AppshotInputError(f"--samples must be at least 1, got {samples}")
    if not model_dir.is_dir():
        raise AppshotInputError(f"model directory {model_dir} does not exist")
    if not region_file.is_file():
        raise AppshotInputError(f"region file {region_file} does not exist")
    if region_loader is None:
        from appshot_model.context.region import load_region as region_loader  # type: ignore[no-redef]
    if context_builder is None:
        from appshot_model.context.build import build_context_cube as context_builder  # type: ignore[no-redef]
    if generate is None:
        from appshot_model.model.chunked import generate_region
        generate = functools.partial(generate_region, dask_address=dask_address)
    with exclusive_folder(out_dir, "--out folder"):
        artefact = (loader or load_model)(model_dir)
        model_hour = getattr(artefact, "peak_hour", None)
        if model_hour and str(model_hour) != hour:
            raise AppshotInputError(f"model {model_dir} was trained for the {model_hour} peak, not --hour {hour}")
        region = region_loader(region_file)
        name = str(getattr(region, "name", region_file.stem))
        context, metadata = context_builder(region, progress=progress)
        context = check_attributes(artefact, context, model_dir, region_file)
        from appshot_model.context.build import check_model_attributes
        context = check_model_attributes(context, list(artefact.attributes), model=f"model {model_dir}",
                                         allow_missing_layers=allow_missing_layers)
        snapshots = generate(artefact, context, n_samples=samples, seed=seed, progress=progress)
        snapshots.attrs.update(label="synthetic", peak_hour=hour, region=name)
        sources = _sources(metadata)
        part = ReleasePart(city=_folder_name(name), hour=hour, snapshots=snapshots, context=context,
                           model_dir=model_dir, context_sources=sources, training_label=training_label(artefact),
                           context_description=f"real context of {name}")
        return write_release_dir([part], out_dir, progress=progress)


def _folder_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip())
    return cleaned.lstrip("._-") or "region"


def _sources(metadata: dict | None) -> list[dict]:
    """Context sources and licences from the context builder's metadata (OSM always credited)."""
    sources: list[dict] = []
    raw = (metadata or {}).get("sources") or (metadata or {}).get("layers") or []
    if isinstance(raw, dict):
        raw = [{"name": k, **(v if isinstance(v, dict) else {"path": str(v)})} for k, v in raw.items()]
    for entry in raw:
        entry = {"name": str(entry)} if not isinstance(entry, dict) else entry
        clean = {k: str(v) for k, v in entry.items() if isinstance(v, (str, int, float))}
        if "licence" not in clean and "license" in clean:
            clean["licence"] = clean.pop("license")
        if "osm" in json.dumps(clean).lower() and "licence" not in clean:
            clean["licence"] = OSM_LICENCE["licence"]
            clean["attribution"] = OSM_LICENCE["attribution"]
        sources.append(clean)
    if not any(s.get("licence") == OSM_LICENCE["licence"] for s in sources):
        sources.append(dict(OSM_LICENCE))
    return sources
