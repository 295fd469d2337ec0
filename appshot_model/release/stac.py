"""STAC catalog of a release (one item per city x peak hour) and its offline validation.

Items carry the projection (v2.0) and raster (v1.1) extensions. Validation never touches the
network: the core STAC 1.1 schemas are the copies pystac ships; the two extension schemas are
not shipped by pystac, so they are checked against local, hand-written schemas covering the
extension fields this module writes (types and shapes of ``proj:*`` and ``raster:bands``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.validation import GetSchemaError, JsonSchemaSTACValidator
from rasterio.warp import transform_bounds, transform_geom

from appshot_model.core.cube import grid_of
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import PEAK_HOURS
from appshot_model.release import layout
from appshot_model.release.layout import ReleasePart

MEDIA_NETCDF = "application/netcdf"
MEDIA_PARQUET = "application/vnd.apache.parquet"
MEDIA_MARKDOWN = "text/markdown"

_NUMBER_ARRAY = {"type": "array", "items": {"type": "number"}}


def _extension_schema(uri: str, name: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A local JSON schema checking the fields of one STAC extension (``uri``) in an item."""
    return {"$schema": "http://json-schema.org/draft-07/schema#", "$id": uri,
            "title": f"appshot local check of the {name} extension fields", "type": "object",
            "required": ["stac_extensions", *required],
            "properties": {"stac_extensions": {"type": "array", "contains": {"const": uri}}, **properties}}


_PROJECTION_FIELDS = {
    "type": "object",
    "properties": {
        "proj:code": {"type": ["string", "null"]},
        "proj:wkt2": {"type": ["string", "null"]},
        "proj:projjson": {"type": ["object", "null"]},
        "proj:shape": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0}},
        "proj:transform": {**_NUMBER_ARRAY, "oneOf": [{"minItems": 6, "maxItems": 6}, {"minItems": 9, "maxItems": 9}]},
        "proj:bbox": {**_NUMBER_ARRAY, "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}]},
        "proj:centroid": {"type": "object", "required": ["lat", "lon"],
                          "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                         "lon": {"type": "number", "minimum": -180, "maximum": 180}}},
    },
}
PROJECTION_SCHEMA = _extension_schema(ProjectionExtension.get_schema_uri(), "projection", ["properties"], {
    "properties": _PROJECTION_FIELDS,
    "assets": {"type": "object", "additionalProperties": _PROJECTION_FIELDS},
})
_RASTER_BAND = {
    "type": "object",
    "properties": {
        "nodata": {"oneOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]},
        "sampling": {"enum": ["area", "point"]},
        "data_type": {"enum": [d.value for d in DataType]},
        "bits_per_sample": {"type": "integer"},
        "spatial_resolution": {"type": "number"},
        "statistics": {"type": "object"},
        "unit": {"type": "string"},
        "scale": {"type": "number"},
        "offset": {"type": "number"},
        "histogram": {"type": "object"},
    },
}
RASTER_SCHEMA = _extension_schema(RasterExtension.get_schema_uri(), "raster", ["assets"], {
    "assets": {"type": "object", "additionalProperties": {
        "type": "object", "properties": {"raster:bands": {"type": "array", "items": _RASTER_BAND}}}},
})


class OfflineStacValidator(JsonSchemaSTACValidator):
    """pystac's JSON-schema validator with every schema taken from local copies; a schema that
    is not available locally is an error instead of a download."""

    def __init__(self) -> None:
        super().__init__()
        self.schema_cache[ProjectionExtension.get_schema_uri()] = PROJECTION_SCHEMA
        self.schema_cache[RasterExtension.get_schema_uri()] = RASTER_SCHEMA

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri not in self.schema_cache:
            raise GetSchemaError(schema_uri, RuntimeError("schema not available offline"))
        return self.schema_cache[schema_uri]


def _footprint(part: ReleasePart) -> tuple[dict, list[float], Any]:
    grid = grid_of(part.snapshots)
    left, bottom, right, top = grid.bounds
    ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
    geometry = transform_geom(grid.crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]},
                              precision=7)
    geometry = {"type": "Polygon", "coordinates": [[list(map(float, p)) for p in geometry["coordinates"][0]]]}
    bbox = [round(v, 7) for v in transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)]
    return geometry, bbox, grid


def make_item(part: ReleasePart, release_id: str, release_date: dt.date) -> pystac.Item:
    """STAC item of one city x peak hour, with asset hrefs relative to ``<city>/<hour>/``."""
    geometry, bbox, grid = _footprint(part)
    start_hour = PEAK_HOURS.get(part.hour, 0)
    start = dt.datetime.combine(release_date, dt.time(start_hour), tzinfo=dt.timezone.utc)
    units = str(part.snapshots.attrs["units"])
    item = pystac.Item(
        id=f"{part.city}-{part.hour}", geometry=geometry, bbox=bbox, datetime=None,
        start_datetime=start, end_datetime=start + dt.timedelta(hours=1),
        properties={"title": f"{part.city}, {part.hour} peak: synthetic per-service traffic",
                    "description": part.label_statement,
                    "appshot:label": "synthetic", "appshot:city": part.city,
                    "appshot:peak_hour": part.hour, "appshot:seed": part.seed,
                    "appshot:samples": part.n_samples, "appshot:release": release_id,
                    "appshot:model_hash": str(part.snapshots.attrs["model_hash"]),
                    "appshot:services": part.services, "appshot:units": units})
    crs = grid.crs
    from pyproj import CRS

    epsg = CRS.from_user_input(crs).to_epsg()
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=f"EPSG:{epsg}" if epsg else None, wkt2=None if epsg else CRS.from_user_input(crs).to_wkt(),
        shape=[grid.height, grid.width], transform=[float(v) for v in list(grid.transform)[:6]],
        bbox=[float(v) for v in grid.bounds])
    RasterExtension.add_to(item)
    bands = [{"name": s, "description": f"{s} traffic", "unit": units} for s in part.services]
    for sample in range(part.n_samples):
        key = f"sample_{sample:03d}"
        asset = pystac.Asset(href=f"./{layout.COG_DIR}/{layout.cog_name(sample)}", media_type=pystac.MediaType.COG,
                             roles=["data"], title=f"generated snapshot {sample} (one band per service)",
                             extra_fields={"bands": bands})
        item.add_asset(key, asset)
        RasterExtension.ext(asset).apply(bands=[
            RasterBand.create(data_type=DataType.FLOAT32, unit=units, spatial_resolution=grid.cell_size_m,
                              sampling=None) for _ in part.services])
    item.add_asset("netcdf", pystac.Asset(href=f"./{layout.NETCDF}", media_type=MEDIA_NETCDF, roles=["data"],
                                          title="all samples, CF NetCDF [sample, service, y, x]"))
    item.add_asset("grid", pystac.Asset(href=f"./{layout.GRID}", media_type=MEDIA_PARQUET, roles=["metadata"],
                                        title="grid cells with per-service mean/std over samples (GeoParquet)"))
    item.add_asset("card", pystac.Asset(href=f"../../{layout.CARD_MD}", media_type=MEDIA_MARKDOWN,
                                        roles=["metadata"], title="dataset card"))
    if part.context is not None:
        item.add_asset("context", pystac.Asset(href=f"../../{layout.context_path(part.city).as_posix()}",
                                               media_type=MEDIA_NETCDF, roles=["source"],
                                               title="context cube the model was applied to"))
    if part.model_dir is not None:
        item.add_asset("model", pystac.Asset(href=f"../../{layout.model_dir(part.hour).as_posix()}/",
                                             roles=["source"], title="model artefact that generated the data"))
    return item


def write_catalog(root: str | os.PathLike, parts: Sequence[ReleasePart], release_id: str,
                  release_date: dt.date) -> Path:
    """Write ``catalog.json`` and one ``<city>/<hour>/item.json`` per part (relative links)."""
    root = Path(root).resolve()
    catalog = pystac.Catalog(id=f"appshot-{release_id}",
                             description="appshot release: SYNTHETIC per-service mobile traffic snapshots "
                                         "generated by the AppShot model",
                             title=f"appshot release {release_id}")
    for part in parts:
        item = make_item(part, release_id, release_date)
        catalog.add_item(item)
        item.set_self_href(str(root / layout.part_dir(part.city, part.hour) / layout.ITEM))
    catalog.set_self_href(str(root / layout.CATALOG))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / layout.CATALOG


def validate_catalog(path: str | os.PathLike) -> int:
    """Validate the catalog and every item offline; return the number of objects checked.

    Raises :class:`AppshotInputError` naming the object that fails."""
    validator = OfflineStacValidator()
    path = Path(path)
    try:
        catalog = pystac.Catalog.from_file(str(path))
    except Exception as exc:  # pystac raises several types for unreadable JSON
        raise AppshotInputError(f"cannot read STAC catalog {path}: {exc}") from exc
    checked = 0
    for obj in [catalog, *catalog.get_children(), *catalog.get_items(recursive=True)]:
        try:
            obj.validate(validator=validator)
        except pystac.STACValidationError as exc:
            raise AppshotInputError(f"STAC object {obj.get_self_href()} is invalid: {exc}") from exc
        checked += 1
    return checked
